//! The ambient context: the context "current" on this thread (sync code) or in this task
//! (async code, through [`Context::scope`]), so deep call stacks need not pass it by hand.

use std::cell::RefCell;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;

use crate::Context;

thread_local! {
    static CURRENT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

pub(crate) fn current() -> Option<Context> {
    CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
}

/// The current context's error, without cloning it: what a sync `select_done!` reads.
pub(crate) fn current_err() -> Option<crate::Error> {
    CURRENT
        .try_with(|c| c.borrow().as_ref().and_then(Context::err))
        .ok()
        .flatten()
}

fn replace(ctx: Option<Context>) -> Option<Context> {
    CURRENT.try_with(|c| c.replace(ctx)).ok().flatten()
}

/// Makes a context current on this thread until dropped; made by [`Context::enter`].
///
/// Guards nest: dropping one restores the context that was current before it. Drop them in
/// reverse order of creation (as scopes do). The guard is `!Send`: it belongs to its thread.
///
/// # Examples
///
/// ```
/// use context_core::Context;
///
/// let req = Context::background().with_value("request-42");
/// {
///     let _guard = req.enter();
///     assert_eq!(Context::current().value::<&str>(), Some(&"request-42"));
/// }
/// assert_eq!(Context::current().value::<&str>(), None);
/// ```
#[must_use = "the context is current only while the guard lives"]
pub struct EnterGuard {
    prev: Option<Context>,
    _not_send: PhantomData<*const ()>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        drop(replace(self.prev.take()));
    }
}

impl fmt::Debug for EnterGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnterGuard")
            .field("previous", &self.prev)
            .finish()
    }
}

pub(crate) fn enter(ctx: &Context) -> EnterGuard {
    EnterGuard {
        prev: replace(Some(ctx.clone())),
        _not_send: PhantomData,
    }
}

pub(crate) fn scope<F: IntoFuture>(ctx: Context, fut: F) -> impl Future<Output = F::Output> {
    let fut = fut.into_future();
    async move {
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(move |cx| {
            let _guard = enter(&ctx);
            fut.as_mut().poll(cx)
        })
        .await
    }
}
