//! A node of the context tree and its parts: the body of each kind of context, and the state of
//! a cancel node (its state word, its lock and what the lock guards).

use std::any::{Any, TypeId};
use std::pin::Pin;
use std::time::Instant;

use crate::error::{Cause, CauseData, Error};
use crate::sync::{Arc, AtomicU32, Ordering};
use crate::timer::{self, Ticks, NEVER};

use super::children::Children;
use super::lock::{Guard, WordLock, LOCK_BITS};
use super::waiter_list::{Entry, Waiter, WaiterKey, WaiterList};

// The bits of a cancel node's word: the state in the top two bits (set once, tree invariant 1),
// the settled flag (invariant 5), whether the node armed a deadline of its own (set at
// creation, before the node is shared), the node's lock (`LOCKED` and `PARKED`, bits 27 and 26,
// owned by `lock.rs`), and the count of live `CancelHandle`s in the rest. One word keeps a node
// small, `is_done` one load, and lets the unlock of a cancelled leaf set its state and settled
// flag in the same read-modify-write.
pub(super) const CANCELED: u32 = 1 << 31;
pub(super) const DEADLINE: u32 = 1 << 30;
const DONE_MASK: u32 = CANCELED | DEADLINE;
const SETTLED: u32 = 1 << 29;
const OWN_DEADLINE: u32 = 1 << 28;
const HANDLES_MASK: u32 = (1 << LOCK_BITS.trailing_zeros()) - 1;
const _: () = assert!(
    (CANCELED | DEADLINE | SETTLED | OWN_DEADLINE | HANDLES_MASK) & LOCK_BITS == 0
        && (CANCELED | DEADLINE | SETTLED | OWN_DEADLINE | LOCK_BITS | HANDLES_MASK) == u32::MAX
        && HANDLES_MASK.count_ones() == 26,
    "the word's fields overlap or leave a gap"
);

/// A node of the context tree; see the module docs.
pub(crate) struct Node {
    pub(crate) parent: Option<Arc<Node>>,
    pub(crate) body: Body,
}

pub(crate) enum Body {
    Background,
    Todo,
    Cancel(CancelNode),
    Value(Box<ValueNode<dyn Any + Send + Sync>>),
    WithoutCancel,
}

/// The body of a value node. `T` is the value's type, erased to `dyn Any` once boxed.
pub(crate) struct ValueNode<T: ?Sized> {
    /// The nearest cancellable ancestor, whose state (and deadline) this node reports.
    pub(crate) scope: Option<Arc<Node>>,
    pub(crate) key: TypeId,
    pub(crate) name: &'static str,
    pub(crate) value: T,
}

/// The cancellable part of a node.
pub(crate) struct CancelNode {
    /// The word (`word()`: the state `CANCELED` / `DEADLINE`, `SETTLED` (this node and its
    /// whole subtree report done, invariant 5), `OWN_DEADLINE`, the lock's bits and the number
    /// of live [`CancelHandle`](crate::CancelHandle) clones (the last one cancels on drop)) and
    /// what its lock guards.
    state: WordLock<Phase>,
    /// The effective deadline (the earlier of this node's own and its link parent's), or
    /// [`timer::NEVER`]: `deadline()` and deriving read it in O(1) at any depth. Set before the
    /// node is shared, never changed. (A deadline's cause lives in the timer entry: it is needed
    /// only when the timer fires.)
    pub(super) deadline: Ticks,
    /// Under loom only: how many cancellations hold this node's address in their work list
    /// (taken from its link parent's children, not yet settled). Dropping a node that is still
    /// held is the use after free invariant 3 rules out: the model tests assert it never happens.
    #[cfg(loom)]
    pub(super) pins: crate::sync::AtomicUsize,
}

#[cfg(loom)]
impl Drop for CancelNode {
    fn drop(&mut self) {
        let pins = self.pins.load(Ordering::SeqCst);
        if !std::thread::panicking() {
            assert_eq!(
                pins, 0,
                "a cancel node freed while a cancellation holds its address"
            );
        }
    }
}

/// What a cancel node's lock guards, 24 bytes: while live, its children and its waiters; once
/// done, its cause (tree invariant 1). A node never needs both, so they share the space (the
/// enum's tag lives in `Children`'s niche: its `head` is never null).
pub(super) enum Phase {
    Live {
        children: Children,
        waiters: WaiterList,
    },
    Done(CauseData),
}

impl Default for Phase {
    fn default() -> Phase {
        Phase::Live {
            children: Children::default(),
            waiters: WaiterList::default(),
        }
    }
}

impl Node {
    pub(crate) fn root(body: Body) -> Node {
        Node { parent: None, body }
    }

    /// The cancellable node whose state this node reports: itself, its scope, or none.
    #[inline]
    pub(crate) fn cancel_node(&self) -> Option<&CancelNode> {
        match &self.body {
            Body::Cancel(c) => Some(c),
            Body::Value(v) => match &v.scope {
                Some(scope) => scope.cancel_node(),
                None => None,
            },
            _ => None,
        }
    }

    /// The link parent (see the module docs): the cancel node whose `children` hold this one.
    pub(super) fn link_parent(&self) -> Option<&Arc<Node>> {
        self.parent.as_ref().and_then(|p| p.signal())
    }

    /// Like [`Node::cancel_node`], as the owning `Arc`.
    pub(crate) fn signal(self: &Arc<Node>) -> Option<&Arc<Node>> {
        match &self.body {
            Body::Cancel(_) => Some(self),
            Body::Value(v) => v.scope.as_ref(),
            _ => None,
        }
    }

    #[inline]
    pub(crate) fn err(&self) -> Option<Error> {
        self.cancel_node().and_then(CancelNode::err)
    }

    pub(crate) fn cause(&self) -> Option<Cause> {
        self.cancel_node().and_then(CancelNode::cause)
    }

    /// The effective deadline, in O(1): the one stored in the node's signal.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let ticks = self.deadline_ticks();
        (ticks != NEVER).then(|| timer::instant(ticks))
    }

    /// The effective deadline as ticks, [`NEVER`] if none.
    pub(super) fn deadline_ticks(&self) -> Ticks {
        self.cancel_node().map_or(NEVER, |c| c.deadline)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Invariant 7: release a long chain of parents iteratively, not by recursive drops.
        let mut next = self.parent.take();
        while let Some(parent) = next {
            next = match Arc::into_inner(parent) {
                Some(mut node) => node.parent.take(),
                None => None,
            };
        }
    }
}

impl CancelNode {
    /// A live node with one handle, `deadline` its effective deadline, `own` if it is this
    /// node's own (armed on the timer).
    pub(super) fn new(deadline: Ticks, own: bool) -> CancelNode {
        CancelNode {
            // The lock's spare word holds the slot.
            state: WordLock::with_spare(
                1 | if own { OWN_DEADLINE } else { 0 },
                u32::MAX,
                Phase::default(),
            ),
            deadline,
            #[cfg(loom)]
            pins: crate::sync::AtomicUsize::new(0),
        }
    }

    /// The node's lock (see `lock.rs`), guarding its [`Phase`].
    #[inline]
    pub(super) fn lock(&self) -> Guard<'_, Phase> {
        self.state.lock()
    }

    #[inline]
    fn word(&self) -> &AtomicU32 {
        self.state.word()
    }

    /// Index in the link parent's `children` (invariant 2), kept in the lock's spare word
    /// (which is padding otherwise). Read and written only under the link parent's lock, which
    /// orders every access: `Relaxed`.
    #[inline]
    pub(super) fn slot(&self) -> &AtomicU32 {
        self.state.spare()
    }

    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        // Acquire pairs with the Release of `set_done`: a reader that sees the state sees the
        // cause written before it (invariant 1).
        self.word().load(Ordering::Acquire) & DONE_MASK != 0
    }

    #[inline]
    pub(crate) fn err(&self) -> Option<Error> {
        let word = self.word().load(Ordering::Acquire);
        if word & CANCELED != 0 {
            Some(Error::Canceled)
        } else if word & DEADLINE != 0 {
            Some(Error::DeadlineExceeded)
        } else {
            None
        }
    }

    /// The node's own deadline, if it armed one (for `Debug`, and to disarm it).
    pub(crate) fn own_deadline(&self) -> Option<Ticks> {
        // Set before the node was shared: any ordering sees it.
        (self.word().load(Ordering::Relaxed) & OWN_DEADLINE != 0).then_some(self.deadline)
    }

    pub(super) fn is_settled(&self) -> bool {
        // Acquire pairs with the Release of `settle`/`set_done`: whoever sees the flag sees
        // every descendant's state set before it (invariant 5).
        self.word().load(Ordering::Acquire) & SETTLED != 0
    }

    pub(super) fn settle(&self) {
        // Most nodes (leaves) are settled already: a load is cheaper than the read-modify-write.
        if !self.is_settled() {
            self.word().fetch_or(SETTLED, Ordering::Release);
        }
    }

    /// The bits of the state `err` (and of the settled flag, if `settled`).
    fn done_bits(err: Error, settled: bool) -> u32 {
        let bit = match err {
            Error::Canceled => CANCELED,
            Error::DeadlineExceeded => DEADLINE,
        };
        bit | if settled { SETTLED } else { 0 }
    }

    /// Sets the state now (once, under the node's lock, after the cause: invariant 1), and the
    /// settled flag with it if `settled` (the node has no children). For a cancellation's
    /// origin with children, whose state must be seen before any descendant's (invariant 5).
    pub(super) fn set_done(&self, err: Error, settled: bool) {
        self.word()
            .fetch_or(Self::done_bits(err, settled), Ordering::Release);
    }

    /// Like [`set_done`](CancelNode::set_done), but by the release of `guard` (this node's
    /// lock), in the same read-modify-write: one atomic operation fewer. The state is seen from
    /// the unlock on, together with the cause (the lock's readers find both at once); so the
    /// critical section must publish nothing that is read without the lock and promises the
    /// state (a waiter's notified mark: `finish` sets the state at once when there are
    /// waiters; the loom model `loom_re_poll_with_a_new_waker_races_cancel` catches it). With
    /// `settled`, nothing may touch the node after `guard` is dropped, unless it holds a
    /// reference (the unlock is its last access: `lock.rs`, invariant 4).
    pub(super) fn set_done_on_unlock(guard: &mut Guard<'_, Phase>, err: Error, settled: bool) {
        guard.publish_on_unlock(Self::done_bits(err, settled));
    }

    /// Sets the settled flag by the release of `guard` (this node's lock; see
    /// [`set_done_on_unlock`](CancelNode::set_done_on_unlock)).
    pub(super) fn settle_on_unlock(guard: &mut Guard<'_, Phase>) {
        guard.publish_on_unlock(SETTLED);
    }

    /// A new [`CancelHandle`](crate::CancelHandle) clone.
    pub(crate) fn acquire_handle(&self) {
        // Relaxed, as `Arc::clone`: the clone is made from a live handle, which orders it.
        // As `Arc` does: a count this high can only come from leaked clones.
        if self.word().fetch_add(1, Ordering::Relaxed) & HANDLES_MASK >= HANDLES_MASK / 2 {
            std::process::abort();
        }
    }

    /// A dropped [`CancelHandle`](crate::CancelHandle) clone; `true` if it was the last.
    pub(crate) fn release_handle(&self) -> bool {
        // A count of 1 is this handle alone, and it cannot grow: a clone is made from a live
        // handle, and the only one is being dropped. So the last handle (nearly always the
        // only one) needs no read-modify-write; the count is never read again. The `Acquire`
        // load pairs with the `Release` half of the other clones' `fetch_sub`, as `Arc`'s drop
        // does: the last one sees every other clone's uses.
        if self.word().load(Ordering::Acquire) & HANDLES_MASK == 1 {
            return true;
        }
        // Two clones dropped at once both see 2 or more above; this decides which is last.
        self.word().fetch_sub(1, Ordering::AcqRel) & HANDLES_MASK == 1
    }

    pub(crate) fn cause(&self) -> Option<Cause> {
        if !self.is_done() {
            return None;
        }
        // Invariant 1: the cause was written before the state, under this lock.
        let data = match &*self.lock() {
            Phase::Done(data) => data.clone(),
            Phase::Live { .. } => unreachable!("a done node has its cause"),
        };
        Some(Cause::from_parts(self.err()?, data))
    }

    /// Registers `waiter` in a boxed entry owned by the node's list (for waiters that may
    /// outlive their owner's handle: `after_func`, the bridges), or gives it back with the
    /// error if the node is already done.
    pub(crate) fn register(&self, waiter: Waiter) -> Result<WaiterKey, (Waiter, Error)> {
        let mut inner = self.lock();
        let result = match &mut *inner {
            Phase::Live { waiters, .. } => Ok(waiters.insert(waiter)),
            Phase::Done(_) => Err(waiter),
        };
        drop(inner);
        result.map_err(|waiter| (waiter, self.err().expect("a node with a cause is done")))
    }

    /// Links the inline `entry` (its waiter already stored in it) into the node's list, unless
    /// the node is done. Allocates nothing.
    ///
    /// # Safety
    ///
    /// `entry` must not be linked, and must stay pinned and alive until it is passed to
    /// [`unregister`](CancelNode::unregister) or its owner sees it notified (the contract of
    /// the waiter list's `push`).
    pub(crate) unsafe fn register_inline(&self, entry: Pin<&Entry>) -> Result<WaiterKey, Error> {
        let key = WaiterKey::of(entry);
        let mut inner = self.lock();
        let linked = match &mut *inner {
            Phase::Live { waiters, .. } => {
                // SAFETY: the caller's contract is `push`'s.
                unsafe { waiters.push(key) };
                true
            }
            Phase::Done(_) => false,
        };
        drop(inner);
        if linked {
            Ok(key)
        } else {
            Err(self.err().expect("a node with a cause is done"))
        }
    }

    /// Runs `f` on the waiter registered under `key`, unless the node is done (cancellation
    /// took it). `f` runs under the node's lock: it must run no user code. If it does not run,
    /// it is dropped after the lock is released.
    ///
    /// # Safety
    ///
    /// `key` must come from a registration on this node and not have been passed to
    /// [`unregister`](CancelNode::unregister).
    pub(crate) unsafe fn with_waiter<R>(
        &self,
        key: WaiterKey,
        f: impl FnOnce(&mut Option<Waiter>) -> R,
    ) -> Option<R> {
        let mut f = Some(f);
        let mut inner = self.lock();
        let result = match &mut *inner {
            Phase::Live { waiters, .. } => {
                let f = f.take().expect("taken once");
                // SAFETY: the node is live, so its list was never drained, and the caller
                // guarantees the key is still registered on it: it is in the list (waiter-list
                // invariant 5). We hold the node's lock.
                Some(unsafe { waiters.with_waiter(key, f) })
            }
            Phase::Done(_) => None,
        };
        drop(inner);
        // Invariant 6: an unused `f` (and what it captured) is dropped after the lock.
        drop(f);
        result
    }

    /// Removes the waiter under `key` (freeing a boxed entry; an inline one goes back to its
    /// owner) and gives its waiter back; `None` if the node is done: the cancellation took the
    /// waiter and is finished with the entry (it was drained under the lock just taken).
    ///
    /// # Safety
    ///
    /// As for [`with_waiter`](CancelNode::with_waiter); `key` is invalid afterwards.
    pub(crate) unsafe fn unregister(&self, key: WaiterKey) -> Option<Waiter> {
        let mut inner = self.lock();
        let waiter = match &mut *inner {
            // SAFETY: as in `with_waiter`.
            Phase::Live { waiters, .. } => unsafe { waiters.remove(key) },
            Phase::Done(_) => None,
        };
        drop(inner);
        waiter
    }
}
