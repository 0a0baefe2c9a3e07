//! Linking a new cancel node under its parent, and cancelling a subtree.

use crate::error::{CauseData, Error};
use crate::sync::{Arc, Ordering};
use crate::timer::{self, Ticks, NEVER};
use crate::trace::{self, Origin};

use super::chain::Chain;
use super::children::ChildPtr;
use super::deadline::{Deadlines, Fire, Refused};
use super::lock::Guard;
use super::node::{Body, CancelNode, Node, Phase};
use super::waiter_list::Waiter;

/// The timer of every node deadline: a due entry cancels its node (`deadline.rs` is the glue,
/// this is what firing does).
static DEADLINES: Deadlines<Expiry> = Deadlines::new();

/// What a due deadline does: cancel its node with `DeadlineExceeded`.
struct Expiry;

impl Fire for Expiry {
    fn fire(node: &Arc<Node>, cause: CauseData) {
        cancel(node, Error::DeadlineExceeded, cause, Origin::Deadline);
    }
}

/// Whether `node` has an entry on the timer (for tests).
#[cfg(test)]
pub(crate) fn is_armed(node: &Arc<Node>) -> bool {
    DEADLINES.is_armed(node)
}

/// What one cancellation collected, to be acted on once every lock is released (invariant 6).
/// The first of each kind is kept inline: a single node with a deadline and a waiter allocates
/// nothing here.
#[derive(Default)]
struct Aftermath {
    /// The waiters moved out of the drained lists, to notify once every lock is released.
    first_waiter: Option<Waiter>,
    waiters: Vec<Waiter>,
    /// The origin's own deadline: disarmed by `cancel`, whose caller holds the origin.
    origin_timer: Option<Ticks>,
    first_timer: Option<(Ticks, Arc<Node>)>,
    /// Timer entries to disarm.
    timers: Vec<(Ticks, Arc<Node>)>,
}

impl Aftermath {
    /// Keeps `waiter` to notify. `pending` is how many nodes the walk has yet to visit: when the
    /// batch first needs its `Vec`, it is sized for one waiter per pending node (a fan-out of
    /// tasks, each awaiting its own child, is the common shape), so that a wide cancellation
    /// does not copy its batch at every doubling. Memory reserved and never written is never
    /// touched (a large block is mapped lazily), and the batch lives only until the wake-ups.
    #[inline]
    fn add_waiter(&mut self, waiter: Waiter, pending: usize) {
        if self.first_waiter.is_none() {
            self.first_waiter = Some(waiter);
            return;
        }
        if self.waiters.capacity() == 0 {
            self.waiters.reserve(pending + 1);
        }
        self.waiters.push(waiter);
    }
}

/// Creates a cancel node under `parent`, linked to `parent`'s signal (invariant 2) or born done
/// with the link parent's error and cause. `deadline` is the node's own; it is armed (or, if it
/// has already passed, cancels at once) unless the parent's effective deadline is strictly
/// earlier, which makes it moot, or the parent is done, as in Go. `now` is the clock as the
/// caller read it, if it did.
pub(crate) fn new_cancel_node(
    parent: &Arc<Node>,
    deadline: Option<(Ticks, CauseData)>,
    now: Option<Ticks>,
) -> Arc<Node> {
    // O(1) at any depth: the parent's signal stores its effective deadline.
    let inherited = parent.deadline_ticks();
    let own = deadline.filter(|(at, _)| inherited == NEVER || *at <= inherited);
    let effective = own.as_ref().map_or(inherited, |(at, _)| *at);
    let node = Arc::new(Node {
        parent: Some(Arc::clone(parent)),
        body: Body::Cancel(CancelNode::new(effective, own.is_some())),
    });
    let Body::Cancel(core) = &node.body else {
        unreachable!()
    };
    // The timer first, before the node is linked: until then nobody but the timer can reach
    // it, so no cancellation can race the arm and no lock of the node is needed (a deadline
    // that fires before the link cancels a node nobody else sees; the link below then lists it
    // done, as a cancelled child whose handle is held is listed, invariant 2). A cancellation
    // that meets the node through its parent later took the parent's lock after the arm
    // released the shard's, so its disarm finds the entry (or the firer took it).
    //
    // But not under a link parent that is done already: the child is born done below, with the
    // parent's error and cause, and no timer is armed, as in Go. An entry armed first could
    // fire before the link (the deriving thread descheduled after the arm) and the child would
    // report its own deadline instead: 2 to 27 of 20,000 such children per run on the shared
    // 2-core machine. A parent done after this look races the derivation, and either outcome
    // is then a true order of events (the child's deadline may fire before that cancellation).
    let link = parent.signal();
    let link_done = own.is_some() && link.is_some_and(|l| l.err().is_some());
    let mut armed = None;
    let mut passed = None;
    if let Some((at, cause)) = own {
        if link_done {
            // A custom cause is a user value: dropped with no lock held, and contained, as a
            // disarmed entry's is (invariant 6).
            crate::unwind::contain(move || drop(cause));
        } else if at <= now.unwrap_or_else(timer::now) {
            passed = Some(cause);
        } else if DEADLINES.arm(at, &node, cause).is_ok() {
            armed = Some(at);
            #[cfg(all(test, not(loom)))]
            super::deadline::tests::after_the_arm(&node);
        } else {
            // No deadline could fire: fail loudly rather than hang, with no lock held (the
            // panic hook is user code, invariant 6). The node is linked nowhere and no handle
            // exists yet: cancelling it disarms the entry (the timer may not hold a node that
            // is dropped), and the unwinding drops it.
            let cause = CauseData::plain(std::panic::Location::caller());
            cancel(&node, Error::Canceled, cause, Origin::Cancel);
            panic!("{}", Refused::MESSAGE);
        }
    }
    if let Some(link) = link {
        let link_core = link.cancel_node().expect("a signal is a cancel node");
        let mut link_inner = link_core.lock();
        match &mut *link_inner {
            Phase::Done(cause) => {
                let cause = cause.clone();
                let err = link_core.err().expect("a node with a cause is done");
                drop(link_inner);
                let born_done = {
                    // Only the timer can see `node` (if armed): it may have fired already.
                    let mut inner = core.lock();
                    let live = !core.is_done();
                    if live {
                        *inner = Phase::Done(cause);
                        // No children: its subtree is done too (invariant 5). Set by the
                        // unlock.
                        CancelNode::set_done_on_unlock(&mut inner, err, true);
                    }
                    live
                };
                // Invariant 8: the cancellation that made it done disarms its entry.
                if let (true, Some(at)) = (born_done, armed) {
                    DEADLINES.disarm(at, &node);
                }
                return node;
            }
            Phase::Live { children, .. } => {
                // Checked before the push: a panic must not leave the address in the list.
                let slot = u32::try_from(children.len()).expect("fewer than 2^32 children");
                // Relaxed: `slot` is only read under this (the link parent's) lock.
                core.slot().store(slot, Ordering::Relaxed);
                // Unowned (invariant 3): the handle made for `node` keeps it alive from here.
                children.push(ChildPtr::new(&node));
            }
        }
    }
    if let Some(cause) = passed {
        cancel(&node, Error::DeadlineExceeded, cause, Origin::Deadline);
    }
    node
}

/// Cancels `node` (a cancel node) and its whole subtree with `err` and `cause`, unless it is
/// already done. On return every descendant reports done (invariant 5). Returns whether this
/// call made the node done; if it did, it has reported `origin` to [`trace`], after every lock
/// was released.
///
/// A waker that panics is caught, so the others are still woken; once the whole cancellation
/// is done, the first such panic is re-raised only for [`Origin::Cancel`] (a user's own
/// `cancel()` call, where it is the caller's to see) and dropped for every other origin: a
/// drop of the last handle, a deadline, a failed group member, a token, a signal. Those run in
/// a `Drop`, on a thread of ours, or in the middle of our own bookkeeping (unlinking the node,
/// recording a member's failure, dispatching the next signal), which an unwind would skip; the
/// panic hook has reported the panic already. So for any origin but `Cancel` this never
/// unwinds.
pub(crate) fn cancel(node: &Arc<Node>, err: Error, cause: CauseData, origin: Origin) -> bool {
    let Body::Cancel(core) = &node.body else {
        return false;
    };
    // Settled: done with its whole subtree (invariant 5); no need for the lock.
    if core.is_settled() {
        return false;
    }
    let mut acc = Aftermath::default();
    {
        let mut inner = core.lock();
        if core.is_done() {
            // Another cancellation got here first; it may still be walking the subtree.
            drop(inner);
            wait_settled(node);
            return false;
        }
        if is_leaf_alone(&inner) {
            // The common case (a request's context, S2, S3): nothing to walk or wake, at most
            // its own timer entry to disarm, so no work list and no aftermath. As `finish`:
            // the cause, then the state, with the settled flag, set by the unlock (invariants
            // 1, 5).
            *inner = Phase::Done(cause);
            CancelNode::set_done_on_unlock(&mut inner, err, true);
            drop(inner);
            // Invariant 8, with no lock held; the caller's `Arc` holds the node meanwhile.
            if let Some(at) = core.own_deadline() {
                DEADLINES.disarm(at, node);
            }
            trace::cancelled(origin, || (node.cause(), Chain(node)));
            return true;
        }
        let mut work = Vec::new();
        // The origin is kept alive by the caller's `Arc`: it may be settled at once.
        finish(
            core, node, &mut inner, err, &cause, &mut acc, &mut work, true,
        );
        // Every node this call takes from a children list, in the order it met them: a
        // descendant always comes after its link ancestors.
        let mut met: Vec<ChildPtr> = Vec::new();
        // Invariant 5: keep `inner` (this node's lock) until the work list is empty and every
        // node met is settled. Lock order: `child` is a descendant of `node`, so this is the
        // parent-before-child order.
        while let Some(child) = work.pop() {
            // SAFETY: invariant 3: a node taken from a children list stays alive until this
            // cancellation has settled it (below), and we hold the origin's lock.
            let child_node = unsafe { child.get() };
            if let Body::Cancel(child_core) = &child_node.body {
                let mut child_inner = child_core.lock();
                if !child_core.is_done() {
                    let to_arc = || {
                        // SAFETY: as above, alive while we hold the origin's lock.
                        unsafe { child.to_arc() }
                    };
                    let settled = finish(
                        child_core,
                        to_arc,
                        &mut child_inner,
                        err,
                        &cause,
                        &mut acc,
                        &mut work,
                        false,
                    );
                    // A leaf is settled by its own unlock, in the same read-modify-write as
                    // its state (invariant 5: its subtree is itself). From then on it may be
                    // freed: the unlock is the last access (`lock.rs`, invariant 4), and it
                    // does not go on `met`.
                    drop(child_inner);
                    if settled {
                        continue;
                    }
                }
            }
            met.push(child);
        }
        // Invariant 5: every node this call made done, or met done, has its subtree done now.
        // Descendants first (invariant 3): once a node is settled, whoever waits for it may
        // free any node of its subtree, so after settling one we touch none below it.
        for child in met.iter().rev() {
            // SAFETY: not settled yet, so still alive (invariant 3); we hold the origin's lock.
            if let Body::Cancel(child_core) = &unsafe { child.get() }.body {
                #[cfg(loom)]
                child_core.pins.fetch_sub(1, Ordering::SeqCst);
                child_core.settle();
            }
        }
        // Last, by the unlock (the caller's `Arc` keeps the origin alive).
        CancelNode::settle_on_unlock(&mut inner);
        drop(inner);
    }
    // The node stays in its link parent's list until its last handle goes (`unlink`): the
    // cancellation's latency is the wake-ups' alone.
    let panic = run_aftermath(acc, node);
    trace::cancelled(origin, || (node.cause(), Chain(node)));
    if let Some(payload) = panic {
        if origin == Origin::Cancel && !std::thread::panicking() {
            std::panic::resume_unwind(payload);
        }
        // Dropped here, with no lock held: a payload is a user value (whose drop may panic).
        crate::unwind::discard(payload);
    }
    true
}

/// Whether a node, live, has no children and no waiters: cancelling it is setting its cause
/// and state, and disarming its own timer entry if it has one.
#[inline]
fn is_leaf_alone(inner: &Phase) -> bool {
    match inner {
        Phase::Live { children, waiters } => children.is_empty() && waiters.is_empty(),
        Phase::Done(_) => false,
    }
}

/// Marks `core` done (invariant 1) and moves what cancellation must act on into `acc` and
/// `work`. `inner` is the guard of this node's lock; `node` gives a strong reference to the node,
/// for the timer entry to disarm. `origin`: the node is the cancellation's origin.
///
/// The state is set by the release of `inner` (one atomic operation for the unlock and the
/// state), except on an origin with children, whose state must be seen before any
/// descendant's (invariant 5), and on a node with waiters, whose state must be seen before the
/// notified marks of its inline entries (read without the lock): set at once. A leaf is
/// settled by the same release (its subtree is itself); returns whether it will be: a
/// descendant settled so may be freed once `inner` is dropped.
#[allow(clippy::too_many_arguments)]
fn finish(
    core: &CancelNode,
    node: impl Strong,
    inner: &mut Guard<'_, Phase>,
    err: Error,
    cause: &CauseData,
    acc: &mut Aftermath,
    work: &mut Vec<ChildPtr>,
    origin: bool,
) -> bool {
    // The cause first, then the state (invariant 1).
    let Phase::Live {
        children,
        mut waiters,
    } = std::mem::replace(&mut **inner, Phase::Done(cause.clone()))
    else {
        unreachable!("finish runs on a live node")
    };
    let leaf = children.is_empty();
    if (origin && !leaf) || !waiters.is_empty() {
        // At once: before any descendant's state, and before the drain below marks inline
        // entries notified (their owners read the mark without the lock, then the state).
        core.set_done(err, false);
        if leaf {
            CancelNode::settle_on_unlock(inner);
        }
    } else {
        CancelNode::set_done_on_unlock(inner, err, leaf);
    }
    // This cancellation lets go of a descendant's address once it is settled.
    #[cfg(loom)]
    if leaf && !origin {
        core.pins.fetch_sub(1, Ordering::SeqCst);
    }
    // A leaf (most nodes): nothing to move.
    if !leaf {
        #[cfg(loom)]
        let before = work.len();
        children.drain_into(work);
        #[cfg(loom)]
        for child in &work[before..] {
            // SAFETY: still alive: we hold the lock of the node whose live list held it.
            if let Body::Cancel(c) = &unsafe { child.get() }.body {
                c.pins.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    // Invariant 4: the list is drained under the lock that `register` takes, together with the
    // state, so every waiter is either in it or refused. The drain moves each waiter out and
    // marks each inline entry notified before the lock is released: after that, nothing here
    // touches an entry (waiter-list invariant 4), so its owner (a `Done` future, a blocked
    // thread) may free it whenever it sees the mark or finds the node done under the lock.
    if !waiters.is_empty() {
        let pending = work.len();
        waiters.drain(err, |waiter| acc.add_waiter(waiter, pending));
    }
    if let Some(at) = core.own_deadline() {
        if origin {
            // The origin: no reference needed, its caller's outlives the disarm.
            acc.origin_timer = Some(at);
        } else if acc.first_timer.is_none() {
            acc.first_timer = Some((at, node.strong()));
        } else {
            acc.timers.push((at, node.strong()));
        }
    }
    leaf
}

/// How [`finish`] gets a strong reference to a node: the origin's `Arc` is at hand, a
/// descendant's is made from its address.
trait Strong {
    fn strong(self) -> Arc<Node>;
}

impl Strong for &Arc<Node> {
    fn strong(self) -> Arc<Node> {
        Arc::clone(self)
    }
}

impl<F: FnOnce() -> Arc<Node>> Strong for F {
    fn strong(self) -> Arc<Node> {
        self()
    }
}

/// Returns once the subtree of `node`, a done cancel node, is all done (invariant 5): at once if
/// it is settled, else after the cancellation that made it done has let go of its origin's lock.
/// Takes one lock at a time, climbing towards the root: no lock-order issue.
fn wait_settled(node: &Arc<Node>) {
    let mut cur = node;
    while let Body::Cancel(core) = &cur.body {
        if core.is_settled() {
            return;
        }
        // If `cur` is the origin, its lock is held until the subtree is done.
        drop(core.lock());
        match cur.link_parent() {
            // A done link parent may be the origin, or lie below it.
            Some(link) if link.cancel_node().is_some_and(CancelNode::is_done) => cur = link,
            // A live (or no) link parent: `cur` was cancelled by itself, and is finished.
            _ => return,
        }
    }
}

/// Removes `node`, a done cancel node whose last handle is gone, from its link parent's
/// children (invariant 2): called once, by the drop of that handle, after its `cancel`, with no
/// lock held; it takes the link parent's lock alone. If the link parent is done, its
/// cancellation took (or is taking) the list with `node` in it and may still hold `node`'s
/// address: returns only once that cancellation has let go of it (invariant 3), so the caller
/// may then release what may be the last reference to `node`.
#[inline]
pub(crate) fn unlink(node: &Arc<Node>) {
    let (Body::Cancel(core), Some(link)) = (&node.body, node.link_parent()) else {
        return;
    };
    let Body::Cancel(link_core) = &link.body else {
        unreachable!("a signal is a cancel node")
    };
    // The common case of a drop under a cancelled parent (a cancelled subtree dropped, S5m):
    // a settled link parent's cancellation is done with the list it took (invariant 5).
    // `Acquire`: no lock.
    if !link_core.is_settled() {
        unlink_from(node, core, link, link_core);
    }
}

/// [`unlink`] from a link parent that is not settled: live (take our slot out of its list) or
/// done, its cancellation still walking the list it took (invariant 2: wait for it).
#[inline(never)]
fn unlink_from(node: &Arc<Node>, core: &CancelNode, link: &Arc<Node>, link_core: &CancelNode) {
    if link_core.is_done() {
        wait_settled(link);
        return;
    }
    let mut link_inner = link_core.lock();
    let children = match &mut *link_inner {
        Phase::Done(_) => {
            drop(link_inner);
            wait_settled(link);
            return;
        }
        Phase::Live { children, .. } => children,
    };
    let slot = core.slot().load(Ordering::Relaxed) as usize;
    let removed = children.swap_remove(slot);
    debug_assert!(removed.is(node));
    if let Some(moved) = children.get(slot) {
        // SAFETY: `moved` is in the live list of the link parent, whose lock we hold: alive
        // (invariant 3).
        if let Body::Cancel(moved) = &unsafe { moved.get() }.body {
            moved.slot().store(slot as u32, Ordering::Relaxed);
        }
    }
}

/// How far ahead of the waker being woken `run_aftermath` prefetches.
const PREFETCH_AHEAD: usize = 8;

/// Acts on what a cancellation collected, with no lock held (invariant 6): disarms timers and
/// wakes waiters. Returns the first panic of a waker, for the caller to
/// resume once it is done.
fn run_aftermath(acc: Aftermath, origin: &Arc<Node>) -> Option<Box<dyn std::any::Any + Send>> {
    // The common case (one node, no timer, no waiter) is a few tests: no iterator is built
    // over collections known to be empty (`timers` and `waiters` fill only after the first).
    if let Some(at) = acc.origin_timer {
        DEADLINES.disarm(at, origin);
    }
    if let Some((at, node)) = acc.first_timer {
        DEADLINES.disarm(at, &node);
        for (at, node) in &acc.timers {
            DEADLINES.disarm(*at, node);
        }
        #[cfg(all(test, not(loom)))]
        super::deadline::tests::after_the_disarms();
        // Every entry is disarmed: the references may go. One may be a descendant's last (its
        // handles went since this walk met it), whose drop drops user values: a panic there
        // must cut short neither the wake-ups nor what follows the cancellation (the `unlink`
        // of a dropped handle, invariant 3).
        crate::unwind::contain(move || drop((node, acc.timers)));
    }
    let mut first_panic = None;
    let mut notify = |waiter: Waiter| {
        // A panicking waker must not stop the others from being woken.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waiter.notify()));
        if let Err(payload) = result {
            // Only the first is kept for a `cancel()` caller; the others are user values
            // dropped here, in the middle of the wake-ups, so their drop is contained.
            match first_panic {
                None => first_panic = Some(payload),
                Some(_) => crate::unwind::discard(payload),
            }
        }
    };
    if let Some(first) = acc.first_waiter {
        let mut rest = acc.waiters.into_iter();
        notify(first);
        // A wide batch wakes tasks whose headers are cold: ask for the one a few places ahead
        // while this one is woken, so that their misses overlap (a wake is an atomic RMW on
        // the task's state, which waits for its line).
        while let Some(waiter) = rest.next() {
            if let Some(ahead) = rest.as_slice().get(PREFETCH_AHEAD) {
                ahead.prefetch();
            }
            notify(waiter);
        }
    }
    first_panic
}

#[cfg(test)]
pub(crate) fn child_count(node: &Node) -> usize {
    match node.cancel_node() {
        Some(core) => match &*core.lock() {
            Phase::Live { children, .. } => children.len(),
            Phase::Done(_) => 0,
        },
        None => 0,
    }
}

#[cfg(test)]
pub(crate) fn children_capacity(node: &Node) -> usize {
    match node.cancel_node() {
        Some(core) => match &*core.lock() {
            Phase::Live { children, .. } => children.capacity(),
            Phase::Done(_) => 0,
        },
        None => 0,
    }
}

#[cfg(test)]
pub(crate) fn waiter_count(node: &Node) -> usize {
    node.cancel_node().map_or(0, |core| match &*core.lock() {
        Phase::Live { waiters, .. } => waiters.len(),
        Phase::Done(_) => 0,
    })
}

#[cfg(all(test, not(loom)))]
mod tests {
    //! The unowned child links (invariant 3) under real threads; Miri runs these (see
    //! `.ci/steps/40-miri.sh`) and reports any use of a freed node.

    use std::sync::{Barrier, Weak};

    use crate::sync::Arc;
    use crate::Context;

    fn rounds() -> usize {
        if cfg!(miri) {
            8
        } else {
            500
        }
    }

    /// A parent's cancellation races the drops of its children's last handles (directly, through
    /// a value node, and a level down): every child is freed, none is left in a list.
    #[test]
    fn a_cancel_racing_the_drop_of_each_child_frees_them_all() {
        for _ in 0..rounds() {
            let (parent, cancel) = Context::background().with_cancel();
            let (mid, mid_cancel) = parent.with_cancel();
            let mut kids = Vec::new();
            for i in 0..4 {
                let from = if i % 2 == 0 { &parent } else { &mid };
                kids.push(from.with_value(i).with_cancel());
            }
            let weaks: Vec<Weak<_>> = kids.iter().map(|(c, _)| Arc::downgrade(&c.node)).collect();
            let barrier = Arc::new(Barrier::new(2));
            let b = Arc::clone(&barrier);
            let dropper = std::thread::spawn(move || {
                b.wait();
                for (ctx, handle) in kids {
                    drop(ctx);
                    drop(handle);
                }
            });
            barrier.wait();
            cancel.cancel();
            dropper.join().unwrap();
            assert!(
                weaks.iter().all(|w| w.upgrade().is_none()),
                "a child leaked"
            );
            assert_eq!(super::child_count(&parent.node), 0);
            assert_eq!(super::child_count(&mid.node), 0);
            drop(mid_cancel);
        }
    }

    /// Children dropped out of order while others stay: each removal moves the last address
    /// into its place and fixes that child's slot, so the survivors are still reached by the
    /// parent's cancellation.
    #[test]
    fn removals_keep_the_slots_of_the_survivors_right() {
        let (parent, cancel) = Context::background().with_cancel();
        let mut kids: Vec<_> = (0..6).map(|_| Some(parent.with_cancel())).collect();
        for i in [0, 3, 1] {
            kids[i] = None;
        }
        assert_eq!(super::child_count(&parent.node), 3);
        // Drop one survivor by hand: its slot must be the right one for this to unlink it.
        kids[5] = None;
        assert_eq!(super::child_count(&parent.node), 2);
        cancel.cancel();
        for (ctx, _) in kids.iter().flatten() {
            assert!(ctx.is_done());
        }
        assert_eq!(kids.iter().flatten().count(), 2);
    }
}
