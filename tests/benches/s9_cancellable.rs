//! S9 of BENCHMARKS.md: a `#[cancellable]` loop vs the same loop with a hand-written
//! `ctx.check()?` (target: ≤ 1.05×).
//!
//! - `S9/loop_10k`: 10,000 iterations per call; the macro's per-call cost (a child context,
//!   entered as current) is spread over them, as in a real worker loop.
//! - `S9/call`: the per-call cost alone: a `#[cancellable]` fn with an empty loop vs the same
//!   fn making the child context by hand.
//!
//! Run: `cargo bench -p context-tests --bench s9_cancellable`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use go_context::{cancellable, Context, Error};

/// One iteration's work: a few dependent integer ops that cannot be vectorised away.
#[inline(always)]
fn step(acc: u64, x: u64) -> u64 {
    (acc ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(7)
}

#[cancellable]
fn with_macro(ctx: &Context, data: &[u64]) -> Result<u64, Error> {
    let _ = ctx;
    let mut acc = 0;
    for &x in data {
        acc = step(acc, x);
    }
    Ok(acc)
}

fn by_hand(ctx: &Context, data: &[u64]) -> Result<u64, Error> {
    let mut acc = 0;
    for &x in data {
        ctx.check()?;
        acc = step(acc, x);
    }
    Ok(acc)
}

/// The same work with the child context made by hand, as `#[cancellable]` does.
fn by_hand_with_child(parent: &Context, data: &[u64]) -> Result<u64, Error> {
    let (ctx, _cancel) = parent.with_cancel();
    let _current = ctx.enter();
    by_hand(&ctx, data)
}

fn s9(c: &mut Criterion) {
    let (ctx, _cancel) = Context::background().with_cancel();
    let data: Vec<u64> = (0..10_000u64).collect();
    assert_eq!(with_macro(&ctx, &data), by_hand(&ctx, &data));

    let mut group = c.benchmark_group("S9/loop_10k");
    group.bench_function(BenchmarkId::new("cancellable", 10_000), |b| {
        b.iter(|| with_macro(black_box(&ctx), black_box(&data)))
    });
    group.bench_function(BenchmarkId::new("hand_written_check", 10_000), |b| {
        b.iter(|| by_hand(black_box(&ctx), black_box(&data)))
    });
    group.finish();

    let empty: [u64; 0] = [];
    let mut group = c.benchmark_group("S9/call");
    group.bench_function("cancellable", |b| {
        b.iter(|| with_macro(black_box(&ctx), black_box(&empty)))
    });
    group.bench_function("hand_written_child", |b| {
        b.iter(|| by_hand_with_child(black_box(&ctx), black_box(&empty)))
    });
    group.finish();
}

criterion_group!(benches, s9);
criterion_main!(benches);
