//! A callgrind driver for the timer's rows: runs one scenario N times, so that
//! `(Ir(N) - Ir(0)) / N` is its instruction count per operation, deterministic under load.
//!
//! ```text
//! cargo build --release -p go-context --example timer_ir
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p \
//!     target/release/examples/timer_ir s3 0
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p \
//!     target/release/examples/timer_ir s3 10000
//! ```
//!
//! Scenarios: `s3` (`with_timeout(1h)` + cancel + drop), `s12` (one thread's request of S12:
//! `with_timeout(100ms)` + `with_value` + `done()` polled once and dropped + cancel + drop).

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context as TaskContext, Waker};
use std::time::Duration;

use go_context::Context;

struct RequestId(#[allow(dead_code)] u64);

fn s3(parent: &Context) {
    let (child, cancel) = black_box(parent).with_timeout(Duration::from_secs(3600));
    cancel.cancel();
    drop(black_box(child));
    drop(cancel);
}

fn s12(parent: &Context) {
    let (ctx, cancel) = black_box(parent).with_timeout(Duration::from_millis(100));
    let ctx = ctx.with_value(RequestId(7));
    {
        // `pin!`, so the driver holds whether `Done` is `Unpin` or not.
        let done = pin!(ctx.done());
        let mut cx = TaskContext::from_waker(Waker::noop());
        assert!(done.poll(&mut cx).is_pending());
    }
    cancel.cancel();
    drop(black_box(ctx));
    drop(cancel);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().unwrap_or_else(|| "s3".into());
    let n: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let run: fn(&Context) = match scenario.as_str() {
        "s3" => s3,
        "s12" => s12,
        other => panic!("unknown scenario {other}: s3 or s12"),
    };
    let (parent, _cancel) = Context::background().with_cancel();
    // Warm up outside the count: the timer thread is started and the allocator primed in both
    // runs, so the difference is the steady state.
    for _ in 0..100 {
        run(&parent);
    }
    for _ in 0..n {
        run(&parent);
    }
}
