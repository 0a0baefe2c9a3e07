//! Churn: a tree under one root is churned by two threads for a bounded time (derive with
//! cancel / short timeouts / values / `without_cancel`, cancel with and without a cause, drop of
//! contexts and handles, `after_func` and `stop`, timed waits), while two more threads block in
//! untimed waits (`wait()` and `done()`) on random contexts. Then the root is cancelled and
//! every handle dropped: every waiter must wake, every thread join, every callback that was not
//! stopped must have run exactly once, and live heap memory must be back at its baseline.
//!
//! Own test binary with a single test, so nothing else allocates concurrently (the counting
//! allocator sees the whole process). `CHURN_MS` (default 2000) sets the churn time and
//! `CHURN_SEED` the random seed, for longer runs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use go_context::{AfterFunc, CancelHandle, Context, Error};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
#[path = "support/rng.rs"]
mod rng;

use counting_alloc::live;
use rng::Rng;

/// A context in the shared pool, with its handle if it has one.
struct Entry {
    ctx: Context,
    handle: Option<CancelHandle>,
    /// Whether it can ever be done (it has a cancel node).
    can_be_done: bool,
    /// Whether the churn itself can make it done (a cancel node below the root): only those
    /// are waited on untimed, so waiters wake during the churn, not only at its end.
    waitable: bool,
}

struct Shared {
    pool: Mutex<Vec<Entry>>,
    stop: AtomicBool,
    registered: AtomicUsize,
    /// Registrations whose `stop()` returned true: their callbacks never run.
    stopped: AtomicUsize,
    ran: Mutex<usize>,
    ran_changed: Condvar,
    waits: AtomicUsize,
    ops: AtomicUsize,
}

const POOL: usize = 512;

impl Shared {
    fn pick(&self, rng: &mut Rng) -> Option<(Context, bool, bool)> {
        let pool = self.pool.lock().unwrap();
        if pool.is_empty() {
            return None;
        }
        let e = &pool[rng.below(pool.len())];
        Some((e.ctx.clone(), e.can_be_done, e.waitable))
    }

    fn push(&self, rng: &mut Rng, entry: Entry) {
        let evicted = {
            let mut pool = self.pool.lock().unwrap();
            pool.push(entry);
            if pool.len() > POOL {
                let k = rng.below(pool.len());
                Some(pool.swap_remove(k))
            } else {
                None
            }
        };
        // Dropped outside our lock: it may cancel, which wakes waiters.
        drop(evicted);
    }

    fn remove(&self, rng: &mut Rng) -> Option<Entry> {
        let mut pool = self.pool.lock().unwrap();
        if pool.len() <= 1 {
            return None;
        }
        let k = rng.below(pool.len());
        Some(pool.swap_remove(k))
    }

    fn callback_ran(&self) {
        *self.ran.lock().unwrap() += 1;
        self.ran_changed.notify_all();
    }
}

fn stop_counted(shared: &Shared, registration: AfterFunc) {
    if registration.stop() {
        shared.stopped.fetch_add(1, Ordering::SeqCst);
    }
}

fn churner(shared: Arc<Shared>, seed: u64) {
    let mut rng = Rng(seed);
    let mut registrations: Vec<(AfterFunc, bool)> = Vec::new();
    while !shared.stop.load(Ordering::Relaxed) {
        shared.ops.fetch_add(1, Ordering::Relaxed);
        let Some((parent, parent_can_be_done, parent_waitable)) = shared.pick(&mut rng) else {
            continue;
        };
        match rng.below(12) {
            0..=2 => {
                let (ctx, handle) = parent.with_cancel();
                let entry = Entry {
                    ctx,
                    handle: Some(handle),
                    can_be_done: true,
                    waitable: true,
                };
                shared.push(&mut rng, entry);
            }
            3 => {
                let timeout = Duration::from_micros(rng.below(3000) as u64);
                let (ctx, handle) = if rng.below(2) == 0 {
                    parent.with_timeout(timeout)
                } else {
                    parent.with_timeout_cause(timeout, "churn deadline")
                };
                let entry = Entry {
                    ctx,
                    handle: Some(handle),
                    can_be_done: true,
                    waitable: true,
                };
                shared.push(&mut rng, entry);
            }
            4 => {
                let entry = Entry {
                    ctx: parent.with_value(rng.next()),
                    handle: None,
                    can_be_done: parent_can_be_done,
                    waitable: parent_waitable,
                };
                shared.push(&mut rng, entry);
            }
            5 => {
                if rng.below(4) == 0 {
                    let entry = Entry {
                        ctx: parent.without_cancel(),
                        handle: None,
                        can_be_done: false,
                        waitable: false,
                    };
                    shared.push(&mut rng, entry);
                }
            }
            6 => {
                // Cancel (a random entry's handle), with or without a cause.
                let handle = {
                    let pool = shared.pool.lock().unwrap();
                    let e = &pool[rng.below(pool.len())];
                    e.handle.clone()
                };
                if let Some(h) = handle {
                    if rng.below(2) == 0 {
                        h.cancel();
                    } else {
                        h.cancel_with_cause("churn");
                    }
                    assert!(h.context().is_done());
                }
            }
            7 | 8 => drop(shared.remove(&mut rng)),
            9 => {
                // A callback that itself touches the tree: derives from its context and drops it.
                let ctx = parent.clone();
                let s = Arc::clone(&shared);
                let registration = parent.after_func(move || {
                    assert!(ctx.is_done());
                    let (child, _cancel) = ctx.with_cancel();
                    assert!(child.is_done(), "a child of a done context is born done");
                    s.callback_ran();
                });
                shared.registered.fetch_add(1, Ordering::SeqCst);
                registrations.push((registration, parent_can_be_done));
                if registrations.len() > 64 {
                    let k = rng.below(registrations.len());
                    let (r, can_be_done) = registrations.swap_remove(k);
                    if can_be_done && rng.below(2) == 0 {
                        // Dropping the value keeps the callback registered: it runs once its
                        // context is done, at the latest at the end of the churn.
                        drop(r);
                    } else {
                        stop_counted(&shared, r);
                    }
                }
            }
            10 => {
                let timeout = Duration::from_micros(rng.below(500) as u64);
                if let Some(e) = parent.wait_timeout(timeout) {
                    assert_eq!(parent.err(), Some(e));
                }
            }
            _ => {
                // The hot-path accessors agree with each other.
                // (Once set the error never changes; before that, another thread may cancel
                // between two reads, so only a `Some` is compared.)
                let err = parent.err();
                let check = parent.check();
                if let Some(e) = err {
                    assert_eq!(check, Err(e));
                    assert!(parent.is_done());
                    assert!(parent.cause().is_some());
                    assert_eq!(parent.wait_timeout(Duration::ZERO), Some(e));
                }
            }
        }
    }
    // Whatever is left is stopped now: those returning true never run.
    for (r, _) in registrations {
        stop_counted(&shared, r);
    }
}

fn waiter(shared: Arc<Shared>, seed: u64) {
    let mut rng = Rng(seed);
    while !shared.stop.load(Ordering::Relaxed) {
        let Some((ctx, _, waitable)) = shared.pick(&mut rng) else {
            continue;
        };
        if !waitable {
            continue;
        }
        // Untimed: only a cancellation (a churner's, a deadline, or the final one) wakes us.
        let err = if rng.below(2) == 0 {
            ctx.wait()
        } else {
            futures_executor::block_on(ctx.done())
        };
        assert_eq!(ctx.err(), Some(err));
        assert!(ctx.cause().is_some());
        shared.waits.fetch_add(1, Ordering::Relaxed);
    }
}

/// Grows the `after_func` pool to its largest size and its queue to its largest kept capacity,
/// so that the churn creates no pool thread (whose bookkeeping would outlive the test).
fn warm_up_callback_pool() {
    // Enough callbacks blocked at once to start a few dozen pool threads (a loaded machine can
    // start more during the churn: see the allowance per extra thread at the end).
    let threads = 64;
    let barrier = Arc::new(Barrier::new(threads + 1));
    let arrived = Arc::new(AtomicUsize::new(0));
    let (blockers, cancel_blockers) = Context::background().with_cancel();
    let regs: Vec<_> = (0..threads)
        .map(|_| {
            let (b, a) = (Arc::clone(&barrier), Arc::clone(&arrived));
            blockers.after_func(move || {
                a.fetch_add(1, Ordering::SeqCst);
                b.wait();
            })
        })
        .collect();
    cancel_blockers.cancel();
    // Every pool thread is busy now: the next callbacks queue, and the queue grows to exactly
    // its largest kept capacity (the pool gives a larger one back once it empties).
    wait_for(&arrived, threads);
    let (queued, cancel_queued) = Context::background().with_cancel();
    let done = Arc::new(AtomicUsize::new(0));
    let queued_regs: Vec<_> = (0..threads)
        .map(|_| {
            let d = Arc::clone(&done);
            queued.after_func(move || {
                d.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    cancel_queued.cancel();
    barrier.wait();
    wait_for(&done, threads);
    drop((regs, queued_regs, blockers, queued));
}

fn wait_for(counter: &AtomicUsize, n: usize) {
    let start = Instant::now();
    while counter.load(Ordering::SeqCst) < n {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "callbacks did not run"
        );
        std::thread::yield_now();
    }
}

#[test]
fn churned_tree_wakes_every_waiter_and_returns_to_baseline() {
    let millis: u64 = std::env::var("CHURN_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let seed: u64 = std::env::var("CHURN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_C0DE_1234_5678);
    eprintln!("churn: {millis} ms, CHURN_SEED={seed}");

    // Warm up what lives for the whole process: the timer thread, the callback pool, the roots.
    {
        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(1));
        assert_eq!(ctx.wait(), Error::DeadlineExceeded);
        // The timer keeps the side table of custom deadline causes at up to 64 slots once
        // grown: grow it to that size now, or a churn that happens to arm more custom causes
        // at once than the warm-up did leaves a larger table (216 bytes seen) than baseline.
        let custom: Vec<_> = (0..50)
            .map(|_| Context::background().with_timeout_cause(Duration::from_millis(1), "warm-up"))
            .collect();
        for (ctx, _) in &custom {
            assert_eq!(ctx.wait(), Error::DeadlineExceeded);
        }
        drop(custom);
        drop(Context::todo());
        warm_up_callback_pool();
        let t = std::thread::spawn(|| futures_executor::block_on(async {}));
        t.join().unwrap();
    }
    let baseline = live();
    let threads_before = threads_alive();

    let (root, cancel_root) = Context::background().with_cancel();
    let shared = Arc::new(Shared {
        pool: Mutex::new(vec![Entry {
            ctx: root.clone(),
            handle: None,
            can_be_done: true,
            waitable: false,
        }]),
        stop: AtomicBool::new(false),
        registered: AtomicUsize::new(0),
        stopped: AtomicUsize::new(0),
        ran: Mutex::new(0),
        ran_changed: Condvar::new(),
        waits: AtomicUsize::new(0),
        ops: AtomicUsize::new(0),
    });
    let mut threads = Vec::new();
    for i in 0..2u64 {
        let s = Arc::clone(&shared);
        threads.push(std::thread::spawn(move || churner(s, seed ^ (i + 1))));
        let s = Arc::clone(&shared);
        threads.push(std::thread::spawn(move || waiter(s, seed ^ (i + 101))));
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(millis) {
        // The main thread checks that the root is untouched (nobody holds its handle).
        assert!(!root.is_done());
        std::thread::park_timeout(Duration::from_millis(50));
    }
    shared.stop.store(true, Ordering::SeqCst);
    // Wake every waiter: cancel the root (all of its subtree), then drop every handle (the
    // subtrees under `without_cancel`).
    cancel_root.cancel_with_cause("end of churn");
    let entries = std::mem::take(&mut *shared.pool.lock().unwrap());
    drop(entries);
    let joined_by = Instant::now() + Duration::from_secs(30);
    for t in threads {
        t.join().expect("a churn thread panicked");
    }
    assert!(Instant::now() < joined_by, "threads took too long to join");
    assert_eq!(root.err(), Some(Error::Canceled));
    assert_eq!(root.cause().unwrap().to_string(), "end of churn");

    // Every callback that was not stopped runs exactly once (on the pool, so wait for it).
    let expected = shared.registered.load(Ordering::SeqCst) - shared.stopped.load(Ordering::SeqCst);
    {
        let mut ran = shared.ran.lock().unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        while *ran < expected {
            let left = until.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{} of {expected} callbacks ran", *ran);
            ran = shared.ran_changed.wait_timeout(ran, left).unwrap().0;
        }
        assert_eq!(*ran, expected, "a callback ran twice, or a stopped one ran");
    }
    let (ops, waits, registered) = (
        shared.ops.load(Ordering::SeqCst),
        shared.waits.load(Ordering::SeqCst),
        shared.registered.load(Ordering::SeqCst),
    );
    drop(shared);
    drop((root, cancel_root));

    // Threads of the crate may still be finishing their last step: the timer thread dropping
    // the nodes of a batch it has just cancelled, a pool thread dropping a callback's closure
    // after it ran. Let them settle (bounded; a real leak never does).
    let settle = Instant::now();
    // Process-wide structures keep a bounded capacity that depends on how much was live at
    // once, not on how many operations ran: the timer's queue chunks (64 entries of 24 bytes),
    // the callback pool's queue and worker records. A churn with more at once than the warm-up
    // leaves them somewhat larger (up to 416 bytes seen; also below baseline, by up to 1.7 KiB).
    // A leak per operation would show as hundreds of KiB after ~600,000 operations.
    const SLACK: isize = 4096;
    // The callback pool starts workers while callbacks wait (32 per millisecond without
    // progress, which a loaded machine produces), and an idle worker lives 10 s: each one alive
    // beyond the baseline's holds its thread's own heap (~250 bytes seen: its name, handle and
    // thread-locals). That is memory in use, not leaked: allow it per extra thread alive.
    const PER_THREAD: isize = 1024;
    let allowance = || {
        let extra = threads_alive().saturating_sub(threads_before) as isize;
        SLACK + extra * PER_THREAD
    };
    while live() > baseline + allowance() && settle.elapsed() < Duration::from_secs(5) {
        std::thread::park_timeout(Duration::from_millis(1));
    }
    let settled_in = settle.elapsed();
    let leaked = live() - baseline;
    eprintln!(
        "churn: {ops} ops, {waits} untimed waits woken, {registered} callbacks ({expected} ran); \
         live memory vs baseline: {leaked} bytes (settled in {settled_in:?}); threads {threads_before} -> {}",
        threads_alive()
    );
    assert!(ops > 1000, "the churn did run");
    let allowed = allowance();
    assert!(
        leaked <= allowed,
        "leaked {leaked} bytes (allowed {allowed})"
    );
}

/// Threads of this process (Linux; 0 elsewhere).
fn threads_alive() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}
