//! The children list of a cancel node: its live cancellable descendants with no other
//! cancellable node in between (tree invariant 2). Each child knows its index (`slot`), so
//! removal is a `swap_remove` plus one slot update.
//!
//! Memory is given back as the list shrinks: a `Vec` is halved once it is less than a quarter
//! full, and dropped for the inline form at one child, so a burst of a million children leaves
//! nothing behind once they are gone (amortised O(1) per removal).

use crate::sync::Arc;

use super::node::Node;

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
    One(Arc<Node>),
    // Boxed on purpose: a `Vec` is 24 bytes, a box 8, and this enum must stay 16 (see above);
    // the extra allocation is made once per node with two children or more.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<Arc<Node>>>),
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
    pub(super) fn push(&mut self, node: Arc<Node>) -> usize {
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

    pub(super) fn get(&self, i: usize) -> Option<&Arc<Node>> {
        match self {
            Children::Empty => None,
            Children::One(n) => (i == 0).then_some(n),
            Children::Many(v) => v.get(i),
        }
    }

    /// Removes the child at `i`, moving the last child into its place (the caller updates the
    /// moved child's slot, found with [`Children::get`]`(i)`).
    pub(super) fn swap_remove(&mut self, i: usize) -> Arc<Node> {
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
    pub(super) fn drain_into(self, work: &mut Vec<Arc<Node>>) {
        match self {
            Children::Empty => {}
            Children::One(n) => work.push(n),
            Children::Many(v) if work.is_empty() => *work = *v,
            Children::Many(v) => work.extend(*v),
        }
    }
}
