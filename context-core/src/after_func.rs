//! `after_func`: run a function once a context is done, on a thread of its own.
//!
//! Go runs each `AfterFunc` callback in a new goroutine. A callback here registers on the
//! context as a plain [`Waker`] (the waiter list names no client); waking it hands the
//! function to a [`pool`] of threads that grows whenever all of its threads are blocked, up to
//! [`pool::MAX_THREADS`] (512, as tokio's blocking pool), so a callback that blocks delays
//! neither the canceller nor (up to that many blocked at once) other callbacks. Idle threads
//! exit after ten seconds. A burst of a million callbacks costs the canceller one short lock and
//! a push each, and the process a few threads, not a million.
//!
//! # Invariants
//!
//! 1. A [`Callback`]'s `state` leaves `PENDING` once: to `STARTED` (it will run; only the
//!    winner of that swap takes the function) or to `STOPPED` (it never runs). This is what makes
//!    [`AfterFunc::stop`]'s answer exact. The swap is `AcqRel`: the winner's `Acquire` pairs with
//!    the registration's `Release` (the function was stored before), and the function slot's own
//!    lock orders the take.
//! 2. Callbacks never run on the cancelling thread or a timer thread, and no lock of ours is
//!    held while a function is submitted, run or dropped: the function is moved out of its slot
//!    (and the slot's lock released) first.

// Under loom the std pool is unused (callbacks run inline, see `submit`).
#![cfg_attr(loom, allow(dead_code))]

mod pool;

use std::fmt;
use std::task::{Wake, Waker};
use std::time::Duration;

use crate::sync::{lock, Arc, AtomicU8, Mutex, Ordering};
use crate::tree::{Waiter, WaiterKey};
use crate::Context;
use pool::{Job, Pool};

const PENDING: u8 = 0;
const STARTED: u8 = 1;
const STOPPED: u8 = 2;

/// The pool every callback runs on.
static CALLBACKS: Pool = Pool::new("context-after-func", Duration::from_secs(10));

/// A registered callback: the [`AfterFunc`] handle and the context's waiter list (as a
/// [`Waker`]) share it.
struct Callback {
    state: AtomicU8,
    func: Mutex<Option<Job>>,
}

impl Callback {
    /// Hands the function to the pool if nobody stopped it first.
    fn fire(&self) {
        if self
            .state
            .compare_exchange(PENDING, STARTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            // Invariant 2: the guard is gone at the end of this statement.
            let job = lock(&self.func).take();
            if let Some(job) = job {
                submit(job);
            }
        }
    }
}

impl Wake for Callback {
    fn wake(self: Arc<Self>) {
        self.fire();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fire();
    }
}

/// Under loom the callback runs on the notifying thread (still after every lock of ours is
/// released): the std pool threads live outside the model.
#[cfg(loom)]
fn submit(job: Job) {
    crate::unwind::contain(job);
}

#[cfg(not(loom))]
fn submit(job: Job) {
    CALLBACKS.submit(job);
}

/// The handle returned by [`Context::after_func`]: Go's `stop` function.
///
/// Dropping it does **not** unregister the callback (as discarding Go's `stop` does not).
///
/// # Where the callback runs
///
/// Go runs each callback in a goroutine of its own. Here callbacks run on a pool of threads
/// shared by the process, never on the thread that cancels (nor on the timer's threads, for a
/// deadline) and never under a lock of this crate, so a callback may cancel, derive, wait on
/// or register on any context, its own included, and `cancel()` never waits for it.
///
/// - Callbacks that block do not stop the others: when every pool thread has been busy for
///   a millisecond or two, the pool starts more, up to 512 threads (tokio's blocking pool has as
///   many). So up to 512 callbacks can block at once, even waiting on each other; beyond that,
///   callbacks queue until one returns (Go has no such limit).
/// - A callback may wait a millisecond or two behind a slow (not blocked) one before another
///   thread takes it; a burst of callbacks is handed over with one wake-up, so cancelling a
///   context with 100,000 callbacks costs the canceller well under a microsecond each.
/// - If the OS refuses a thread, the callbacks wait in the queue (they never run on the
///   cancelling thread) and the pool asks again a millisecond later (or, if it could not start
///   at all, at the next callback handed to it).
/// - Threads idle for ten seconds exit.
///
/// # Examples
///
/// ```
/// use go_context::Context;
/// use std::sync::mpsc;
///
/// let (ctx, cancel) = Context::background().with_cancel();
/// let (tx, rx) = mpsc::channel();
/// let _registration = ctx.after_func(move || tx.send("cleaned up").unwrap());
/// cancel.cancel();
/// assert_eq!(rx.recv().unwrap(), "cleaned up");
/// ```
#[must_use = "dropping an AfterFunc keeps the callback registered; keep it to call `stop`"]
pub struct AfterFunc {
    callback: Arc<Callback>,
    /// The context the callback is registered on and its waiter key, if it was registered.
    registration: Option<(Context, WaiterKey)>,
}

impl AfterFunc {
    pub(crate) fn register<F>(ctx: &Context, f: F) -> AfterFunc
    where
        F: FnOnce() + Send + 'static,
    {
        let callback = Arc::new(Callback {
            state: AtomicU8::new(PENDING),
            func: Mutex::new(Some(Box::new(f))),
        });
        let registration = match ctx.node.cancel_node() {
            // Can never be done: the callback never runs and the first `stop` is true.
            None => None,
            Some(core) => match core.register(Waiter::Task(Waker::from(Arc::clone(&callback)))) {
                Ok(key) => Some((ctx.clone(), key)),
                Err((waiter, _)) => {
                    // Already done: run it now, on its own thread, as Go does.
                    waiter.notify();
                    None
                }
            },
        };
        AfterFunc {
            callback,
            registration,
        }
    }

    /// Stops the callback from running. Returns `true` if this call stopped it; `false` if it
    /// had already started (or finished) or was already stopped. It does not wait for a running
    /// callback.
    ///
    /// ```
    /// use go_context::Context;
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let registration = ctx.after_func(|| unreachable!("stopped before the cancel"));
    /// assert!(registration.stop());
    /// assert!(!registration.stop(), "only the first stop stops it");
    /// cancel.cancel();
    /// ```
    pub fn stop(&self) -> bool {
        let stopped = self
            .callback
            .state
            .compare_exchange(PENDING, STOPPED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if stopped {
            if let Some((ctx, key)) = &self.registration {
                if let Some(core) = ctx.node.cancel_node() {
                    // SAFETY: `key` came from `register` on this node, and only the one `stop`
                    // that wins the swap to STOPPED gets here.
                    drop(unsafe { core.unregister(*key) });
                }
            }
            // Invariant 2: the closure is dropped after the slot's lock is released.
            let func = lock(&self.callback.func).take();
            drop(func);
        }
        stopped
    }
}

impl fmt::Debug for AfterFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.callback.state.load(Ordering::Acquire) {
            PENDING => "pending",
            STARTED => "started",
            _ => "stopped",
        };
        f.debug_struct("AfterFunc").field("state", &state).finish()
    }
}
