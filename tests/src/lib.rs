//! Integration tests for the context workspace live in `tests/`.

/// The workspace README's Rust code blocks, compiled and run as doctests
/// (`cargo test -p context-tests --doc`), so that what the README shows keeps compiling and
/// its assertions keep holding. Blocks marked `rust,ignore` (context-tower's, which need a
/// server) and non-Rust blocks are skipped.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct Readme;
