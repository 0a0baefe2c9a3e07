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
//! Scenario: `s3` (`with_timeout(1h)` + cancel + drop). S12 (a request: the timer, a value and
//! a `done()`) is in `done_ir`, beside tokio-util's twin.

use std::hint::black_box;
use std::time::Duration;

use go_context::Context;

fn s3(parent: &Context) {
    let (child, cancel) = black_box(parent).with_timeout(Duration::from_secs(3600));
    cancel.cancel();
    drop(black_box(child));
    drop(cancel);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().unwrap_or_else(|| "s3".into());
    let n: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let run: fn(&Context) = match scenario.as_str() {
        "s3" => s3,
        other => panic!("unknown scenario {other}: s3 (S12 is in done_ir, beside tokio-util's)"),
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
