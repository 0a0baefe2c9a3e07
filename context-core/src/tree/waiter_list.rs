//! The waiter list of a cancel node: who to notify when the node is done.
//!
//! An intrusive doubly linked list of [`Entry`]s. An entry lives in one of two places:
//!
//! - *inline*, in its owner: a pinned [`Done`](crate::Done) future, or the stack frame of a
//!   thread blocked in [`Context::wait`](crate::Context::wait). Registering allocates nothing;
//!   the owner links it on its first pending poll (or before parking) and unlinks it when it is
//!   dropped, unless the cancellation has *notified* it first.
//! - *boxed*, allocated by [`WaiterList::insert`] and owned by the list: for waiters whose
//!   owner may go away while they stay registered (an [`after_func`](crate::Context::after_func)
//!   callback whose handle was dropped, the token and signal bridges). `remove` or the
//!   cancellation frees it.
//!
//! The cancellation walks the list *under the node's lock* ([`WaiterList::drain`]): from each
//! entry it moves the waiter out (moving a `Waker` runs no user code), frees a boxed entry, and
//! marks an inline one notified, which is its last access to it. From an inline entry the move
//! only *reads* the waiter (the bytes left behind are a moved-out copy, never used or dropped
//! once the entry is notified), so that the owner may read its own waiter without the lock
//! while the entry is linked ([`Entry::will_wake`]). The waiters are woken later,
//! after every lock is released (tree invariant 6), from the moved-out values: the walker never
//! touches an entry once the lock is released, so an owner may free its entry as soon as it
//! sees the mark, or as soon as it holds the lock and finds the node done.
//!
//! # Invariants
//!
//! 1. Every entry reachable from `head` is alive: a boxed entry is freed only once it left the
//!    list (by `remove`, or in `drain`), and an inline entry's owner keeps it pinned, and does
//!    not free it, until it has unlinked it or seen it notified (the contract of
//!    [`WaiterList::push`]).
//! 2. `prev`/`next` are consistent: `head.prev` is null, `e.next.prev == e`.
//! 3. The list has no lock of its own: it lives inside its node's lock, so `&mut WaiterList`
//!    is the proof that the caller holds that lock. An entry's `prev`, `next` and `waiter` are
//!    accessed only under that lock while the entry is linked; before it is linked and after
//!    it is unlinked or notified, only its owner accesses them. One exception: while an inline
//!    entry is linked, its owner may *read* its `waiter` without the lock
//!    ([`Entry::will_wake`]); every access to it under the lock that the owner did not ask for
//!    is a read too (the drain's), and the owner's own writes, under the lock, are ordered
//!    with its reads by program order.
//! 4. `notified` goes from 0 to the node's error (1 `Canceled`, 2 `DeadlineExceeded`) once, in
//!    `drain`, with `Release`, after the drain's last
//!    access to the entry (it read `next` and moved the waiter out before). The owner's
//!    `Acquire` load that sees 1 pairs with it: every access of the drain happens before the
//!    owner's next one, so the owner may reuse or free the entry without taking the lock. An
//!    owner that does not see it takes the lock instead, whose release by the drain orders the
//!    same accesses.
//! 5. A [`WaiterKey`] is valid from its registration until it is passed to `remove`, or until
//!    the list is drained; the tree never uses a key once its node is done (tree invariant 4),
//!    which is when the list is drained.

use std::fmt;
use std::marker::PhantomPinned;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::ptr::{self, NonNull};
use std::task::Waker;

use crate::error::Error;
use crate::sync::{AtomicU8, Ordering, Thread};

/// The values of a notified entry's mark (invariant 4).
const CANCELED: u8 = 1;
const DEADLINE_EXCEEDED: u8 = 2;

/// Something to notify when a context is done.
pub(crate) enum Waiter {
    /// An async task awaiting [`Done`](crate::Done), or anything else woken as a task: an
    /// [`after_func`](crate::Context::after_func) callback, a token bridge.
    Task(Waker),
    /// A thread blocked in [`Context::wait`](crate::Context::wait) and friends.
    Thread(Thread),
}

impl Waiter {
    /// A hint that this waiter will be notified soon: fetches the cache line its waker's data
    /// points to (a task's header, for tokio and `Arc`-based wakers). Reads nothing and cannot
    /// fault, whatever the pointer is; does nothing off x86-64 (and under Miri, which has no
    /// caches to warm).
    #[inline]
    pub(crate) fn prefetch(&self) {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        if let Waiter::Task(waker) = self {
            // SAFETY: a prefetch is a hint: it neither reads memory architecturally nor faults,
            // for any address; SSE is part of x86-64's baseline.
            #[allow(unused_unsafe)]
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    waker.data().cast::<i8>(),
                );
            }
        }
    }

    /// Called with no lock held (tree invariant 6).
    pub(crate) fn notify(self) {
        match self {
            Waiter::Task(waker) => waker.wake(),
            Waiter::Thread(thread) => thread.unpark(),
        }
    }
}

/// The cell of an entry's fields: loom's under `--cfg loom`, so that the models check that
/// every access is ordered by the lock or by the `notified` hand-off (invariants 3 and 4).
#[cfg(loom)]
#[allow(clippy::unsafe_removed_from_name)] // one name for both builds; both are unsafe cells
use loom::cell::UnsafeCell as Cell;

/// std's `UnsafeCell` with loom's closure API (no cost).
#[cfg(not(loom))]
struct Cell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> Cell<T> {
    fn new(value: T) -> Cell<T> {
        Cell(std::cell::UnsafeCell::new(value))
    }

    #[inline]
    fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }

    #[inline]
    fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        // A notified entry's waiter was moved out by the drain (its bytes are a copy).
        if !self.is_notified() {
            // SAFETY: not notified: the value is live, and `&mut self` makes it ours alone;
            // it is dropped once, here.
            self.waiter
                .with_mut(|w| unsafe { ManuallyDrop::drop(&mut *w) });
        }
    }
}

/// One registered waiter: inline in its owner, or boxed and owned by the list (module docs).
pub(crate) struct Entry {
    prev: Cell<*const Entry>,
    next: Cell<*const Entry>,
    /// The waiter to notify; `None` once the owner (or `remove`) has taken it. Once the entry
    /// is notified, a moved-out copy (the drain reads it without writing: invariant 3), which
    /// is never used or dropped again.
    waiter: Cell<ManuallyDrop<Option<Waiter>>>,
    /// Non-zero once the drain is finished with this (inline) entry: the node's error, so that
    /// the woken owner need not read the node (invariant 4).
    notified: AtomicU8,
    /// Allocated by `insert` and owned by the list; fixed at creation.
    boxed: bool,
    /// The list points into the entry: once linked, it must not move.
    _pinned: PhantomPinned,
}

impl Entry {
    /// An inline entry, not linked, with no waiter yet.
    pub(crate) fn new() -> Entry {
        Entry::with(None, false)
    }

    fn with(waiter: Option<Waiter>, boxed: bool) -> Entry {
        Entry {
            prev: Cell::new(ptr::null()),
            next: Cell::new(ptr::null()),
            waiter: Cell::new(ManuallyDrop::new(waiter)),
            notified: AtomicU8::new(0),
            boxed,
            _pinned: PhantomPinned,
        }
    }

    /// Whether the cancellation is finished with this entry: its waiter was taken, and it may
    /// be reused or freed without the lock (invariant 4).
    #[inline]
    pub(crate) fn is_notified(&self) -> bool {
        self.notified().is_some()
    }

    /// The node's error if the drain is finished with this entry (`is_notified`): one
    /// `Acquire` load, which pairs with the drain's `Release` (invariant 4).
    #[inline]
    pub(crate) fn notified(&self) -> Option<Error> {
        match self.notified.load(Ordering::Acquire) {
            0 => None,
            CANCELED => Some(Error::Canceled),
            _ => Some(Error::DeadlineExceeded),
        }
    }

    /// Replaces the waiter of an entry that is not linked and was never notified.
    ///
    /// # Safety
    ///
    /// The entry must not be linked (never linked, or unlinked): only its owner accesses it
    /// then (invariant 3). A notified entry's waiter is a moved-out copy: it must not be
    /// replaced (its old value would be dropped a second time).
    pub(crate) unsafe fn replace_waiter(&self, waiter: Option<Waiter>) -> Option<Waiter> {
        debug_assert!(!self.is_notified(), "a notified entry is never reused");
        // SAFETY: the caller guarantees nobody else accesses the entry.
        self.waiter
            .with_mut(|w| unsafe { std::mem::replace(&mut **w, waiter) })
    }

    /// Whether the waiter stored in this linked entry is a task waker that
    /// [`will_wake`](Waker::will_wake) the same task as `waker`. No lock: reads only.
    ///
    /// # Safety
    ///
    /// The caller is the entry's owner, and has not seen it notified. Then the only other
    /// access to `waiter` that can run at the same time is the drain's, which only reads it
    /// (invariant 3); the value read is the owner's last write (its own, program-ordered), or,
    /// if the drain has moved it out meanwhile, the same bytes, never dropped while the entry
    /// lives. The waker is compared, not called.
    pub(crate) unsafe fn will_wake(&self, waker: &Waker) -> bool {
        // SAFETY: as above: concurrent accesses are reads.
        self.waiter
            .with(|w| matches!(unsafe { &**w }, Some(Waiter::Task(old)) if old.will_wake(waker)))
    }
}

/// Names one registered waiter, inline or boxed: its entry's address (invariant 5 says how long
/// it is valid).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaiterKey(NonNull<Entry>);

impl WaiterKey {
    /// The key of an inline entry (linked or about to be).
    pub(crate) fn of(entry: Pin<&Entry>) -> WaiterKey {
        WaiterKey(NonNull::from(entry.get_ref()))
    }
}

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
pub(crate) struct WaiterList {
    head: *const Entry,
}

impl Default for WaiterList {
    fn default() -> WaiterList {
        WaiterList { head: ptr::null() }
    }
}

// SAFETY: the list owns its boxed entries as a `Box` chain would and reaches inline ones only
// under its node's lock (invariant 3); `Waiter` is `Send`.
unsafe impl Send for WaiterList {}

impl WaiterList {
    /// Links `entry` at the head of the list.
    ///
    /// # Safety
    ///
    /// `entry` is not in any list and stays alive, at this address, until it is unlinked by
    /// [`remove`](WaiterList::remove) or notified by [`drain`](WaiterList::drain) (for an
    /// inline entry: until its owner unlinked it under the lock, or saw `is_notified`).
    pub(crate) unsafe fn push(&mut self, key: WaiterKey) {
        let entry = key.0.as_ptr().cast_const();
        let next = self.head;
        // SAFETY: `entry` is alive and not linked, so only we access it; `next` is the head,
        // alive (invariant 1), and `&mut self` is the lock (invariant 3).
        unsafe {
            (*entry).prev.with_mut(|p| *p = ptr::null());
            (*entry).next.with_mut(|n| *n = next);
            if !next.is_null() {
                (*next).prev.with_mut(|p| *p = entry);
            }
        }
        self.head = entry;
    }

    /// Registers `waiter` in a new boxed entry owned by the list.
    pub(crate) fn insert(&mut self, waiter: Waiter) -> WaiterKey {
        let entry = Box::new(Entry::with(Some(waiter), true));
        let key = WaiterKey(NonNull::from(Box::leak(entry)));
        // SAFETY: a fresh entry; the list owns it until `remove` or `drain` frees it.
        unsafe { self.push(key) };
        key
    }

    /// Runs `f` on the waiter registered under `key`.
    ///
    /// # Safety
    ///
    /// `key` must be in this list (invariant 5).
    pub(crate) unsafe fn with_waiter<R>(
        &mut self,
        key: WaiterKey,
        f: impl FnOnce(&mut Option<Waiter>) -> R,
    ) -> R {
        // SAFETY: the entry is in this list, hence alive (invariant 1), and `&mut self` is the
        // lock under which alone its waiter is accessed (invariant 3).
        unsafe { (*key.0.as_ptr()).waiter.with_mut(|w| f(&mut *w)) }
    }

    /// Unlinks the entry of `key` and gives its waiter back; a boxed entry is freed.
    ///
    /// # Safety
    ///
    /// `key` must be in this list (invariant 5); it is not afterwards.
    pub(crate) unsafe fn remove(&mut self, key: WaiterKey) -> Option<Waiter> {
        let entry = key.0.as_ptr().cast_const();
        // SAFETY: `entry` is in this list (the caller's guarantee), so it and its neighbours are
        // alive (invariants 1 and 2), and `&mut self` is the lock. Unlinking keeps invariant 2;
        // a boxed entry is then reachable from nobody, and is freed as the `Box` it was
        // allocated as; an inline one goes back to its owner.
        unsafe {
            let prev = (*entry).prev.with_mut(|p| *p);
            let next = (*entry).next.with_mut(|n| *n);
            if prev.is_null() {
                debug_assert_eq!(self.head, entry, "an entry without prev is the head");
                self.head = next;
            } else {
                (*prev).next.with_mut(|n| *n = next);
            }
            if !next.is_null() {
                (*next).prev.with_mut(|p| *p = prev);
            }
            let waiter = (*entry).waiter.with_mut(|w| (**w).take());
            if (*entry).boxed {
                drop(Box::from_raw(entry.cast_mut()));
            }
            waiter
        }
    }

    /// Empties the list, under the node's lock: hands each entry's waiter to `out` (which must
    /// run no user code: it stores them, to be notified once every lock is released), frees
    /// each boxed entry and marks each inline one notified with `err`, the node's error
    /// (invariant 4).
    pub(crate) fn drain(&mut self, err: Error, mut out: impl FnMut(Waiter)) {
        let mark = match err {
            Error::Canceled => CANCELED,
            Error::DeadlineExceeded => DEADLINE_EXCEEDED,
        };
        let mut cur = std::mem::replace(&mut self.head, ptr::null());
        while !cur.is_null() {
            // SAFETY: `cur` was reachable from `head`, so it is alive (invariant 1) and only we
            // access it (the lock, invariant 3). Everything is read from it before the mark,
            // the last access: its owner may free it as soon as it sees the mark (invariant 4).
            let (next, waiter) = unsafe {
                let next = (*cur).next.with_mut(|n| *n);
                let waiter = if (*cur).boxed {
                    // Ours: taken (leaving `None` for the entry's drop), then freed.
                    let waiter = (*cur).waiter.with_mut(|w| (**w).take());
                    drop(Box::from_raw(cur.cast_mut()));
                    waiter
                } else {
                    // Moved out by a read: the owner may be reading it at the same time
                    // (invariant 3). The mark makes the copy left behind dead.
                    let waiter = (*cur).waiter.with(|w| ptr::read(&**w));
                    (*cur).notified.store(mark, Ordering::Release);
                    waiter
                };
                (next, waiter)
            };
            if let Some(waiter) = waiter {
                out(waiter);
            }
            cur = next;
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let mut n = 0;
        let mut cur = self.head;
        while !cur.is_null() {
            n += 1;
            // SAFETY: every entry reachable from `head` is alive (invariant 1).
            cur = unsafe { (*cur).next.with_mut(|n| *n) };
        }
        n
    }
}

impl Drop for WaiterList {
    fn drop(&mut self) {
        // A node is done before it is dropped, and an inline entry's owner holds its context,
        // so this is empty in practice; free what is left anyway (no lock is held here).
        if !self.is_empty() {
            self.drain(Error::Canceled, drop);
        }
    }
}

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

    fn notify_all(list: &mut WaiterList) {
        let mut taken = Vec::new();
        list.drain(Error::Canceled, |w| taken.push(w));
        for w in taken {
            w.notify();
        }
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
        let is_task = unsafe { list.with_waiter(keys[1], |w| matches!(w, Some(Waiter::Task(_)))) };
        assert!(is_task);
        notify_all(&mut list);
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
    fn inline_and_boxed_entries_share_the_list() {
        let count = std::sync::Arc::new(Count(AtomicUsize::new(0)));
        let mut list = WaiterList::default();
        let a = Box::pin(Entry::new());
        let b = Box::pin(Entry::new());
        // SAFETY: neither is linked yet.
        unsafe {
            a.replace_waiter(Some(waiter(&count)));
            b.replace_waiter(Some(waiter(&count)));
        }
        let boxed = list.insert(waiter(&count));
        // SAFETY: `a` and `b` are pinned in their boxes, which outlive the list's use of them:
        // `b` is removed below, `a` is drained before it is dropped.
        unsafe {
            list.push(WaiterKey::of(a.as_ref()));
            list.push(WaiterKey::of(b.as_ref()));
        }
        list.insert(waiter(&count));
        assert_eq!(list.len(), 4);
        // SAFETY: `b` and `boxed` are in the list.
        unsafe {
            assert!(list.remove(WaiterKey::of(b.as_ref())).is_some());
            assert!(list.remove(boxed).is_some());
        }
        assert!(!b.is_notified(), "an unlinked entry is not notified");
        notify_all(&mut list);
        assert_eq!(
            a.notified(),
            Some(Error::Canceled),
            "the drain marks inline entries with the error"
        );
        // `a` is its owner's again; dropping it does not drop the moved-out waiter again.
        drop(a);
        assert_eq!(count.0.load(Ordering::Relaxed), 2);
        assert_eq!(std::sync::Arc::strong_count(&count), 1, "nothing leaked");
    }

    #[test]
    fn a_dropped_list_frees_its_boxed_entries() {
        let count = std::sync::Arc::new(Count(AtomicUsize::new(0)));
        let mut list = WaiterList::default();
        for _ in 0..4 {
            list.insert(waiter(&count));
        }
        drop(list);
        assert_eq!(count.0.load(Ordering::Relaxed), 0, "dropped, not woken");
        assert_eq!(std::sync::Arc::strong_count(&count), 1, "nothing leaked");
    }

    /// The mark carries the node's error, so a woken owner reads neither the node nor its
    /// lock: a deadline's drain marks `DeadlineExceeded`.
    #[test]
    fn the_mark_carries_the_error() {
        let count = std::sync::Arc::new(Count(AtomicUsize::new(0)));
        let mut list = WaiterList::default();
        let a = Box::pin(Entry::new());
        assert_eq!(a.notified(), None);
        // SAFETY: not linked yet; pinned in its box, drained before it is dropped.
        unsafe {
            a.replace_waiter(Some(waiter(&count)));
            list.push(WaiterKey::of(a.as_ref()));
        }
        let mut taken = Vec::new();
        list.drain(Error::DeadlineExceeded, |w| taken.push(w));
        assert_eq!(a.notified(), Some(Error::DeadlineExceeded));
        assert_eq!(taken.len(), 1);
        drop(taken);
        drop(a);
        assert_eq!(std::sync::Arc::strong_count(&count), 1, "nothing leaked");
    }
}
