//! Memory, scenario S8 of `shared/BENCHMARKS.md`: bytes and allocations per live child, with
//! 1,000,000 live children of one parent, counted by a global allocator that wraps the system's
//! (harness = false). Also the allocations of one S2 and one S3 operation.
//!
//! Bytes are the sizes requested from the allocator (what the program asks for, without the
//! allocator's own headers and rounding); a `realloc` counts as one allocation and changes the
//! live bytes by the difference. The `Vec` holding the children's handles is allocated before
//! the first count, so it is not part of the figures.
//!
//! Output lines: `RESULT <id> <who> bytes=<per child> allocs=<per child> n=<children>`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use go_context::Context;
use tokio_util::sync::CancellationToken;

const CHILDREN: usize = 1_000_000;
/// Operations averaged for the per-operation figures of S2 and S3.
const OPS: usize = 10_000;
const HOUR: Duration = Duration::from_secs(3600);

/// Wraps [`System`], counting allocation calls and the bytes requested, live and in total.
struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static TOTAL: AtomicUsize = AtomicUsize::new(0);

impl Counting {
    fn grew(by: usize) {
        LIVE.fetch_add(by, Ordering::Relaxed);
        TOTAL.fetch_add(by, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards its arguments unchanged to `System`, which implements the
// `GlobalAlloc` contract; the counters on the side do not touch the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract for `layout`, as `System` requires.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            Counting::grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            Counting::grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator (so by `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by `System` with `layout`; the caller upholds the rest.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            if new_size >= layout.size() {
                Counting::grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The counters at one moment.
#[derive(Clone, Copy)]
struct Snapshot {
    allocs: usize,
    live: usize,
    total: usize,
}

fn snapshot() -> Snapshot {
    Snapshot {
        allocs: ALLOCS.load(Ordering::Relaxed),
        live: LIVE.load(Ordering::Relaxed),
        total: TOTAL.load(Ordering::Relaxed),
    }
}

/// Prints live bytes and allocations per child between `before` and now.
fn report_live(id: &str, who: &str, before: Snapshot, n: usize) {
    let after = snapshot();
    println!(
        "RESULT {id} {who} bytes={:.1} allocs={:.2} n={n}",
        (after.live as f64 - before.live as f64) / n as f64,
        (after.allocs - before.allocs) as f64 / n as f64,
    );
}

/// Prints bytes requested and allocations per operation between `before` and now.
fn report_ops(id: &str, who: &str, before: Snapshot, n: usize) {
    let after = snapshot();
    println!(
        "RESULT {id} {who} bytes={:.1} allocs={:.2} n={n}",
        (after.total - before.total) as f64 / n as f64,
        (after.allocs - before.allocs) as f64 / n as f64,
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime")
}

/// A child token and the task that cancels it after `HOUR`, ending early if it is cancelled:
/// tokio-util's equivalent of `with_timeout`. Counts the task's first poll in `polled`.
fn spawn_timeout_task(child: &CancellationToken, polled: &Arc<AtomicUsize>) {
    let timer = child.clone();
    let polled = Arc::clone(polled);
    tokio::spawn(async move {
        polled.fetch_add(1, Ordering::Release);
        if timer
            .run_until_cancelled(tokio::time::sleep(HOUR))
            .await
            .is_some()
        {
            timer.cancel();
        }
    });
}

/// Yields until `counter` reaches `n`.
async fn until(counter: &AtomicUsize, n: usize) {
    while counter.load(Ordering::Acquire) < n {
        tokio::task::yield_now().await;
    }
}

fn s8_ours(timeout: bool) {
    let (parent, cancel) = Context::background().with_cancel();
    // Starts the timer thread and its map before counting.
    drop(parent.with_timeout(HOUR));
    let mut kids = Vec::with_capacity(CHILDREN);
    let before = snapshot();
    for _ in 0..CHILDREN {
        kids.push(if timeout {
            parent.with_timeout(HOUR)
        } else {
            parent.with_cancel()
        });
    }
    report_live(if timeout { "S8t" } else { "S8" }, "ours", before, CHILDREN);
    cancel.cancel();
    drop(kids);
}

fn s8_tokio(timeout: bool) {
    let rt = runtime();
    let parent = CancellationToken::new();
    let mut kids = Vec::with_capacity(CHILDREN);
    let polled = Arc::new(AtomicUsize::new(0));
    rt.block_on(async {
        // Warm the runtime's timer and queues before counting.
        let warm = parent.child_token();
        spawn_timeout_task(&warm, &polled);
        until(&polled, 1).await;
        warm.cancel();
        tokio::task::yield_now().await;
    });
    let base = polled.load(Ordering::Acquire);
    let before = snapshot();
    rt.block_on(async {
        for i in 0..CHILDREN {
            let child = parent.child_token();
            if timeout {
                spawn_timeout_task(&child, &polled);
                // Let the tasks arm their timers in batches, so the run queue stays short.
                if i % 1024 == 1023 {
                    until(&polled, base + i + 1).await;
                }
            }
            kids.push(child);
        }
        if timeout {
            until(&polled, base + CHILDREN).await;
        }
    });
    report_live(
        if timeout { "S8t" } else { "S8" },
        if timeout {
            "tokio_util_task"
        } else {
            "tokio_util"
        },
        before,
        CHILDREN,
    );
    parent.cancel();
    // Let every timeout task see the cancel and end before the runtime goes.
    rt.block_on(async {
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
    });
    drop(kids);
    drop(rt);
}

/// Allocations of one S2 and one S3 operation (bytes requested in total, not live).
fn per_op() {
    let (parent, _cancel) = Context::background().with_cancel();
    let token = CancellationToken::new();
    let rt = runtime();
    // Warm-up: every lazily allocated structure exists before counting.
    for _ in 0..100 {
        drop(black_box(parent.with_cancel()));
        drop(black_box(parent.with_timeout(HOUR)));
        drop(black_box(token.child_token()));
    }
    let before = snapshot();
    for _ in 0..OPS {
        let (child, cancel) = parent.with_cancel();
        cancel.cancel();
        drop(black_box(child));
    }
    report_ops("S2_op", "ours", before, OPS);
    let before = snapshot();
    for _ in 0..OPS {
        let child = token.child_token();
        child.cancel();
        drop(black_box(child));
    }
    report_ops("S2_op", "tokio_util", before, OPS);
    let before = snapshot();
    for _ in 0..OPS {
        let (child, cancel) = parent.with_timeout(HOUR);
        cancel.cancel();
        drop(black_box(child));
    }
    report_ops("S3_op", "ours", before, OPS);
    let polled = Arc::new(AtomicUsize::new(0));
    rt.block_on(async {
        for _ in 0..100 {
            let child = token.child_token();
            spawn_timeout_task(&child, &polled);
            child.cancel();
            tokio::task::yield_now().await;
        }
        let before = snapshot();
        for _ in 0..OPS {
            let child = token.child_token();
            spawn_timeout_task(&child, &polled);
            child.cancel();
            drop(black_box(child));
            tokio::task::yield_now().await;
        }
        report_ops("S3_op", "tokio_util_task", before, OPS);
    });
}

fn main() {
    per_op();
    s8_ours(false);
    s8_tokio(false);
    s8_ours(true);
    s8_tokio(true);
}
