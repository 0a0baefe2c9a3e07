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
//! # Executors: what needs tokio
//!
//! Nothing but spawning futures. [`Context::done`], [`Context::run`], [`Context::scope`],
//! [`Group::wait_async`] (and `group.await`), awaiting a [`GoHandle`], the token bridges and
//! the blocking waits work on any executor, or none: they only store the task's waker, and
//! deadlines fire from this crate's own timer thread, not from a runtime's timer. They are
//! tested under tokio, smol's `async-executor` and `futures::executor::block_on`. What needs
//! the `tokio` feature *and* a running tokio runtime: `go!` of a future,
//! `Group::spawn`/`try_spawn` and `GoHandle::spawn`/`try_spawn` (outside a runtime the `try_`
//! forms return `SpawnError`). Blocking work (`go!` of a call, [`Group::spawn_blocking`],
//! [`GoHandle::spawn_blocking`]) runs on OS threads and needs nothing.
//!
//! # Features
//!
//! - `macros` (default): re-exports `#[cancellable]`, `go!` and `select_done!`.
//! - `tokio`: lets `go!` and [`Group`] spawn futures as tokio tasks. Blocking work runs on OS
//!   threads and needs nothing.
//! - `tracing`: one `tracing` event per cancellation *origin* (a `cancel()`, a deadline firing,
//!   the last [`CancelHandle`] dropped, a [`Group`] member failing; never one per descendant),
//!   target `go_context`, level `DEBUG`, with the error, the cause, its location and the
//!   context's chain. Without the feature nothing of it is compiled in.
//! - `tokio-util`: `Context::to_token` (a `CancellationToken` cancelled when the context is
//!   done) and `Context::with_token` (a child cancelled when a token is), synchronous both
//!   ways, with no task or thread per bridge. Needs no tokio runtime.
//! - `signal` (Unix and Windows): `Context::with_signals`, Go's `signal.NotifyContext`: a child
//!   cancelled on SIGINT or SIGTERM (on Windows: the console's Ctrl-C, Ctrl-Break, close,
//!   logoff or shutdown event), with a cause naming the signal; once it is done, a second
//!   Ctrl-C ends the process. Needs no async runtime.
#![warn(missing_docs)]
// docs.rs (`--cfg docsrs`, nightly): mark every feature-gated item with its feature. `doc_cfg`
// now includes what `doc_auto_cfg` did, so the `#[cfg(feature = "...")]` attributes are enough.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod after_func;
mod ambient;
#[cfg(any(feature = "tokio-util", all(feature = "signal", any(unix, windows))))]
mod bridge;
mod clock;
mod context;
mod error;
mod handle;
mod spawn;
mod sync;
mod timer;
mod trace;
mod tree;
mod unwind;
mod values;
mod waiters;

pub use after_func::AfterFunc;
pub use ambient::{EnterGuard, Scope};
#[cfg(all(feature = "signal", any(unix, windows)))]
pub use bridge::signal::SignalReceived;
#[cfg(feature = "tokio-util")]
pub use bridge::token::TokenCancelled;
pub use context::Context;
pub use error::{BoxError, Cause, Error};
pub use handle::CancelHandle;
pub use spawn::{
    GoHandle, GoJoin, Group, GroupWait, JoinError, LimitError, MemberFailed, SpawnError,
};
pub use waiters::{Done, Run};

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
