//! Nothing is kept: live memory returns to its baseline after contexts are dropped, with or
//! without `cancel()`. A counting global allocator measures it.
//!
//! This file is its own test binary with a single test, so no other test allocates concurrently.

use std::future::Future;
use std::task::{Context as TaskContext, Waker};
use std::time::Duration;

use go_context::Context;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{allocations_on_this_thread, live};

/// Builds a varied tree under `parent` and returns everything that keeps it alive. Its
/// `after_func` registrations are stopped before the end (a fired callback runs on a pool
/// thread whose own bookkeeping would blur the count; `fired_callbacks_keep_nothing` covers
/// those).
fn grow(parent: &Context, n: usize) -> (Vec<StopOnDrop>, Vec<Box<dyn std::any::Any>>) {
    let mut keep: Vec<Box<dyn std::any::Any>> = Vec::new();
    let mut stops = Vec::new();
    for i in 0..n {
        let (a, ca) = parent.with_cancel();
        let (b, cb) = a.with_timeout(Duration::from_secs(3600 + i as u64));
        let c = b.with_value(i).with_value(format!("request {i}"));
        let (d, cd) = c.with_deadline_cause(
            std::time::Instant::now() + Duration::from_secs(7200),
            "too slow",
        );
        let stop = d.after_func(|| {});
        // A registered, then abandoned, done() future.
        let mut done = Box::pin(d.done());
        let waker = Waker::noop();
        assert!(done
            .as_mut()
            .poll(&mut TaskContext::from_waker(waker))
            .is_pending());
        stops.push(StopOnDrop(stop));
        keep.push(Box::new((a, ca, b, cb, c, d, cd, done)));
    }
    (stops, keep)
}

struct StopOnDrop(go_context::AfterFunc);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

#[test]
fn live_memory_returns_to_baseline() {
    let (parent, cancel) = Context::background().with_cancel();
    // Warm up: lazily created statics (timer, thread-locals) and the parent's child list.
    let (stops, kept) = grow(&parent, 10);
    drop(stops);
    drop(kept);
    std::thread::sleep(Duration::from_millis(1));
    let baseline = live();

    // Dropped without any cancel().
    let (stops, kept) = grow(&parent, 10_000);
    assert!(
        live() > baseline + 10_000 * 100,
        "the tree was really built"
    );
    drop(stops);
    drop(kept);
    assert!(
        live() <= baseline,
        "leaked {} bytes after dropping without cancel",
        live() - baseline
    );

    // Cancelled through the parent, then dropped.
    let (sub, cancel_sub) = parent.with_cancel();
    let (stops, kept) = grow(&sub, 10_000);
    drop(stops);
    cancel_sub.cancel();
    drop(kept);
    drop((sub, cancel_sub));
    assert!(
        live() <= baseline,
        "leaked {} bytes after cancel and drop",
        live() - baseline
    );
    drop((parent, cancel));

    shrunk_lists_give_memory_back();
    fired_callbacks_keep_nothing();
    waiting_allocates_nothing();
}

/// A pending `done()` future and a thread blocked in `wait_timeout` keep their waiter entry
/// inline (in the pinned future, on the stack): registering allocates nothing, whether the
/// wait ends by a drop, a timeout or a cancel (before, each registration allocated a 40-byte
/// entry).
fn waiting_allocates_nothing() {
    let (ctx, cancel) = Context::background().with_cancel();
    let mut cx = TaskContext::from_waker(Waker::noop());
    // Warm up the thread's handle (`thread::current()` may allocate it once).
    assert_eq!(ctx.wait_timeout(Duration::ZERO), None);
    // Counted on this thread: the live total also moves when a background thread (the timer's,
    // the callback pool's) frees something meanwhile, which once made this test fail in CI
    // with 108 bytes *fewer* live.
    let before = allocations_on_this_thread();
    {
        let done = std::pin::pin!(ctx.done());
        assert!(done.poll(&mut cx).is_pending());
        assert_eq!(
            allocations_on_this_thread(),
            before,
            "a pending done() allocated"
        );
    }
    assert_eq!(ctx.wait_timeout(Duration::from_millis(1)), None);
    let mut done = std::pin::pin!(ctx.done());
    assert!(done.as_mut().poll(&mut cx).is_pending());
    cancel.cancel();
    assert!(done.as_mut().poll(&mut cx).is_ready());
    assert_eq!(allocations_on_this_thread(), before, "waiting allocated");
}

/// A million children or a million waiters, all gone but one: the lists hold no more than
/// that one needs (before, 8 MiB of children list and 24 MiB of waiter slab stayed).
fn shrunk_lists_give_memory_back() {
    const N: usize = 1_000_000;
    let (parent, _cancel) = Context::background().with_cancel();
    let baseline = live();
    let mut children: Vec<_> = (0..N).map(|_| parent.with_cancel()).collect();
    // Keep the one in the middle: it moves around the list as the others leave.
    let kept = children.swap_remove(N / 2);
    drop(children);
    let left = live() - baseline;
    assert!(
        left < 4096,
        "{left} bytes stay after 1M children were dropped with one left"
    );
    drop(kept);

    let (ctx, _cancel) = Context::background().with_cancel();
    let baseline = live();
    let mut waiters: Vec<_> = (0..N).map(|_| Box::pin(ctx.done())).collect();
    for done in &mut waiters {
        let poll = done
            .as_mut()
            .poll(&mut TaskContext::from_waker(Waker::noop()));
        assert!(poll.is_pending());
    }
    let kept = waiters.swap_remove(N / 2);
    drop(waiters);
    let left = live() - baseline;
    assert!(
        left < 4096,
        "{left} bytes stay after 1M waiters were dropped with one left"
    );
    drop(kept);
    assert!(live() <= baseline, "the last waiter left its entry behind");
}

/// Fired callbacks release their closure (and what it captured) once they ran.
fn fired_callbacks_keep_nothing() {
    let token = std::sync::Arc::new(());
    let (ctx, cancel) = Context::background().with_cancel();
    let (tx, rx) = std::sync::mpsc::channel();
    let registrations: Vec<_> = (0..1000)
        .map(|_| {
            let (token, tx) = (token.clone(), tx.clone());
            ctx.after_func(move || {
                drop(token);
                tx.send(()).unwrap();
            })
        })
        .collect();
    assert_eq!(std::sync::Arc::strong_count(&token), 1001);
    cancel.cancel();
    for _ in 0..1000 {
        rx.recv_timeout(Duration::from_secs(30)).unwrap();
    }
    drop(registrations);
    drop(ctx);
    assert_eq!(std::sync::Arc::strong_count(&token), 1);
}
