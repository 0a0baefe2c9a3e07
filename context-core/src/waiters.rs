//! Waiting for a context to be done: the [`Done`] future for any executor, and blocking waits
//! for threads. Both keep their waiter list entry inline (in the pinned future, on the blocked
//! thread's stack) through the one [`Registration`] type below, and differ only in how they
//! sleep: registering allocates nothing.
//!
//! The pattern is "check, register, check again": `register_inline` re-checks the state under
//! the node's lock, and cancellation drains every waiter under that same lock (tree invariant
//! 4), so a wake-up can never be lost between the check and the registration.
//!
//! # The hand-off of an inline entry
//!
//! A [`Registration`] is *linked* from its registration until it is unregistered (under the
//! node's lock, while the node is live) or until its owner sees it *notified*: the
//! cancellation, under the node's lock, moves the waiter out of the entry and then marks it
//! (`Release`); the owner's `Acquire` load of the mark pairs with it (waiter-list invariant 4).
//! A linked entry is never freed or reused: `Done`'s `Drop` and `block_until`'s guard unlink it
//! unless they saw the mark, and an unlink that finds the node done (under the lock) knows the
//! drain is finished with it. The canceller wakes the moved-out waiter after releasing the
//! lock, never touching the entry again, so the owner may be gone by then.
//!
//! # What each poll costs
//!
//! The first pending poll takes the node's lock once (to link). After the wake-up, `poll` and
//! `drop` are one `Acquire` load of the mark each, and no lock. A re-poll before the wake-up
//! with a waker that `will_wake` the stored one (the usual `select!` loop) reads the entry's
//! waiter without the lock (the drain only reads it too: waiter-list invariant 3); another
//! waker is swapped in under the lock, once. Only a drop before the wake-up unlinks, under the
//! lock.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Instant;

use crate::error::Error;
use crate::sync::thread;
use crate::tree::{CancelNode, Entry, Waiter, WaiterKey};
use crate::Context;

/// An inline waiter-list entry and whether its owner has it linked: the machinery shared by
/// [`Done`] and [`block_until`].
struct Registration {
    entry: Entry,
    /// Set once linked; cleared by the owner when it unregisters it or sees it notified. Only
    /// the owner reads or writes it.
    linked: bool,
}

impl Registration {
    fn new() -> Registration {
        Registration {
            entry: Entry::new(),
            linked: false,
        }
    }

    /// Links the entry with `waiter` into `core`'s list; `Err` if the node is done (the waiter
    /// is dropped then, with no lock held).
    fn register(self: Pin<&mut Self>, core: &CancelNode, waiter: Waiter) -> Result<(), Error> {
        // SAFETY: nothing is moved out of `self`; the entry stays where it is.
        let this = unsafe { self.get_unchecked_mut() };
        debug_assert!(!this.linked);
        // SAFETY: it is not linked, so it is ours alone.
        drop(unsafe { this.entry.replace_waiter(Some(waiter)) });
        // SAFETY: pinned, as `self` is.
        let entry = unsafe { Pin::new_unchecked(&this.entry) };
        // SAFETY: not linked, and pinned; whoever owns `self` unregisters it or sees it
        // notified before dropping it (`Done::drop`, `block_until`'s guard).
        match unsafe { core.register_inline(entry) } {
            Ok(_) => {
                this.linked = true;
                Ok(())
            }
            Err(err) => {
                // SAFETY: not linked: ours alone.
                drop(unsafe { this.entry.replace_waiter(None) });
                Err(err)
            }
        }
    }

    fn key(&self) -> WaiterKey {
        // SAFETY: only used on a pinned registration (every caller holds `Pin<&mut Self>`).
        WaiterKey::of(unsafe { Pin::new_unchecked(&self.entry) })
    }

    /// If linked and notified: no longer linked, and the node's error, read from the mark
    /// (the node itself is not touched). One `Acquire` load, no lock.
    fn take_notified(self: Pin<&mut Self>) -> Option<Error> {
        // SAFETY: only `linked` is written.
        let this = unsafe { self.get_unchecked_mut() };
        if !this.linked {
            return None;
        }
        let err = this.entry.notified();
        if err.is_some() {
            this.linked = false;
        }
        err
    }

    /// Makes sure the linked entry will wake `waker`: `Ok` if it will, `Err` if the node is done
    /// (and the entry no longer linked). The caller has just seen the entry not notified. A
    /// waker that `will_wake` the same task as the stored one costs a comparison and no lock;
    /// another one is cloned, and the one it replaces dropped, outside the node's lock (tree
    /// invariant 6: both may run user code, which may use this very context).
    fn update(self: Pin<&mut Self>, core: &CancelNode, waker: &Waker) -> Result<(), ()> {
        // SAFETY: only `linked` is written.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: we own the entry, it is linked, and the caller saw it not notified. If the
        // drain moves the stored waker out right after that check, it wakes it, and it wakes
        // the same task as `waker`: nothing is lost.
        if unsafe { this.entry.will_wake(waker) } {
            return Ok(());
        }
        let key = this.key();
        let new = Some(Waiter::Task(waker.clone()));
        let swap = move |w: &mut Option<Waiter>| std::mem::replace(w, new);
        // `old` (or `new`, if the node is done by now) is dropped after the lock.
        // SAFETY: `key` is registered on this node and was never unregistered (`linked`).
        match unsafe { core.with_waiter(key, swap) } {
            Some(old) => {
                drop(old);
                Ok(())
            }
            None => {
                // Found done under the lock: the drain took the waiter and is finished.
                this.linked = false;
                Err(())
            }
        }
    }

    /// Unlinks the entry if it is linked: `true` if it was still registered, `false` if the
    /// cancellation took it first (or it was not linked). Afterwards the entry is the owner's
    /// alone and may be freed.
    fn unregister(self: Pin<&mut Self>, core: &CancelNode) -> bool {
        // SAFETY: only `linked` is written.
        let this = unsafe { self.get_unchecked_mut() };
        if !this.linked {
            return false;
        }
        this.linked = false;
        // Notified: the drain is finished with it (its `Release` pairs with this `Acquire`).
        if this.entry.is_notified() {
            return false;
        }
        // SAFETY: registered on this node and never unregistered (it was `linked`).
        let waiter = unsafe { core.unregister(this.key()) };
        // Dropped (it may be a waker: user code) after the lock.
        let was_registered = waiter.is_some();
        drop(waiter);
        was_registered
    }
}

/// A future that resolves with the context's [`Error`] once the context is done: Go's
/// `<-ctx.Done()`, followed by `ctx.Err()`.
///
/// Made by [`Context::done`]. It works on any executor: it only stores the task's
/// [`Waker`], in a waiter entry that lives inside the future itself, so
/// awaiting it allocates nothing. Dropping it while pending unregisters it, so it leaves
/// nothing behind. For a context that can never be done (such as [`Context::background`]) it
/// stays pending forever and registers nothing.
///
/// # Pinning
///
/// `Done` is `!Unpin` (as tokio's `Notified` and tokio-util's `WaitForCancellationFuture`
/// are): the context's waiter list points into it while it waits. `.await` and
/// `tokio::select!` take it by value and pin it for you. To poll it by hand, or to keep one
/// across the iterations of a loop and `select!` on `&mut`, pin it first, with
/// [`std::pin::pin!`] (on the stack) or [`Box::pin`]:
///
/// ```
/// use go_context::Context;
/// use std::future::Future;
/// use std::task::{Context as TaskContext, Poll, Waker};
///
/// let (ctx, cancel) = Context::background().with_cancel();
/// let mut done = std::pin::pin!(ctx.done());
/// let mut cx = TaskContext::from_waker(Waker::noop());
/// assert!(done.as_mut().poll(&mut cx).is_pending());
/// cancel.cancel();
/// assert!(done.as_mut().poll(&mut cx).is_ready());
/// ```
///
/// # Cancellation safety
///
/// Dropping a `Done` is always safe and loses nothing: a new `done()` future sees the same
/// state.
///
/// # Examples
///
/// ```
/// use go_context::{Context, Error};
///
/// let (ctx, cancel) = Context::background().with_cancel();
/// let waiter = std::thread::spawn(move || futures_executor::block_on(ctx.done()));
/// cancel.cancel();
/// assert_eq!(waiter.join().unwrap(), Error::Canceled);
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Done {
    ctx: Context,
    /// Linked on the first pending poll, unlinked by `drop` unless notified (module docs).
    registration: Registration,
}

// SAFETY: the entry inside is reached by other threads only through the context's waiter list,
// under the node's lock, or handed back by the `Release`/`Acquire` of its notified mark
// (waiter-list invariants 3 and 4); what it holds (a `Waker`) is `Send`.
unsafe impl Send for Done {}
// SAFETY: `&Done` gives access to nothing but the context and the `linked` flag (`Debug`);
// the entry is only used through `Pin<&mut Done>` and `Drop`.
unsafe impl Sync for Done {}

impl Done {
    pub(crate) fn new(ctx: Context) -> Done {
        Done {
            ctx,
            registration: Registration::new(),
        }
    }
}

impl Future for Done {
    type Output = Error;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Error> {
        // SAFETY: `registration` is structurally pinned: it is never moved out of `Done`, and
        // only used through `Pin` below; `ctx` is not pinned (only read).
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above.
        let mut registration = unsafe { Pin::new_unchecked(&mut this.registration) };
        if registration.linked {
            // The fast path after a wake-up: the mark, which carries the error; no lock, and
            // not even the node.
            if let Some(err) = registration.as_mut().take_notified() {
                return Poll::Ready(err);
            }
            let core = (this.ctx.node.cancel_node()).expect("a linked waiter has a cancel node");
            // The state is set before the drain (both under the node's lock), and `update` may
            // take no lock: a poll that comes after `err()` returned `Some` must not report
            // pending. The entry stays linked (the drain may still be reading it): `drop`
            // waits for the mark or the lock.
            if let Some(err) = core.err() {
                return Poll::Ready(err);
            }
            return match registration.update(core, cx.waker()) {
                Ok(()) => Poll::Pending,
                Err(()) => Poll::Ready(core.err().expect("a node that took a waiter is done")),
            };
        }
        let Some(core) = this.ctx.node.cancel_node() else {
            return Poll::Pending;
        };
        if let Some(err) = core.err() {
            return Poll::Ready(err);
        }
        match registration.register(core, Waiter::Task(cx.waker().clone())) {
            Ok(()) => Poll::Pending,
            Err(err) => Poll::Ready(err),
        }
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        // Not linked (never registered, or notified and seen so): nothing to touch, not even
        // the node.
        if !self.registration.linked {
            return;
        }
        if let Some(core) = self.ctx.node.cancel_node() {
            // SAFETY: `drop` is the last use of the pinned registration (`Done` is `!Unpin`,
            // so it was not moved since it was linked).
            let registration = unsafe { Pin::new_unchecked(&mut self.registration) };
            registration.unregister(core);
        }
    }
}

impl fmt::Debug for Done {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Done")
            .field("context", &self.ctx)
            .field("registered", &self.registration.linked)
            .finish()
    }
}

pin_project_lite::pin_project! {
    /// The future [`Context::run`] returns: `fut` raced against the context's [`Done`]. It
    /// resolves to `Ok(fut's output)`, or to `Err` with the context's error once the context is
    /// done; either way `fut` is dropped in the poll that resolves it (on cancellation, at its
    /// current `.await`), not kept until the `Run` goes. On `Ok`, its [`Done`] goes in that
    /// poll too: a finished `Run` that is kept (stored, or polled through `&mut` in a
    /// `select!` loop) leaves no waiter registered and holds no reference to the context. When
    /// both are ready, done wins, and a context already done never polls `fut`. Polled again,
    /// it gives the same `Err` after an `Err`, and panics after `Ok`.
    ///
    /// The type is named so that it can sit in a struct or be a tower service's `Future`
    /// without boxing.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::Pending;
    /// use go_context::{Context, Error, Run};
    ///
    /// // A named type: what a hand-written `Service::Future` needs.
    /// struct Call {
    ///     fut: Run<Pending<u32>>,
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let call = Call { fut: ctx.run(std::future::pending()) };
    /// cancel.cancel();
    /// assert_eq!(call.fut.await, Err(Error::Canceled));
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Run<F> {
        // `None` once `fut` has won: dropped in place (unregistered), in that poll.
        #[pin]
        done: Option<Done>,
        // `None` once the race is decided: dropped in place, in that poll.
        #[pin]
        fut: Option<F>,
    }
}

// The `Option` around `done` costs no space: `Context` is a non-null pointer.
const _: () = assert!(std::mem::size_of::<Option<Done>>() == std::mem::size_of::<Done>());

impl<F> Run<F> {
    pub(crate) fn new(done: Done, fut: F) -> Run<F> {
        Run {
            done: Some(done),
            fut: Some(fut),
        }
    }
}

impl<F: Future> Future for Run<F> {
    type Output = Result<F::Output, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(done) = this.done.as_mut().as_pin_mut() else {
            panic!("`Run` polled after it completed");
        };
        if let Poll::Ready(err) = done.poll(cx) {
            this.fut.set(None);
            return Poll::Ready(Err(err));
        }
        let fut =
            (this.fut.as_mut().as_pin_mut()).expect("`fut` is kept until the race is decided");
        let out = std::task::ready!(fut.poll(cx));
        this.fut.set(None);
        this.done.set(None);
        Poll::Ready(Ok(out))
    }
}

impl<F> fmt::Debug for Run<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Blocks the current thread until `ctx` is done (`Some(error)`) or `until` passes (`None`).
/// The waiter entry lives on this stack frame (the same [`Registration`] as `Done`'s).
pub(crate) fn block_until(ctx: &Context, until: Option<Instant>) -> Option<Error> {
    let Some(core) = ctx.node.cancel_node() else {
        // Never done: just sleep (forever, without a limit).
        loop {
            match until {
                None => thread::park(),
                Some(t) => {
                    let now = Instant::now();
                    if now >= t {
                        return None;
                    }
                    thread::park_timeout(t - now);
                }
            }
        }
    };
    if let Some(err) = core.err() {
        return Some(err);
    }
    /// Unregisters on every way out, unwinding included: the entry must not be freed linked.
    struct Guard<'a> {
        core: &'a CancelNode,
        registration: Pin<&'a mut Registration>,
    }
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            self.registration.as_mut().unregister(self.core);
        }
    }
    let mut guard = Guard {
        core,
        registration: std::pin::pin!(Registration::new()),
    };
    if let Err(err) = guard
        .registration
        .as_mut()
        .register(core, Waiter::Thread(thread::current()))
    {
        return Some(err);
    }
    loop {
        if let Some(err) = guard.registration.as_mut().take_notified() {
            return Some(err);
        }
        match until {
            None => thread::park(),
            Some(t) => {
                let now = Instant::now();
                if now >= t {
                    break;
                }
                thread::park_timeout(t - now);
            }
        }
    }
    if guard.registration.as_mut().unregister(core) {
        None
    } else {
        // Done while timing out: report it, as the waiter was taken.
        core.err()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::tree;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll(done: Pin<&mut Done>, count: &Arc<Count>) -> Poll<Error> {
        let waker = Waker::from(Arc::clone(count));
        done.poll(&mut TaskContext::from_waker(&waker))
    }

    /// Inline entries at both ends and in the middle, each freed in a different way: dropped
    /// while linked (unlinked), dropped after the mark without a poll, polled ready after the
    /// mark and then dropped. Under Miri: no entry is touched after it is freed, and the list's
    /// pointers into a pinned `Done` do not conflict with the `&mut` of its polls.
    #[test]
    fn inline_entries_are_freed_by_their_owners_in_any_order() {
        let (ctx, cancel) = Context::background().with_cancel();
        let count = Arc::new(Count::default());
        let mut futures: Vec<_> = (0..5).map(|_| Box::pin(ctx.done())).collect();
        for f in &mut futures {
            assert!(poll(f.as_mut(), &count).is_pending());
        }
        // Re-polled with the same waker, then with another: the entry stays linked.
        assert!(poll(futures[0].as_mut(), &count).is_pending());
        let other = Arc::new(Count::default());
        assert!(poll(futures[0].as_mut(), &other).is_pending());
        assert_eq!(
            Arc::strong_count(&count),
            5,
            "the replaced waker was dropped"
        );
        drop(futures.remove(2));
        assert_eq!(tree::waiter_count(&ctx.node), 4);
        cancel.cancel();
        assert_eq!(tree::waiter_count(&ctx.node), 0);
        assert_eq!(count.0.load(Ordering::SeqCst), 3);
        assert_eq!(other.0.load(Ordering::SeqCst), 1);
        drop(futures.remove(3));
        for f in &mut futures {
            assert_eq!(poll(f.as_mut(), &count), Poll::Ready(Error::Canceled));
        }
        drop(futures);
        assert_eq!(Arc::strong_count(&count), 1, "nothing kept a waker");
        assert_eq!(Arc::strong_count(&other), 1);
    }

    /// A `Done` on the stack (`pin!`) and a thread's stack entry (`wait_timeout`) leave the list
    /// as their frames end: nothing stays registered on a live context.
    #[test]
    fn stack_entries_leave_the_list_with_their_frame() {
        let (ctx, _cancel) = Context::background().with_cancel();
        let count = Arc::new(Count::default());
        {
            let done = std::pin::pin!(ctx.done());
            assert!(poll(done, &count).is_pending());
            assert_eq!(tree::waiter_count(&ctx.node), 1);
        }
        assert_eq!(tree::waiter_count(&ctx.node), 0);
        assert_eq!(ctx.wait_timeout(std::time::Duration::from_millis(1)), None);
        assert_eq!(tree::waiter_count(&ctx.node), 0);
        assert_eq!(Arc::strong_count(&count), 1);
    }

    /// A task on another thread frees its `Done` as soon as it resumes, and a thread blocked in
    /// `wait()` returns (ending the frame that holds its entry), while the canceller may still
    /// be walking the list behind them. (Miri explores some of these interleavings.)
    #[test]
    fn owners_on_other_threads_free_their_entries_while_the_cancel_walks() {
        let (ctx, cancel) = Context::background().with_cancel();
        let count = Arc::new(Count::default());
        let mut behind = Box::pin(ctx.done());
        assert!(poll(behind.as_mut(), &count).is_pending());
        let (task, blocked) = {
            let (a, b) = (ctx.clone(), ctx.clone());
            (
                std::thread::spawn(move || futures_executor::block_on(a.done())),
                std::thread::spawn(move || b.wait()),
            )
        };
        while tree::waiter_count(&ctx.node) < 3 {
            std::thread::yield_now();
        }
        cancel.cancel();
        assert_eq!(task.join().unwrap(), Error::Canceled);
        assert_eq!(blocked.join().unwrap(), Error::Canceled);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(poll(behind.as_mut(), &count), Poll::Ready(Error::Canceled));
        drop(behind);
        assert_eq!(Arc::strong_count(&count), 1);
    }

    /// A waker that counts its clones, drops and wakes, so a test can tell a re-poll that
    /// stored nothing from one that swapped the waker.
    struct Tally {
        clones: AtomicUsize,
        drops: AtomicUsize,
        wakes: AtomicUsize,
    }

    static TALLY: std::task::RawWakerVTable = std::task::RawWakerVTable::new(
        |p| {
            // SAFETY: `p` is a `&'static Tally` (see `tally_waker`).
            unsafe { &*p.cast::<Tally>() }
                .clones
                .fetch_add(1, Ordering::SeqCst);
            std::task::RawWaker::new(p, &TALLY)
        },
        |p| {
            // SAFETY: as above.
            let t = unsafe { &*p.cast::<Tally>() };
            t.wakes.fetch_add(1, Ordering::SeqCst);
            t.drops.fetch_add(1, Ordering::SeqCst);
        },
        |p| {
            // SAFETY: as above.
            unsafe { &*p.cast::<Tally>() }
                .wakes
                .fetch_add(1, Ordering::SeqCst);
        },
        |p| {
            // SAFETY: as above.
            unsafe { &*p.cast::<Tally>() }
                .drops
                .fetch_add(1, Ordering::SeqCst);
        },
    );

    fn tally_waker(t: &'static Tally) -> std::mem::ManuallyDrop<Waker> {
        let raw = std::task::RawWaker::new(std::ptr::from_ref(t).cast(), &TALLY);
        // SAFETY: the vtable's functions uphold `RawWaker`'s contract for a `&'static Tally`.
        // The borrowed waker is never dropped (it stands for the executor's own).
        std::mem::ManuallyDrop::new(unsafe { Waker::from_raw(raw) })
    }

    impl Tally {
        const fn new() -> Tally {
            Tally {
                clones: AtomicUsize::new(0),
                drops: AtomicUsize::new(0),
                wakes: AtomicUsize::new(0),
            }
        }
    }

    /// Re-polls with the waker already stored clone nothing and drop nothing (they take the
    /// lock-free path, which reads the entry's waiter); a re-poll with another waker swaps it;
    /// the cancellation wakes the last one stored, once, and every clone is dropped once (the
    /// moved-out copy left in a notified entry is not dropped again with the `Done`).
    #[test]
    fn re_polls_with_the_stored_waker_store_nothing_and_the_last_waker_is_woken() {
        let (ctx, cancel) = Context::background().with_cancel();
        static A: Tally = Tally::new();
        static B: Tally = Tally::new();
        let (a, b) = (&A, &B);
        let (wa, wb) = (tally_waker(a), tally_waker(b));
        let mut done = Box::pin(ctx.done());
        let mut poll = |w: &Waker| done.as_mut().poll(&mut TaskContext::from_waker(w));
        assert!(poll(&wa).is_pending());
        for _ in 0..3 {
            assert!(poll(&wa).is_pending());
        }
        assert_eq!(
            a.clones.load(Ordering::SeqCst),
            1,
            "a re-poll cloned the waker"
        );
        assert_eq!(a.drops.load(Ordering::SeqCst), 0);
        assert!(poll(&wb).is_pending());
        assert_eq!(b.clones.load(Ordering::SeqCst), 1);
        assert_eq!(
            a.drops.load(Ordering::SeqCst),
            1,
            "the replaced waker was dropped"
        );
        assert!(poll(&wb).is_pending());
        assert_eq!(b.clones.load(Ordering::SeqCst), 1);
        cancel.cancel();
        assert_eq!(b.wakes.load(Ordering::SeqCst), 1);
        assert_eq!(a.wakes.load(Ordering::SeqCst), 0);
        assert_eq!(
            b.drops.load(Ordering::SeqCst),
            1,
            "woken by value: dropped once"
        );
        assert_eq!(poll(&wb), Poll::Ready(Error::Canceled));
        drop(done);
        assert_eq!(
            b.drops.load(Ordering::SeqCst),
            1,
            "the moved-out copy was dropped again"
        );
        assert_eq!(a.drops.load(Ordering::SeqCst), 1);
    }

    /// Regression test (found by an audit): a `Run` that lost the race kept `fut` alive until
    /// the `Run` itself was dropped, though `Context::run` drops `fut` at its current `.await`
    /// on cancellation (as the `async` block that `Run` replaced did on completing): one held
    /// past its result (polled through `&mut` in a `select!` loop, or stored) kept all that
    /// `fut` owned. The same on `Ok`: what a finished `fut` still holds goes at once.
    #[test]
    fn a_run_drops_its_future_as_it_completes() {
        struct Owned(Arc<AtomicUsize>);
        impl Drop for Owned {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        /// Ready at once, still holding what it owns.
        struct Keeps(#[allow(dead_code)] Owned);
        impl Future for Keeps {
            type Output = u8;
            fn poll(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<u8> {
                Poll::Ready(7)
            }
        }
        let dropped = Arc::new(AtomicUsize::new(0));
        let count = Arc::new(Count::default());
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = TaskContext::from_waker(&waker);

        let (ctx, cancel) = Context::background().with_cancel();
        let owned = Owned(Arc::clone(&dropped));
        let mut run = Box::pin(ctx.run(async move {
            let _owned = owned;
            std::future::pending::<()>().await;
        }));
        assert!(run.as_mut().poll(&mut cx).is_pending());
        cancel.cancel();
        assert_eq!(
            run.as_mut().poll(&mut cx),
            Poll::Ready(Err(Error::Canceled))
        );
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "the Run reported Err with its future still alive"
        );
        assert_eq!(
            run.as_mut().poll(&mut cx),
            Poll::Ready(Err(Error::Canceled))
        );
        drop(run);
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "dropped once");

        let (ctx, _cancel) = Context::background().with_cancel();
        let mut run = Box::pin(ctx.run(Keeps(Owned(Arc::clone(&dropped)))));
        assert_eq!(run.as_mut().poll(&mut cx), Poll::Ready(Ok(7)));
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            2,
            "the Run reported Ok with its future still alive"
        );
        drop(run);
        assert_eq!(dropped.load(Ordering::SeqCst), 2, "dropped once");
    }

    /// Regression test: a `Run` whose future won after a pending poll kept its `Done` linked
    /// in the context's waiter list (and a reference to the context) until the `Run` itself
    /// was dropped, so finished `Run`s kept in a struct or a `select!` loop piled up on a
    /// long-lived context. Its `Done` now goes in the poll that returns `Ok`.
    #[test]
    fn a_finished_run_leaves_no_waiter_registered() {
        let (ctx, cancel) = Context::background().with_cancel();
        let count = Arc::new(Count::default());
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = TaskContext::from_waker(&waker);
        /// Pending at its first poll, ready with 3 at its second.
        struct Second(bool);
        impl Future for Second {
            type Output = u8;
            fn poll(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<u8> {
                if std::mem::replace(&mut self.0, true) {
                    Poll::Ready(3)
                } else {
                    Poll::Pending
                }
            }
        }
        let base = Arc::strong_count(&ctx.node);
        let mut runs = Vec::new();
        let mut run = Box::pin(ctx.run(Second(false)));
        assert!(run.as_mut().poll(&mut cx).is_pending());
        assert_eq!(tree::waiter_count(&ctx.node), 1, "registered while pending");
        assert_eq!(run.as_mut().poll(&mut cx), Poll::Ready(Ok(3)));
        assert_eq!(
            tree::waiter_count(&ctx.node),
            0,
            "a finished Run kept its waiter registered"
        );
        assert_eq!(
            Arc::strong_count(&ctx.node),
            base,
            "a finished Run kept a reference to the context"
        );
        runs.push(run);
        // Cancelling later wakes nobody: the finished Run is not in the list.
        cancel.cancel();
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            0,
            "the cancel woke a finished Run"
        );
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = runs[0].as_mut().poll(&mut cx);
        }));
        assert!(again.is_err(), "a Run polled after Ok did not panic");
    }
}
