//! What a burst of `after_func` callbacks costs the canceller (issue 10, item 5): `cancel()` of
//! a context with 10,000 registered callbacks, per callback, against the same `cancel()` with
//! 10,000 `done()` wakers of a no-op waker (the tree's own wake path, the floor for "hand each
//! callback over").
//!
//! Each sample registers afresh (not timed), cancels (timed), then waits until every callback
//! has run (not timed), so the pool is idle at the start of each sample.
//!
//! Run: `cargo bench -p context-tests --bench after_func_burst`

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Wake, Waker};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use go_context::Context;

const CALLBACKS: usize = 10_000;

struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

fn callbacks(iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let (ctx, cancel) = Context::background().with_cancel();
        let ran = Arc::new(AtomicUsize::new(0));
        let regs: Vec<_> = (0..CALLBACKS)
            .map(|_| {
                let ran = Arc::clone(&ran);
                ctx.after_func(move || {
                    ran.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        let start = Instant::now();
        cancel.cancel();
        total += start.elapsed();
        while ran.load(Ordering::Relaxed) < CALLBACKS {
            std::thread::yield_now();
        }
        drop(regs);
    }
    total
}

fn wakers(iters: u64) -> Duration {
    let waker = Waker::from(Arc::new(Noop));
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let (ctx, cancel) = Context::background().with_cancel();
        let mut futures: Vec<_> = (0..CALLBACKS).map(|_| Box::pin(ctx.done())).collect();
        for f in &mut futures {
            let _ = f.as_mut().poll(&mut TaskContext::from_waker(&waker));
        }
        let start = Instant::now();
        cancel.cancel();
        total += start.elapsed();
        drop(futures);
    }
    total
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("after_func_burst");
    g.throughput(Throughput::Elements(CALLBACKS as u64));
    g.sample_size(20);
    g.bench_function("cancel_with_10k_callbacks", |b| b.iter_custom(callbacks));
    g.bench_function("cancel_with_10k_wakers", |b| b.iter_custom(wakers));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
