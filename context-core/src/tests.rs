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
    let tree::Body::Cancel(core) = &ctx.node.body else {
        panic!("with_timeout makes a cancel node")
    };
    let d = core.deadline.as_ref().unwrap();
    assert!(timer::is_armed(d.at, d.timer_id));
    cancel.cancel();
    assert!(!timer::is_armed(d.at, d.timer_id));
}

#[test]
fn a_dropped_deadline_context_leaves_the_timer() {
    let (ctx, cancel) = Context::background().with_timeout(Duration::from_secs(3600));
    let tree::Body::Cancel(core) = &ctx.node.body else {
        panic!("with_timeout makes a cancel node")
    };
    let (at, id) = {
        let d = core.deadline.as_ref().unwrap();
        (d.at, d.timer_id)
    };
    drop(cancel);
    drop(ctx);
    assert!(!timer::is_armed(at, id));
}

#[test]
fn a_child_born_done_is_not_linked_nor_armed() {
    let (parent, cancel) = Context::background().with_cancel();
    cancel.cancel();
    let (child, _c) = parent.with_timeout(Duration::from_secs(3600));
    assert!(child.is_done());
    let tree::Body::Cancel(core) = &child.node.body else {
        panic!()
    };
    let d = core.deadline.as_ref().unwrap();
    assert!(!timer::is_armed(d.at, d.timer_id));
    assert_eq!(tree::child_count(&parent.node), 0);
}

#[test]
fn node_sizes() {
    use std::mem::size_of;
    eprintln!(
        "Node {} Body {} CancelNode {} Cause {} DeadlineInfo {}",
        size_of::<tree::Node>(),
        size_of::<tree::Body>(),
        size_of::<tree::CancelNode>(),
        size_of::<crate::Cause>(),
        size_of::<tree::DeadlineInfo>()
    );
}
