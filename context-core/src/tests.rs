//! Unit tests that look inside the tree: links and timer entries.

use std::time::Duration;

use crate::{timer, tree, Context};

#[test]
fn a_cancelled_child_leaves_its_parent_list() {
    let (parent, _cancel) = Context::background().with_cancel();
    let (a, cancel_a) = parent.with_cancel();
    let (_b, _cancel_b) = parent.with_cancel();
    let (_c, _cancel_c) = parent.with_value(1u8).with_cancel();
    assert_eq!(tree::child_count(&parent.node), 3);
    cancel_a.cancel();
    assert_eq!(tree::child_count(&parent.node), 2);
    assert!(a.is_done());
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
    assert!(timer::is_armed(&ctx.node));
    cancel.cancel();
    assert!(!timer::is_armed(&ctx.node));
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
    assert!(!timer::is_armed(&child.node));
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
}
