//! S10 of BENCHMARKS.md: `go!` spawn + join of an async no-op vs `tokio::spawn` + join
//! (target: ≤ 1.3×).
//!
//! `go!` does more than `tokio::spawn`: it makes a child context of the current one, keeps
//! a cancel handle for the task, runs the task with the child as its current context (lent
//! to the thread-local once per poll) and catches its panics; it joins through tokio's own
//! `JoinHandle`, as the peer does.
//! Each sample spawns and awaits one task at a time, so the numbers are spawn + schedule +
//! complete + wake + join, on:
//! - `current_thread`: one thread, no cross-thread wake-ups (the overhead shows most), the
//!   loop in `block_on`; `current_thread_in_task`: the same with the loop in a task, where
//!   `tokio::spawn` is cheapest (the LIFO slot);
//! - `multi_thread`: two workers, the loop running in `block_on` off the workers.
//!
//! The fixed cost of `go!` is mostly the child context: `with_cancel` plus its cancellation
//! when the last handle goes, about 60-75 ns on the reference machine.
//!
//! Run: `cargo bench -p context-tests --bench s10_go`
//!
//! Instruction counts (deterministic under load): the same binary with
//! `S10_IR=<go|tokio>[-in-task]:<N>` runs N rounds of the `current_thread` (or
//! `current_thread_in_task`) loop outside criterion and exits, so
//! `(Ir(N) - Ir(0)) / N` under `valgrind --tool=callgrind` is the cost of one spawn + join:
//! `S10_IR=go:10000 valgrind --tool=callgrind target/release/deps/s10_go-* --bench`.
//! `S10_IR=tree:N` counts the context work of a `go!` alone (`tree_only`), so that
//! `go - tokio - tree` is what the spawning glue adds.
//!
//! Paired rounds (`S10_PAIRED=1 cargo bench -p context-tests --bench s10_go`): the same loops as
//! alternating batches of about 1 ms of `go!` and of `tokio::spawn` in one process (the
//! method of `context-core/benches/paired.rs`, in its `support/paired_rounds.rs`), printed as
//! `RESULT paired S10 ratio=… p10=… p90=…` (current thread; `S10 in_task` and
//! `S10 multi_thread` for the other two groups; `S10 floor`: `tokio::spawn` plus the context
//! work of a `go!` and no glue, against `tokio::spawn`). `scripts/bench.sh` takes S10's verdict from
//! it: criterion's back-to-back groups gave 1.23x, 1.39x and 3.01x for the same code.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use go_context::go;
use tokio::runtime::{Builder, Runtime};

#[path = "../../context-core/benches/support/paired_rounds.rs"]
mod paired;

async fn noop() -> u64 {
    black_box(1)
}

/// `iters` spawn + join rounds, timed. `in_task`: the loop itself runs in a spawned task
/// (as in a server), else directly in `block_on`.
fn run(rt: &Runtime, iters: u64, with_go: bool, in_task: bool) -> Duration {
    run_as(
        rt,
        iters,
        if with_go { Spawn::Go } else { Spawn::Tokio },
        in_task,
    )
}

/// What one round of [`run_as`] spawns.
#[derive(Clone, Copy)]
enum Spawn {
    Go,
    Tokio,
    /// `tokio::spawn` plus the context work of a `go!` ([`tree_only`]): S10's floor, what any
    /// `go!` that makes a child context per task costs with no glue at all.
    TokioAndTree,
}

/// [`run`], for any [`Spawn`].
fn run_as(rt: &Runtime, iters: u64, spawn: Spawn, in_task: bool) -> Duration {
    let rounds = async move {
        let start = Instant::now();
        let mut sum = 0;
        for _ in 0..iters {
            sum += match spawn {
                Spawn::Go => go!(noop()).await.unwrap(),
                Spawn::Tokio => tokio::spawn(noop()).await.unwrap(),
                Spawn::TokioAndTree => {
                    tree_only(1);
                    tokio::spawn(noop()).await.unwrap()
                }
            };
        }
        black_box(sum);
        start.elapsed()
    };
    rt.block_on(async move {
        if in_task {
            tokio::spawn(rounds).await.unwrap()
        } else {
            rounds.await
        }
    })
}

fn s10(c: &mut Criterion) {
    let current = Builder::new_current_thread().build().unwrap();
    let multi = Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let setups = [
        ("current_thread", &current, false),
        ("current_thread_in_task", &current, true),
        ("multi_thread", &multi, false),
    ];
    for (name, rt, in_task) in setups {
        let mut group = c.benchmark_group(format!("S10/{name}"));
        group.bench_function("go!", |b| {
            b.iter_custom(|iters| run(rt, iters, true, in_task))
        });
        group.bench_function("tokio::spawn", |b| {
            b.iter_custom(|iters| run(rt, iters, false, in_task))
        });
        group.finish();
    }
}

criterion_group!(benches, s10);

/// The context work of one `go!` spawn + join without the task: the child of the current
/// context with its cancel handle, the clones the task holds (a handle and a context), dropped
/// in `go!`'s order (the task's when it completes, then the `GoHandle`'s, whose handle drop
/// cancels). `S10_IR=tree:N` counts it, so `go - tokio - tree` is the spawning glue.
fn tree_only(iters: u64) {
    for _ in 0..iters {
        let (ctx, cancel) = go_context::Context::current().with_cancel();
        let (task_ctx, task_cancel) = (ctx.clone(), cancel.clone());
        black_box(&task_ctx);
        drop(task_cancel);
        drop(task_ctx);
        drop(ctx);
        drop(cancel);
    }
}

/// `S10_IR=<go|tokio|tree>[-in-task]:<N>`: N rounds on a current-thread runtime, outside
/// criterion; `-in-task` runs the loop in a task (the `current_thread_in_task` group); `tree`
/// is [`tree_only`].
fn instruction_driver(spec: &str) {
    let (which, n) = spec
        .split_once(':')
        .expect("S10_IR=<go|tokio|tree>[-in-task]:<N>, e.g. S10_IR=go:10000");
    let n: u64 = n.parse().expect("S10_IR: N is a number");
    let (which, in_task) = match which.strip_suffix("-in-task") {
        Some(which) => (which, true),
        None => (which, false),
    };
    let rt = Builder::new_current_thread().build().unwrap();
    if which == "tree" {
        rt.block_on(async {
            tree_only(1);
            tree_only(n);
        });
        return;
    }
    let with_go = match which {
        "go" => true,
        "tokio" => false,
        other => panic!("S10_IR: `{other}` is neither `go`, `tokio` nor `tree`"),
    };
    // One round first, so that one-time set-up (thread-locals, the runtime's first task) is
    // in Ir(0) as well as in Ir(N).
    run(&rt, 1, with_go, in_task);
    black_box(run(&rt, n, with_go, in_task));
}

/// `S10_PAIRED=1`: the three groups as paired rounds (see the module docs).
fn paired_rounds() {
    let current = Builder::new_current_thread().build().unwrap();
    let multi = Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let rows = [
        ("S10", &current, false),
        ("S10 in_task", &current, true),
        ("S10 multi_thread", &multi, false),
    ];
    for (id, rt, in_task) in rows {
        let ours = |iters| run(rt, iters, true, in_task);
        let peer = |iters| run(rt, iters, false, in_task);
        paired::pair(id, &ours, &peer);
    }
    // S10's floor (no target): `tokio::spawn` plus a `go!`'s context work, against
    // `tokio::spawn` alone, on the current thread.
    let floor = |iters| run_as(&current, iters, Spawn::TokioAndTree, false);
    let peer = |iters| run_as(&current, iters, Spawn::Tokio, false);
    paired::pair("S10 floor", &floor, &peer);
}

fn main() {
    if let Ok(spec) = std::env::var("S10_IR") {
        instruction_driver(&spec);
        return;
    }
    if std::env::var_os("S10_PAIRED").is_some() {
        paired_rounds();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
