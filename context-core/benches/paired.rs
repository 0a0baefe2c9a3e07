//! Paired rounds for the rows whose criterion medians move the most between runs on a shared
//! 2-core machine (S1, S1p, S2, S2p, S4, S7, S12: a few nanoseconds to a few milliseconds per
//! operation). A criterion group runs `ours` for seconds, then the peer for seconds; a burst of
//! load (another VM's, a compile) that lands on one of them moves the ratio by ±25 %, and two runs
//! of the same code disagree on the verdict (RESULTS.md, "end of session 3").
//!
//! Here both sides run in short alternating batches instead: each round times one batch of
//! `ours` and one of the peer (a batch is about `rounds::BATCH` long; the order flips every round, so
//! neither side always runs first), and the round's ratio is `ours / peer`. A burst of load
//! lasting longer than a round slows both halves alike and cancels out of that round's ratio.
//! The figure reported is the **median over `rounds::ROUNDS` rounds**, with the 10th and 90th
//! percentiles of the per-round ratios, so the spread is printed beside it, never hidden.
//!
//! Nothing is discarded but `rounds::WARM_UP` leading rounds (cold caches, lazy statics, the allocator
//! growing its pools), always the same number. The operations are the ones criterion runs,
//! written once in `support/ops.rs`.
//!
//! Output: one `RESULT paired <id> ratio=… p10=… p90=… ours_ns=… peer_ns=… rounds=…` line per row
//! (`ours_ns`/`peer_ns` are the medians per operation of each side's batches), read by
//! `scripts/bench.sh`. `cargo bench -p go-context --bench paired [-- FILTER]` runs the rows whose
//! id contains FILTER.

use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use go_context::Context;
use tokio_util::sync::CancellationToken;

#[path = "support/ops.rs"]
#[allow(dead_code)] // S4w runs in latency.rs
mod ops;
use ops::*;

#[path = "support/paired_rounds.rs"]
#[allow(dead_code)] // the figures `pair` returns are read by context-tests' s10_go only
mod rounds;
use rounds::Side;

/// [`rounds::pair`] for the rows whose id contains the filter (all without one).
fn pair(id: &str, filter: Option<&str>, ours: Side<'_>, peer: Side<'_>) {
    if filter.is_none_or(|f| id.contains(f)) {
        rounds::pair(id, ours, peer);
    }
}

/// `op` run `iters` times on this thread.
fn on_one_thread<R>(iters: u64, op: impl Fn() -> R) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        black_box(op());
    }
    start.elapsed()
}

/// A batch for the second thread: the operation and how many times to run it.
type Job<'a> = (&'a (dyn Fn() + Sync), u64);

/// The second thread of a two-thread row, kept for the whole row (spawning one per batch would
/// put a thread's start-up, and its scheduling on a loaded machine, inside every batch).
struct Second<'a> {
    /// Two parties: this thread and the second one. A batch is released by one `wait` and
    /// ends with another.
    barrier: Barrier,
    /// The batch to run next: its operation and count; `None` ends the thread.
    job: Mutex<Option<Job<'a>>>,
}

impl<'a> Second<'a> {
    /// Runs `op` `iters` times on this thread and on the second one, both released by the same
    /// barrier: the wall time until both are finished (per operation *per thread* once divided).
    fn run(&self, op: &'a (dyn Fn() + Sync), iters: u64) -> Duration {
        *self.job.lock().expect("not poisoned") = Some((op, iters));
        self.barrier.wait();
        let start = Instant::now();
        for _ in 0..iters {
            op();
        }
        self.barrier.wait();
        start.elapsed()
    }
}

/// Runs `row` with a [`Second`] thread that has called `enter()` (e.g. a tokio runtime's
/// `enter`, kept for the whole row: a no-op for our side) and ends it afterwards.
fn with_second_thread<'a, G>(enter: impl Fn() -> G + Sync, row: impl FnOnce(&Second<'a>)) {
    let second = Second {
        barrier: Barrier::new(2),
        job: Mutex::new(None),
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            let _guard = enter();
            loop {
                second.barrier.wait();
                let Some((op, iters)) = *second.job.lock().expect("not poisoned") else {
                    return;
                };
                for _ in 0..iters {
                    op();
                }
                second.barrier.wait();
            }
        });
        let _guard = enter();
        row(&second);
        *second.job.lock().expect("not poisoned") = None;
        second.barrier.wait();
    });
}

/// S4 as a side of a row: `iters` fan-outs of [`FAN_OUT`] children, timing the creation phase
/// (`create`) or the cancellation; the other phase runs untimed. Per operation = per fan-out.
fn s4_side<T>(
    iters: u64,
    create: bool,
    kids: &Mutex<Vec<T>>,
    fan_out: fn(&mut Vec<T>) -> (Duration, Duration),
) -> Duration {
    let mut kids = kids.lock().expect("one side at a time");
    (0..iters)
        .map(|_| {
            let (created, cancelled) = fan_out(&mut kids);
            if create {
                created
            } else {
                cancelled
            }
        })
        .sum()
}

fn main() {
    // `cargo bench` passes `--bench`; a free argument filters the rows by id.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let filter = filter.as_deref();

    let (live, _live_cancel) = Context::background().with_timeout(HOUR);
    let flag = Floor::default();
    let flag: &FloorFlag = &flag;
    pair(
        "S1",
        filter,
        &|n| on_one_thread(n, || s1_ours(&live)),
        &|n| on_one_thread(n, || s1_floor(flag)),
    );
    // S1's structural floor: the floor's flag reached through one more pointer, as the state
    // of any context that is a pointer to shared state is (a `Context` is one `Arc`). No
    // target; it tells how much of S1's ratio any design of that shape pays.
    let boxed: Box<Floor> = Box::default();
    let boxed: &Floor = &boxed;
    pair(
        "S1 through a pointer",
        filter,
        &|n| on_one_thread(n, || black_box(black_box(boxed).0.load(Ordering::Acquire))),
        &|n| on_one_thread(n, || s1_floor(flag)),
    );
    let (ours, peer) = (|| s1_ours(&live), || s1_floor(flag));
    with_second_thread(
        || (),
        |two| {
            pair("S1p", filter, &|n| two.run(&ours, n), &|n| {
                two.run(&peer, n)
            })
        },
    );
    let (parent, _cancel) = Context::background().with_cancel();
    let parent_token = CancellationToken::new();
    pair(
        "S2",
        filter,
        &|n| on_one_thread(n, || s2_ours(&parent)),
        &|n| on_one_thread(n, || s2_tokio(&parent_token)),
    );
    let (ours, peer) = (|| s2_ours(&parent), || s2_tokio(&parent_token));
    with_second_thread(
        || (),
        |two| {
            pair("S2p", filter, &|n| two.run(&ours, n), &|n| {
                two.run(&peer, n)
            })
        },
    );
    // The children's vectors are reused from one fan-out to the next (see `s4_ours`).
    let (kids, kid_tokens) = (Mutex::new(Vec::new()), Mutex::new(Vec::new()));
    for (id, create) in [("S4 create", true), ("S4 cancel", false)] {
        pair(id, filter, &|n| s4_side(n, create, &kids, s4_ours), &|n| {
            s4_side(n, create, &kid_tokens, s4_tokio)
        });
    }
    let (ours, floor) = (s7_ours_chain(), s7_floor_chain());
    pair(
        "S7 deepest",
        filter,
        &|n| on_one_thread(n, || s7_ours_deepest(&ours)),
        &|n| on_one_thread(n, || s7_floor_deepest(&floor)),
    );
    pair(
        "S7 missing",
        filter,
        &|n| on_one_thread(n, || s7_ours_missing(&ours)),
        &|n| on_one_thread(n, || s7_floor_missing(&floor)),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .expect("tokio runtime");
    // `tokio::time` finds its timer through the runtime context: both threads enter it for the
    // whole row, untimed (criterion's twin enters once per sample).
    let (ours, peer) = (|| s12_ours(&parent), || s12_tokio(&parent_token));
    with_second_thread(
        || rt.enter(),
        |two| {
            pair("S12", filter, &|n| two.run(&ours, n), &|n| {
                two.run(&peer, n)
            })
        },
    );
}
