//! Timers and time inputs.
//!
//! - Thousands of deadlines at random instants all fire, never early, and in deadline order
//!   (checked by a thread that scans the contexts while they fire, no sleeps).
//! - Cancelled deadline contexts never report `DeadlineExceeded`.
//! - Bad input: every constructor and wait that takes a `Duration` or an `Instant`, with extreme
//!   values (`Duration::ZERO`, `Duration::MAX`, instants far in the past or the future): never a
//!   panic, and the documented meaning (a deadline that has passed cancels at once, one too far
//!   away to represent is no deadline).
//!
//! - A slow waker on one deadline (user code on a timer thread) does not hold up the others.
//!
//! Lateness under load is measured, not asserted, by `examples/examples/timer_lateness.rs`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context as TaskContext, Wake, Waker};
use std::time::{Duration, Instant};

use go_context::{CancelHandle, Context, Error};
use proptest::prelude::*;

/// Generous bound for "this must happen" on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(30);

#[path = "support/rng.rs"]
mod rng;

use rng::Rng;

/// Checks, while the timers fire, that no context is done before its deadline and that the
/// done ones are always a prefix of the deadline order. `timers` is sorted by deadline.
///
/// Scanning from the latest deadline down to the earliest, `is_done` is read for later
/// deadlines *before* earlier ones; as done never reverts, seeing a later one done and then an
/// earlier one (strictly earlier deadline) not done means the later one fired first.
fn scan(timers: &[(Instant, Context)]) -> usize {
    let mut done_later: Option<Instant> = None;
    let mut done = 0;
    for (at, ctx) in timers.iter().rev() {
        let is_done = ctx.is_done();
        let now = Instant::now();
        if is_done {
            done += 1;
            // Done was observed before `now` was read: it happened before `now`.
            assert!(*at <= now, "fired {:?} early", *at - now);
            assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
            done_later.get_or_insert(*at);
        } else if let Some(later) = done_later {
            assert!(
                *at >= later,
                "a deadline {:?} later fired before this one",
                later.saturating_duration_since(*at)
            );
        }
    }
    done
}

#[test]
fn thousands_of_random_deadlines_all_fire_in_order_and_never_early() {
    const N: usize = 5000;
    const SPREAD_MS: u64 = 1500;
    let mut rng = Rng(0x7133_2026);
    // Every deadline must be armed before the first one is due (one born done, while an
    // earlier one waits for a lagging timer, would look out of order): on a slow machine, try
    // again with a longer head start.
    let mut head_start = Duration::from_millis(50);
    let mut timers: Vec<(Instant, Context, CancelHandle)> = loop {
        let start = Instant::now() + head_start;
        let timers: Vec<_> = (0..N)
            .map(|_| {
                let at = start + Duration::from_micros(rng.next() % (SPREAD_MS * 1000));
                let (ctx, cancel) = Context::background().with_deadline(at);
                (at, ctx, cancel)
            })
            .collect();
        if Instant::now() < start {
            break timers;
        }
        assert!(head_start < PATIENCE, "could not arm the timers in time");
        head_start *= 4;
    };
    timers.sort_by_key(|t| t.0);
    let (handles, timers): (Vec<_>, Vec<_>) = timers
        .into_iter()
        .map(|(at, ctx, cancel)| (cancel, (at, ctx)))
        .unzip();
    let timers = Arc::new(timers);
    let checker = {
        let timers = Arc::clone(&timers);
        std::thread::spawn(move || {
            let mut scans = 0;
            while scan(&timers) < timers.len() {
                scans += 1;
                assert!(
                    timers[0].0.elapsed() < PATIENCE,
                    "timers did not all fire in time"
                );
            }
            scans
        })
    };
    // Meanwhile this thread blocks on the last one.
    let (last_at, last) = timers.last().unwrap();
    assert_eq!(last.wait_timeout(PATIENCE), Some(Error::DeadlineExceeded));
    assert!(Instant::now() >= *last_at);
    let scans = checker.join().unwrap();
    assert!(scans > 0);
    for (at, ctx) in timers.iter() {
        assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
        assert_eq!(ctx.deadline(), Some(*at));
    }
    drop(handles);
}

#[test]
fn deadlines_cancelled_first_never_report_deadline_exceeded() {
    let mut rng = Rng(42);
    let mut live = Vec::new();
    let mut cancelled = Vec::new();
    for i in 0..2000 {
        let at = Instant::now() + Duration::from_micros(200_000 + rng.next() % 300_000);
        let (ctx, cancel) = Context::background().with_deadline_cause(at, "late");
        if i % 2 == 0 {
            cancel.cancel_with_cause("cancelled first");
            // The cancel returned before the deadline (which never fires early): it won.
            let cancel_won = Instant::now() < at;
            cancelled.push((ctx, cancel_won));
        } else {
            live.push((ctx, cancel));
        }
    }
    for (ctx, _cancel) in &live {
        assert_eq!(ctx.wait_timeout(PATIENCE), Some(Error::DeadlineExceeded));
        assert_eq!(ctx.cause().unwrap().to_string(), "late");
    }
    let mut checked = 0;
    for (ctx, cancel_won) in &cancelled {
        if *cancel_won {
            checked += 1;
            assert_eq!(ctx.err(), Some(Error::Canceled));
            assert_eq!(ctx.cause().unwrap().to_string(), "cancelled first");
        } else {
            assert!(ctx.is_done());
        }
    }
    assert!(checked > 0);
}

#[test]
fn a_deadline_is_never_reported_before_it_passes_on_a_blocked_waiter() {
    // The waiter reads the clock only after it woke: it must be past the deadline.
    for ms in [0u64, 1, 2, 5, 10, 20] {
        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(ms));
        let at = ctx.deadline().unwrap();
        assert_eq!(ctx.wait(), Error::DeadlineExceeded);
        assert!(Instant::now() >= at);
    }
}

// ===== bad input =====

const FAR: Duration = Duration::from_secs(400 * 365 * 24 * 3600);

/// About 292 years: the farthest a deadline can be represented (documented in `derive`).
const REPRESENTABLE: Duration = Duration::from_secs(292 * 365 * 24 * 3600);

/// A waker that, when woken, blocks its caller until `release` gets a message (bounded by
/// [`PATIENCE`]) and reports whether it did.
struct BlockingWaker {
    release: Mutex<Option<mpsc::Receiver<()>>>,
    released: mpsc::Sender<bool>,
}

impl Wake for BlockingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(release) = self.release.lock().unwrap().take() {
            let _ = self.released.send(release.recv_timeout(PATIENCE).is_ok());
        }
    }
}

#[test]
fn a_slow_waker_on_one_deadline_does_not_hold_up_the_others() {
    // `a`'s waker runs on a timer thread and blocks until `b`, due 1 ms after `a`, has fired.
    // With the waker run under the firing thread and nobody to take over, `b` waited for it:
    // the waker gave up after PATIENCE and `b` fired only then.
    let (release_tx, release_rx) = mpsc::channel();
    let (released_tx, released_rx) = mpsc::channel();
    let waker = Waker::from(Arc::new(BlockingWaker {
        release: Mutex::new(Some(release_rx)),
        released: released_tx,
    }));
    let mut timeout = Duration::from_millis(20);
    let (a, b, _handles, _done) = loop {
        let (a, ca) = Context::background().with_timeout(timeout);
        let mut done = Box::pin(a.done());
        let polled = done.as_mut().poll(&mut TaskContext::from_waker(&waker));
        let (b, cb) =
            Context::background().with_deadline(a.deadline().unwrap() + Duration::from_millis(1));
        if polled.is_pending() && !b.is_done() {
            break (a, b, (ca, cb), done);
        }
        // Registered too late (a very slow machine): again, further ahead.
        assert!(timeout < PATIENCE, "could not register before the deadline");
        timeout *= 4;
    };
    let watcher = std::thread::spawn(move || {
        let err = b.wait_timeout(PATIENCE);
        let _ = release_tx.send(());
        err
    });
    assert_eq!(
        released_rx.recv_timeout(PATIENCE * 2),
        Ok(true),
        "the later deadline waited for the slow waker"
    );
    assert_eq!(watcher.join().unwrap(), Some(Error::DeadlineExceeded));
    assert_eq!(a.err(), Some(Error::DeadlineExceeded));
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64)
}

/// Durations with the extremes well represented.
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_nanos(1)),
        Just(Duration::MAX),
        Just(Duration::MAX - Duration::from_nanos(1)),
        Just(Duration::from_secs(u64::MAX)),
        Just(FAR),
        Just(REPRESENTABLE),
        (0..=u64::MAX, 0..1_000_000_000u32).prop_map(|(s, n)| Duration::new(s, n)),
        (0..10_000_000_000_000u64).prop_map(Duration::from_nanos),
    ]
}

/// What a deadline at `at` must do to a fresh child of `background`.
fn check_deadline_child(ctx: &Context, at: Instant, before: Instant, cause: Option<&str>) {
    let _ = format!("{ctx:?}");
    if at <= before {
        // Passed already: born done with the deadline's error and cause.
        assert_eq!(ctx.err(), Some(Error::DeadlineExceeded), "at {at:?}");
        let text = ctx.cause().unwrap().to_string();
        assert_eq!(text, cause.unwrap_or("context deadline exceeded"));
        assert_eq!(
            ctx.wait_timeout(Duration::MAX),
            Some(Error::DeadlineExceeded)
        );
    } else if at.saturating_duration_since(before) > Duration::from_secs(3600) {
        assert_eq!(ctx.err(), None);
        match ctx.deadline() {
            Some(d) => assert_eq!(d, at),
            // Too far away to represent: documented as no deadline.
            None => assert!(
                at.saturating_duration_since(before)
                    >= REPRESENTABLE - Duration::from_secs(3600 * 24 * 366)
            ),
        }
        assert_eq!(ctx.wait_timeout(Duration::ZERO), None);
        assert_eq!(ctx.sleep(Duration::ZERO), Ok(()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn with_timeout_takes_any_duration(d in duration(), with_cause in any::<bool>()) {
        let before = Instant::now();
        let (ctx, cancel) = if with_cause {
            Context::background().with_timeout_cause(d, "timeout cause")
        } else {
            Context::background().with_timeout(d)
        };
        let after = Instant::now();
        let _ = format!("{ctx:?} {cancel:?}");
        match before.checked_add(d) {
            None => {
                // Beyond what `Instant` can hold: no deadline, never done by time.
                prop_assert_eq!(ctx.deadline(), None);
                prop_assert_eq!(ctx.err(), None);
            }
            Some(_) if d.is_zero() => {
                prop_assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
                let want = if with_cause { "timeout cause" } else { "context deadline exceeded" };
                prop_assert_eq!(ctx.cause().unwrap().to_string(), want);
            }
            Some(_) if d > Duration::from_secs(3600) => {
                prop_assert_eq!(ctx.err(), None);
                if let Some(at) = ctx.deadline() {
                    prop_assert!(at >= before + d && at <= after + d);
                } else {
                    prop_assert!(d >= REPRESENTABLE - Duration::from_secs(3600 * 24 * 366));
                }
            }
            Some(_) => {
                let at = ctx.deadline().unwrap();
                prop_assert!(at >= before + d && at <= after + d);
            }
        }
        cancel.cancel();
        prop_assert!(ctx.is_done());
    }

    #[test]
    fn with_deadline_takes_any_instant(d in duration(), past in any::<bool>(), with_cause in any::<bool>()) {
        let before = Instant::now();
        let at = if past { before.checked_sub(d) } else { before.checked_add(d) };
        // `Instant` cannot hold it: nothing to pass in.
        let Some(at) = at else { return Ok(()) };
        let (ctx, _cancel) = if with_cause {
            Context::background().with_deadline_cause(at, "deadline cause")
        } else {
            Context::background().with_deadline(at)
        };
        check_deadline_child(&ctx, at, before, with_cause.then_some("deadline cause"));
        // Under a parent with an extreme deadline too: the earlier one wins, never a panic.
        let (parent, _p) = Context::background().with_deadline(at);
        let (child, _c) = parent.with_timeout(d);
        let _ = format!("{child:?}");
        if let (Some(p), Some(c)) = (parent.deadline(), child.deadline()) {
            prop_assert!(c <= p);
        }
        if parent.is_done() {
            prop_assert_eq!(child.err(), parent.err());
        }
    }

    #[test]
    fn waits_take_any_duration_and_instant(d in duration(), past in any::<bool>()) {
        let (live, _keep) = Context::background().with_cancel();
        let (done, cancel) = Context::background().with_cancel();
        cancel.cancel();
        // A done context answers at once, whatever the bound.
        prop_assert_eq!(done.wait_timeout(d), Some(Error::Canceled));
        prop_assert_eq!(done.sleep(d), Err(Error::Canceled));
        let now = Instant::now();
        let at = if past { now.checked_sub(d) } else { now.checked_add(d) };
        if let Some(at) = at {
            prop_assert_eq!(done.wait_deadline(at), Some(Error::Canceled));
            if at <= now {
                // A live context with a bound already passed: returns at once.
                prop_assert_eq!(live.wait_deadline(at), None);
            }
        }
        if d.is_zero() {
            prop_assert_eq!(live.wait_timeout(d), None);
            prop_assert_eq!(live.sleep(d), Ok(()));
            prop_assert_eq!(Context::background().wait_timeout(d), None);
        }
    }
}

/// A huge bound on a live context: it waits (no overflow, no early return) until cancelled.
#[test]
fn a_huge_wait_bound_waits_until_cancelled() {
    for d in [Duration::MAX, FAR, Duration::from_secs(u64::MAX)] {
        let (ctx, cancel) = Context::background().with_cancel();
        let started = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (ctx, started) = (ctx.clone(), Arc::clone(&started));
            std::thread::spawn(move || {
                started.store(true, Ordering::SeqCst);
                (ctx.wait_timeout(d), ctx.sleep(d))
            })
        };
        while !started.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        cancel.cancel();
        assert_eq!(
            waiter.join().unwrap(),
            (Some(Error::Canceled), Err(Error::Canceled))
        );
    }
}

/// Regression test: a deadline so far in the past that it cannot be represented used to be
/// treated as "no deadline", so the context was never done. A deadline that has passed cancels
/// at once, however long ago.
#[test]
fn a_deadline_centuries_ago_cancels_at_once() {
    let Some(at) = Instant::now().checked_sub(FAR) else {
        // This platform's `Instant` cannot go that far back: nothing to test.
        return;
    };
    let (ctx, _cancel) = Context::background().with_deadline(at);
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    let (ctx, _cancel) = Context::background().with_deadline_cause(at, "long ago");
    assert_eq!(ctx.cause().unwrap().to_string(), "long ago");
}
