//! Waiting for a context to be done: the [`Done`] future for any executor, and blocking waits
//! for threads. Both register a [`Waiter`] on the context's cancel node through the same three
//! calls (`register`, `with_waiter`, `unregister`) and differ only in how they sleep.
//!
//! The pattern is "check, register, check again": `register` re-checks the state under the
//! node's lock, and cancellation takes every waiter under that same lock (tree invariant 4), so
//! a wake-up can never be lost between the check and the registration.
//!
//! A registration is one entry of the node's intrusive waiter list (40 bytes, freed when it is
//! unregistered or woken). Its key stays valid while the node is live and the key is not
//! unregistered: every `unsafe` call below relies on exactly that, and says why it holds.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use crate::error::Error;
use crate::sync::thread;
use crate::tree::{Waiter, WaiterKey};
use crate::Context;

/// A future that resolves with the context's [`Error`] once the context is done: Go's
/// `<-ctx.Done()`, followed by `ctx.Err()`.
///
/// Made by [`Context::done`]. It works on any executor: it only stores the task's
/// [`Waker`](std::task::Waker).
/// Dropping it while pending unregisters it, so it leaves nothing behind. For a context that
/// can never be done (such as [`Context::background`]) it stays pending forever and stores
/// nothing.
///
/// # Cancellation safety
///
/// Dropping a `Done` is always safe and loses nothing: a new `done()` future sees the same
/// state.
///
/// # Examples
///
/// ```
/// use go_context::{Context, Error};
///
/// let (ctx, cancel) = Context::background().with_cancel();
/// let waiter = std::thread::spawn(move || futures_executor::block_on(ctx.done()));
/// cancel.cancel();
/// assert_eq!(waiter.join().unwrap(), Error::Canceled);
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Done {
    ctx: Context,
    /// The registration, while one is live: set by `register`, cleared by the one call that
    /// unregisters it or finds the node done (after which cancellation owns the entry).
    key: Option<WaiterKey>,
}

impl Done {
    pub(crate) fn new(ctx: Context) -> Done {
        Done { ctx, key: None }
    }
}

impl Future for Done {
    type Output = Error;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Error> {
        let this = self.get_mut();
        let Some(core) = this.ctx.node.cancel_node() else {
            return Poll::Pending;
        };
        if let Some(err) = core.err() {
            return Poll::Ready(err);
        }
        let result = match this.key {
            // Tree invariant 6: a new waker is cloned, and the one it replaces dropped, outside
            // the node's lock (both may run user code, which may use this very context).
            Some(key) => {
                let same =
                    |w: &mut Waiter| matches!(w, Waiter::Task(old) if old.will_wake(cx.waker()));
                // SAFETY: `key` came from `register` on this node and was never unregistered
                // (only `drop` unregisters).
                match unsafe { core.with_waiter(key, same) } {
                    Some(true) => Some(key),
                    Some(false) => {
                        let new = Waiter::Task(cx.waker().clone());
                        let swap = move |w: &mut Waiter| std::mem::replace(w, new);
                        // SAFETY: as above. `old` (or `new`, if the node is done by now) is
                        // dropped after the lock.
                        let old = unsafe { core.with_waiter(key, swap) };
                        old.map(|old| {
                            drop(old);
                            key
                        })
                    }
                    None => None,
                }
            }
            None => core.register(Waiter::Task(cx.waker().clone())).ok(),
        };
        match result {
            Some(key) => {
                this.key = Some(key);
                Poll::Pending
            }
            // Done in between: the error is set, and the waiter list was taken.
            None => {
                this.key = None;
                Poll::Ready(core.err().expect("a node that refuses waiters is done"))
            }
        }
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        if let (Some(key), Some(core)) = (self.key, self.ctx.node.cancel_node()) {
            // Once done, cancellation has taken every waiter: nothing to unregister.
            if core.is_done() {
                return;
            }
            // SAFETY: `key` came from `register` on this node and was never unregistered.
            drop(unsafe { core.unregister(key) });
        }
    }
}

impl fmt::Debug for Done {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Done")
            .field("context", &self.ctx)
            .field("registered", &self.key.is_some())
            .finish()
    }
}

/// Blocks the current thread until `ctx` is done (`Some(error)`) or `until` passes (`None`).
pub(crate) fn block_until(ctx: &Context, until: Option<Instant>) -> Option<Error> {
    let Some(core) = ctx.node.cancel_node() else {
        // Never done: just sleep (forever, without a limit).
        loop {
            match until {
                None => thread::park(),
                Some(t) => {
                    let now = Instant::now();
                    if now >= t {
                        return None;
                    }
                    thread::park_timeout(t - now);
                }
            }
        }
    };
    if let Some(err) = core.err() {
        return Some(err);
    }
    let key = match core.register(Waiter::Thread(thread::current())) {
        Ok(key) => key,
        Err((_, err)) => return Some(err),
    };
    loop {
        if let Some(err) = core.err() {
            return Some(err);
        }
        match until {
            None => thread::park(),
            Some(t) => {
                let now = Instant::now();
                if now >= t {
                    break;
                }
                thread::park_timeout(t - now);
            }
        }
    }
    // SAFETY: `key` came from `register` on this node just above and is unregistered once.
    match unsafe { core.unregister(key) } {
        Some(_) => None,
        // Done while timing out: report it, as the waiter was taken.
        None => core.err(),
    }
}
