//! Procedural macros for [`context-core`](https://docs.rs/context-core).
//!
//! Do not depend on this crate directly: use the re-exports in `context-core`, whose
//! `__private` module the generated code relies on.
#![forbid(unsafe_code)]
