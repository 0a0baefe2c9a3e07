//! S10 of BENCHMARKS.md: `go!` spawn + join of an async no-op vs `tokio::spawn` + join
//! (target: ≤ 1.3×).
//!
//! `go!` does more than `tokio::spawn`: it makes a child context of the current one, keeps
//! a cancel handle for the task, and runs the task with the child as its current context.
//! Each sample spawns and awaits one task at a time, so the numbers are spawn + schedule +
//! complete + wake + join, on:
//! - `current_thread`: one thread, no cross-thread wake-ups (the overhead shows most);
//! - `multi_thread`: two workers, the loop running in `block_on` off the workers.
//!
//! Run: `cargo bench -p context-tests --bench s10_go`

use std::hint::black_box;
use std::time::{Duration, Instant};

use context_core::go;
use criterion::{criterion_group, criterion_main, Criterion};
use tokio::runtime::{Builder, Runtime};

async fn noop() -> u64 {
    black_box(1)
}

fn run(rt: &Runtime, iters: u64, with_go: bool) -> Duration {
    rt.block_on(async move {
        let start = Instant::now();
        let mut sum = 0;
        for _ in 0..iters {
            sum += if with_go {
                go!(noop()).await.unwrap()
            } else {
                tokio::spawn(noop()).await.unwrap()
            };
        }
        black_box(sum);
        start.elapsed()
    })
}

fn s10(c: &mut Criterion) {
    let runtimes = [
        (
            "current_thread",
            Builder::new_current_thread().build().unwrap(),
        ),
        (
            "multi_thread",
            Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .unwrap(),
        ),
    ];
    for (flavor, rt) in &runtimes {
        let mut group = c.benchmark_group(format!("S10/{flavor}"));
        group.bench_function("go!", |b| b.iter_custom(|iters| run(rt, iters, true)));
        group.bench_function("tokio::spawn", |b| {
            b.iter_custom(|iters| run(rt, iters, false))
        });
        group.finish();
    }
}

criterion_group!(benches, s10);
criterion_main!(benches);
