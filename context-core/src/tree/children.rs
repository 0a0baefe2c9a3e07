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
//! full, and dropped for the inline form at two children, so a burst of a million children leaves
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

/// The tag of [`Children::head`] when it is the address of the boxed `Vec` (a `Box<Vec<_>>`
/// is 8-byte aligned, so the bit is free).
const MANY: usize = 1;

/// A node's children: up to two inline, a boxed `Vec` from the third on. 16 bytes, with a
/// niche (`head` is never null) for `Phase`'s tag, so that it fits beside the waiter list in
/// the node's lock (see `node::Phase`): a chain or a parent with two children at once (two
/// threads' requests under one parent, S2p) allocates nothing for it.
///
/// Encoding, one form at a time (the derived enum of four variants would be 24 bytes):
/// - none: `head` is [`Children::EMPTY`] (the dangling address of a `Node`, which no node has),
///   `second` is `None`;
/// - one: `head` is the child, `second` `None`;
/// - two: `head` the first, `second` the second;
/// - many: `head` is the `Box<Vec<ChildPtr>>`'s address with [`MANY`] set (made by
///   `Box::leak`, owned by this value and freed by its drop), `second` `None`.
pub(super) struct Children {
    head: NonNull<Node>,
    second: Option<ChildPtr>,
}

// SAFETY: a `Children` owns its boxed `Vec<ChildPtr>` (in the "many" form) as a
// `Box<Vec<ChildPtr>>` would, and `ChildPtr` is `Send + Sync`; the inline forms are
// `ChildPtr`s.
unsafe impl Send for Children {}
// SAFETY: as for `Send`: `&Children` only reads the addresses and the `Vec`.
unsafe impl Sync for Children {}

impl Default for Children {
    fn default() -> Children {
        Children {
            head: Children::EMPTY,
            second: None,
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        drop(self.take_many());
    }
}

impl Children {
    /// "No child": an address no node has (a `Node` is never at its alignment's address).
    const EMPTY: NonNull<Node> = NonNull::dangling();

    /// Whether this is the "many" form (`head` tagged with [`MANY`]).
    #[inline]
    fn is_many(&self) -> bool {
        self.head.addr().get() & MANY != 0
    }

    /// `head` without the tag: the boxed `Vec`'s address, in the "many" form (with the
    /// provenance of the `Box::leak` it came from).
    #[inline]
    fn boxed(&self) -> *mut Vec<ChildPtr> {
        self.head.as_ptr().map_addr(|a| a & !MANY).cast()
    }

    /// The boxed `Vec`, if this is the "many" form.
    #[inline]
    fn many(&self) -> Option<&Vec<ChildPtr>> {
        if !self.is_many() {
            return None;
        }
        // SAFETY: with `MANY` set, `head` is `Box::leak` of the `Vec` this value owns
        // (the encoding above), alive until `take_many` or the drop; `&self` lends it.
        Some(unsafe { &*self.boxed() })
    }

    /// The boxed `Vec`, mutably, if this is the "many" form.
    #[inline]
    fn many_mut(&mut self) -> Option<&mut Vec<ChildPtr>> {
        if !self.is_many() {
            return None;
        }
        // SAFETY: as in `many`; `&mut self` makes the borrow unique.
        Some(unsafe { &mut *self.boxed() })
    }

    /// Takes the boxed `Vec` out (leaving no child), if this is the "many" form.
    fn take_many(&mut self) -> Option<Vec<ChildPtr>> {
        if !self.is_many() {
            return None;
        }
        let ptr = self.boxed();
        self.head = Children::EMPTY;
        // SAFETY: as in `many`; the form is now "none", so the box is taken back once.
        Some(*unsafe { Box::from_raw(ptr) })
    }

    /// Owns `v` in the "many" form (the caller has taken any previous box out).
    fn set_many(&mut self, v: Vec<ChildPtr>) {
        let raw = NonNull::from(Box::leak(Box::new(v)));
        debug_assert_eq!(raw.addr().get() & MANY, 0, "a `Box<Vec>` is aligned");
        self.head = raw.map_addr(|a| a | MANY).cast();
        self.second = None;
    }

    /// The inline forms: `(first, second)`, `None` for "many".
    #[inline]
    fn inline(&self) -> Option<(Option<ChildPtr>, Option<ChildPtr>)> {
        if self.is_many() {
            return None;
        }
        let first = (self.head != Children::EMPTY).then_some(ChildPtr(self.head));
        Some((first, self.second))
    }

    #[inline]
    pub(super) fn len(&self) -> usize {
        match self.many() {
            Some(v) => v.len(),
            None => usize::from(self.head != Children::EMPTY) + usize::from(self.second.is_some()),
        }
    }

    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.head == Children::EMPTY
    }

    /// Appends `node`; returns its index.
    #[inline]
    pub(super) fn push(&mut self, node: ChildPtr) -> usize {
        // The common case (a request's child, a chain's), inline: the first child.
        if self.head == Children::EMPTY {
            self.head = node.0;
            return 0;
        }
        // A wide parent's (S4), inline too.
        if let Some(v) = self.many_mut() {
            v.push(node);
            return v.len() - 1;
        }
        self.push_more(node)
    }

    /// [`push`](Children::push) onto one or two inline children.
    #[inline(never)]
    fn push_more(&mut self, node: ChildPtr) -> usize {
        match self.second {
            None => {
                self.second = Some(node);
                1
            }
            Some(second) => {
                let mut v = Vec::with_capacity(4);
                v.extend([ChildPtr(self.head), second, node]);
                self.set_many(v);
                2
            }
        }
    }

    #[inline]
    pub(super) fn get(&self, i: usize) -> Option<ChildPtr> {
        match self.inline() {
            Some((first, second)) => match i {
                0 => first,
                1 => second,
                _ => None,
            },
            None => self.many().and_then(|v| v.get(i).copied()),
        }
    }

    /// Removes the child at `i`, moving the last child into its place (the caller updates the
    /// moved child's slot, found with [`Children::get`]`(i)`).
    #[inline]
    pub(super) fn swap_remove(&mut self, i: usize) -> ChildPtr {
        // The common case, inline: the only child, inline.
        if self.second.is_none() && !self.is_many() {
            assert!(
                i == 0 && self.head != Children::EMPTY,
                "no child at this slot"
            );
            let only = ChildPtr(self.head);
            self.head = Children::EMPTY;
            return only;
        }
        self.swap_remove_more(i)
    }

    #[inline(never)]
    fn swap_remove_more(&mut self, i: usize) -> ChildPtr {
        if let Some(v) = self.many_mut() {
            let removed = v.swap_remove(i);
            let len = v.len();
            if len > 2 {
                if len < v.capacity() / 4 && v.capacity() > KEEP_CAPACITY {
                    v.shrink_to(v.capacity() / 2);
                }
                return removed;
            }
            // Back inline: the ones left keep their indices, no slot changes.
            let v = self.take_many().expect("the many form");
            for child in v.iter() {
                self.push(*child);
            }
            return removed;
        }
        // Two inline: the second moves to index 0 (the caller updates its slot), or stays.
        let (first, second) = (ChildPtr(self.head), self.second.take());
        match (i, second) {
            (0, Some(second)) => {
                self.head = second.0;
                first
            }
            (1, Some(second)) => second,
            _ => unreachable!("no child at this slot"),
        }
    }

    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.many().map_or(0, Vec::capacity)
    }

    /// Moves every child onto the cancellation's work list.
    #[inline]
    pub(super) fn drain_into(mut self, work: &mut Vec<ChildPtr>) {
        if let Some(v) = self.take_many() {
            if work.is_empty() {
                *work = v;
            } else {
                work.extend(v);
            }
            return;
        }
        if self.head != Children::EMPTY {
            work.push(ChildPtr(self.head));
        }
        if let Some(second) = self.second {
            work.push(second);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::node::Body;

    fn nodes(n: usize) -> Vec<Arc<Node>> {
        (0..n)
            .map(|_| Arc::new(Node::root(Body::Background)))
            .collect()
    }

    /// Two children inline in 16 bytes, with a niche left for `Phase`'s tag (the node's lock
    /// guards 24 bytes: the children and the waiter list's head).
    #[test]
    fn two_words_with_a_niche() {
        use std::mem::size_of;
        assert_eq!(size_of::<Children>(), 16);
        assert_eq!(size_of::<Option<Children>>(), 16);
        assert_eq!(size_of::<crate::tree::node::Phase>(), 24);
    }

    /// Every form, through pushes and removals at each index: the list always holds the
    /// children not removed yet, at the indices `swap_remove` promises, and frees its box.
    #[test]
    fn every_form_keeps_its_children_in_swap_remove_order() {
        let all = nodes(6);
        for n in 0..=all.len() {
            for remove_at in 0..n.max(1) {
                let mut list = Children::default();
                let mut model: Vec<ChildPtr> = Vec::new();
                for node in &all[..n] {
                    let ptr = ChildPtr::new(node);
                    assert_eq!(list.push(ptr), model.len());
                    model.push(ptr);
                }
                assert_eq!(list.len(), n);
                assert_eq!(list.is_empty(), n == 0);
                while !model.is_empty() {
                    let i = remove_at.min(model.len() - 1);
                    assert_eq!(list.swap_remove(i), model.swap_remove(i));
                    assert_eq!(list.len(), model.len());
                    for (j, ptr) in model.iter().enumerate() {
                        assert_eq!(list.get(j), Some(*ptr));
                    }
                    assert_eq!(list.get(model.len()), None);
                    assert_eq!(list.capacity() > 0, model.len() > 2);
                }
                assert!(list.is_empty());
            }
            // Drained (or dropped) with children in each form.
            let mut list = Children::default();
            for node in &all[..n] {
                list.push(ChildPtr::new(node));
            }
            let mut work = Vec::new();
            list.drain_into(&mut work);
            let want: Vec<_> = all[..n].iter().map(ChildPtr::new).collect();
            assert_eq!(work, want);
            let mut dropped = Children::default();
            for node in &all[..n] {
                dropped.push(ChildPtr::new(node));
            }
            drop(dropped);
        }
    }
}
