//! The ambient context: the context "current" on this thread (sync code) or in this task
//! (async code, through [`Context::scope`] and its [`Scope`]), so deep call stacks need not
//! pass it by hand.
//!
//! # Invariants
//!
//! 1. `current` is the context of the most recently entered [`EnterGuard`] still alive on this
//!    thread (or the context a [`Context::scope`] poll lent it), else `None` (background).
//! 2. `saved` holds one entry per live guard, in the order they were entered: what was current
//!    just before that guard was entered. Dropping the innermost guard pops its entry back into
//!    `current`. Dropping any other guard (out of order) leaves `current` alone and hands its
//!    entry to the next live guard entered after it, so that one restores what this one would
//!    have: the thread ends where it would have with the guards dropped in order. The entry
//!    itself stays as a tombstone (flagged, holding nothing) until the live entries above it
//!    are gone; the innermost entry is always live.
//! 3. A [`Scope`] poll, or the drop of its future (a *lend*), is a guard too, with an entry of
//!    its own, except that the context it leaves with goes back to the scope instead of being
//!    dropped: the `current` it set if it is innermost, else the entry of the next guard
//!    entered after it (which saved the lent context as what it restores). So a guard made in
//!    a poll and still alive when the poll ends (held across an `.await`, or returned from the
//!    future) stays current until dropped, then restores what the thread had before the poll;
//!    the scope keeps its own context; and a guard from before the poll dropped inside it
//!    leaves the lent context in place. A scope's future is only ever dropped in a lend, so
//!    its `Drop` code sees the scope's context, as its polls do.
//! 4. No `Context` is dropped while a `RefCell` here is borrowed (a drop may unlink contexts,
//!    and nothing here runs under a borrow that such work could re-enter).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use crate::Context;

/// This thread's ambient state, in one thread-local so that each operation reaches it once.
struct Ambient {
    /// Invariant 1: the current context, `None` for background.
    current: RefCell<Option<Context>>,
    /// Invariant 2: `(guard id, context current before it)`, innermost last.
    saved: RefCell<Vec<(u64, Option<Context>)>>,
    /// The id of the next guard entered on this thread (guards are `!Send`: per thread is
    /// unique). 0 means a guard that holds nothing.
    next_id: Cell<u64>,
}

thread_local! {
    static AMBIENT: Ambient = const {
        Ambient {
            current: RefCell::new(None),
            saved: RefCell::new(Vec::new()),
            next_id: Cell::new(1),
        }
    };
}

pub(crate) fn current() -> Option<Context> {
    AMBIENT
        .try_with(|a| a.current.borrow().clone())
        .ok()
        .flatten()
}

/// The current context's error, without cloning it: what a sync `select_done!` reads.
pub(crate) fn current_err() -> Option<crate::Error> {
    AMBIENT
        .try_with(|a| a.current.borrow().as_ref().and_then(Context::err))
        .ok()
        .flatten()
}

/// Makes a context current on this thread until dropped; made by [`Context::enter`].
///
/// Guards nest: dropping one restores the context that was current before it. The guard is
/// `!Send`: it belongs to its thread.
///
/// Guards dropped out of order (a `Vec` of guards drops its first element first; a struct
/// drops its fields in declaration order) still restore correctly, where tokio's guard would
/// panic: the current context is always the one of the most recently entered guard that is
/// still alive, and once every guard is dropped the context from before the first one is
/// back. A `Drop` that panics would abort a thread that is already unwinding, and the order
/// has a right answer, so this gives it instead.
///
/// A guard belongs to its thread, not to a task: held across an `.await` (in a `!Send`
/// future), its context stays current on the thread between polls, for whatever else runs
/// there, until it is dropped. Each poll of a [`Context::scope`] future still runs under the
/// scope's context, and the scope keeps it whatever guards made inside it outlive a poll. For
/// async code, [`Context::scope`] is the tool: it follows the task.
///
/// # Examples
///
/// ```
/// use go_context::Context;
///
/// let req = Context::background().with_value("request-42");
/// {
///     let _guard = req.enter();
///     assert_eq!(Context::current().value::<&str>(), Some(&"request-42"));
/// }
/// assert_eq!(Context::current().value::<&str>(), None);
///
/// // Out of order: the inner guard's context stays current until it goes too.
/// let a = Context::background().with_value(1u8);
/// let b = Context::background().with_value(2u8);
/// let outer = a.enter();
/// let inner = b.enter();
/// drop(outer);
/// assert_eq!(Context::current().value::<u8>(), Some(&2));
/// drop(inner);
/// assert_eq!(Context::current().value::<u8>(), None);
/// ```
#[must_use = "the context is current only while the guard lives"]
pub struct EnterGuard {
    /// Its entry in `saved`; 0 if thread-locals were torn down when it was made.
    id: u64,
    _not_send: PhantomData<*const ()>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        // Invariant 4: the context that left drops after the borrows end.
        drop(leave(self.id));
    }
}

/// Makes `ctx` current as a new entry (invariants 2, 3); returns its id, 0 if the
/// thread-locals are torn down (then `ctx` is left in place, untouched).
fn push(ctx: &mut Option<Context>) -> u64 {
    AMBIENT
        .try_with(|a| {
            let id = a.next_id.get();
            // 2^63 entries never happen; were they to, ids would wrap to 1, below the ones
            // still entered, and a guard out of order would be found by no search, so it
            // would leave its entry in place (the innermost one still restores it).
            a.next_id.set(((id + 1) & !DEAD).max(1));
            let prev = a.current.replace(ctx.take());
            a.saved.borrow_mut().push((id, prev));
            id
        })
        .unwrap_or(0)
}

/// The flag of an entry whose guard was dropped out of order (a *tombstone*): its context
/// was handed to the next live entry, and it stays, with its id, until every entry above it
/// is gone, so that leaving costs no shift of the entries above it. Ids stay below it.
const DEAD: u64 = 1 << 63;

/// Removes entry `id` (invariants 2, 3) and returns the context it held: the `current` it
/// set if it is the innermost entry, else the next live entry's saved context, which that
/// entry now replaces with what `id` would have restored. `None` if there is no such entry.
///
/// The innermost entry is always live: a tombstone is only ever left below a live entry, and
/// the tombstones right below the innermost go with it. So guards dropped in any order cost
/// O(log n) each (a binary search: ids ascend in entry order) plus the tombstones they pass,
/// each passed once; a `Vec` of n guards, dropped first to last, costs O(n log n), not the
/// O(n²) of removing each from the front.
fn leave(id: u64) -> Option<Option<Context>> {
    if id == 0 {
        return None;
    }
    AMBIENT
        .try_with(|a| {
            let mut saved = a.saved.borrow_mut();
            // Dropped in order (the common case): the innermost entry is this one.
            if saved.last().is_some_and(|(entry, _)| *entry == id) {
                let (_, prev) = saved.pop()?;
                while saved.last().is_some_and(|(entry, _)| entry & DEAD != 0) {
                    // A tombstone holds nothing (its context was handed on).
                    saved.pop();
                }
                return Some(a.current.replace(prev));
            }
            let pos = match saved.binary_search_by_key(&id, |(entry, _)| entry & !DEAD) {
                Ok(pos) if saved[pos].0 == id => pos,
                _ => return None,
            };
            let prev = saved[pos].1.take();
            saved[pos].0 |= DEAD;
            // Out of order: the next live entry now restores what this one would have.
            let next = saved[pos + 1..]
                .iter_mut()
                .find(|(entry, _)| entry & DEAD == 0);
            Some(match next {
                Some((_, next_prev)) => std::mem::replace(next_prev, prev),
                // Not reached (the innermost entry is live); were it, this entry would be the
                // innermost live one, and what was current before it comes back.
                None => {
                    saved.truncate(pos);
                    a.current.replace(prev)
                }
            })
        })
        .ok()
        .flatten()
}

impl fmt::Debug for EnterGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnterGuard").field("id", &self.id).finish()
    }
}

pub(crate) fn enter(ctx: &Context) -> EnterGuard {
    // If the thread-locals are torn down the context drops here: the guard is inert (id 0)
    // rather than a panic.
    let id = push(&mut Some(ctx.clone()));
    EnterGuard {
        id,
        _not_send: PhantomData,
    }
}

pin_project_lite::pin_project! {
    /// The future [`Context::scope`] returns: `fut`, with the context current during each of
    /// its polls, so the ambient context follows the task across `.await` points and threads.
    ///
    /// The context is moved into the thread-local for the poll and back out after it (also when
    /// the poll panics): no reference-count traffic per poll. The future is dropped with the
    /// context current too: in the poll that completes it, or when the `Scope` is dropped
    /// before that (as tokio's `TaskLocalFuture` and tracing's `Instrumented` do). Polled
    /// again after it completed, a `Scope` panics. The type is named so that it can
    /// sit in a struct or be a tower service's `Future` without boxing.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::Ready;
    /// use go_context::{Context, Scope};
    ///
    /// // A named type: what a hand-written `Service::Future` needs.
    /// struct Call {
    ///     fut: Scope<Ready<Option<u32>>>,
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let ctx = Context::background().with_value(7u32);
    /// let inside = async { Context::current().value::<u32>().copied() };
    /// assert_eq!(ctx.scope(inside).await, Some(7));
    ///
    /// let call = Call { fut: ctx.scope(std::future::ready(None)) };
    /// assert_eq!(call.fut.await, None);
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Scope<F> {
        // `Some` but during a poll or the drop of `fut` (`Lent` holds it in the thread-local
        // then).
        ctx: Option<Context>,
        // `None` once it finished (dropped in the poll that completed it) or was dropped.
        #[pin]
        fut: Option<F>,
    }

    impl<F> PinnedDrop for Scope<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if std::mem::needs_drop::<F>() && this.fut.is_some() {
                // Dropped mid-way: what the future owns goes with the context current, as it
                // ran (invariant 3).
                let mut fut = this.fut;
                let _lent = Lent::new(this.ctx);
                fut.set(None);
            }
        }
    }
}

impl<F> Scope<F> {
    pub(crate) fn new(ctx: Context, fut: F) -> Scope<F> {
        Scope {
            ctx: Some(ctx),
            fut: Some(fut),
        }
    }
}

impl<F: Future> Future for Scope<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let mut fut = this.fut;
        let _lent = Lent::new(this.ctx);
        let Some(running) = fut.as_mut().as_pin_mut() else {
            panic!("`Scope` polled after it completed");
        };
        let poll = running.poll(cx);
        if poll.is_ready() {
            // What the finished future still holds goes in this lend, not in one more.
            fut.set(None);
        }
        poll
    }
}

impl<F> fmt::Debug for Scope<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("ctx", &self.ctx)
            .finish_non_exhaustive()
    }
}

/// Runs `f` with the context in `home` current (lent to the thread-local, no reference-count
/// traffic) and gives it back after, also when `f` panics: one poll of a task body that keeps
/// its context itself (the spawning wing's tasks), as [`Scope`] does per poll.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) fn lend<R>(home: &mut Option<Context>, f: impl FnOnce() -> R) -> R {
    let _lent = Lent::new(home);
    f()
}

/// The scope's context, lent to the thread-local for one poll as an entry of its own
/// (invariant 3); given back on drop (also when the poll panics), whatever guards made in
/// the poll are still alive.
struct Lent<'a> {
    home: &'a mut Option<Context>,
    id: u64,
}

impl<'a> Lent<'a> {
    fn new(home: &'a mut Option<Context>) -> Lent<'a> {
        // Thread-locals being torn down: nothing is lent, the context stays home.
        let id = push(home);
        Lent { home, id }
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(back) = leave(self.id) {
            *self.home = back;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Context;

    fn current_tag() -> Option<u8> {
        Context::current().value::<u8>().copied()
    }

    #[test]
    fn guards_dropped_in_order_restore_each_previous() {
        let a = Context::background().with_value(1u8);
        let b = Context::background().with_value(2u8);
        let ga = a.enter();
        let gb = b.enter();
        assert_eq!(current_tag(), Some(2));
        drop(gb);
        assert_eq!(current_tag(), Some(1));
        drop(ga);
        assert_eq!(current_tag(), None);
    }

    #[test]
    fn issue_12_7_guards_dropped_out_of_order_leave_no_stale_context() {
        let a = Context::background().with_value(1u8);
        let b = Context::background().with_value(2u8);
        let c = Context::background().with_value(3u8);
        let ga = a.enter();
        let gb = b.enter();
        let gc = c.enter();
        drop(gb); // the middle one: the innermost stays current
        assert_eq!(current_tag(), Some(3));
        drop(ga);
        assert_eq!(current_tag(), Some(3));
        drop(gc); // the last one: what was current before the first comes back
        assert_eq!(current_tag(), None);
    }

    #[test]
    fn a_vec_of_guards_drops_first_to_last_and_still_restores() {
        let outer = Context::background().with_value(9u8);
        let _outer = outer.enter();
        let contexts: Vec<Context> = (0..4u8)
            .map(|i| Context::background().with_value(i))
            .collect();
        let guards: Vec<_> = contexts.iter().map(Context::enter).collect();
        assert_eq!(current_tag(), Some(3));
        drop(guards);
        assert_eq!(current_tag(), Some(9));
    }

    /// Guards dropped in every kind of order, checked after each drop against a model (the
    /// most recently entered guard still alive is current, else the base), and at the end:
    /// the base is back, no entry (tombstone or live) is left, and no context is kept.
    #[test]
    fn guards_dropped_in_random_orders_match_the_model_and_leave_nothing() {
        let base = Context::background().with_value(200u8);
        let _base = base.enter();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..300 {
            let n = 1 + (next() % 40) as usize;
            let contexts: Vec<Context> = (0..n as u8)
                .map(|i| Context::background().with_value(i))
                .collect();
            let mut guards: Vec<Option<crate::EnterGuard>> =
                contexts.iter().map(|c| Some(c.enter())).collect();
            // Orders: first to last, last to first, or shuffled; entering more guards midway.
            let mut order: Vec<usize> = (0..n).collect();
            match round % 3 {
                0 => {}
                1 => order.reverse(),
                _ => {
                    for i in (1..n).rev() {
                        order.swap(i, (next() % (i as u64 + 1)) as usize);
                    }
                }
            }
            for (k, &i) in order.iter().enumerate() {
                guards[i] = None;
                let want = guards.iter().rposition(Option::is_some).map(|j| j as u8);
                assert_eq!(current_tag(), want.or(Some(200)), "round {round}, drop {k}");
                if k == n / 2 {
                    // A guard entered among the tombstones, dropped at once.
                    let extra = Context::background().with_value(100u8);
                    let g = extra.enter();
                    assert_eq!(current_tag(), Some(100));
                    drop(g);
                    assert_eq!(current_tag(), want.or(Some(200)), "round {round}, extra");
                }
            }
            assert_eq!(current_tag(), Some(200), "round {round}");
            let left = super::AMBIENT.with(|a| a.saved.borrow().len());
            assert_eq!(
                left, 1,
                "round {round}: entries other than the base's were left"
            );
            for c in &contexts {
                assert_eq!(
                    std::sync::Arc::strong_count(&c.node),
                    1,
                    "round {round}: a context was kept"
                );
            }
        }
    }

    #[test]
    fn the_outer_guard_dropped_first_hands_its_restore_to_the_inner() {
        let a = Context::background().with_value(1u8);
        let b = Context::background().with_value(2u8);
        let base = Context::background().with_value(7u8);
        let _base = base.enter();
        let ga = a.enter();
        let gb = b.enter();
        drop(ga);
        assert_eq!(current_tag(), Some(2));
        drop(gb);
        assert_eq!(
            current_tag(),
            Some(7),
            "back to what was current before `a`"
        );
    }

    /// A future that reports the current context's tag at each poll, pending on the first.
    struct Probe {
        seen: Vec<Option<u8>>,
        panic_on: Option<usize>,
    }

    impl std::future::Future for Probe {
        type Output = Vec<Option<u8>>;

        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Self::Output> {
            self.seen.push(current_tag());
            if self.panic_on == Some(self.seen.len()) {
                panic!("probe");
            }
            if self.seen.len() < 3 {
                cx.waker().wake_by_ref();
                return std::task::Poll::Pending;
            }
            std::task::Poll::Ready(std::mem::take(&mut self.seen))
        }
    }

    #[test]
    fn a_named_scope_lends_its_context_for_each_poll_and_gets_it_back_after_a_panic() {
        use std::future::Future;
        use std::task::{Context as TaskContext, Poll, Waker};

        struct Stored {
            fut: crate::Scope<Probe>,
        }
        let ctx = Context::background().with_value(4u8);
        let mut stored = Stored {
            fut: ctx.scope(Probe {
                seen: Vec::new(),
                panic_on: Some(2),
            }),
        };
        let mut cx = TaskContext::from_waker(Waker::noop());
        let mut fut = std::pin::pin!(stored.fut);
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            current_tag(),
            None,
            "between polls the thread is back to background"
        );
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = fut.as_mut().poll(&mut cx);
        }));
        assert!(caught.is_err(), "the second poll panicked");
        assert_eq!(
            current_tag(),
            None,
            "the panicking poll gave the context back"
        );
        // The scope still holds its context: the next poll sees it again.
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(seen) => assert_eq!(seen, vec![Some(4), Some(4), Some(4)]),
            Poll::Pending => panic!("the probe is ready at its third poll"),
        }
        stored = Stored {
            fut: ctx.scope(Probe {
                seen: Vec::new(),
                panic_on: None,
            }),
        };
        assert!(format!("{:?}", stored.fut).starts_with("Scope { ctx: Some("));
    }

    /// Pending once (waking itself), then ready.
    struct YieldOnce(bool);

    impl std::future::Future for YieldOnce {
        type Output = ();
        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<()> {
            if std::mem::replace(&mut self.0, true) {
                return std::task::Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }

    fn ready<F: std::future::Future>(fut: std::pin::Pin<&mut F>) -> F::Output {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match fut.poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("not ready"),
        }
    }

    fn pending<F: std::future::Future>(fut: std::pin::Pin<&mut F>) {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(fut.poll(&mut cx).is_pending());
    }

    /// Regression test (found by an audit): a guard made in a scope's poll and alive after
    /// it (here the scope's output) made the scope's context the thread's for good.
    #[test]
    fn a_guard_made_in_a_scope_poll_and_dropped_after_it_restores_the_thread() {
        let s = Context::background().with_value(1u8);
        let g = Context::background().with_value(11u8);
        let mut fut = std::pin::pin!(s.scope(async { g.enter() }));
        let guard = ready(fut.as_mut());
        assert_eq!(current_tag(), Some(11), "a live guard is current");
        drop(guard);
        assert_eq!(current_tag(), None, "the thread is back to background");
    }

    /// Regression test (found by an audit): a guard held across an `.await` in a scope, with
    /// the thread's own guard entered between the polls.
    #[test]
    fn a_guard_held_across_an_await_in_a_scope_leaks_nothing() {
        let s = Context::background().with_value(1u8);
        let g = Context::background().with_value(11u8);
        let o = Context::background().with_value(99u8);
        let mut fut = std::pin::pin!(s.scope(async {
            let guard = g.enter();
            YieldOnce(false).await;
            let held = current_tag();
            drop(guard);
            (held, current_tag())
        }));
        pending(fut.as_mut());
        assert_eq!(current_tag(), Some(11), "the guard lives, so it is current");
        let outer = o.enter();
        let inside = ready(fut.as_mut());
        assert_eq!(
            inside,
            (Some(1), Some(1)),
            "each poll runs under the scope's context"
        );
        assert_eq!(current_tag(), Some(99), "the thread's own guard is current");
        drop(outer);
        assert_eq!(current_tag(), None);
    }

    /// Regression test (found by an audit): two scopes interleaved on one thread, each
    /// holding a guard across an `.await`, handed each other's contexts.
    #[test]
    fn two_interleaved_scopes_with_guards_across_awaits_keep_their_own_contexts() {
        let (sa, sb) = (
            Context::background().with_value(1u8),
            Context::background().with_value(2u8),
        );
        let (ga, gb) = (
            Context::background().with_value(11u8),
            Context::background().with_value(22u8),
        );
        let body = |g: Context| async move {
            let guard = g.enter();
            YieldOnce(false).await;
            drop(guard);
            let after = current_tag();
            YieldOnce(false).await;
            (after, current_tag())
        };
        let mut a = std::pin::pin!(sa.scope(body(ga)));
        let mut b = std::pin::pin!(sb.scope(body(gb)));
        pending(a.as_mut());
        pending(b.as_mut());
        pending(a.as_mut());
        pending(b.as_mut());
        assert_eq!(ready(a.as_mut()), (Some(1), Some(1)));
        assert_eq!(ready(b.as_mut()), (Some(2), Some(2)));
        assert_eq!(current_tag(), None, "the thread is back to background");
    }

    /// A guard from before a scope's poll, dropped inside it, leaves the lent context current
    /// for the rest of the poll and the scope its context; the thread ends where it began.
    #[test]
    fn a_guard_from_before_the_poll_dropped_inside_it_takes_nothing_from_the_scope() {
        let s = Context::background().with_value(1u8);
        let x = Context::background().with_value(7u8);
        let outer = x.enter();
        let mut fut = std::pin::pin!(s.scope(async move {
            drop(outer);
            let after_drop = current_tag();
            YieldOnce(false).await;
            (after_drop, current_tag())
        }));
        pending(fut.as_mut());
        assert_eq!(current_tag(), None, "the outer guard is gone");
        assert_eq!(ready(fut.as_mut()), (Some(1), Some(1)));
        assert_eq!(current_tag(), None);
    }

    /// Records the current context's tag when dropped.
    struct ReportOnDrop(std::rc::Rc<std::cell::Cell<Option<Option<u8>>>>);

    impl Drop for ReportOnDrop {
        fn drop(&mut self) {
            self.0.set(Some(current_tag()));
        }
    }

    /// Regression test (found by an audit): a scope's future was dropped after the scope let
    /// go of its context, so its `Drop` code (a body dropped at an `.await`, what a finished
    /// future still holds) saw the thread's context instead, unlike its polls (and unlike
    /// tokio's `TaskLocalFuture`, tracing's `Instrumented` and this crate's own spawned tasks).
    #[test]
    fn a_scope_drops_its_future_under_its_context() {
        use std::cell::Cell;
        use std::rc::Rc;

        let s = Context::background().with_value(1u8);
        let x = Context::background().with_value(7u8);
        let seen = Rc::new(Cell::new(None));
        let report = ReportOnDrop(Rc::clone(&seen));
        let mut fut = Box::pin(s.scope(async move {
            let _report = report;
            std::future::pending::<()>().await;
        }));
        pending(fut.as_mut());
        let outer = x.enter();
        drop(fut);
        assert_eq!(
            seen.get(),
            Some(Some(1)),
            "dropped mid-way, outside its context"
        );
        assert_eq!(current_tag(), Some(7), "the thread's own guard is back");
        drop(outer);

        /// Ready at once, still holding what it owns.
        struct Keeps(#[allow(dead_code)] ReportOnDrop);
        impl std::future::Future for Keeps {
            type Output = u8;
            fn poll(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<u8> {
                std::task::Poll::Ready(3)
            }
        }
        let seen = Rc::new(Cell::new(None));
        let mut fut = Box::pin(s.scope(Keeps(ReportOnDrop(Rc::clone(&seen)))));
        assert_eq!(ready(fut.as_mut()), 3);
        drop(fut);
        assert_eq!(
            seen.get(),
            Some(Some(1)),
            "a finished future's remains, outside it"
        );
        assert_eq!(current_tag(), None);

        // A guard the future held across an `.await`, dropped with it: the thread ends where
        // it began.
        let g = Context::background().with_value(11u8);
        let mut fut = Box::pin(s.scope(async move {
            let _guard = g.enter();
            std::future::pending::<()>().await;
        }));
        pending(fut.as_mut());
        assert_eq!(current_tag(), Some(11), "the guard lives, so it is current");
        drop(fut);
        assert_eq!(current_tag(), None);
    }
}
