//! The waiter list of a cancel node: who to notify when the node is done.
//!
//! An intrusive doubly linked list of heap entries, one per registered waiter, owned by the
//! list. Registering is one allocation of 40 bytes, unregistering frees it, and cancellation
//! takes the whole list by moving its head out (O(1) under the lock), then walks it after every
//! lock is released. So the list's memory is exactly its live waiters' (nothing stays after a
//! burst, unlike a slab, whose keys pin its capacity), and a wake touches only its own entry.
//!
//! # Invariants
//!
//! 1. Every entry reachable from `head` was allocated by [`WaiterList::insert`] on this list and
//!    is owned by it: it is freed exactly once, by [`WaiterList::remove`] (its key's owner), or
//!    by the [`Drain`] that [`WaiterList::take`] returns.
//! 2. `prev`/`next` are consistent: `head.prev` is null, `e.next.prev == e`.
//! 3. The list has no lock of its own: it lives inside its node's `Mutex`, so `&mut WaiterList`
//!    is the proof that the caller holds that lock. No atomics, hence no orderings to pair.
//! 4. A [`WaiterKey`] is valid from `insert` until it is passed to `remove`, or until the list
//!    is taken; the tree never uses a key once its node is done (tree invariant 4), which is
//!    when the list is taken.
//!
//! Nothing here runs user code: moving a `Waker` runs none; dropping or waking one happens in
//! [`Drain`], which the tree iterates only after releasing every lock.

use std::fmt;
use std::ptr::{self, NonNull};
use std::task::Waker;

use crate::sync::Thread;

/// Something to notify when a context is done.
pub(crate) enum Waiter {
    /// An async task awaiting [`Done`](crate::Done), or anything else woken as a task: an
    /// [`after_func`](crate::Context::after_func) callback, a token bridge.
    Task(Waker),
    /// A thread blocked in [`Context::wait`](crate::Context::wait) and friends.
    Thread(Thread),
}

impl Waiter {
    /// Called with no lock held (tree invariant 6).
    pub(crate) fn notify(self) {
        match self {
            Waiter::Task(waker) => waker.wake(),
            Waiter::Thread(thread) => thread.unpark(),
        }
    }
}

struct Entry {
    prev: *mut Entry,
    next: *mut Entry,
    waiter: Waiter,
}

/// Names one registered waiter: its entry's address (invariant 4 says how long it is valid).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaiterKey(NonNull<Entry>);

// SAFETY: a key is an address that is only dereferenced by `WaiterList` methods, under the
// lock of the list's node and under their own preconditions; holding or sending it touches
// nothing.
unsafe impl Send for WaiterKey {}
// SAFETY: as above: `&WaiterKey` gives no access to the entry.
unsafe impl Sync for WaiterKey {}

impl fmt::Debug for WaiterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WaiterKey({:p})", self.0)
    }
}

/// The list itself: one pointer, so that a node without waiters pays 8 bytes.
#[derive(Default)]
pub(crate) struct WaiterList {
    head: Option<NonNull<Entry>>,
}

// SAFETY: the list owns its entries as a `Box` chain would (invariant 1), and `Waiter` is
// `Send`; it is only reached through its node's `Mutex` (invariant 3).
unsafe impl Send for WaiterList {}

impl WaiterList {
    /// Registers `waiter` at the head of the list.
    pub(crate) fn insert(&mut self, waiter: Waiter) -> WaiterKey {
        let next = self.head.map_or(ptr::null_mut(), NonNull::as_ptr);
        let entry = Box::new(Entry {
            prev: ptr::null_mut(),
            next,
            waiter,
        });
        let entry = NonNull::from(Box::leak(entry));
        if !next.is_null() {
            // SAFETY: `next` is the head, an entry this list owns (invariant 1); `&mut self`
            // excludes every other access (invariant 3).
            unsafe { (*next).prev = entry.as_ptr() };
        }
        self.head = Some(entry);
        WaiterKey(entry)
    }

    /// The waiter registered under `key`.
    ///
    /// # Safety
    ///
    /// `key` must be valid for this list (invariant 4).
    pub(crate) unsafe fn get_mut(&mut self, key: WaiterKey) -> &mut Waiter {
        // SAFETY: the caller guarantees the entry is in this list, hence alive (invariant 1);
        // `&mut self` makes this the only access, for as long as the borrow lasts.
        unsafe { &mut (*key.0.as_ptr()).waiter }
    }

    /// Unlinks and frees the entry of `key`, giving its waiter back.
    ///
    /// # Safety
    ///
    /// `key` must be valid for this list (invariant 4); it is invalid afterwards.
    pub(crate) unsafe fn remove(&mut self, key: WaiterKey) -> Waiter {
        let entry = key.0.as_ptr();
        // SAFETY: `entry` is in this list (the caller's guarantee), so it and its neighbours are
        // entries this list owns (invariants 1 and 2), and `&mut self` excludes other access.
        // Unlinking keeps invariant 2; the entry is then reachable from nobody, so this list may
        // free it as the `Box` it was allocated as.
        unsafe {
            let Entry { prev, next, .. } = *entry;
            if prev.is_null() {
                debug_assert_eq!(self.head, Some(key.0), "an entry without prev is the head");
                self.head = NonNull::new(next);
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
            Box::from_raw(entry).waiter
        }
    }

    /// Takes every entry out, leaving the list empty: the caller walks them later, after
    /// releasing the node's lock.
    pub(crate) fn take(&mut self) -> Drain {
        Drain {
            next: self.head.take().map_or(ptr::null_mut(), NonNull::as_ptr),
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let mut n = 0;
        let mut cur = self.head.map_or(ptr::null_mut(), NonNull::as_ptr);
        while !cur.is_null() {
            n += 1;
            // SAFETY: every entry reachable from `head` is alive (invariant 1).
            cur = unsafe { (*cur).next };
        }
        n
    }
}

impl Drop for WaiterList {
    #[inline]
    fn drop(&mut self) {
        // A node is done before it is dropped, so this is empty in practice; free it anyway.
        if self.head.is_some() {
            drop(self.take());
        }
    }
}

/// The entries taken from a list, each freed as its waiter is handed out; dropping the rest
/// frees them (and drops their waiters: call it with no lock held).
pub(crate) struct Drain {
    next: *mut Entry,
}

impl Iterator for Drain {
    type Item = Waiter;

    fn next(&mut self) -> Option<Waiter> {
        if self.next.is_null() {
            return None;
        }
        // SAFETY: the chain was moved out of its list whole (`take`), so this `Drain` owns each
        // entry on it (invariant 1), and keys to them are no longer used (invariant 4): the
        // entry is freed here, once, as the `Box` it was allocated as.
        let entry = unsafe { Box::from_raw(self.next) };
        self.next = entry.next;
        Some(entry.waiter)
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        for waiter in self {
            drop(waiter);
        }
    }
}

// SAFETY: a `Drain` owns its entries (see `next`) and `Waiter` is `Send`.
unsafe impl Send for Drain {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn waiter(count: &std::sync::Arc<Count>) -> Waiter {
        Waiter::Task(Waker::from(std::sync::Arc::clone(count)))
    }

    #[test]
    fn removes_from_head_middle_and_tail() {
        let count = std::sync::Arc::new(Count(AtomicUsize::new(0)));
        let mut list = WaiterList::default();
        let keys: Vec<_> = (0..5).map(|_| list.insert(waiter(&count))).collect();
        assert_eq!(list.len(), 5);
        // SAFETY: each key came from `insert` on `list` and is removed once.
        unsafe {
            drop(list.remove(keys[2])); // middle
            drop(list.remove(keys[4])); // head (inserted last)
            drop(list.remove(keys[0])); // tail
        }
        assert_eq!(list.len(), 2);
        // SAFETY: keys[1] is still in the list.
        assert!(matches!(unsafe { list.get_mut(keys[1]) }, Waiter::Task(_)));
        for w in list.take() {
            w.notify();
        }
        assert!(list.is_empty());
        assert_eq!(
            count.0.load(Ordering::Relaxed),
            2,
            "the two left were woken"
        );
        assert_eq!(
            std::sync::Arc::strong_count(&count),
            1,
            "every waker was freed"
        );
    }

    #[test]
    fn a_partly_walked_drain_frees_the_rest() {
        let count = std::sync::Arc::new(Count(AtomicUsize::new(0)));
        let mut list = WaiterList::default();
        for _ in 0..4 {
            list.insert(waiter(&count));
        }
        let mut drain = list.take();
        drain.next().unwrap().notify();
        drop(drain);
        let mut list = WaiterList::default();
        list.insert(waiter(&count));
        drop(list);
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        assert_eq!(std::sync::Arc::strong_count(&count), 1, "nothing leaked");
    }
}
