//! `after_func`: run a function once a context is done, on a thread of its own.
//!
//! Go runs each `AfterFunc` callback in a new goroutine. We run callbacks on a pool of threads
//! that grows whenever every pool thread is busy, up to [`MAX_THREADS`], so a callback that
//! blocks delays neither the canceller nor (up to that many blocked at once) other callbacks.
//! Idle threads exit after ten seconds. A burst of a million callbacks therefore costs at most
//! `MAX_THREADS` threads, not a million.
//!
//! # Invariants
//!
//! 1. A [`Callback`]'s `state` leaves `PENDING` once: to `STARTED` (it will run; only the
//!    winner of that swap takes the function) or to `STOPPED` (it never runs). This is what makes
//!    [`AfterFunc::stop`]'s answer exact.
//! 2. Callbacks never run on the cancelling thread, and never under a lock of ours.

// Under loom the std pool is unused (callbacks run inline, see `pool_submit`).
#![cfg_attr(loom, allow(dead_code))]

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Condvar, Mutex as StdMutex, OnceLock};
use std::time::Duration;

use crate::sync::{lock, Arc, AtomicU8, Mutex, Ordering};
use crate::tree::{Waiter, WaiterKey};
use crate::Context;

const PENDING: u8 = 0;
const STARTED: u8 = 1;
const STOPPED: u8 = 2;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A registered callback, shared by the [`AfterFunc`] handle and the context's waiter list.
pub(crate) struct Callback {
    state: AtomicU8,
    func: Mutex<Option<Job>>,
}

impl Callback {
    /// Hands the function to the pool if nobody stopped it first.
    pub(crate) fn fire(&self) {
        if self
            .state
            .compare_exchange(PENDING, STARTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            if let Some(job) = lock(&self.func).take() {
                pool_submit(job);
            }
        }
    }
}

/// The handle returned by [`Context::after_func`]: Go's `stop` function.
///
/// Dropping it does **not** unregister the callback (as discarding Go's `stop` does not).
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
            Some(core) => match core.register(Waiter::Callback(Arc::clone(&callback))) {
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
            drop(lock(&self.callback.func).take());
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

// ===== the callback pool =====

struct Pool {
    state: StdMutex<PoolState>,
    work: Condvar,
}

#[derive(Default)]
struct PoolState {
    jobs: VecDeque<Job>,
    idle: usize,
    threads: usize,
}

const IDLE_EXIT: Duration = Duration::from_secs(10);

/// The most callback threads alive at once; beyond that, callbacks queue for a free thread.
pub(crate) const MAX_THREADS: usize = 64;

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: StdMutex::new(PoolState::default()),
        work: Condvar::new(),
    })
}

/// Under loom the callback runs on the notifying thread (still after every lock of ours is
/// released): the std pool threads live outside the model.
#[cfg(loom)]
fn pool_submit(job: Job) {
    run_job(job);
}

#[cfg(not(loom))]
fn pool_submit(job: Job) {
    let p = pool();
    let mut state = p.state.lock().unwrap_or_else(|e| e.into_inner());
    state.jobs.push_back(job);
    if state.jobs.len() <= state.idle || state.threads >= MAX_THREADS {
        p.work.notify_one();
        return;
    }
    state.threads += 1;
    drop(state);
    let spawned = std::thread::Builder::new()
        .name("context-after-func".into())
        .spawn(pool_worker);
    if spawned.is_err() {
        pool()
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .threads -= 1;
        // The OS refused a thread: run what is queued here rather than never.
        pool_drain_here();
    }
}

fn pool_drain_here() {
    loop {
        let job = pool()
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .jobs
            .pop_front();
        match job {
            Some(job) => run_job(job),
            None => return,
        }
    }
}

fn run_job(job: Job) {
    // A panicking callback is reported by the panic hook and affects nothing else.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
}

fn pool_worker() {
    let p = pool();
    let mut state = p.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(job) = state.jobs.pop_front() {
            if state.jobs.is_empty() && state.jobs.capacity() > 64 {
                // Give a burst's queue memory back.
                state.jobs = VecDeque::new();
            }
            drop(state);
            run_job(job);
            state = p.state.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        state.idle += 1;
        let (next, timeout) = p
            .work
            .wait_timeout(state, IDLE_EXIT)
            .unwrap_or_else(|e| e.into_inner());
        state = next;
        state.idle -= 1;
        if timeout.timed_out() && state.jobs.is_empty() {
            state.threads -= 1;
            return;
        }
    }
}
