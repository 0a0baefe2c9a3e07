//! The children list of a cancel node: its live cancellable descendants with no other
//! cancellable node in between (tree invariant 2). Each child knows its index (`slot`), so
//! removal is a `swap_remove` plus one slot update.
//!
//! The list holds each child by its address ([`ChildPtr`]), without a reference count: a live
//! cancel node is kept alive by its `CancelHandle`s, whose last drop cancels it and takes it out
//! of the list first (tree invariant 3 has the argument). That saves an `Arc` clone and drop
//! per child.
//!
//! Memory is given back as the list shrinks: a `Vec` is halved once it is less than a quarter
//! full, and dropped for the inline form at one child, so a burst of a million children leaves
//! nothing behind once they are gone (amortised O(1) per removal).

use std::ptr::NonNull;

use crate::sync::Arc;

use super::node::Node;

/// A link from a parent to a child: the child's address, with no reference count (tree
/// invariant 3 says who keeps the child alive while the link exists).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct ChildPtr(NonNull<Node>);

// SAFETY: a `ChildPtr` is an address; it is only dereferenced (as a shared `&Node`, and `Node`
// is `Send + Sync`) while tree invariant 3 guarantees the node is alive, on whichever thread.
unsafe impl Send for ChildPtr {}
// SAFETY: as for `Send`: sharing the address shares nothing else.
unsafe impl Sync for ChildPtr {}

impl ChildPtr {
    #[inline]
    pub(super) fn new(node: &Arc<Node>) -> ChildPtr {
        // `Arc::as_ptr`, not `&**node`: a pointer made from a reference may not reach the
        // reference counts that `to_arc` updates (Miri, Stacked Borrows).
        ChildPtr(NonNull::new(Arc::as_ptr(node).cast_mut()).expect("an `Arc` is never null"))
    }

    /// Whether this is the address of `node`.
    pub(super) fn is(self, node: &Node) -> bool {
        std::ptr::eq(self.0.as_ptr(), node)
    }

    /// The child.
    ///
    /// # Safety
    ///
    /// The node must be alive for `'a`: the caller holds the lock of the link parent whose live
    /// list holds this pointer, or the origin's lock of the cancellation whose work list took
    /// it (tree invariant 3).
    #[inline]
    pub(super) unsafe fn get<'a>(self) -> &'a Node {
        // SAFETY: the caller guarantees the node is alive; the pointer came from an `Arc`.
        unsafe { self.0.as_ref() }
    }

    /// A new strong reference to the child.
    ///
    /// # Safety
    ///
    /// As for [`get`](ChildPtr::get): the node is alive.
    pub(super) unsafe fn to_arc(self) -> Arc<Node> {
        let ptr = self.0.as_ptr().cast_const();
        // SAFETY: `ptr` is `Arc::as_ptr` of a live `Arc<Node>` (the caller guarantees the node
        // is alive, so its strong count is at least one); adding a count and taking it back
        // as an `Arc` leaves the other references untouched.
        unsafe {
            Arc::increment_strong_count(ptr);
            Arc::from_raw(ptr)
        }
    }
}

/// Capacities up to this stay as they are: shrinking them would save too little to pay for
/// the reallocation.
const KEEP_CAPACITY: usize = 16;

/// A node's children: the first one inline, a boxed `Vec` from the second on. 16 bytes, so
/// that it fits beside the waiter list in the node's lock (see `node::Phase`); a chain (one
/// child per node) allocates nothing for it.
#[derive(Default)]
pub(super) enum Children {
    #[default]
    Empty,
    One(ChildPtr),
    // Boxed on purpose: a `Vec` is 24 bytes, a box 8, and this enum must stay 16 (see above);
    // the extra allocation is made once per node with two children or more.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<ChildPtr>>),
}

impl Children {
    #[inline]
    pub(super) fn len(&self) -> usize {
        match self {
            Children::Empty => 0,
            Children::One(_) => 1,
            Children::Many(v) => v.len(),
        }
    }

    /// Appends `node`; returns its index.
    #[inline]
    pub(super) fn push(&mut self, node: ChildPtr) -> usize {
        match self {
            Children::Many(v) => {
                v.push(node);
                v.len() - 1
            }
            Children::Empty => {
                *self = Children::One(node);
                0
            }
            Children::One(_) => {
                let Children::One(first) = std::mem::take(self) else {
                    unreachable!()
                };
                let mut v = Vec::with_capacity(4);
                v.push(first);
                v.push(node);
                *self = Children::Many(Box::new(v));
                1
            }
        }
    }

    #[inline]
    pub(super) fn get(&self, i: usize) -> Option<ChildPtr> {
        match self {
            Children::Empty => None,
            Children::One(n) => (i == 0).then_some(*n),
            Children::Many(v) => v.get(i).copied(),
        }
    }

    /// Removes the child at `i`, moving the last child into its place (the caller updates the
    /// moved child's slot, found with [`Children::get`]`(i)`).
    #[inline]
    pub(super) fn swap_remove(&mut self, i: usize) -> ChildPtr {
        match self {
            Children::Many(v) => {
                let removed = v.swap_remove(i);
                match v.len() {
                    // The last one stays at index 0: no slot changes.
                    0 | 1 => *self = v.pop().map_or(Children::Empty, Children::One),
                    len if len < v.capacity() / 4 && v.capacity() > KEEP_CAPACITY => {
                        v.shrink_to(v.capacity() / 2);
                    }
                    _ => {}
                }
                removed
            }
            _ => match std::mem::take(self) {
                Children::One(n) => n,
                _ => unreachable!("no child at this slot"),
            },
        }
    }

    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        match self {
            Children::Many(v) => v.capacity(),
            _ => 0,
        }
    }

    /// Moves every child onto the cancellation's work list.
    pub(super) fn drain_into(self, work: &mut Vec<ChildPtr>) {
        match self {
            Children::Empty => {}
            Children::One(n) => work.push(n),
            Children::Many(v) if work.is_empty() => *work = *v,
            Children::Many(v) => work.extend(*v),
        }
    }
}
