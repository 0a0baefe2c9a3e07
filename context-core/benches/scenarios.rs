//! Criterion benchmarks for scenarios S1, S1p, S2, S2p, S3, S4, S4w, S5, S7 and S12 of
//! `shared/BENCHMARKS.md`: each scenario is a criterion group in which `ours` (go-context),
//! `tokio_util` (`CancellationToken`) and, where the table names one, `floor` run side by side in
//! the same process, so that their ratios are same-run ratios.
//!
//! S5m and S11, S6/S6t and S8 live in `deep_chain.rs`, `latency.rs` and `memory.rs`
//! (harness = false).
//! `scripts/bench.sh` runs everything and prints the table of medians and ratios.
//!
//! Scenarios measured per element (S4, S4w, S5) report the time of one whole fan-out or chain in
//! criterion; the element count is the benchmark's parameter, and the script divides by it.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use go_context::Context;
use tokio_util::sync::CancellationToken;
#[path = "support/ops.rs"]
mod ops;
use ops::{
    s12_ours, s12_tokio, s1_floor, s1_ours, s2_ours, s2_tokio, s4_ours, s4_tokio, s4w_ours,
    s4w_tokio, s7_floor_chain, s7_floor_deepest, s7_floor_missing, s7_ours_chain, s7_ours_deepest,
    s7_ours_missing, Floor, FloorFlag, FAN_OUT, HOUR,
};

/// Levels of the chain in S5.
const CHAIN: usize = 10_000;

/// Short defaults so that the whole suite stays within minutes on 2 cores; the command line
/// (`--warm-up-time`, `--measurement-time`, `--sample-size`) still overrides them.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

/// Runs `op` `iters` times on this thread and, at the same time, `iters` times on a second
/// thread; both start at a barrier. Returns the wall time until both are finished, which is the
/// time per operation *per thread* once divided by `iters`.
fn on_two_threads<F: Fn() + Sync>(iters: u64, op: F) -> Duration {
    on_two_threads_entered(iters, || (), op)
}

/// [`on_two_threads`], with `enter()` called once on each thread before its loop, its guard
/// kept for the loop (e.g. a tokio runtime's `enter`), outside the timed part.
fn on_two_threads_entered<G, E, F>(iters: u64, enter: E, op: F) -> Duration
where
    E: Fn() -> G + Sync,
    F: Fn() + Sync,
{
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let helper = s.spawn(|| {
            let _guard = enter();
            barrier.wait();
            for _ in 0..iters {
                op();
            }
        });
        let _guard = enter();
        barrier.wait();
        let start = Instant::now();
        for _ in 0..iters {
            op();
        }
        helper.join().expect("helper thread panicked");
        start.elapsed()
    })
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime")
}

/// S1: the hot check on a live child that has a deadline.
fn s1(c: &mut Criterion) {
    let mut g = c.benchmark_group("S1_is_done");
    let (ctx, _cancel) = Context::background().with_timeout(HOUR);
    g.bench_function("ours", |b| b.iter(|| s1_ours(&ctx)));
    let parent = CancellationToken::new();
    let token = parent.child_token();
    g.bench_function("tokio_util", |b| {
        b.iter(|| black_box(&token).is_cancelled())
    });
    let flag = Floor::default();
    let flag: &FloorFlag = &flag;
    g.bench_function("floor", |b| b.iter(|| s1_floor(flag)));
    g.finish();
}

/// S1p: S1 on two threads hitting one shared context.
fn s1p(c: &mut Criterion) {
    let mut g = c.benchmark_group("S1p_is_done_2threads");
    let (ctx, _cancel) = Context::background().with_timeout(HOUR);
    g.bench_function("ours", |b| {
        b.iter_custom(|iters| on_two_threads(iters, || s1_ours(&ctx)))
    });
    let parent = CancellationToken::new();
    let token = parent.child_token();
    g.bench_function("tokio_util", |b| {
        b.iter_custom(|iters| {
            on_two_threads(iters, || {
                black_box(black_box(&token).is_cancelled());
            })
        })
    });
    let flag = Floor::default();
    let flag: &FloorFlag = &flag;
    g.bench_function("floor", |b| {
        b.iter_custom(|iters| on_two_threads(iters, || s1_floor(flag)))
    });
    g.finish();
}

/// S2: a child with a cancel, cancelled and dropped, under a live cancellable parent.
fn s2(c: &mut Criterion) {
    let mut g = c.benchmark_group("S2_child_cancel_drop");
    let (parent, _cancel) = Context::background().with_cancel();
    g.bench_function("ours", |b| b.iter(|| s2_ours(&parent)));
    let parent = CancellationToken::new();
    g.bench_function("tokio_util", |b| b.iter(|| s2_tokio(&parent)));
    g.finish();
}

/// S2p: S2 on two threads sharing one parent.
fn s2p(c: &mut Criterion) {
    let mut g = c.benchmark_group("S2p_child_cancel_drop_2threads");
    let (parent, _cancel) = Context::background().with_cancel();
    g.bench_function("ours", |b| {
        b.iter_custom(|iters| on_two_threads(iters, || s2_ours(&parent)))
    });
    let parent = CancellationToken::new();
    g.bench_function("tokio_util", |b| {
        b.iter_custom(|iters| on_two_threads(iters, || s2_tokio(&parent)))
    });
    g.finish();
}

/// S3: a child with a one-hour timeout, cancelled and dropped. tokio-util has no deadline of its
/// own: the honest equivalent is a child token plus a task that sleeps for the timeout and then
/// cancels it (and ends early when the token is cancelled). The task is awaited, so its whole
/// life (spawn, first poll that arms the timer, wake-up, completion) is inside the measurement,
/// as ours arms and disarms its timer entry inside the measurement.
fn s3(c: &mut Criterion) {
    let mut g = c.benchmark_group("S3_timeout_child_cancel_drop");
    let (parent, _cancel) = Context::background().with_cancel();
    g.bench_function("ours", |b| {
        b.iter(|| {
            let (child, cancel) = black_box(&parent).with_timeout(HOUR);
            cancel.cancel();
            drop(black_box(child));
            drop(cancel);
        })
    });
    let parent = CancellationToken::new();
    let rt = current_thread_runtime();
    g.bench_function("tokio_util_task", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let child = black_box(&parent).child_token();
                    let timer = child.clone();
                    let task = tokio::spawn(async move {
                        let slept = timer.run_until_cancelled(tokio::time::sleep(HOUR)).await;
                        if slept.is_some() {
                            timer.cancel();
                        }
                    });
                    child.cancel();
                    drop(black_box(child));
                    task.await.expect("timeout task panicked");
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

/// `iters` fan-outs, the time of the creation phase (`create`) or of the cancellation.
fn s4_phase(
    iters: u64,
    create: bool,
    mut fan_out: impl FnMut() -> (Duration, Duration),
) -> Duration {
    (0..iters)
        .map(|_| {
            let (created, cancelled) = fan_out();
            if create {
                created
            } else {
                cancelled
            }
        })
        .sum()
}

/// S4: fan-out of `FAN_OUT` children under one parent: the creation of all children, and the
/// cancellation of the parent, as two measurements (the other phase runs untimed).
fn s4(c: &mut Criterion) {
    let mut g = c.benchmark_group("S4_fanout");
    g.sample_size(10);
    let n = FAN_OUT;
    for timed_create in [true, false] {
        let phase = if timed_create { "create" } else { "cancel" };
        g.bench_with_input(BenchmarkId::new(format!("ours_{phase}"), n), &n, |b, _| {
            let mut kids = Vec::new();
            b.iter_custom(|iters| s4_phase(iters, timed_create, || s4_ours(&mut kids)))
        });
        g.bench_with_input(
            BenchmarkId::new(format!("tokio_util_{phase}"), n),
            &n,
            |b, _| {
                let mut kids = Vec::new();
                b.iter_custom(|iters| s4_phase(iters, timed_create, || s4_tokio(&mut kids)))
            },
        );
    }
    g.finish();
}

/// S4w: S4 with one task per child awaiting it on a current-thread tokio runtime; measured from
/// the parent's cancel until every task has resumed.
fn s4w(c: &mut Criterion) {
    let mut g = c.benchmark_group("S4w_fanout_wake");
    g.sample_size(10);
    let n = FAN_OUT;
    let rt = current_thread_runtime();
    g.bench_with_input(BenchmarkId::new("ours", n), &n, |b, &n| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += s4w_ours(n).await;
                }
                total
            })
        })
    });
    g.bench_with_input(BenchmarkId::new("tokio_util", n), &n, |b, &n| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += s4w_tokio(n).await;
                }
                total
            })
        })
    });
    g.finish();
}

/// S5: a chain of `CHAIN` nested contexts: the creation of the chain, and the cancellation of its
/// root, as two measurements (the other phase runs untimed).
fn s5(c: &mut Criterion) {
    let mut g = c.benchmark_group("S5_chain");
    g.sample_size(10);
    let n = CHAIN;
    for timed_create in [true, false] {
        let phase = if timed_create { "create" } else { "cancel" };
        g.bench_with_input(BenchmarkId::new(format!("ours_{phase}"), n), &n, |b, &n| {
            let mut chain = Vec::with_capacity(n);
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (root, cancel) = Context::background().with_cancel();
                    let start = Instant::now();
                    for _ in 0..n {
                        let next = chain.last().map_or(&root, |(c, _)| c).with_cancel();
                        chain.push(next);
                    }
                    let created = start.elapsed();
                    let start = Instant::now();
                    cancel.cancel();
                    let cancelled = start.elapsed();
                    total += if timed_create { created } else { cancelled };
                    chain.clear();
                }
                total
            })
        });
        g.bench_with_input(
            BenchmarkId::new(format!("tokio_util_{phase}"), n),
            &n,
            |b, &n| {
                let mut chain: Vec<CancellationToken> = Vec::with_capacity(n);
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let root = CancellationToken::new();
                        let start = Instant::now();
                        for _ in 0..n {
                            let next = chain.last().unwrap_or(&root).child_token();
                            chain.push(next);
                        }
                        let created = start.elapsed();
                        let start = Instant::now();
                        root.cancel();
                        let cancelled = start.elapsed();
                        total += if timed_create { created } else { cancelled };
                        chain.clear();
                    }
                    total
                })
            },
        );
    }
    g.finish();
}

/// S7: `value::<T>()` ten values deep: the deepest value, and a type that is missing.
fn s7(c: &mut Criterion) {
    let mut g = c.benchmark_group("S7_value_depth10");
    let (ours, floor) = (s7_ours_chain(), s7_floor_chain());
    g.bench_function("ours_deepest", |b| b.iter(|| s7_ours_deepest(&ours)));
    g.bench_function("floor_deepest", |b| b.iter(|| s7_floor_deepest(&floor)));
    g.bench_function("ours_missing", |b| b.iter(|| s7_ours_missing(&ours)));
    g.bench_function("floor_missing", |b| b.iter(|| s7_floor_missing(&floor)));
    g.finish();
}

/// S12: a server's request on 2 threads under one parent: ours is `with_timeout(100ms)` +
/// `with_value` + one `done()` future polled once and dropped + cancel + drop; tokio-util's is
/// a child token + `tokio::time::timeout(100ms, child.cancelled())` polled once and dropped +
/// cancel + drop, in a tokio runtime context (its timer is the runtime's).
fn s12(c: &mut Criterion) {
    let mut g = c.benchmark_group("S12_request_2threads");
    let (parent, _cancel) = Context::background().with_cancel();
    g.bench_function("ours", |b| {
        b.iter_custom(|iters| on_two_threads(iters, || s12_ours(&parent)))
    });
    let parent = CancellationToken::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .expect("tokio runtime");
    g.bench_function("tokio_util", |b| {
        // `tokio::time` finds its timer through the runtime context: enter it on both threads.
        b.iter_custom(|iters| on_two_threads_entered(iters, || rt.enter(), || s12_tokio(&parent)))
    });
    g.finish();
}

/// Not a scenario of the table: `n` guards entered, then dropped first to last (a `Vec` of
/// guards drops its first element first). The time per guard should not grow with `n`
/// (before session 14, each drop shifted every entry above it: O(n²) for the whole `Vec`).
fn guards_first_to_last(c: &mut Criterion) {
    let mut g = c.benchmark_group("ambient_guards_first_to_last");
    for n in [100usize, 10_000] {
        let contexts: Vec<Context> = (0..n)
            .map(|_| Context::background().with_value(1u8))
            .collect();
        g.bench_with_input(BenchmarkId::from_parameter(n), &contexts, |b, contexts| {
            b.iter(|| {
                let guards: Vec<_> = contexts.iter().map(Context::enter).collect();
                drop(black_box(guards));
            })
        });
    }
    g.finish();
    // The common case, for comparison: one guard entered and dropped, inside another.
    let (outer, inner) = (Context::background().with_value(1u8), Context::background());
    let _outer = outer.enter();
    c.bench_function("ambient_guard_in_order", |b| {
        b.iter(|| drop(black_box(inner.enter())))
    });
}

criterion_group! {
    name = benches;
    config = config();
    targets = s1, s1p, s2, s2p, s3, s4, s4w, s5, s7, s12, guards_first_to_last
}
criterion_main!(benches);
