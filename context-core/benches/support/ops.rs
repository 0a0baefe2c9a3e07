//! One operation of the scenarios that the criterion bench (`benches/scenarios.rs`), the paired
//! rounds (`benches/paired.rs`) and the callgrind drivers (`examples/tree_ir.rs`: S2,
//! `examples/done_ir.rs`: S12) run, ours and the peer's, written once; each includes this file
//! with `#[path]`.

use std::any::{Any, TypeId};
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Waker};
use std::time::{Duration, Instant};

use go_context::{CancelHandle, Context};
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

/// "A long timeout": never fires during a benchmark.
pub const HOUR: Duration = Duration::from_secs(3600);

/// The S1 floor: an `AtomicBool` on a cache line of its own, on the heap like a context's
/// state (on the stack it can share a line with data another thread writes, which slowed the
/// two-thread floor below our own figure).
#[derive(Default)]
#[repr(align(128))]
pub struct FloorFlag(pub AtomicBool);

/// Boxed, as a context's node is; the benchmark loops load through a plain `&FloorFlag` (one
/// load per check, as the table's floor), not through the box.
pub type Floor = Box<FloorFlag>;

/// S1: the hot check on a live child that has a deadline.
#[inline]
pub fn s1_ours(ctx: &Context) {
    black_box(black_box(ctx).is_done());
}

/// S1's floor: one `Acquire` load.
#[inline]
pub fn s1_floor(flag: &FloorFlag) {
    black_box(black_box(flag).0.load(Ordering::Acquire));
}

/// Children of one parent in S4 and S4w.
pub const FAN_OUT: usize = 10_000;

/// S4: [`FAN_OUT`] children of a fresh parent created, then the parent cancelled; the time of
/// each phase. The children are dropped untimed. `kids` is reused from one fan-out to the next
/// (a fresh vector of this size is a fresh mapping: its page faults would be timed).
pub fn s4_ours(kids: &mut Vec<(Context, CancelHandle)>) -> (Duration, Duration) {
    let (parent, cancel) = Context::background().with_cancel();
    fan_out(kids, || parent.with_cancel(), || cancel.cancel())
}

/// S4 for tokio-util: child tokens of a fresh token, then the parent cancelled.
pub fn s4_tokio(kids: &mut Vec<CancellationToken>) -> (Duration, Duration) {
    let parent = CancellationToken::new();
    fan_out(kids, || parent.child_token(), || parent.cancel())
}

/// S4's two timed phases: [`FAN_OUT`] calls of `child` into `kids`, then `cancel`.
fn fan_out<T>(
    kids: &mut Vec<T>,
    child: impl Fn() -> T,
    cancel: impl FnOnce(),
) -> (Duration, Duration) {
    kids.reserve(FAN_OUT);
    let start = Instant::now();
    for _ in 0..FAN_OUT {
        kids.push(child());
    }
    let created = start.elapsed();
    let start = Instant::now();
    cancel();
    let cancelled = start.elapsed();
    kids.clear();
    (created, cancelled)
}

/// Ten distinct value types for S7 (`Key<0>` … `Key<9>`); `Key<10>` is never stored.
#[derive(Debug)]
pub struct Key<const N: usize>(#[allow(dead_code)] pub u64);

/// The S7 floor: a hand-rolled chain of `Arc` nodes, each holding one value and its `TypeId`.
pub struct FloorNode {
    key: TypeId,
    value: Box<dyn Any + Send + Sync>,
    parent: Option<Arc<FloorNode>>,
}

/// Stands for `background` at the top of the floor chain, so both chains have as many nodes.
struct FloorRoot;

impl FloorNode {
    fn with<T: Any + Send + Sync>(self: &Arc<Self>, value: T) -> Arc<FloorNode> {
        Arc::new(FloorNode {
            key: TypeId::of::<T>(),
            value: Box::new(value),
            parent: Some(Arc::clone(self)),
        })
    }

    fn value<T: Any>(&self) -> Option<&T> {
        let key = TypeId::of::<T>();
        let mut node = self;
        loop {
            if node.key == key {
                return node.value.downcast_ref::<T>();
            }
            node = node.parent.as_deref()?;
        }
    }
}

/// S7's chain of ten values under `background`.
pub fn s7_ours_chain() -> Context {
    let ctx = Context::background()
        .with_value(Key::<0>(0))
        .with_value(Key::<1>(1))
        .with_value(Key::<2>(2))
        .with_value(Key::<3>(3))
        .with_value(Key::<4>(4))
        .with_value(Key::<5>(5))
        .with_value(Key::<6>(6))
        .with_value(Key::<7>(7))
        .with_value(Key::<8>(8))
        .with_value(Key::<9>(9));
    assert!(ctx.value::<Key<0>>().is_some());
    ctx
}

/// S7's floor chain, as many nodes as [`s7_ours_chain`]'s.
pub fn s7_floor_chain() -> Arc<FloorNode> {
    let root = Arc::new(FloorNode {
        key: TypeId::of::<FloorRoot>(),
        value: Box::new(FloorRoot),
        parent: None,
    });
    let floor = root
        .with(Key::<0>(0))
        .with(Key::<1>(1))
        .with(Key::<2>(2))
        .with(Key::<3>(3))
        .with(Key::<4>(4))
        .with(Key::<5>(5))
        .with(Key::<6>(6))
        .with(Key::<7>(7))
        .with(Key::<8>(8))
        .with(Key::<9>(9));
    assert!(floor.value::<Key<0>>().is_some());
    floor
}

/// S7: the deepest value.
#[inline]
pub fn s7_ours_deepest(ctx: &Context) -> bool {
    black_box(black_box(ctx).value::<Key<0>>().is_some())
}

/// S7's floor: the deepest value.
#[inline]
pub fn s7_floor_deepest(floor: &FloorNode) -> bool {
    black_box(black_box(floor).value::<Key<0>>().is_some())
}

/// S7: a type that is not in the chain.
#[inline]
pub fn s7_ours_missing(ctx: &Context) -> bool {
    black_box(black_box(ctx).value::<Key<10>>().is_some())
}

/// S7's floor: a type that is not in the chain.
#[inline]
pub fn s7_floor_missing(floor: &FloorNode) -> bool {
    black_box(black_box(floor).value::<Key<10>>().is_some())
}

/// Counts the tasks of S4w: how many have registered their wait, and how many have woken.
#[derive(Default)]
pub struct Progress {
    pub waiting: AtomicUsize,
    pub woken: AtomicUsize,
}

impl Progress {
    /// Yields until `counter` reaches `n`.
    pub async fn until(counter: &AtomicUsize, n: usize) {
        while counter.load(Ordering::Acquire) < n {
            tokio::task::yield_now().await;
        }
    }
}

/// S4w's set-up, ours: `n` children of `parent`, each awaited (`done()`) by a task spawned on
/// the current tokio runtime; returns once every task is waiting, with the children's handles
/// (the caller keeps them until the measurement ends).
pub async fn s4w_setup_ours(
    parent: &Context,
    n: usize,
    progress: &Arc<Progress>,
) -> Vec<CancelHandle> {
    let mut handles = Vec::with_capacity(n);
    for _ in 0..n {
        let (child, handle) = parent.with_cancel();
        handles.push(handle);
        let progress = Arc::clone(progress);
        tokio::spawn(async move {
            // The first poll runs on to `done()`'s first poll: registered.
            progress.waiting.fetch_add(1, Ordering::Release);
            child.done().await;
            progress.woken.fetch_add(1, Ordering::Release);
        });
    }
    Progress::until(&progress.waiting, n).await;
    handles
}

/// S4w's set-up for tokio-util: `n` child tokens, each awaited (`cancelled()`) by a task.
pub async fn s4w_setup_tokio(parent: &CancellationToken, n: usize, progress: &Arc<Progress>) {
    for _ in 0..n {
        let child = parent.child_token();
        let progress = Arc::clone(progress);
        tokio::spawn(async move {
            progress.waiting.fetch_add(1, Ordering::Release);
            child.cancelled().await;
            progress.woken.fetch_add(1, Ordering::Release);
        });
    }
    Progress::until(&progress.waiting, n).await;
}

/// One S4w fan-out of `n`, ours, inside a current-thread runtime: the time from the parent's
/// cancel until every task has resumed.
pub async fn s4w_ours(n: usize) -> Duration {
    let (parent, cancel) = Context::background().with_cancel();
    let progress = Arc::new(Progress::default());
    let handles = s4w_setup_ours(&parent, n, &progress).await;
    let start = Instant::now();
    cancel.cancel();
    Progress::until(&progress.woken, n).await;
    let elapsed = start.elapsed();
    drop(handles);
    elapsed
}

/// One S4w fan-out of `n`, tokio-util's.
pub async fn s4w_tokio(n: usize) -> Duration {
    let parent = CancellationToken::new();
    let progress = Arc::new(Progress::default());
    s4w_setup_tokio(&parent, n, &progress).await;
    let start = Instant::now();
    parent.cancel();
    Progress::until(&progress.woken, n).await;
    start.elapsed()
}
