//! One operation of the scenarios that both the criterion bench (`benches/scenarios.rs`) and the
//! callgrind drivers (`examples/tree_ir.rs`: S2, `examples/done_ir.rs`: S12) run, ours and
//! tokio-util's, written once; each includes this file with `#[path]`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context as TaskContext, Waker};
use std::time::Duration;

use go_context::Context;
use tokio_util::sync::CancellationToken;

/// S2: a child of a live cancellable parent, cancelled, dropped.
pub fn s2_ours(parent: &Context) {
    let (child, cancel) = black_box(parent).with_cancel();
    cancel.cancel();
    drop(black_box(child));
    drop(cancel);
}

/// S2 for tokio-util: a child token, cancelled, dropped.
pub fn s2_tokio(parent: &CancellationToken) {
    let child = black_box(parent).child_token();
    child.cancel();
    drop(black_box(child));
}

/// A request's value in S12.
pub struct RequestId(#[allow(dead_code)] pub u64);

/// The timeout of a request in S12: long enough never to fire during a measurement.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(100);

/// S12: one request: `with_timeout` + `with_value` + a `done()` polled once and dropped +
/// cancel + drop.
pub fn s12_ours(parent: &Context) {
    let (ctx, cancel) = black_box(parent).with_timeout(REQUEST_TIMEOUT);
    let ctx = ctx.with_value(RequestId(7));
    {
        let done = pin!(ctx.done());
        let mut cx = TaskContext::from_waker(Waker::noop());
        assert!(done.poll(&mut cx).is_pending());
    }
    cancel.cancel();
    drop(black_box(ctx));
    drop(cancel);
}

/// S12 for tokio-util: a child token + `tokio::time::timeout` of `cancelled()` polled once
/// and dropped + cancel + drop (inside a tokio runtime's context: its timer is the runtime's).
pub fn s12_tokio(parent: &CancellationToken) {
    let child = black_box(parent).child_token();
    {
        let fut = pin!(tokio::time::timeout(REQUEST_TIMEOUT, child.cancelled()));
        let mut cx = TaskContext::from_waker(Waker::noop());
        assert!(fut.poll(&mut cx).is_pending());
    }
    child.cancel();
    drop(black_box(child));
}
