//! A callgrind driver for the ambient context: runs one scenario N times, so that
//! `(Ir(N) - Ir(0)) / N` is its instruction count per operation, deterministic under load.
//!
//! ```text
//! cargo build --release -p go-context --example ambient_ir
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p \
//!     target/release/examples/ambient_ir enter 0
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p \
//!     target/release/examples/ambient_ir enter 10000
//! ```
//!
//! Scenarios: `enter` (`ctx.enter()` and the guard's drop), `nested` (two guards, dropped in
//! order), `scope` (one poll of `ctx.scope(ready)`, built and dropped), `current`
//! (`Context::current()` inside an entered context, dropped).

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context as TaskContext, Waker};

use go_context::Context;

fn enter(ctx: &Context) {
    let guard = black_box(ctx).enter();
    drop(black_box(guard));
}

fn nested(ctx: &Context) {
    let outer = black_box(ctx).enter();
    let inner = black_box(ctx).enter();
    drop(black_box(inner));
    drop(black_box(outer));
}

fn scope(ctx: &Context) {
    let fut = pin!(black_box(ctx).scope(std::future::ready(1u8)));
    let mut cx = TaskContext::from_waker(Waker::noop());
    assert!(fut.poll(&mut cx).is_ready());
}

fn current(_: &Context) {
    drop(black_box(Context::current()));
}

fn main() {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().unwrap_or_else(|| "enter".into());
    let n: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let run: fn(&Context) = match scenario.as_str() {
        "enter" => enter,
        "nested" => nested,
        "scope" => scope,
        "current" => current,
        other => panic!("unknown scenario {other}: enter, nested, scope, current"),
    };
    let (ctx, _cancel) = Context::background().with_cancel();
    let _outer = (scenario == "current").then(|| ctx.enter());
    // Warm up outside the count (thread-locals registered, the guard list allocated).
    for _ in 0..100 {
        run(&ctx);
    }
    for _ in 0..n {
        run(&ctx);
    }
}
