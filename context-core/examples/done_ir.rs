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
//! - `s4w_*`: 100 children (or the third argument's count) of one parent, a task awaiting each (`done()` / `cancelled()`) on a
//!   current-thread tokio runtime, all registered, then the parent cancelled until every task
//!   has resumed (per 100 woken tasks);
//! - `s6_*`: spawn a task awaiting a child, let it register, cancel, join it (per sample);
//! - `repoll_*`: one registered `done()` / `cancelled()` re-polled with the same waker (per
//!   re-poll: the turn of a `select!` loop);
//! - `s12_*`: one request on one thread: `with_timeout` + `with_value` + `done()` polled once
//!   and dropped + cancel + drop (tokio-util: child token + `tokio::time::timeout` of
//!   `cancelled()` polled once).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use go_context::Context;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;
#[path = "../benches/support/ops.rs"]
#[allow(dead_code)] // this binary runs some of the operations
mod ops;
use ops::{s12_ours, s12_tokio, s4w_setup_ours, s4w_setup_tokio, Progress};

/// Children per S4w iteration, unless the third argument says otherwise (the criterion bench
/// uses 10,000: cache effects show only at that size).
const FAN_OUT: usize = 100;

/// S4w, ours: registers `fan_out` waiting tasks, then runs the measured phase.
fn s4w_ours(rt: &Runtime, fan_out: usize) {
    let (parent, cancel) = Context::background().with_cancel();
    let progress = Arc::new(Progress::default());
    let handles = rt.block_on(s4w_setup_ours(&parent, fan_out, &progress));
    wake_phase(rt, || cancel.cancel(), &progress.woken, fan_out);
    drop(handles);
}

/// S4w, tokio-util's twin.
fn s4w_tokio(rt: &Runtime, fan_out: usize) {
    let parent = CancellationToken::new();
    let progress = Arc::new(Progress::default());
    rt.block_on(s4w_setup_tokio(&parent, fan_out, &progress));
    wake_phase(rt, || parent.cancel(), &progress.woken, fan_out);
}

/// S4w's measured phase, as the criterion bench times it: the cancel, then every task resumed
/// (the tasks stay on the current-thread runtime between `block_on`s). A function of its own
/// so that `--toggle-collect='*wake_phase*'` counts this phase alone.
#[inline(never)]
fn wake_phase(rt: &Runtime, cancel: impl FnOnce(), woken: &AtomicUsize, n: usize) {
    // Inside `block_on`, as in the bench: the wakes go to the runtime's local queue.
    rt.block_on(async {
        cancel();
        Progress::until(woken, n).await;
    });
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
    Progress::until(&waiting, 1).await;
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
    Progress::until(&waiting, 1).await;
    child.cancel();
    task.await.unwrap();
}

/// `repoll_*`: one `done()` (`cancelled()`) future registered, then polled `n` more times with
/// the same waker, as a `select!` loop does on every turn, then cancelled (per re-poll).
fn repoll_ours(n: usize) {
    let (ctx, cancel) = Context::background().with_cancel();
    let mut done = std::pin::pin!(ctx.done());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..=n {
        assert!(done.as_mut().poll(&mut cx).is_pending());
    }
    cancel.cancel();
    assert!(done.as_mut().poll(&mut cx).is_ready());
}

fn repoll_tokio(n: usize) {
    let token = CancellationToken::new();
    let mut done = std::pin::pin!(token.cancelled());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..=n {
        assert!(done.as_mut().poll(&mut cx).is_pending());
    }
    token.cancel();
    assert!(done.as_mut().poll(&mut cx).is_ready());
}

fn main() {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().expect("usage: done_ir <scenario> <iterations>");
    let n: usize = args.next().map_or(1000, |s| s.parse().expect("a count"));
    let fan_out: usize = args
        .next()
        .map_or(FAN_OUT, |s| s.parse().expect("a fan-out"));
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
        "s4w_ours" => s4w_ours(&rt, fan_out),
        "s4w_tokio" => s4w_tokio(&rt, fan_out),
        "s6_ours" => rt.block_on(s6_ours(&parent.0)),
        "s6_tokio" => rt.block_on(s6_tokio(&token)),
        "s12_ours" => s12_ours(&parent.0),
        "s12_tokio" => s12_tokio(&token),
        other => panic!("unknown scenario {other} (iteration {i})"),
    };
    // `repoll_*` is one future re-polled `n` times (after a warm-up with none).
    let repoll = match scenario.as_str() {
        "repoll_ours" => Some(repoll_ours as fn(usize)),
        "repoll_tokio" => Some(repoll_tokio as fn(usize)),
        _ => None,
    };
    if let Some(repoll) = repoll {
        repoll(0);
        repoll(n);
        return;
    }
    for i in 0..=n {
        run(i);
    }
}
