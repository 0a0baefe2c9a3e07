//! Integration tests for the context workspace live in `tests/`.
