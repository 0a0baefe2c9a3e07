//! Go's `context` for Rust: cancellation trees, deadlines, causes and request-scoped values,
//! for threads and for async, on any executor.
//!
//! A [`Context`] carries a cancellation signal, an optional deadline and typed values down a
//! call tree. Cancelling a context cancels everything derived from it, synchronously; a
//! deadline cancels on time through one shared timer; [`Context::cause`] says why and where.
//!
//! ```
//! use go_context::{Context, Error};
//! use std::time::Duration;
//!
//! fn do_some_operation(ctx: &Context) -> Result<(), Error> {
//!     loop {
//!         // ... work ...
//!         ctx.sleep(Duration::from_millis(5))?; // returns at once on cancellation
//!     }
//! }
//!
//! let (ctx, cancel) = Context::background().with_cancel();
//! let worker = std::thread::spawn({
//!     let ctx = ctx.clone();
//!     move || do_some_operation(&ctx)
//! });
//! cancel.cancel();
//! assert_eq!(worker.join().unwrap(), Err(Error::Canceled));
//! ```
//!
//! Differences from Go that a Go programmer should know:
//! - Dropping the last [`CancelHandle`] cancels its context (Go's `defer cancel()`), so
//!   `let (ctx, _) = parent.with_cancel()` gives a context that is cancelled at once.
//! - Values are keyed by type: `ctx.with_value(RequestId(7))`, `ctx.value::<RequestId>()`.
//! - A context nobody holds is unlinked from its parent and its timer at once.
//!
//! # Beyond the context
//!
//! - `#[cancellable(timeout = "2s")]` on a fn: the body runs under a child context (with that
//!   deadline), checked at every loop head; `select_done!` is Go's `select` with
//!   `case <-ctx.Done():`; `go!(f(args))` is Go's `go` statement, returning a [`GoHandle`].
//!   (Feature `macros`, on by default.)
//! - [`Group`]: Go's errgroup, with limits, causes, and panics that are never lost.
//!
//! # Features
//!
//! - `macros` (default): re-exports `#[cancellable]`, `go!` and `select_done!`.
//! - `tokio`: lets `go!` and [`Group`] spawn futures as tokio tasks. Blocking work runs on OS
//!   threads and needs nothing.
#![warn(missing_docs)]

mod after_func;
mod ambient;
mod context;
mod error;
mod go;
mod group;
mod handle;
mod slab;
mod sync;
mod timer;
mod trace;
mod tree;
mod values;
mod waiters;

pub use after_func::AfterFunc;
pub use ambient::EnterGuard;
pub use context::Context;
pub use error::{BoxError, Cause, Error};
#[cfg(feature = "tokio")]
pub use go::SpawnError;
pub use go::{GoHandle, JoinError};
pub use group::{Group, GroupWait, LimitError, MemberFailed};
pub use handle::CancelHandle;
pub use waiters::Done;

#[cfg(feature = "macros")]
pub use context_macros::cancellable;
#[cfg(feature = "macros")]
mod macros;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

#[cfg(test)]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
