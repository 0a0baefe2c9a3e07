//! Unit tests that look inside the tree: links and timer entries.

use std::time::Duration;

use crate::{tree, Context};

#[test]
fn a_cancelled_child_leaves_its_parent_list_with_its_last_handle() {
    let (parent, _cancel) = Context::background().with_cancel();
    let (a, cancel_a) = parent.with_cancel();
    let (_b, _cancel_b) = parent.with_cancel();
    let (_c, _cancel_c) = parent.with_value(1u8).with_cancel();
    assert_eq!(tree::child_count(&parent.node), 3);
    let other_a = cancel_a.clone();
    cancel_a.cancel();
    assert!(a.is_done());
    // Cancelled, but a handle is held: still listed (tree invariant 2).
    assert_eq!(tree::child_count(&parent.node), 3);
    drop(cancel_a);
    assert_eq!(tree::child_count(&parent.node), 3);
    // The last handle unlinks it, though the context itself is still held.
    drop(other_a);
    assert_eq!(tree::child_count(&parent.node), 2);
    assert!(a.is_done());
}

#[test]
fn a_parent_cancelled_over_cancelled_children_passes_them_by() {
    let (parent, cancel) = Context::background().with_cancel();
    let kids: Vec<_> = (0..8).map(|_| parent.with_cancel()).collect();
    for (_, handle) in kids.iter().step_by(2) {
        handle.cancel();
    }
    assert_eq!(tree::child_count(&parent.node), 8);
    let weaks: Vec<_> = kids
        .iter()
        .map(|(ctx, _)| crate::sync::Arc::downgrade(&ctx.node))
        .collect();
    cancel.cancel();
    assert_eq!(tree::child_count(&parent.node), 0);
    let parent_line = parent.cause().expect("done").location().line();
    for (i, (ctx, _)) in kids.iter().enumerate() {
        let line = ctx.cause().expect("done").location().line();
        // The children cancelled first keep their own cause (their own `cancel()`'s line).
        assert_eq!(line == parent_line, i % 2 == 1, "child {i}");
    }
    drop(kids);
    for weak in weaks {
        assert!(weak.upgrade().is_none(), "a child leaked");
    }
}

#[test]
fn dropping_the_last_handle_unlinks_without_cancel() {
    let (parent, _cancel) = Context::background().with_cancel();
    let handles: Vec<_> = (0..100).map(|_| parent.with_cancel()).collect();
    assert_eq!(tree::child_count(&parent.node), 100);
    // Drop in an order that exercises swap_remove's slot updates.
    let (evens, odds): (Vec<_>, Vec<_>) = handles
        .into_iter()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    drop(odds);
    assert_eq!(tree::child_count(&parent.node), 50);
    drop(evens);
    assert_eq!(tree::child_count(&parent.node), 0);
}

#[test]
fn a_child_of_a_value_links_to_the_nearest_cancel_ancestor() {
    let (parent, cancel) = Context::background().with_cancel();
    let (child, _c) = parent.with_value("v").with_value(2u16).with_cancel();
    assert_eq!(tree::child_count(&parent.node), 1);
    cancel.cancel();
    assert!(child.is_done());
    assert_eq!(tree::child_count(&parent.node), 0);
}

#[test]
fn a_cancelled_deadline_leaves_the_timer() {
    // Other tests arm timers concurrently: look for our own entries only.
    let (ctx, cancel) = Context::background().with_timeout(Duration::from_secs(3600));
    assert!(tree::is_armed(&ctx.node));
    cancel.cancel();
    assert!(!tree::is_armed(&ctx.node));
}

#[test]
fn a_dropped_deadline_context_leaves_the_timer() {
    let (ctx, cancel) = Context::background().with_timeout(Duration::from_secs(3600));
    let weak = crate::sync::Arc::downgrade(&ctx.node);
    drop(cancel);
    drop(ctx);
    // Nothing (the timer included) keeps the node: it is gone.
    assert!(weak.upgrade().is_none());
}

#[test]
fn a_child_born_done_is_not_linked_nor_armed() {
    let (parent, cancel) = Context::background().with_cancel();
    cancel.cancel();
    let (child, _c) = parent.with_timeout(Duration::from_secs(3600));
    assert!(child.is_done());
    assert!(!tree::is_armed(&child.node));
    assert_eq!(tree::child_count(&parent.node), 0);
}

#[test]
fn node_sizes() {
    use std::mem::size_of;
    eprintln!(
        "Node {} Body {} CancelNode {} Cause {}",
        size_of::<tree::Node>(),
        size_of::<tree::Body>(),
        size_of::<tree::CancelNode>(),
        size_of::<crate::Cause>()
    );
    // S8: 64 bytes of node (80 with the `Arc` counts) per child; the waiter list's head and
    // the phase (children or cause) share the 24 bytes under the lock.
    assert!(size_of::<tree::Node>() <= 64);
}

#[test]
fn children_lists_give_memory_back_as_they_shrink() {
    let (parent, _cancel) = Context::background().with_cancel();
    // Smaller under Miri, which interprets every step.
    let n = if cfg!(miri) { 1000 } else { 10_000 };
    let mut children: Vec<_> = (0..n).map(|_| parent.with_cancel()).collect();
    assert!(tree::children_capacity(&parent.node) >= n);
    children.truncate(100);
    let cap = tree::children_capacity(&parent.node);
    assert!(cap <= 400, "100 children keep a capacity of {cap}");
    // The first one left is the last kept in its list: every slot update is exercised.
    children.drain(..99);
    assert_eq!(tree::child_count(&parent.node), 1);
    assert_eq!(
        tree::children_capacity(&parent.node),
        0,
        "one child is kept inline"
    );
    drop(children);
    assert_eq!(tree::child_count(&parent.node), 0);
}

#[test]
fn waiter_lists_free_each_entry_as_it_leaves() {
    use std::future::Future;
    use std::task::{Context as TaskContext, Waker};

    let (ctx, cancel) = Context::background().with_cancel();
    let n = if cfg!(miri) { 100 } else { 1000 };
    let mut futures: Vec<_> = (0..n).map(|_| Box::pin(ctx.done())).collect();
    for f in &mut futures {
        let poll = f.as_mut().poll(&mut TaskContext::from_waker(Waker::noop()));
        assert!(poll.is_pending());
    }
    assert_eq!(tree::waiter_count(&ctx.node), n);
    // Keep the first registered and the last: the list's two ends.
    let last = futures.pop().unwrap();
    futures.drain(1..);
    assert_eq!(tree::waiter_count(&ctx.node), 2);
    cancel.cancel();
    assert_eq!(tree::waiter_count(&ctx.node), 0);
    drop((last, futures));
}

#[test]
fn the_effective_deadline_is_stored_not_searched() {
    let soon = std::time::Instant::now() + Duration::from_secs(3600);
    let (top, _c) = Context::background().with_deadline(soon);
    let mut ctx = top.clone();
    let mut handles = Vec::new();
    for i in 0..1000 {
        let (next, h) = if i % 2 == 0 {
            ctx.with_value(i).with_cancel()
        } else {
            // Later than the parent's: moot, as in Go (no timer entry, shown as with_cancel).
            ctx.with_deadline(soon + Duration::from_secs(60))
        };
        assert!(!tree::is_armed(&next.node));
        handles.push(h);
        ctx = next;
    }
    assert_eq!(ctx.deadline(), Some(soon));
    assert_eq!(ctx.with_value(1u8).deadline(), Some(soon));
    assert_eq!(ctx.without_cancel().deadline(), None);
    assert!(format!("{ctx:?}").ends_with(".with_cancel"));
    // An earlier deadline below wins, and is armed.
    let (earlier, _e) = ctx.with_deadline(soon - Duration::from_secs(60));
    assert_eq!(earlier.deadline(), Some(soon - Duration::from_secs(60)));
    assert!(tree::is_armed(&earlier.node));
}

#[test]
fn cancel_reports_whether_it_made_the_transition() {
    use crate::error::{CauseData, Error};
    use crate::trace::Origin;
    let (ctx, handle) = Context::background().with_cancel();
    let (child, _h) = ctx.with_cancel();
    let cause = || CauseData::plain(std::panic::Location::caller());
    assert!(tree::cancel(
        &ctx.node,
        Error::Canceled,
        cause(),
        Origin::Cancel
    ));
    assert!(!tree::cancel(
        &ctx.node,
        Error::Canceled,
        cause(),
        Origin::Cancel
    ));
    // The child was made done by its parent's cancellation, not by this call.
    assert!(!tree::cancel(
        &child.node,
        Error::Canceled,
        cause(),
        Origin::Cancel
    ));
    drop(handle);
}

#[test]
fn waiters_of_many_nodes_wake_across_a_subtree() {
    use std::future::Future;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context as TaskContext, Poll, Wake, Waker};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(Arc::clone(&count));
    let (root, cancel) = Context::background().with_cancel();
    let mut keep = Vec::new();
    let mut futures = Vec::new();
    let mut parent = root.clone();
    for depth in 0..8 {
        let (child, h) = parent.with_cancel();
        for _ in 0..=depth % 3 {
            let mut done = Box::pin(child.with_value(depth).done());
            let poll = done.as_mut().poll(&mut TaskContext::from_waker(&waker));
            assert!(poll.is_pending());
            futures.push(done);
        }
        keep.push(h);
        parent = child;
    }
    // One re-polled with the same waker (kept), one dropped (unlinked) before the cancel.
    assert!(futures[0]
        .as_mut()
        .poll(&mut TaskContext::from_waker(&waker))
        .is_pending());
    drop(futures.pop());
    let expected = futures.len();
    // A thread blocked in `wait()` on the deepest node, too.
    let deepest = parent.clone();
    let before = tree::waiter_count(&parent.node);
    let blocked = std::thread::spawn(move || deepest.wait());
    while tree::waiter_count(&parent.node) == before {
        std::thread::yield_now();
    }
    cancel.cancel();
    assert_eq!(blocked.join().unwrap(), crate::Error::Canceled);
    assert_eq!(count.0.load(Ordering::SeqCst), expected);
    for f in &mut futures {
        let poll = f.as_mut().poll(&mut TaskContext::from_waker(&waker));
        assert_eq!(poll, Poll::Ready(crate::Error::Canceled));
    }
    drop((futures, keep));
    assert_eq!(Arc::strong_count(&count), 2, "only `waker` is left");
}
