//! Support for the code that `context-macros` generates. Not public API: names here may change
//! in any release. Generated code reaches it only as `::go_context::__private::…` (or through
//! the path given by `#[cancellable(crate = "…")]`).
//!
//! What each macro needs:
//! - `#[cancellable]` on a sync fn: [`SyncScope`] (child context, entered as current),
//!   [`cancelled`] at each loop head and in the fake-return guard.
//! - `#[cancellable]` on an `async fn`: [`AsyncScope`] and [`run`].
//! - `select_done!`: [`AsContext`], `Context::err`, `Context::done` and `Poll`-level
//!   plumbing from `core`.

use std::future::{Future, IntoFuture};

#[doc(hidden)]
pub use crate::spawn::support::*;
use crate::EnterGuard;
pub use crate::{CancelHandle, Context, Error};

/// The current context's error, without the reference-count traffic of
/// `Context::current()`: the sync `select_done!` reads this once per loop iteration.
#[inline]
pub fn current_err() -> Option<Error> {
    crate::ambient::current_err()
}
pub use core::time::Duration;

/// Makes the child context of a `#[cancellable]` call: with a deadline `timeout` from now if
/// given, else a plain cancellable child. The handle cancels the child when the call ends.
#[inline]
pub fn child(parent: &Context, timeout: Option<Duration>) -> (Context, CancelHandle) {
    match timeout {
        Some(timeout) => parent.with_timeout(timeout),
        None => parent.with_cancel(),
    }
}

/// The child context of a sync `#[cancellable]` fn, current on this thread while it lives.
///
/// Fields drop in order: the enter guard first (the caller's current context comes back),
/// then the handle (the child is cancelled, so work it started is not orphaned).
pub struct SyncScope {
    _enter: EnterGuard,
    _cancel: CancelHandle,
    ctx: Context,
}

impl SyncScope {
    /// A child of `parent` (with `timeout`, if any), entered as the current context.
    #[inline]
    pub fn new(parent: &Context, timeout: Option<Duration>) -> SyncScope {
        let (ctx, cancel) = child(parent, timeout);
        SyncScope {
            _enter: ctx.enter(),
            _cancel: cancel,
            ctx,
        }
    }

    /// The child context.
    #[inline]
    pub fn context(&self) -> &Context {
        &self.ctx
    }
}

impl core::fmt::Debug for SyncScope {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("SyncScope").field(&self.ctx).finish()
    }
}

/// The child context of an `async` `#[cancellable]` fn. `Send + Sync`: it is held across the
/// body's `.await`s. It is made current by [`run`], poll by poll.
pub struct AsyncScope {
    _cancel: CancelHandle,
    ctx: Context,
}

impl AsyncScope {
    /// A child of `parent` (with `timeout`, if any).
    #[inline]
    pub fn new(parent: &Context, timeout: Option<Duration>) -> AsyncScope {
        let (ctx, cancel) = child(parent, timeout);
        AsyncScope {
            _cancel: cancel,
            ctx,
        }
    }

    /// The child context.
    #[inline]
    pub fn context(&self) -> &Context {
        &self.ctx
    }
}

impl core::fmt::Debug for AsyncScope {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("AsyncScope").field(&self.ctx).finish()
    }
}

/// Runs an async `#[cancellable]` body: current context = `ctx` during each poll, raced against
/// `ctx.done()` (done wins when both are ready; the body is dropped at its `.await`).
pub fn run<F: IntoFuture>(
    ctx: &Context,
    body: F,
) -> impl Future<Output = Result<F::Output, Error>> {
    ctx.scope(ctx.run(body))
}

/// Anything `#[cancellable]` takes as the parent context, and `select_done!` as its context:
/// `Context`, `&Context`, `&mut Context`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `go_context::Context`",
    label = "expected `Context` or `&Context` here",
    note = "`#[cancellable]` takes a parameter whose type is spelled `Context` or `&Context` as the parent context; `select_done!` takes `done(ctx)` with `ctx` a `Context` or `&Context`"
)]
pub trait AsContext {
    /// The context itself.
    fn as_context(&self) -> &Context;
}

impl AsContext for Context {
    #[inline]
    fn as_context(&self) -> &Context {
        self
    }
}

impl<T: AsContext + ?Sized> AsContext for &T {
    #[inline]
    fn as_context(&self) -> &Context {
        (**self).as_context()
    }
}

impl<T: AsContext + ?Sized> AsContext for &mut T {
    #[inline]
    fn as_context(&self) -> &Context {
        (**self).as_context()
    }
}

/// What a `#[cancellable]` fn returns when its context is done: decided by trait, not by the
/// spelling of the return type, so aliases such as `io::Result<T>` work.
#[diagnostic::on_unimplemented(
    message = "`#[cancellable]` cannot return `{Self}` when the context is done",
    label = "no value of this type means \"cancelled\"",
    note = "return `Result<T, E>` where `E: From<go_context::Error>` (e.g. `io::Result<T>`, `Result<T, go_context::Error>`), `Option<T>`, or `()`"
)]
pub trait CancelReturn {
    /// The value returned on cancellation with `err`.
    fn cancelled(err: Error) -> Self;
}

impl<T, E: From<Error>> CancelReturn for Result<T, E> {
    #[inline]
    fn cancelled(err: Error) -> Self {
        Err(E::from(err))
    }
}

impl<T> CancelReturn for Option<T> {
    #[inline]
    fn cancelled(_: Error) -> Self {
        None
    }
}

impl CancelReturn for () {
    #[inline]
    fn cancelled(_: Error) -> Self {}
}

/// The value to return on cancellation; the return type is inferred from the `return`.
#[cold]
#[inline(never)]
pub fn cancelled<R: CancelReturn>(err: Error) -> R {
    R::cancelled(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_returns() {
        assert_eq!(cancelled::<Option<u8>>(Error::Canceled), None);
        assert_eq!(
            cancelled::<Result<u8, Error>>(Error::DeadlineExceeded),
            Err(Error::DeadlineExceeded)
        );
        let io: std::io::Result<()> = cancelled(Error::DeadlineExceeded);
        assert_eq!(io.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    }

    #[test]
    fn sync_scope_enters_and_cancels() {
        let (parent, _cancel) = Context::background().with_cancel();
        let child = {
            let scope = SyncScope::new(&parent, None);
            assert_eq!(
                format!("{:?}", Context::current()),
                "background.with_cancel.with_cancel"
            );
            scope.context().clone()
        };
        assert_eq!(child.err(), Some(Error::Canceled));
        assert_eq!(parent.err(), None);
        assert_eq!(format!("{:?}", Context::current()), "background");
    }
}
