//! Wake latency, scenarios S6 and S6t of `shared/BENCHMARKS.md`, as percentiles over thousands
//! of samples (harness = false: criterion reports means and medians of batches, not the
//! distribution of single events).
//!
//! - S6: from just before `cancel()` until the task awaiting `done()` (ours) or `cancelled()`
//!   (tokio-util) resumes, both on one current-thread tokio runtime: the canceller is the
//!   `block_on` future, and it awaits the waiting task's `JoinHandle` right after cancelling.
//! - S6x (extra, no target): the same across threads: the waiting task runs on the single
//!   worker of a multi-thread runtime, idle (parked) when the main thread cancels.
//! - S6t: from just before `cancel()` until a thread blocked in `wait()` resumes, against the
//!   floor: the same hand-off with a flag, `Thread::unpark` and `thread::park`.
//! - S4wp: S4w of `scenarios.rs` (10,000 children of one parent, a task awaiting each on a
//!   current-thread runtime; from the parent's cancel until every task has resumed) in paired
//!   rounds: each round runs one fan-out of ours and one of tokio-util's, in an order that flips
//!   every round, and its ratio is ours / tokio-util. Criterion runs all of `ours` and then all
//!   of the peer, and a burst of load on one of them moves that ratio by tens of percent on a
//!   shared 2-core machine; a burst slows both halves of a round alike. The median of the
//!   per-round ratios is printed with their 10th and 90th percentiles.
//!
//! Samples of the compared variants are taken in alternating rounds, so that drift of a noisy
//! machine hits them alike (S6's and S6t's order flips every round, and each round's ratio of
//! medians is kept: `S6p`, `S6tp`). Output lines: `RESULT <id> <who> p50=<ns> p90=<ns>
//! p99=<ns> n=<n>` (S4wp: per child), and `RESULT <S4wp|S6p|S6tp> ratio median=<r> p10=<r>
//! p90=<r> rounds=<n>`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use go_context::Context;
use tokio_util::sync::CancellationToken;
#[path = "support/ops.rs"]
#[allow(dead_code)] // this bench runs S4w's operations only
mod ops;
use ops::{s4w_ours, s4w_tokio};

/// Alternating rounds per comparison.
const ROUNDS: usize = 10;
/// S6's alternating rounds, and samples per round and variant (20,000 samples each in all);
/// each round's ratio of medians gives S6p.
const S6_ROUNDS: usize = 50;
const S6_PER_ROUND: usize = 400;
/// S6x and S6t samples per round and variant (each takes a settle pause).
const SLOW_PER_ROUND: usize = 300;
/// S6t's rounds (as many samples in all as `ROUNDS` of `SLOW_PER_ROUND`, in shorter rounds
/// whose order flips): each round's ratio of medians gives S6tp.
const S6T_ROUNDS: usize = 30;
/// S4wp: children of the parent (as S4w in `scenarios.rs`), and measured paired rounds.
const S4W_FAN_OUT: usize = 10_000;
const S4W_ROUNDS: usize = 60;
/// Leading S4wp rounds run but not counted (the allocator and the runtime's queues growing).
const S4W_WARM_UP: usize = 5;
/// How long the waiting side is left alone before the cancel, so that it is really asleep.
const SETTLE: Duration = Duration::from_micros(200);

fn report(id: &str, who: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_nanos()
    };
    println!(
        "RESULT {id} {who} p50={} p90={} p99={} n={}",
        at(0.50),
        at(0.90),
        at(0.99),
        samples.len()
    );
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime")
}

/// Yields until `flag` is set: the spawned task has reached its first `await`.
async fn until_set(flag: &AtomicBool) {
    while !flag.load(Ordering::Acquire) {
        tokio::task::yield_now().await;
    }
}

/// S6, ours: `n` samples on `rt`.
fn s6_ours(rt: &tokio::runtime::Runtime, parent: &Context, n: usize, out: &mut Vec<Duration>) {
    rt.block_on(async {
        for _ in 0..n {
            let (child, cancel) = parent.with_cancel();
            let waiting = Arc::new(AtomicBool::new(false));
            let task = tokio::spawn({
                let waiting = Arc::clone(&waiting);
                async move {
                    waiting.store(true, Ordering::Release);
                    child.done().await;
                    Instant::now()
                }
            });
            until_set(&waiting).await;
            let start = Instant::now();
            cancel.cancel();
            let resumed = task.await.expect("waiting task panicked");
            out.push(resumed - start);
        }
    });
}

/// S6, tokio-util: `n` samples on `rt`.
fn s6_tokio(
    rt: &tokio::runtime::Runtime,
    parent: &CancellationToken,
    n: usize,
    out: &mut Vec<Duration>,
) {
    rt.block_on(async {
        for _ in 0..n {
            let child = parent.child_token();
            let waiting = Arc::new(AtomicBool::new(false));
            let task = tokio::spawn({
                let waiting = Arc::clone(&waiting);
                let child = child.clone();
                async move {
                    waiting.store(true, Ordering::Release);
                    child.cancelled().await;
                    Instant::now()
                }
            });
            until_set(&waiting).await;
            let start = Instant::now();
            child.cancel();
            let resumed = task.await.expect("waiting task panicked");
            out.push(resumed - start);
        }
    });
}

fn s6() {
    let rt = current_thread_runtime();
    let (parent, _cancel) = Context::background().with_cancel();
    let parent_token = CancellationToken::new();
    // Warm-up: the runtime's queues and the allocator reach their steady state.
    s6_ours(&rt, &parent, S6_PER_ROUND, &mut Vec::new());
    s6_tokio(&rt, &parent_token, S6_PER_ROUND, &mut Vec::new());
    let (mut ours, mut tokio) = (Vec::new(), Vec::new());
    let mut ratios = Vec::with_capacity(S6_ROUNDS);
    for round in 0..S6_ROUNDS {
        let (o, t) = (ours.len(), tokio.len());
        // The order flips every round, so neither side always runs first.
        if round % 2 == 0 {
            s6_ours(&rt, &parent, S6_PER_ROUND, &mut ours);
            s6_tokio(&rt, &parent_token, S6_PER_ROUND, &mut tokio);
        } else {
            s6_tokio(&rt, &parent_token, S6_PER_ROUND, &mut tokio);
            s6_ours(&rt, &parent, S6_PER_ROUND, &mut ours);
        }
        ratios.push(median(&ours[o..]) / median(&tokio[t..]));
    }
    report("S6", "ours", ours);
    report("S6", "tokio_util", tokio);
    report_ratios("S6p", ratios);
}

/// Prints the median and the 10th-90th percentiles of per-round ratios (ours / peer).
fn report_ratios(id: &str, mut ratios: Vec<f64>) {
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| ratios[((ratios.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "RESULT {id} ratio median={:.3} p10={:.3} p90={:.3} rounds={}",
        at(0.5),
        at(0.1),
        at(0.9),
        ratios.len()
    );
}

/// S6x: the waiting task on the idle worker of a one-worker multi-thread runtime; `cancel`
/// from this thread. `wait` is ours or tokio-util's: it makes a pair (a future that resolves
/// on the cancel, the cancel itself).
fn s6x_samples<W, F, C>(rt: &tokio::runtime::Runtime, n: usize, out: &mut Vec<Duration>, make: W)
where
    W: Fn() -> (F, C),
    F: std::future::Future<Output = ()> + Send + 'static,
    C: FnOnce(),
{
    for _ in 0..n {
        let (wait, cancel) = make();
        let waiting = Arc::new(AtomicBool::new(false));
        let task = rt.spawn({
            let waiting = Arc::clone(&waiting);
            async move {
                waiting.store(true, Ordering::Release);
                wait.await;
                Instant::now()
            }
        });
        while !waiting.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        thread::sleep(SETTLE);
        let start = Instant::now();
        cancel();
        let resumed = rt.block_on(task).expect("waiting task panicked");
        out.push(resumed - start);
    }
}

fn s6x() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("tokio runtime");
    let (parent, _cancel) = Context::background().with_cancel();
    let parent_token = CancellationToken::new();
    let ours = || {
        let (child, cancel) = parent.with_cancel();
        (
            async move {
                child.done().await;
            },
            move || cancel.cancel(),
        )
    };
    let tokio = || {
        let child = parent_token.child_token();
        let waited = child.clone();
        (async move { waited.cancelled().await }, move || {
            child.cancel()
        })
    };
    s6x_samples(&rt, SLOW_PER_ROUND / 3, &mut Vec::new(), ours);
    s6x_samples(&rt, SLOW_PER_ROUND / 3, &mut Vec::new(), tokio);
    let (mut ours_out, mut tokio_out) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        s6x_samples(&rt, SLOW_PER_ROUND, &mut ours_out, ours);
        s6x_samples(&rt, SLOW_PER_ROUND, &mut tokio_out, tokio);
    }
    report("S6x", "ours", ours_out);
    report("S6x", "tokio_util", tokio_out);
}

/// What the S6t waiter thread is handed for one sample.
enum Wait {
    Ours(Context),
    Floor(Arc<AtomicBool>),
}

/// S6t: one waiter thread serves both variants; the main thread cancels.
fn s6t() {
    let (to_waiter, jobs) = mpsc::channel::<Wait>();
    let (done_tx, resumed) = mpsc::channel::<Instant>();
    let waiting = Arc::new(AtomicBool::new(false));
    let waiter = thread::spawn({
        let waiting = Arc::clone(&waiting);
        move || {
            for job in jobs {
                waiting.store(true, Ordering::Release);
                match job {
                    Wait::Ours(ctx) => {
                        ctx.wait();
                    }
                    Wait::Floor(flag) => {
                        while !flag.load(Ordering::Acquire) {
                            thread::park();
                        }
                    }
                }
                done_tx.send(Instant::now()).expect("main thread gone");
            }
        }
    });
    let waiter_thread = waiter.thread().clone();
    let (parent, _cancel) = Context::background().with_cancel();
    let hand_off = |job: Wait| {
        to_waiter.send(job).expect("waiter thread gone");
        while !waiting.swap(false, Ordering::AcqRel) {
            std::hint::spin_loop();
        }
        thread::sleep(SETTLE);
    };
    let ours_sample = || {
        let (ctx, cancel) = parent.with_cancel();
        hand_off(Wait::Ours(ctx));
        let start = Instant::now();
        cancel.cancel();
        resumed.recv().expect("waiter thread gone") - start
    };
    let floor_sample = || {
        let flag = Arc::new(AtomicBool::new(false));
        hand_off(Wait::Floor(Arc::clone(&flag)));
        let start = Instant::now();
        flag.store(true, Ordering::Release);
        waiter_thread.unpark();
        resumed.recv().expect("waiter thread gone") - start
    };
    for _ in 0..SLOW_PER_ROUND / 3 {
        ours_sample();
        floor_sample();
    }
    // Short rounds whose order flips every round, as S6's: a burst of load moves both sides
    // of a round, and the per-round ratios of medians (`S6tp`) decide the verdict.
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    let mut ratios = Vec::with_capacity(S6T_ROUNDS);
    let per_round = SLOW_PER_ROUND * ROUNDS / S6T_ROUNDS;
    for round in 0..S6T_ROUNDS {
        let (o, f) = (ours.len(), floor.len());
        let mut run = |ours_side: bool| {
            for _ in 0..per_round {
                if ours_side {
                    ours.push(ours_sample());
                } else {
                    floor.push(floor_sample());
                }
            }
        };
        run(round % 2 == 0);
        run(round % 2 != 0);
        ratios.push(median(&ours[o..]) / median(&floor[f..]));
    }
    drop(to_waiter);
    waiter.join().expect("waiter thread panicked");
    report("S6t", "ours", ours);
    report("S6t", "floor", floor);
    report_ratios("S6tp", ratios);
}

/// The median of `samples`, in seconds.
fn median(samples: &[Duration]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_unstable();
    s[s.len() / 2].as_secs_f64()
}

/// S4wp: paired rounds of S4w (module docs).
fn s4wp() {
    let rt = current_thread_runtime();
    let n = S4W_FAN_OUT;
    let (mut ours, mut tokio, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    rt.block_on(async {
        for round in 0..S4W_WARM_UP + S4W_ROUNDS {
            let (o, t) = if round % 2 == 0 {
                let o = s4w_ours(n).await;
                (o, s4w_tokio(n).await)
            } else {
                let t = s4w_tokio(n).await;
                (s4w_ours(n).await, t)
            };
            if round >= S4W_WARM_UP {
                ours.push(o / n as u32);
                tokio.push(t / n as u32);
                ratios.push(o.as_secs_f64() / t.as_secs_f64());
            }
        }
    });
    report("S4wp", "ours", ours);
    report("S4wp", "tokio_util", tokio);
    report_ratios("S4wp", ratios);
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument picks scenarios by id prefix.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |id: &str| filter.is_empty() || filter.iter().any(|f| id.starts_with(f.as_str()));
    if wanted("S6") {
        s6();
    }
    if wanted("S6x") {
        s6x();
    }
    if wanted("S6t") {
        s6t();
    }
    if wanted("S4wp") {
        s4wp();
    }
}
