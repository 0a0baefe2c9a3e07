//! A driver for instruction counts of the wake path (S4w, S6, S12 of `docs/benchmarks.md`),
//! ours beside tokio-util's, for `valgrind --tool=callgrind`, which is deterministic under load:
//!
//! ```text
//! cargo build --release -p go-context --example done_ir
//! for n in 0 1000; do
//!     valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!         target/release/examples/done_ir s4w_ours $n 2>&1 | grep refs
//! done
//! ```
//!
//! `(Ir(N) - Ir(0)) / N` is the cost of one iteration:
//! - `s4w_*`: 100 children of one parent, a task awaiting each (`done()` / `cancelled()`) on a
//!   current-thread tokio runtime, all registered, then the parent cancelled until every task
//!   has resumed (per 100 woken tasks);
//! - `s6_*`: spawn a task awaiting a child, let it register, cancel, join it (per sample);
//! - `s12_*`: one request on one thread: `with_timeout` + `with_value` + `done()` polled once
//!   and dropped + cancel + drop (tokio-util: child token + `tokio::time::timeout` of
//!   `cancelled()` polled once).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use go_context::Context;
use tokio_util::sync::CancellationToken;
#[path = "../benches/support/ops.rs"]
#[allow(dead_code)] // this binary runs some of the operations
mod ops;
use ops::{s12_ours, s12_tokio};

const FAN_OUT: usize = 100;

async fn until(counter: &AtomicUsize, n: usize) {
    while counter.load(Ordering::Acquire) < n {
        tokio::task::yield_now().await;
    }
}

async fn s4w_ours() {
    let (parent, cancel) = Context::background().with_cancel();
    let (waiting, woken) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut handles = Vec::with_capacity(FAN_OUT);
    for _ in 0..FAN_OUT {
        let (child, handle) = parent.with_cancel();
        handles.push(handle);
        let (waiting, woken) = (Arc::clone(&waiting), Arc::clone(&woken));
        tokio::spawn(async move {
            waiting.fetch_add(1, Ordering::Release);
            child.done().await;
            woken.fetch_add(1, Ordering::Release);
        });
    }
    until(&waiting, FAN_OUT).await;
    cancel.cancel();
    until(&woken, FAN_OUT).await;
}

async fn s4w_tokio() {
    let parent = CancellationToken::new();
    let (waiting, woken) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    for _ in 0..FAN_OUT {
        let child = parent.child_token();
        let (waiting, woken) = (Arc::clone(&waiting), Arc::clone(&woken));
        tokio::spawn(async move {
            waiting.fetch_add(1, Ordering::Release);
            child.cancelled().await;
            woken.fetch_add(1, Ordering::Release);
        });
    }
    until(&waiting, FAN_OUT).await;
    parent.cancel();
    until(&woken, FAN_OUT).await;
}

async fn s6_ours(parent: &Context) {
    let (child, cancel) = parent.with_cancel();
    let waiting = Arc::new(AtomicUsize::new(0));
    let task = tokio::spawn({
        let waiting = Arc::clone(&waiting);
        async move {
            waiting.store(1, Ordering::Release);
            child.done().await
        }
    });
    until(&waiting, 1).await;
    cancel.cancel();
    task.await.unwrap();
}

async fn s6_tokio(parent: &CancellationToken) {
    let child = parent.child_token();
    let waiting = Arc::new(AtomicUsize::new(0));
    let task = tokio::spawn({
        let waiting = Arc::clone(&waiting);
        let child = child.clone();
        async move {
            waiting.store(1, Ordering::Release);
            child.cancelled().await
        }
    });
    until(&waiting, 1).await;
    child.cancel();
    task.await.unwrap();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().expect("usage: done_ir <scenario> <iterations>");
    let n: usize = args.next().map_or(1000, |s| s.parse().expect("a count"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let parent = Context::background().with_cancel();
    let token = CancellationToken::new();
    // S12's tokio twin needs the runtime's timer: entered once, outside the loop.
    let _guard = (scenario == "s12_tokio").then(|| rt.enter());
    // One warm-up iteration, so that N = 0 pays the one-off costs too.
    let run = |i: usize| match scenario.as_str() {
        "s4w_ours" => rt.block_on(s4w_ours()),
        "s4w_tokio" => rt.block_on(s4w_tokio()),
        "s6_ours" => rt.block_on(s6_ours(&parent.0)),
        "s6_tokio" => rt.block_on(s6_tokio(&token)),
        "s12_ours" => s12_ours(&parent.0),
        "s12_tokio" => s12_tokio(&token),
        other => panic!("unknown scenario {other} (iteration {i})"),
    };
    for i in 0..=n {
        run(i);
    }
}
