//! A global allocator that counts live heap bytes, for the tests that prove nothing is kept:
//! `live()`. Including this module (`#[path = "support/counting_alloc.rs"] mod counting_alloc;`)
//! installs it for that test binary; keep such a binary to a single `#[test]`, so no other
//! test allocates while it measures.
//!
//! The one copy lives in `context-tower`, which must test from its own package.

include!("../../../context-tower/tests/support/counting_alloc.rs");
