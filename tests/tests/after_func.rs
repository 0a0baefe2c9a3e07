//! `after_func` callbacks never stall the process: they run on pool threads, never on the
//! cancelling thread or a timer thread, never under a lock of ours; blocked callbacks do not
//! stop the others (up to 512 blocked at once, tokio's blocking pool size); a callback may use
//! its own registration and context from its body and from its captured values' `Drop`.
//!
//! Every wait is bounded: a deadlock fails the test instead of hanging it. The tests that block
//! many callbacks at once take turns (`HEAVY`), so they never compete for the pool's threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use go_context::{AfterFunc, Context, Error};

/// Generous bound for "this must happen" on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// Tests that block many pool threads at once run one at a time.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

/// A count that callbacks raise and wait on, each wait bounded by [`PATIENCE`].
#[derive(Default)]
struct Latch {
    count: Mutex<usize>,
    changed: Condvar,
}

impl Latch {
    fn arrive(&self) {
        *self.count.lock().unwrap() += 1;
        self.changed.notify_all();
    }

    /// `true` if the count reached `n` within [`PATIENCE`].
    fn wait_for(&self, n: usize) -> bool {
        let count = self.count.lock().unwrap();
        let (count, _) = self
            .changed
            .wait_timeout_while(count, PATIENCE, |c| *c < n)
            .unwrap();
        *count >= n
    }
}

#[test]
fn callbacks_that_wait_on_each_other_all_finish_512_at_once() {
    // In Go each callback has its own goroutine, so these finish. With at most 64 threads
    // (the old pool) the 65th never started and all of them waited out their bound.
    const N: usize = 512;
    let _turn = heavy();
    let (ctx, cancel) = Context::background().with_cancel();
    let latch = Arc::new(Latch::default());
    let (tx, rx) = mpsc::channel();
    let _regs: Vec<AfterFunc> = (0..N)
        .map(|_| {
            let (latch, tx) = (Arc::clone(&latch), tx.clone());
            ctx.after_func(move || {
                latch.arrive();
                tx.send(latch.wait_for(N)).unwrap();
            })
        })
        .collect();
    cancel.cancel();
    let bound = Instant::now() + PATIENCE * 2;
    for _ in 0..N {
        let left = bound.saturating_duration_since(Instant::now());
        assert_eq!(rx.recv_timeout(left), Ok(true), "a callback waited in vain");
    }
}

#[test]
fn sixty_four_blocked_callbacks_do_not_stop_other_after_funcs() {
    let _turn = heavy();
    let gate = Arc::new(Latch::default());
    let (blocked_ctx, cancel_blocked) = Context::background().with_cancel();
    let (tx, rx) = mpsc::channel();
    let _blocked: Vec<AfterFunc> = (0..64)
        .map(|_| {
            let (gate, tx) = (Arc::clone(&gate), tx.clone());
            blocked_ctx.after_func(move || tx.send(gate.wait_for(1)).unwrap())
        })
        .collect();
    cancel_blocked.cancel();
    // Another context's callback, while all 64 block.
    let (other, cancel_other) = Context::background().with_cancel();
    let (other_tx, other_rx) = mpsc::channel();
    let _other = other.after_func(move || other_tx.send(()).unwrap());
    cancel_other.cancel();
    assert!(
        other_rx.recv_timeout(PATIENCE).is_ok(),
        "an unrelated callback was stuck behind 64 blocked ones"
    );
    gate.arrive();
    for _ in 0..64 {
        assert_eq!(rx.recv_timeout(PATIENCE), Ok(true));
    }
}

#[test]
fn cancel_returns_before_its_callbacks_run_and_they_run_elsewhere() {
    // Each callback waits until `cancel()` has returned: had it run on the cancelling thread
    // (as the old pool's fallback did), it would have waited out its bound inside `cancel()`.
    let (ctx, cancel) = Context::background().with_cancel();
    let returned = Arc::new(Latch::default());
    let (tx, rx) = mpsc::channel();
    let _regs: Vec<AfterFunc> = (0..8)
        .map(|_| {
            let (returned, tx) = (Arc::clone(&returned), tx.clone());
            ctx.after_func(move || {
                tx.send((returned.wait_for(1), thread::current().id()))
                    .unwrap()
            })
        })
        .collect();
    cancel.cancel();
    returned.arrive();
    for _ in 0..8 {
        let (in_time, ran_on) = rx.recv_timeout(PATIENCE).unwrap();
        assert!(in_time, "cancel() waited for its callback");
        assert_ne!(ran_on, thread::current().id());
    }
}

#[test]
fn callbacks_of_a_deadline_do_not_run_on_a_timer_thread() {
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(2));
    let (tx, rx) = mpsc::channel();
    let _reg = ctx.after_func(move || {
        let name = thread::current().name().map(str::to_owned);
        tx.send(name).unwrap()
    });
    let name = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    assert_ne!(name.as_deref(), Some("context-timer"));
    assert_eq!(name.as_deref(), Some("context-after-func"));
}

/// Calls `stop()` on the registration in `slot`, and registers (and stops) another callback on
/// `ctx`, when dropped.
struct UsesItsRegistrationOnDrop {
    slot: Arc<OnceLock<AfterFunc>>,
    ctx: Context,
    dropped: mpsc::Sender<bool>,
}

impl Drop for UsesItsRegistrationOnDrop {
    fn drop(&mut self) {
        let stopped_again = self.slot.get().is_some_and(AfterFunc::stop);
        let other = self.ctx.after_func(|| {});
        let _ = other.stop();
        let _ = format!("{:?} {:?}", self.slot.get(), self.ctx);
        let _ = self.dropped.send(stopped_again);
    }
}

#[test]
fn a_stopped_callback_whose_drop_uses_its_own_registration_does_not_deadlock() {
    let (ctx, cancel) = Context::background().with_cancel();
    let slot = Arc::new(OnceLock::new());
    let (tx, rx) = mpsc::channel();
    let guard = UsesItsRegistrationOnDrop {
        slot: Arc::clone(&slot),
        ctx: ctx.clone(),
        dropped: tx,
    };
    let reg = ctx.after_func(move || drop(guard));
    assert!(slot.set(reg).is_ok());
    // `stop` drops the closure (and so the guard) on a thread of its own, bounded.
    let stopper = {
        let slot = Arc::clone(&slot);
        thread::spawn(move || slot.get().unwrap().stop())
    };
    assert_eq!(
        rx.recv_timeout(PATIENCE),
        Ok(false),
        "only the first stop stops"
    );
    assert!(stopper.join().unwrap());
    cancel.cancel();
    assert!(!slot.get().unwrap().stop());
}

#[test]
fn a_callback_may_use_its_own_registration_and_context() {
    let (ctx, cancel) = Context::background().with_cancel();
    let slot: Arc<OnceLock<AfterFunc>> = Arc::new(OnceLock::new());
    let (tx, rx) = mpsc::channel();
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let guard = UsesItsRegistrationOnDrop {
        slot: Arc::clone(&slot),
        ctx: ctx.clone(),
        dropped: dropped_tx,
    };
    let reg = {
        let (slot, ctx) = (Arc::clone(&slot), ctx.clone());
        ctx.clone().after_func(move || {
            let _keep = guard;
            let stopped = slot.get().is_some_and(AfterFunc::stop);
            // Derive from the done context and register on it again: born done, runs at once.
            let (child, _c) = ctx.with_cancel();
            let (again_tx, again_rx) = mpsc::channel();
            let _again = child.after_func(move || again_tx.send(()).unwrap());
            tx.send((
                stopped,
                child.err(),
                again_rx.recv_timeout(PATIENCE).is_ok(),
            ))
            .unwrap();
        })
    };
    assert!(slot.set(reg).is_ok());
    cancel.cancel();
    assert_eq!(
        rx.recv_timeout(PATIENCE),
        Ok((false, Some(Error::Canceled), true))
    );
    assert_eq!(dropped_rx.recv_timeout(PATIENCE), Ok(false));
}

#[test]
fn a_hundred_thousand_callbacks_each_run_once() {
    const N: usize = 100_000;
    let (ctx, cancel) = Context::background().with_cancel();
    let ran = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let regs: Vec<AfterFunc> = (0..N)
        .map(|_| {
            let (ran, tx) = (Arc::clone(&ran), tx.clone());
            ctx.after_func(move || {
                if ran.fetch_add(1, Ordering::SeqCst) + 1 == N {
                    tx.send(()).unwrap();
                }
            })
        })
        .collect();
    cancel.cancel();
    assert!(rx.recv_timeout(PATIENCE).is_ok());
    assert_eq!(ran.load(Ordering::SeqCst), N);
    assert!(regs.iter().all(|r| !r.stop()), "all started");
}
