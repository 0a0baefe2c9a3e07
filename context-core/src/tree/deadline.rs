//! A node's deadline on the timer: the entry (`Deadline`) and what firing it does.
//!
//! The timer is generic over what it fires and knows nothing of nodes; this file is the one
//! place that knows both. It does not know how to cancel either: what firing does is a
//! [`Fire`], given by `cancel.rs` (which arms and disarms entries), so the imports go one way:
//! `cancel` → `deadline` → `timer` → `clock`.
//!
//! An entry is 24 bytes (the node; the cause the deadline reports, that is the location of the
//! call that set it and the custom error of a `with_deadline_cause`, if any; the queue adds the
//! deadline), keyed by `(deadline, node address)`: the entry holds the node, so the address
//! stays unique while the entry exists and a stale key can never remove somebody else's entry.
//! The cause travels with the entry, so arming and disarming a custom cause takes no lock but
//! the entry's shard's, and a disarmed entry's cause is dropped with it, after every lock is
//! released.

use std::marker::PhantomData;

use crate::error::CauseData;
use crate::sync::Arc;
use crate::timer::{Expire, Id, Ticks, Timer};

use super::node::Node;

/// What a due deadline does to its node (for the tree: cancel it with `DeadlineExceeded`).
pub(super) trait Fire: Send + 'static {
    fn fire(node: &Arc<Node>, cause: CauseData);
}

/// The timer of node deadlines, firing `F`.
pub(super) struct Deadlines<F: Fire> {
    timer: Timer<Deadline<F>>,
}

/// A node's deadline entry.
struct Deadline<F> {
    node: Arc<Node>,
    /// What the node reports when the entry fires.
    cause: CauseData,
    fire: PhantomData<fn() -> F>,
}

fn id(node: &Arc<Node>) -> usize {
    Arc::as_ptr(node) as usize
}

impl<F: Fire> Id for Deadline<F> {
    fn id(&self) -> usize {
        id(&self.node)
    }
}

impl<F: Fire> Expire for Deadline<F> {
    /// A clone of the node, to see whether it is done: the entry's own reference outlives
    /// every look, so dropping the clone while `expire` runs never drops the node.
    type Probe = Arc<Node>;

    fn probe(&self) -> Arc<Node> {
        Arc::clone(&self.node)
    }

    fn landed(node: &Arc<Node>) -> bool {
        node.err().is_some()
    }

    fn expire(self, _at: Ticks) {
        F::fire(&self.node, self.cause);
    }
}

impl<F: Fire> Deadlines<F> {
    pub(super) const fn new() -> Deadlines<F> {
        Deadlines {
            timer: Timer::new("context-timer"),
        }
    }

    /// Arms the timer to fire `node` with `cause` at `at`.
    pub(super) fn arm(&'static self, at: Ticks, node: &Arc<Node>, cause: CauseData) {
        let entry = Deadline {
            node: Arc::clone(node),
            cause,
            fire: PhantomData,
        };
        if self.timer.arm(at, entry).is_err() {
            // Without its thread no deadline could fire: fail loudly rather than hang. The
            // entry stays armed and the next deadline tries to start the thread again.
            panic!("go-context: the OS refused to start the timer thread");
        }
    }

    /// Removes `node`'s entry armed for `at`, if it has not fired yet.
    pub(super) fn disarm(&self, at: Ticks, node: &Arc<Node>) {
        // The entry (its node, its custom cause) is dropped here, outside every timer lock.
        drop(self.timer.disarm(at, id(node)));
    }

    #[cfg(test)]
    pub(super) fn is_armed(&self, node: &Arc<Node>) -> bool {
        self.timer.contains_id(id(node))
    }
}

#[cfg(test)]
mod tests {
    //! A custom cause lives in its timer entry: it reaches the node when the entry fires, and a
    //! disarm frees it at once.

    use std::fmt;
    use std::sync::Weak;
    use std::time::Duration;

    use crate::sync::Arc;
    use crate::tree;
    use crate::{Context, Error};

    /// A custom cause that tells (through a `Weak` of its token) whether it is still alive.
    #[derive(Debug)]
    struct Tracked(#[allow(dead_code)] std::sync::Arc<()>);

    impl fmt::Display for Tracked {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("tracked cause")
        }
    }

    impl std::error::Error for Tracked {}

    fn tracked() -> (Tracked, Weak<()>) {
        let token = std::sync::Arc::new(());
        let weak = std::sync::Arc::downgrade(&token);
        (Tracked(token), weak)
    }

    #[test]
    fn a_custom_cause_survives_arm_to_fire() {
        let (cause, alive) = tracked();
        let (ctx, cancel) =
            Context::background().with_timeout_cause(Duration::from_millis(5), cause);
        assert!(tree::is_armed(&ctx.node));
        assert_eq!(ctx.wait(), Error::DeadlineExceeded);
        let got = ctx.cause().expect("done");
        assert_eq!(got.err(), Error::DeadlineExceeded);
        assert_eq!(got.to_string(), "tracked cause");
        assert!(
            got.downcast_ref::<Tracked>().is_some(),
            "the very error given"
        );
        assert_eq!(got.location().file(), file!());
        assert!(alive.upgrade().is_some(), "the node holds it now");
        drop((got, ctx, cancel));
        assert!(alive.upgrade().is_none(), "freed with the node");
    }

    #[test]
    fn a_disarm_frees_the_custom_cause_at_once() {
        let (cause, alive) = tracked();
        let (parent, _parent_cancel) = Context::background().with_cancel();
        let (ctx, cancel) = parent.with_timeout_cause(Duration::from_secs(3600), cause);
        let node = Arc::clone(&ctx.node);
        assert!(tree::is_armed(&node));
        assert!(alive.upgrade().is_some(), "held by the armed entry");
        cancel.cancel();
        assert!(!tree::is_armed(&node));
        assert_eq!(
            ctx.cause().unwrap().to_string(),
            Error::Canceled.to_string()
        );
        // `ctx` and the node are still alive: only the entry held the cause.
        assert!(alive.upgrade().is_none(), "freed by the disarm");
        drop((ctx, cancel));
    }

    #[test]
    fn a_parents_cancellation_disarms_its_childs_custom_cause() {
        let (parent, parent_cancel) = Context::background().with_cancel();
        let mut kept = Vec::new();
        for _ in 0..3 {
            let (cause, alive) = tracked();
            let (ctx, cancel) = parent.with_timeout_cause(Duration::from_secs(3600), cause);
            kept.push((ctx, cancel, alive));
        }
        parent_cancel.cancel();
        for (ctx, _, alive) in &kept {
            assert_eq!(ctx.err(), Some(Error::Canceled));
            assert!(!tree::is_armed(&ctx.node));
            assert!(alive.upgrade().is_none(), "freed by the disarm");
        }
    }
}
