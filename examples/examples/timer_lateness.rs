//! How late do deadlines fire? Arms a few thousand deadlines at random instants over a couple
//! of seconds and records, for each, when the timer thread woke its waiter: the *lateness* is
//! that moment minus the deadline. Prints p50 / p99 / max (and counts any early firing, which
//! must be zero), once on an idle machine and once with every core kept busy by spinning
//! threads.
//!
//! ```text
//! cargo run --release -p context-examples --example timer_lateness [-- <timers> <spread_ms>]
//! ```
//!
//! Then two stress rows:
//! - *burst*: 300,000 deadlines at the same instant and one 1 ms later: how late is that one, and
//!   how long does a `with_timeout` on another thread wait while the burst fires (the timer's
//!   lock is held for one entry at a time);
//! - *slow waker*: a deadline whose waker takes 1 s, and one 1 ms later: how late is that one
//!   (a standby thread takes over the firing after 10 ms).
//!
//! Nothing here is asserted but "never early": lateness depends on the machine and its load.
//! RELIABILITY.md quotes a run.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use go_context::{Context, Error};

/// Records the moment it is woken (as nanoseconds after `origin`).
struct Recorder {
    origin: Instant,
    woken_at: AtomicU64,
}

impl Wake for Recorder {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let nanos = self.origin.elapsed().as_nanos() as u64;
        // The first wake is the firing; keep it.
        let _ = self
            .woken_at
            .compare_exchange(0, nanos.max(1), Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// xorshift64*: small, fast, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

struct Stats {
    n: usize,
    early: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn measure(timers: usize, spread: Duration, seed: u64) -> Stats {
    let origin = Instant::now();
    let start = origin + Duration::from_millis(100);
    let mut rng = Rng(seed);
    let spread_nanos = spread.as_nanos() as u64;
    let mut armed = Vec::with_capacity(timers);
    for _ in 0..timers {
        let at = start + Duration::from_nanos(rng.next() % spread_nanos);
        let (ctx, cancel) = Context::background().with_deadline(at);
        let recorder = Arc::new(Recorder {
            origin,
            woken_at: AtomicU64::new(0),
        });
        let waker = Waker::from(Arc::clone(&recorder));
        let mut done = Box::pin(ctx.done());
        let polled = done.as_mut().poll(&mut TaskContext::from_waker(&waker));
        if polled.is_ready() {
            // Arming took longer than the head start (a very slow machine): nothing to time.
            continue;
        }
        armed.push((at, ctx, cancel, done, recorder));
    }
    // Wait for the last one, then give stragglers a bound.
    let last = armed.iter().map(|a| a.0).max().unwrap();
    for (_, ctx, ..) in &armed {
        if ctx.deadline() == Some(last) {
            assert_eq!(ctx.wait(), Error::DeadlineExceeded);
        }
    }
    let mut lateness = Vec::with_capacity(timers);
    let mut early = 0;
    for (at, ctx, _cancel, _done, recorder) in &armed {
        let bound = Instant::now() + Duration::from_secs(10);
        while recorder.woken_at.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < bound, "a timer did not fire");
            thread::yield_now();
        }
        assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
        let woken = origin + Duration::from_nanos(recorder.woken_at.load(Ordering::SeqCst));
        match woken.checked_duration_since(*at) {
            Some(late) => lateness.push(late),
            None => early += 1,
        }
    }
    lateness.sort();
    let pct = |p: f64| lateness[((lateness.len() - 1) as f64 * p).round() as usize];
    Stats {
        n: armed.len(),
        early,
        p50: pct(0.50),
        p99: pct(0.99),
        max: *lateness.last().unwrap(),
    }
}

/// A context whose `done()` is polled with a [`Recorder`]; `None` if it was already done.
fn recorded(ctx: &Context, origin: Instant) -> Option<(Pin<Box<go_context::Done>>, Arc<Recorder>)> {
    let recorder = Arc::new(Recorder {
        origin,
        woken_at: AtomicU64::new(0),
    });
    let waker = Waker::from(Arc::clone(&recorder));
    let mut done = Box::pin(ctx.done());
    let polled = done.as_mut().poll(&mut TaskContext::from_waker(&waker));
    polled.is_pending().then_some((done, recorder))
}

/// Lateness of the deadline 1 ms after a burst of `n` equal ones, and the longest
/// `with_timeout` call on another thread while the burst fired.
fn burst(n: usize) -> Option<(Duration, Duration)> {
    let origin = Instant::now();
    let at = origin + Duration::from_millis(500 + n as u64 / 100);
    let handles: Vec<_> = (0..n)
        .map(|_| Context::background().with_deadline(at))
        .collect();
    let after_at = at + Duration::from_millis(1);
    let (after, _cancel) = Context::background().with_deadline(after_at);
    let (_done, recorder) = recorded(&after, origin)?;
    if Instant::now() >= at {
        return None; // arming outlasted the head start
    }
    let prober = {
        let after = after.clone();
        thread::spawn(move || {
            let mut longest = Duration::ZERO;
            while !after.is_done() {
                let t = Instant::now();
                let (probe, _c) = Context::background().with_timeout(Duration::from_secs(3600));
                longest = longest.max(t.elapsed());
                drop(probe);
            }
            longest
        })
    };
    assert_eq!(after.wait(), Error::DeadlineExceeded);
    let longest = prober.join().unwrap();
    let woken = origin + Duration::from_nanos(recorder.woken_at.load(Ordering::SeqCst));
    let late = woken.checked_duration_since(after_at).expect("never early");
    drop(handles);
    Some((late, longest))
}

/// A waker that takes `d` when woken.
struct Slow(Duration);

impl Wake for Slow {
    fn wake(self: Arc<Self>) {
        thread::sleep(self.0);
    }
}

/// Lateness of a deadline due 1 ms after one whose waker takes `slow`.
fn slow_waker(slow: Duration) -> Option<Duration> {
    let origin = Instant::now();
    let at = origin + Duration::from_millis(50);
    let (first, _c1) = Context::background().with_deadline(at);
    let waker = Waker::from(Arc::new(Slow(slow)));
    let mut first_done = std::pin::pin!(first.done());
    let _ = first_done
        .as_mut()
        .poll(&mut TaskContext::from_waker(&waker));
    let next_at = at + Duration::from_millis(1);
    let (next, _c2) = Context::background().with_deadline(next_at);
    let (_done, recorder) = recorded(&next, origin)?;
    assert_eq!(next.wait(), Error::DeadlineExceeded);
    let woken = origin + Duration::from_nanos(recorder.woken_at.load(Ordering::SeqCst));
    let late = woken.checked_duration_since(next_at).expect("never early");
    // Let the slow waker finish before the next measurement.
    thread::sleep(slow);
    Some(late)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let timers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3000);
    let spread_ms: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let spread = Duration::from_millis(spread_ms);
    let cores = thread::available_parallelism().map_or(2, |n| n.get());

    println!("{timers} deadlines at random over {spread_ms} ms; {cores} cores");
    println!(
        "{:<28} {:>6} {:>6} {:>10} {:>10} {:>10}",
        "load", "timers", "early", "p50", "p99", "max"
    );
    let row = |load: &str, s: &Stats| {
        println!(
            "{:<28} {:>6} {:>6} {:>10.1?} {:>10.1?} {:>10.1?}",
            load, s.n, s.early, s.p50, s.p99, s.max
        );
    };

    let idle = measure(timers, spread, 1);
    row("idle", &idle);

    // Every core busy: one spinning thread per core, at the same priority as the timer thread.
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..cores)
        .map(|_| {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            })
        })
        .collect();
    let busy = measure(timers, spread, 2);
    stop.store(true, Ordering::Relaxed);
    for s in spinners {
        s.join().unwrap();
    }
    row(&format!("{cores} spinning threads"), &busy);
    assert_eq!(idle.early + busy.early, 0, "a deadline fired early");

    println!();
    match burst(300_000) {
        Some((late, longest)) => println!(
            "burst of 300,000 equal deadlines: the one 1 ms later fired {late:.1?} late; \
             longest with_timeout meanwhile {longest:.1?}"
        ),
        None => println!("burst: could not arm 300,000 deadlines before they were due"),
    }
    match slow_waker(Duration::from_secs(1)) {
        Some(late) => println!("a waker taking 1 s: the deadline 1 ms later fired {late:.1?} late"),
        None => println!("slow waker: could not arm in time"),
    }
}
