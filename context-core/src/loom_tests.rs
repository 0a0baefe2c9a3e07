//! loom model tests: every interleaving (up to `LOOM_MAX_PREEMPTIONS` preemptions) of the races
//! that matter for the tree. Run them with
//!
//! ```text
//! LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p go-context --lib loom_ -- --nocapture
//! ```
//!
//! (`--nocapture` shows how many interleavings each model explored; `LOOM_MAX_PREEMPTIONS=100`
//! is exhaustive for these models: 46 s in a debug build, 17 s with `--release`, which turns
//! the debug assertions off.)
//!
//! Under `--cfg loom` the node locks, the state atomics and the parking of blocked threads are
//! loom's (see `sync.rs`); `Arc` stays std's, so each model checks for leaks itself with
//! [`Weak`]s. Timers stay out of the models (the timer thread lives outside them), and
//! `after_func` callbacks run on the notifying thread once its locks are released.
//!
//! A lost wake-up shows as a loom deadlock ("every thread is blocked"), a lock taken in the
//! wrong order as a deadlock too, and a broken invariant as a failed assertion in some
//! interleaving, which loom prints.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex as StdMutex, Weak};
use std::task::{Context as TaskContext, Poll, Wake, Waker};

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

use crate::sync::Arc;
use crate::tree::{self, Node};
use crate::{Context, Done, Error};

/// A fresh, cancellable root: nothing from other models is shared.
fn root() -> (Context, crate::CancelHandle) {
    Context::background().with_cancel()
}

fn weak(ctx: &Context) -> Weak<Node> {
    Arc::downgrade(&ctx.node)
}

fn children(ctx: &Context) -> usize {
    tree::child_count(&ctx.node)
}

fn cause_text(ctx: &Context) -> Option<String> {
    ctx.cause().map(|c| c.to_string())
}

#[track_caller]
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        // Bounded by default so the whole module runs in minutes on 2 cores; set
        // LOOM_MAX_PREEMPTIONS to search deeper.
        builder.preemption_bound = Some(2);
    }
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&runs);
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    // Shown with `--nocapture`: how many interleavings were explored.
    eprintln!(
        "{}: {} interleavings",
        std::panic::Location::caller(),
        runs.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// A waker's wake-up count: the one loom atomic of a [`CountingWaker`] (its `wake` adds one).
struct Wakes(AtomicUsize);

impl Wake for Wakes {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A waker that counts its wake-ups. Its [`Waker`]s share one std `Arc` (invisible to loom),
/// so its strong count shows whether a waiter entry still holds one of them.
struct CountingWaker(std::sync::Arc<Wakes>);

impl CountingWaker {
    fn new() -> Self {
        Self(std::sync::Arc::new(Wakes(AtomicUsize::new(0))))
    }

    /// A waker that counts here; held, it adds one to [`CountingWaker::strong_count`].
    fn waker(&self) -> Waker {
        Waker::from(std::sync::Arc::clone(&self.0))
    }

    /// How many times it has been woken (one loom load).
    fn woken(&self) -> usize {
        self.0 .0.load(Ordering::SeqCst)
    }

    /// 1 (this handle) plus every waker of it still alive, a waiter entry's included.
    fn strong_count(&self) -> usize {
        std::sync::Arc::strong_count(&self.0)
    }

    /// Polls `done` once with a waker of its own, dropped after the poll (a pending `Done`
    /// keeps its clone).
    fn poll(&self, done: &mut Pin<Box<Done>>) -> Poll<Error> {
        poll_once(done, &self.waker())
    }
}

/// Polls a pinned `done()` future once with `waker`.
fn poll_once(done: &mut Pin<Box<Done>>, waker: &Waker) -> Poll<Error> {
    done.as_mut().poll(&mut TaskContext::from_waker(waker))
}

// ===== cancel racing derive =====

/// A child derived while its parent is being cancelled is either linked (and then reached by the
/// cancellation) or born done: never left live under a done parent, never left in the list.
#[test]
fn loom_cancel_races_derive() {
    model(|| {
        let (parent, cancel) = root();
        let p = parent.clone();
        let deriver = thread::spawn(move || {
            let parent_was_done = p.is_done();
            let (child, child_cancel) = p.with_cancel();
            // Through a value node: links to the same cancel node.
            let (grand, grand_cancel) = child.with_value(7u32).with_cancel();
            if parent_was_done {
                // Born done. (A parent seen done only *after* the derive may still be walking
                // its subtree: only the return of `cancel` promises the whole subtree is done.)
                assert!(child.is_done() && grand.is_done());
            }
            (child, child_cancel, grand, grand_cancel)
        });
        cancel.cancel();
        // Every descendant that exists now reports done (propagation is synchronous).
        let (child, child_cancel, grand, grand_cancel) = deriver.join().unwrap();
        assert!(parent.is_done());
        assert_eq!(child.err(), Some(Error::Canceled));
        assert_eq!(grand.err(), Some(Error::Canceled));
        assert_eq!(children(&parent), 0, "a done parent keeps no children");
        assert_eq!(children(&child), 0);
        let weak_child = weak(&child);
        let weak_grand = weak(&grand);
        drop((child, child_cancel, grand, grand_cancel));
        assert!(weak_child.upgrade().is_none(), "child leaked");
        assert!(weak_grand.upgrade().is_none(), "grandchild leaked");
    });
}

/// Two threads derive from the same live parent at once while the last handle of another
/// child is dropped: the parent's list stays consistent (swap_remove slots) and ends up holding
/// exactly the live child.
#[test]
fn loom_concurrent_derive_and_detach() {
    model(|| {
        let (parent, _cancel) = root();
        let (first, first_cancel) = parent.with_cancel();
        let p = parent.clone();
        let deriver = thread::spawn(move || p.with_cancel());
        // Unlinking `first` (its last handle's drop) races the other thread's push onto the
        // same list.
        drop(first_cancel);
        let (second, second_cancel) = deriver.join().unwrap();
        assert!(first.is_done());
        assert!(!second.is_done());
        assert_eq!(children(&parent), 1);
        drop(second_cancel);
        assert!(second.is_done());
        assert_eq!(children(&parent), 0);
    });
}

// ===== cancel racing drop =====

/// The parent's cancellation races the drop of the child's last handle (which cancels and
/// unlinks the child): no use after unlink, nothing left in the parent's list, nothing leaked.
#[test]
fn loom_cancel_races_drop_of_child() {
    model(|| {
        let (parent, cancel) = root();
        let (child, child_cancel) = parent.with_cancel();
        let (grand, grand_cancel) = child.with_cancel();
        let weak_child = weak(&child);
        let weak_grand = weak(&grand);
        drop(child);
        let dropper = thread::spawn(move || {
            drop(child_cancel);
            // The drop of the last handle cancels synchronously, whoever wins.
            assert!(grand.is_done());
            grand
        });
        cancel.cancel();
        let grand = dropper.join().unwrap();
        assert_eq!(children(&parent), 0);
        drop(grand_cancel);
        drop(grand);
        assert!(weak_child.upgrade().is_none(), "child leaked");
        assert!(weak_grand.upgrade().is_none(), "grandchild leaked");
    });
}

/// Two clones of one handle dropped on two threads at once: exactly one drop is the last one
/// and cancels; the node leaves its parent's list and is freed.
#[test]
fn loom_last_handle_dropped_on_two_threads() {
    model(|| {
        let (parent, _cancel) = root();
        let (child, handle) = parent.with_cancel();
        let other = handle.clone();
        let weak_child = weak(&child);
        let t = thread::spawn(move || drop(other));
        drop(handle);
        t.join().unwrap();
        assert_eq!(child.err(), Some(Error::Canceled));
        assert_eq!(children(&parent), 0);
        drop(child);
        assert!(weak_child.upgrade().is_none(), "child leaked");
    });
}

/// The synchronous-propagation rule when two cancellations overlap: the parent's cancellation
/// is walking the subtree when the child's own `cancel()` (or the drop of its last handle) finds
/// the child already done. When that call returns, the grandchild must already report done.
#[test]
fn loom_overlapping_cancels_return_only_when_the_subtree_is_done() {
    model(|| {
        let (parent, cancel) = root();
        let (child, child_cancel) = parent.with_cancel();
        let (grand, _grand_cancel) = child.with_cancel();
        let (great, _great_cancel) = grand.with_cancel();
        let t = thread::spawn(move || {
            child_cancel.cancel();
            assert!(child.is_done());
            assert!(
                grand.is_done(),
                "cancel() returned before the grandchild was done"
            );
            assert!(
                great.is_done(),
                "cancel() returned before the subtree was done"
            );
        });
        cancel.cancel();
        t.join().unwrap();
    });
}

/// Three threads at once: the parent is cancelled with a cause, the child's last handle is
/// dropped, and a grandchild is derived and waited on. The wait always returns, the grandchild
/// agrees with the child on error and cause, and nothing stays linked or alive.
#[test]
fn loom_cancel_drop_derive_and_wait_at_once() {
    model(|| {
        let (parent, cancel) = root();
        let (child, child_cancel) = parent.with_cancel();
        let weak_child = weak(&child);
        let canceller = thread::spawn(move || cancel.cancel_with_cause("parent"));
        let dropper = thread::spawn(move || drop(child_cancel));
        let (grand, grand_cancel) = child.with_cancel();
        // Waited on a thread of its own, which ends right after: loom's `unpark` wakes a thread
        // blocked on anything (a `join` included), and the canceller unparks the waiter after
        // releasing its locks, possibly after the wait already returned (as std allows).
        let g = grand.clone();
        let waiter = thread::spawn(move || g.wait());
        assert_eq!(waiter.join().unwrap(), Error::Canceled);
        canceller.join().unwrap();
        dropper.join().unwrap();
        let c = cause_text(&child).unwrap();
        assert!(c == "parent" || c == "context canceled", "{c}");
        assert_eq!(cause_text(&grand).unwrap(), c);
        assert_eq!(children(&parent), 0);
        assert_eq!(children(&child), 0);
        let weak_grand = weak(&grand);
        drop((child, grand, grand_cancel));
        assert!(weak_child.upgrade().is_none(), "child leaked");
        assert!(weak_grand.upgrade().is_none(), "grandchild leaked");
    });
}

// ===== cancel racing a waiter's registration =====

/// A task awaiting `done()` while another thread cancels: it is always woken (a lost wake-up
/// would leave loom with every thread blocked).
#[test]
fn loom_cancel_races_async_waiter() {
    model(|| {
        let (parent, cancel) = root();
        let child = parent.with_value("through a value node");
        let waiter = thread::spawn(move || loom::future::block_on(child.done()));
        cancel.cancel();
        assert_eq!(waiter.join().unwrap(), Error::Canceled);
    });
}

/// A thread blocked in `wait()` while another thread cancels: always unparked.
#[test]
fn loom_cancel_races_blocking_wait() {
    model(|| {
        let (parent, cancel) = root();
        let (child, _child_cancel) = parent.with_cancel();
        let waiter = thread::spawn(move || child.wait());
        cancel.cancel();
        assert_eq!(waiter.join().unwrap(), Error::Canceled);
    });
}

/// `wait_timeout(0)` never parks: it reports the state at that moment, and is consistent with
/// the error afterwards.
#[test]
fn loom_cancel_races_zero_timeout_wait() {
    model(|| {
        let (ctx, cancel) = root();
        let c = ctx.clone();
        let waiter = thread::spawn(move || {
            let seen = c.wait_timeout(std::time::Duration::ZERO);
            if let Some(e) = seen {
                assert_eq!(c.err(), Some(e));
            }
            seen
        });
        cancel.cancel();
        let seen = waiter.join().unwrap();
        assert!(matches!(seen, None | Some(Error::Canceled)));
    });
}

/// A `done()` future polled once and then dropped while another thread cancels: it is woken at
/// most once, and afterwards no waiter entry keeps its waker (the registration is removed by the
/// drop or taken by the cancellation, never both, never neither).
#[test]
fn loom_cancel_races_done_future_drop() {
    model(|| {
        let (ctx, cancel) = root();
        let counter = CountingWaker::new();
        let waker = counter.waker();
        let c = ctx.clone();
        let poller = thread::spawn(move || {
            let mut done = Box::pin(c.done());
            let first = poll_once(&mut done, &waker);
            drop(done);
            drop(waker);
            first
        });
        cancel.cancel();
        let first = poller.join().unwrap();
        let wakes = counter.woken();
        match first {
            Poll::Ready(e) => {
                assert_eq!(e, Error::Canceled);
                assert_eq!(wakes, 0);
            }
            Poll::Pending => assert!(wakes <= 1),
        }
        assert_eq!(counter.strong_count(), 1, "a waker is still registered");
        assert_eq!(ctx.err(), Some(Error::Canceled));
    });
}

/// A `done()` future polled again with a different waker while another thread cancels: the
/// waker swap (done in two steps, so that no user waker code runs under the lock) never loses
/// the wake-up. If the poll returns `Pending`, the *new* waker is woken.
#[test]
fn loom_re_poll_with_a_new_waker_races_cancel() {
    model(|| {
        let (ctx, cancel) = root();
        let (a, b) = (CountingWaker::new(), CountingWaker::new());
        let mut done = Box::pin(ctx.done());
        assert!(a.poll(&mut done).is_pending());
        let waker_b = b.waker();
        let poller = thread::spawn(move || {
            let second = poll_once(&mut done, &waker_b);
            (second, done)
        });
        cancel.cancel();
        let (second, done) = poller.join().unwrap();
        let (wakes_a, wakes_b) = (a.woken(), b.woken());
        match second {
            Poll::Pending => assert_eq!((wakes_a, wakes_b), (0, 1), "the new waker is woken"),
            Poll::Ready(e) => {
                assert_eq!(e, Error::Canceled);
                assert_eq!(wakes_b, 0);
                assert!(wakes_a <= 1);
            }
        }
        drop(done);
        assert_eq!(a.strong_count(), 1, "old waker kept");
        assert_eq!(b.strong_count(), 1, "new waker kept");
    });
}

/// The intrusive waiter list with three entries: the middle one is unlinked (its `done()`
/// dropped) on one thread while another thread cancels, which takes the whole list. Either the
/// unlink happens first (the list is relinked around it: the other two are still woken) or the
/// cancellation does (the drop finds the node done and leaves the entry to it). Every entry is
/// freed exactly once (the wakers' strong counts), and the ends are woken exactly once.
#[test]
fn loom_waiter_list_unlink_races_cancel() {
    model(|| {
        let (ctx, cancel) = root();
        let wakers: Vec<_> = (0..3).map(|_| CountingWaker::new()).collect();
        let mut futures: Vec<_> = wakers
            .iter()
            .map(|w| {
                let mut done = Box::pin(ctx.done());
                assert!(w.poll(&mut done).is_pending());
                done
            })
            .collect();
        assert_eq!(tree::waiter_count(&ctx.node), 3);
        let middle = futures.remove(1);
        let dropper = thread::spawn(move || drop(middle));
        cancel.cancel();
        dropper.join().unwrap();
        assert_eq!(tree::waiter_count(&ctx.node), 0);
        let woken: Vec<_> = wakers.iter().map(CountingWaker::woken).collect();
        assert_eq!((woken[0], woken[2]), (1, 1), "the ends are woken once");
        assert!(woken[1] <= 1);
        drop(futures);
        for w in &wakers {
            assert_eq!(w.strong_count(), 1, "an entry kept its waker");
        }
    });
}

// ===== two cancels, two causes =====

/// Two threads cancel one context with different causes: exactly one cause wins, and every
/// descendant (direct, through a value node, deeper) reports that same cause from the moment
/// either `cancel_with_cause` returns.
#[test]
fn loom_two_causes_one_winner() {
    model(|| {
        let (ctx, cancel) = root();
        let (child, _child_cancel) = ctx.with_value(1u8).with_cancel();
        let (grand, _grand_cancel) = child.with_cancel();
        let other = cancel.clone();
        let g = grand.clone();
        let t = thread::spawn(move || {
            other.cancel_with_cause("b");
            cause_text(&g).expect("done after cancel returns")
        });
        cancel.cancel_with_cause("a");
        let seen_here = cause_text(&grand).expect("done after cancel returns");
        let seen_there = t.join().unwrap();
        let winner = cause_text(&ctx).unwrap();
        assert!(winner == "a" || winner == "b");
        assert_eq!(seen_here, winner);
        assert_eq!(seen_there, winner);
        assert_eq!(cause_text(&child).unwrap(), winner);
        assert_eq!(ctx.err(), Some(Error::Canceled));
    });
}

/// A child cancelled with its own cause while its parent is cancelled with another: the child
/// keeps whichever reached it first, and its subtree agrees with it.
#[test]
fn loom_parent_and_child_causes() {
    model(|| {
        let (parent, cancel) = root();
        let (child, child_cancel) = parent.with_cancel();
        let (grand, _grand_cancel) = child.with_cancel();
        let t = thread::spawn(move || child_cancel.cancel_with_cause("child"));
        cancel.cancel_with_cause("parent");
        t.join().unwrap();
        assert_eq!(cause_text(&parent).unwrap(), "parent");
        let c = cause_text(&child).unwrap();
        assert!(c == "parent" || c == "child");
        assert_eq!(cause_text(&grand).unwrap(), c);
    });
}

// ===== after_func racing stop =====

/// `stop()` racing the cancellation: the callback runs exactly when `stop` returned false.
#[test]
fn loom_after_func_races_stop() {
    model(|| {
        let (ctx, cancel) = root();
        let ran = std::sync::Arc::new(AtomicBool::new(false));
        let r = std::sync::Arc::clone(&ran);
        let registration = ctx.after_func(move || {
            assert!(!r.swap(true, Ordering::SeqCst), "the callback ran twice");
        });
        let t = thread::spawn(move || cancel.cancel());
        let stopped = registration.stop();
        t.join().unwrap();
        // Under loom the callback runs inline on the cancelling thread, so it has run by now.
        assert_eq!(ran.load(Ordering::SeqCst), !stopped);
        assert!(!registration.stop(), "only the first stop can stop it");
    });
}

/// Registering a callback while the context is being cancelled: it runs exactly once (either
/// taken by the cancellation or run at registration on a done context), unless stopped first.
#[test]
fn loom_after_func_registration_races_cancel() {
    model(|| {
        let (ctx, cancel) = root();
        let runs = std::sync::Arc::new(AtomicUsize::new(0));
        let r = std::sync::Arc::clone(&runs);
        let c = ctx.clone();
        let t = thread::spawn(move || {
            let registration = c.after_func(move || {
                r.fetch_add(1, Ordering::SeqCst);
            });
            // Keep the registration alive past the cancel.
            registration
        });
        cancel.cancel();
        let registration = t.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(!registration.stop());
    });
}

// ===== cancel racing a callback that derives and cancels =====

/// An `after_func` callback that derives from and cancels other contexts while another thread
/// cancels them too: no deadlock (callbacks never run under our locks) and a consistent tree.
#[test]
fn loom_callback_that_cancels_races_cancel() {
    model(|| {
        let (a, cancel_a) = root();
        let (b, cancel_b) = root();
        let cancel_b2 = cancel_b.clone();
        let derived = std::sync::Arc::new(StdMutex::new(None));
        let d = std::sync::Arc::clone(&derived);
        let b2 = b.clone();
        let _registration = a.after_func(move || {
            let pair = b2.with_cancel();
            cancel_b2.cancel_with_cause("from the callback");
            *d.lock().unwrap() = Some(pair);
        });
        let t = thread::spawn(move || cancel_b.cancel_with_cause("from the thread"));
        cancel_a.cancel();
        t.join().unwrap();
        let (child, _child_cancel) = derived.lock().unwrap().take().unwrap();
        assert!(child.is_done());
        assert_eq!(cause_text(&child), cause_text(&b));
        assert_eq!(children(&b), 0);
    });
}

// ===== loom_done: the inline waiter entry of `Done` and `wait()` (helper `done`) =====
//
// The entry of a `Done` future lives inside it (and a blocked thread's on its stack): the
// cancellation drains the list under the node's lock, moving each waiter out and marking each
// inline entry notified as its last access, then wakes after releasing the lock. These models
// free an entry at every point of that walk; loom's cells (waiter_list.rs) report any access
// to an entry that the lock or the mark does not order, and the wakers' counts report a waiter
// kept, lost or dropped twice.

/// Three waiters in one list, in list order: an inline `Done` entry (dropped on another thread
/// while the cancellation walks), a boxed `after_func` entry, and another inline one (kept).
/// Whichever side wins, the walker never touches the dropped entry after its owner freed it,
/// the kept one and the callback run once, and nothing is left registered.
#[test]
fn loom_done_inline_entry_dropped_while_the_cancel_walks() {
    model(|| {
        let (ctx, cancel) = root();
        let (kept, gone) = (CountingWaker::new(), CountingWaker::new());
        let mut last = Box::pin(ctx.done());
        assert!(kept.poll(&mut last).is_pending());
        let ran = std::sync::Arc::new(AtomicUsize::new(0));
        let r = std::sync::Arc::clone(&ran);
        let _registration = ctx.after_func(move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        let mut first = Box::pin(ctx.done());
        assert!(gone.poll(&mut first).is_pending());
        assert_eq!(tree::waiter_count(&ctx.node), 3);
        let dropper = thread::spawn(move || drop(first));
        cancel.cancel();
        dropper.join().unwrap();
        assert_eq!(kept.woken(), 1, "the kept entry is woken once");
        assert!(gone.woken() <= 1);
        assert_eq!(ran.load(Ordering::SeqCst), 1, "the callback ran once");
        assert_eq!(kept.poll(&mut last), Poll::Ready(Error::Canceled));
        drop(last);
        assert_eq!(kept.strong_count(), 1, "the kept waker leaked");
        assert_eq!(gone.strong_count(), 1, "the dropped waker leaked");
    });
}

/// A task polls its `Done` with one waker, then awaits it with another (`block_on`'s: the waker
/// swap races the cancel), and frees it the moment it resumes, while the canceller may still be
/// walking the list: its entry is the head, so the walker reads the next entry (another
/// `Done`'s) from it before marking it. The task always resumes (a swap never loses the
/// wake-up), the replaced waker is dropped, never kept, and the entry behind is woken once.
#[test]
fn loom_done_re_polled_with_a_new_waker_and_freed_at_its_mark() {
    model(|| {
        let (ctx, cancel) = root();
        let (behind, old) = (CountingWaker::new(), CountingWaker::new());
        let mut other = Box::pin(ctx.done());
        assert!(behind.poll(&mut other).is_pending());
        let mut head = Box::pin(ctx.done());
        assert!(old.poll(&mut head).is_pending());
        let task = thread::spawn(move || {
            let err = loom::future::block_on(head.as_mut());
            drop(head);
            err
        });
        cancel.cancel();
        assert_eq!(task.join().unwrap(), Error::Canceled);
        // Woken only if the cancel came before the swap (then `block_on` finds the mark).
        assert!(old.woken() <= 1);
        assert_eq!(behind.woken(), 1);
        drop(other);
        assert_eq!(old.strong_count(), 1, "the replaced waker was kept");
        assert_eq!(behind.strong_count(), 1);
    });
}

// ===== loom_tree: unowned child links (tree invariant 3) =====
//
// A children list holds its children by address only. The race to rule out: a child cancelled
// by the drop of its last handle, whose `detach` finds the link parent already done while the
// parent's cancellation still holds the child's address in its work list. The child must not
// be freed before that cancellation has let go: `CancelNode`'s loom-only `pins` count asserts
// it when the child is dropped.

/// The root's cancellation (the origin, holding the child's address) races the drop of the
/// child's last handle, the only thing keeping the child alive.
#[test]
fn loom_tree_unowned_child_freed_while_parent_cancels() {
    model(|| {
        let (parent, cancel) = root();
        let (child, child_cancel) = parent.with_cancel();
        let weak_child = weak(&child);
        drop(child);
        let dropper = thread::spawn(move || drop(child_cancel));
        cancel.cancel();
        dropper.join().unwrap();
        assert_eq!(children(&parent), 0);
        assert!(weak_child.upgrade().is_none(), "child leaked");
    });
}

/// The same with the child two levels down, through a value node: the link parent is not the
/// origin, so the child's `detach` has to climb to the origin's lock.
#[test]
fn loom_tree_unowned_grandchild_freed_while_ancestor_cancels() {
    model(|| {
        let (root_ctx, cancel) = root();
        let (mid, _mid_cancel) = root_ctx.with_cancel();
        let (grand, grand_cancel) = mid.with_value(1u8).with_cancel();
        let weak_grand = weak(&grand);
        drop(grand);
        let dropper = thread::spawn(move || drop(grand_cancel));
        cancel.cancel();
        dropper.join().unwrap();
        assert!(mid.is_done());
        assert_eq!(children(&mid), 0);
        assert!(weak_grand.upgrade().is_none(), "grandchild leaked");
    });
}

/// Two siblings dropped on two threads while their parent is cancelled: each `detach` either
/// removes its own address (fixing the moved sibling's slot) or waits for the cancellation.
#[test]
fn loom_tree_unowned_siblings_freed_while_parent_cancels() {
    model(|| {
        let (parent, cancel) = root();
        let (a, a_cancel) = parent.with_cancel();
        let (b, b_cancel) = parent.with_cancel();
        let (weak_a, weak_b) = (weak(&a), weak(&b));
        drop((a, b));
        let dropper = thread::spawn(move || drop(a_cancel));
        let canceller = thread::spawn(move || cancel.cancel());
        drop(b_cancel);
        dropper.join().unwrap();
        canceller.join().unwrap();
        assert_eq!(children(&parent), 0);
        assert!(
            weak_a.upgrade().is_none() && weak_b.upgrade().is_none(),
            "leaked"
        );
    });
}

// ===== loom_lock_*: the lock in a cancel node's state word (tree/lock.rs) =====
//
// The lock alone, around a loom `UnsafeCell` (which fails the model on any access not ordered
// by the lock), in a word whose other bits change beside it. Under loom a contended locker
// parks at once (no spinning) on the one bucket every word shares. (In the models above the
// nodes' locks block on a loom mutex instead of parking: see `WordLock::lock`.)

mod lock_models {
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::Ordering;
    use loom::thread;

    use super::model;
    use crate::sync::Arc;
    use crate::tree::{WordLock, PARKED};

    fn add_one(lock: &WordLock<UnsafeCell<usize>>) {
        let guard = lock.lock();
        // SAFETY: the lock is held; loom checks that no other access overlaps.
        guard.with_mut(|n| unsafe { *n += 1 });
    }

    fn read(lock: &WordLock<UnsafeCell<usize>>) -> usize {
        let guard = lock.lock();
        // SAFETY: as in `add_one`.
        guard.with(|n| unsafe { *n })
    }

    /// Two threads increment under the lock, one of them also changing another bit of the word
    /// without it: no access overlaps (loom's cell checks), no increment is lost, the other bit
    /// is kept, and nobody is left parked. (Three lockers: the next model.)
    #[test]
    fn loom_lock_mutual_exclusion() {
        model(|| {
            let lock = Arc::new(WordLock::parking(0, UnsafeCell::new(0usize)));
            let other = {
                let lock = Arc::clone(&lock);
                thread::spawn(move || {
                    add_one(&lock);
                    lock.word().fetch_add(1, Ordering::Relaxed);
                })
            };
            add_one(&lock);
            other.join().unwrap();
            assert_eq!(read(&lock), 2);
            assert_eq!(lock.word().load(Ordering::Relaxed), 1);
        });
    }

    /// A locker that finds the lock held parks; the holder's unlock races its parking (the
    /// check of `LOCKED`, the setting of `PARKED`, the wait): in every interleaving it is
    /// woken (a lost wake-up is a loom deadlock) and sees what the holder wrote and published.
    #[test]
    fn loom_lock_no_lost_wake_up_of_a_parker() {
        model(|| {
            let lock = Arc::new(WordLock::parking(0, UnsafeCell::new(0usize)));
            let mut guard = lock.lock();
            let waiter = {
                let lock = Arc::clone(&lock);
                thread::spawn(move || {
                    let guard = lock.lock();
                    // SAFETY: the lock is held.
                    let seen = guard.with(|n| unsafe { *n });
                    drop(guard);
                    (seen, lock.word().load(Ordering::Acquire) & 1)
                })
            };
            // SAFETY: the lock is held.
            guard.with_mut(|n| unsafe { *n = 7 });
            guard.publish_on_unlock(1);
            drop(guard);
            assert_eq!(waiter.join().unwrap(), (7, 1));
            assert_eq!(lock.word().load(Ordering::Relaxed) & PARKED, 0);
        });
    }

    /// Two parkers on one word (and so one bucket) and the holder's unlock: both get through
    /// (the unlock wakes every waiter of the bucket; the one that loses the race parks again
    /// and is woken by the winner's unlock).
    #[test]
    fn loom_lock_two_parkers_both_get_through() {
        model(|| {
            let lock = Arc::new(WordLock::parking(0, UnsafeCell::new(0usize)));
            let guard = lock.lock();
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let lock = Arc::clone(&lock);
                    thread::spawn(move || add_one(&lock))
                })
                .collect();
            drop(guard);
            for t in waiters {
                t.join().unwrap();
            }
            assert_eq!(read(&lock), 2);
        });
    }
}

// ===== loom_wake: the lock-free re-poll with the stored waker (helper `wake`) =====
//
// A `Done` re-polled with the waker already stored in its linked entry takes no lock: its owner
// reads the entry's waiter while the cancellation may be moving it out under the node's lock.
// The drain only reads an inline entry's waiter (waiter-list invariant 3), so loom's cells
// accept the two reads at once; the models check that no wake-up is lost and every waker is
// dropped once.

/// A task re-polls its `Done` with the stored waker (no lock) while another thread cancels,
/// then awaits it and frees it at once: it always resumes, the stored waker is woken at most
/// once and never kept.
#[test]
fn loom_wake_same_waker_re_poll_races_cancel() {
    model(|| {
        let (ctx, cancel) = root();
        let stored = CountingWaker::new();
        let mut done = Box::pin(ctx.done());
        let waker = stored.waker();
        assert!(poll_once(&mut done, &waker).is_pending());
        let task = thread::spawn(move || {
            // The same waker: `will_wake` holds, so this poll reads the entry without the lock.
            let again = poll_once(&mut done, &waker);
            drop(waker);
            let err = match again {
                Poll::Ready(err) => err,
                Poll::Pending => loom::future::block_on(done.as_mut()),
            };
            drop(done);
            err
        });
        cancel.cancel();
        assert_eq!(task.join().unwrap(), Error::Canceled);
        assert!(stored.woken() <= 1);
        assert_eq!(
            stored.strong_count(),
            1,
            "the stored waker was kept or dropped twice"
        );
    });
}

/// Two `Done`s of one context, each re-polled with its stored waker on its own thread while a
/// third cancels: the drain reads both entries' waiters as their owners read them, and each
/// owner frees its entry as soon as it sees the mark. Both resume; no waker is kept.
#[test]
fn loom_wake_two_lock_free_re_polls_race_the_drain() {
    model(|| {
        let (ctx, cancel) = root();
        let spawn_waiter = |ctx: &Context| {
            let stored = CountingWaker::new();
            let mut done = Box::pin(ctx.done());
            let waker = stored.waker();
            assert!(poll_once(&mut done, &waker).is_pending());
            let task = thread::spawn(move || {
                if let Poll::Ready(err) = poll_once(&mut done, &waker) {
                    return err;
                }
                drop(waker);
                loom::future::block_on(done.as_mut())
            });
            (stored, task)
        };
        let (first, t1) = spawn_waiter(&ctx);
        let (second, t2) = spawn_waiter(&ctx);
        cancel.cancel();
        assert_eq!(t1.join().unwrap(), Error::Canceled);
        assert_eq!(t2.join().unwrap(), Error::Canceled);
        assert_eq!(first.strong_count(), 1);
        assert_eq!(second.strong_count(), 1);
    });
}

/// `err()` is `Some` exactly when `done()` is ready, also on the lock-free re-poll: the state
/// is set before the drain marks the entry, so a re-poll that finds no mark but sees the state
/// must report ready. Without the state check in `Done::poll` this model fails (the observer
/// runs between the canceller's state and its mark); `core_wait`'s
/// `err_is_some_exactly_when_done_is_ready_and_wait_returns` caught it on real threads first.
/// The observer yields between re-polls, as a `select!` loop between turns.
#[test]
fn loom_wake_err_some_implies_done_ready_on_a_lock_free_re_poll() {
    model(|| {
        let (ctx, cancel) = root();
        let observer = thread::spawn(move || {
            let stored = CountingWaker::new();
            let waker = stored.waker();
            let mut done = Box::pin(ctx.done());
            if let Poll::Ready(err) = poll_once(&mut done, &waker) {
                drop(done);
                drop(waker);
                return (err, stored);
            }
            // Re-polls with the stored waker, each after reading the state.
            let result = loop {
                let err = ctx.err();
                let polled = poll_once(&mut done, &waker);
                if let Some(err) = err {
                    assert_eq!(polled, Poll::Ready(err), "err() was Some, done() pending");
                    break err;
                }
                if let Poll::Ready(err) = polled {
                    break err;
                }
                thread::yield_now();
            };
            drop(done);
            drop(waker);
            (result, stored)
        });
        cancel.cancel();
        let (result, stored) = observer.join().unwrap();
        assert_eq!(result, Error::Canceled);
        // Checked once `cancel` has returned: the cancellation moves the stored waker out under
        // the lock and wakes (and drops) it after the unlock, so the observer may see the mark
        // and drop its `Done` while the canceller still holds the waker.
        assert_eq!(stored.strong_count(), 1);
    });
}
