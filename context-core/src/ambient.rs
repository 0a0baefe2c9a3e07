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
/// use go_context::Context;
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
        let mut ctx = Some(ctx);
        std::future::poll_fn(move |cx| {
            // Moves the context into the thread-local for the poll and back out after it: no
            // reference-count traffic per poll.
            let _lent = Lent::new(&mut ctx);
            fut.as_mut().poll(cx)
        })
        .await
    }
}

/// The scope's context, lent to the thread-local for one poll; given back on drop (also when
/// the poll panics). Guards made inside the poll are dropped before it ends, so what the
/// thread-local holds then is the lent context again.
struct Lent<'a> {
    home: &'a mut Option<Context>,
    prev: Option<Context>,
    lent: bool,
}

impl<'a> Lent<'a> {
    fn new(home: &'a mut Option<Context>) -> Lent<'a> {
        let mut ctx = home.take();
        let (prev, lent) = match CURRENT.try_with(|c| c.replace(ctx.take())) {
            Ok(prev) => (prev, true),
            // Thread-locals are being torn down: the closure did not run; keep the context.
            Err(_) => {
                *home = ctx;
                (None, false)
            }
        };
        Lent { home, prev, lent }
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if self.lent {
            let prev = self.prev.take();
            if let Ok(back) = CURRENT.try_with(|c| c.replace(prev)) {
                *self.home = back;
            }
        }
    }
}
