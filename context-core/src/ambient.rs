//! The ambient context: the context "current" on this thread (sync code) or in this task
//! (async code, through [`Context::scope`]), so deep call stacks need not pass it by hand.
//!
//! # Invariants
//!
//! 1. `CURRENT` is the context of the most recently entered [`EnterGuard`] still alive on this
//!    thread (or the context a [`Context::scope`] poll lent it), else `None` (background).
//! 2. `SAVED` holds one entry per live guard, in the order they were entered: what was current
//!    just before that guard was entered. Dropping the innermost guard pops its entry back into
//!    `CURRENT`. Dropping any other guard (out of order) leaves `CURRENT` alone and hands its
//!    entry to the next guard entered after it, so that one restores what this one would
//!    have: the thread ends where it would have with the guards dropped in order.
//! 3. No `Context` is dropped while a `RefCell` here is borrowed (a drop may unlink contexts,
//!    and nothing here runs under a borrow that such work could re-enter).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;

use crate::Context;

thread_local! {
    static CURRENT: RefCell<Option<Context>> = const { RefCell::new(None) };
    /// Invariant 2: `(guard id, context current before it)`, innermost last.
    static SAVED: RefCell<Vec<(u64, Option<Context>)>> = const { RefCell::new(Vec::new()) };
    /// The id of the next guard entered on this thread (guards are `!Send`: per thread is
    /// unique). 0 means a guard that holds nothing.
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
}

pub(crate) fn current() -> Option<Context> {
    CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
}

/// The current context's error, without cloning it: what a sync `select_done!` reads.
pub(crate) fn current_err() -> Option<crate::Error> {
    CURRENT
        .try_with(|c| c.borrow().as_ref().and_then(Context::err))
        .ok()
        .flatten()
}

fn replace(ctx: Option<Context>) -> Option<Context> {
    CURRENT.try_with(|c| c.replace(ctx)).ok().flatten()
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
    /// Its entry in `SAVED`; 0 if thread-locals were torn down when it was made.
    id: u64,
    _not_send: PhantomData<*const ()>,
}

/// What dropping a guard must do once `SAVED` is no longer borrowed.
enum Exit {
    /// The innermost guard: this becomes current again.
    Restore(Option<Context>),
    /// An outer guard: its entry went to the next guard; this was the one that guard held.
    Discard(Option<Context>),
    /// Nothing recorded (thread-locals torn down).
    Nothing,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let id = self.id;
        let exit = SAVED
            .try_with(|saved| {
                let mut saved = saved.borrow_mut();
                let Some(pos) = saved.iter().rposition(|(guard, _)| *guard == id) else {
                    return Exit::Nothing;
                };
                let (_, prev) = saved.remove(pos);
                match saved.get_mut(pos) {
                    // Out of order: the next guard now restores what this one would have.
                    Some((_, next_prev)) => Exit::Discard(std::mem::replace(next_prev, prev)),
                    None => Exit::Restore(prev),
                }
            })
            .unwrap_or(Exit::Nothing);
        // Invariant 3: contexts drop after the borrow ends.
        match exit {
            Exit::Restore(prev) => drop(replace(prev)),
            Exit::Discard(stale) => drop(stale),
            Exit::Nothing => {}
        }
    }
}

impl fmt::Debug for EnterGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnterGuard").field("id", &self.id).finish()
    }
}

pub(crate) fn enter(ctx: &Context) -> EnterGuard {
    let Ok(id) = NEXT_ID.try_with(|next| {
        let id = next.get();
        next.set(id.wrapping_add(1).max(1));
        id
    }) else {
        return EnterGuard {
            id: 0,
            _not_send: PhantomData,
        };
    };
    let prev = match CURRENT.try_with(|c| c.replace(Some(ctx.clone()))) {
        Ok(prev) => prev,
        Err(_) => {
            return EnterGuard {
                id: 0,
                _not_send: PhantomData,
            }
        }
    };
    match SAVED.try_with(|saved| saved.borrow_mut().push((id, prev))) {
        Ok(()) => EnterGuard {
            id,
            _not_send: PhantomData,
        },
        // Cannot happen once CURRENT was reachable; stay inert rather than panic.
        Err(_) => EnterGuard {
            id: 0,
            _not_send: PhantomData,
        },
    }
}

pub(crate) fn scope<F: IntoFuture>(ctx: Context, fut: F) -> impl Future<Output = F::Output> {
    let fut = fut.into_future();
    async move {
        let mut fut = std::pin::pin!(fut);
        let mut ctx = Some(ctx);
        std::future::poll_fn(move |cx| {
            // Moves the context into the thread-local for the poll and back out after it: no
            // reference-count traffic per poll.
            let _lent = Lent::new(&mut ctx);
            fut.as_mut().poll(cx)
        })
        .await
    }
}

/// Runs `f` with the context in `home` current (lent to the thread-local, no reference-count
/// traffic) and gives it back after, also when `f` panics: one poll of a task body that keeps
/// its context itself (the spawning wing's tasks), as [`scope`] does per poll.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) fn lend<R>(home: &mut Option<Context>, f: impl FnOnce() -> R) -> R {
    let _lent = Lent::new(home);
    f()
}

/// The scope's context, lent to the thread-local for one poll; given back on drop (also when
/// the poll panics). Guards made inside the poll are dropped before it ends, so what the
/// thread-local holds then is the lent context again.
struct Lent<'a> {
    home: &'a mut Option<Context>,
    prev: Option<Context>,
    lent: bool,
}

impl<'a> Lent<'a> {
    fn new(home: &'a mut Option<Context>) -> Lent<'a> {
        let mut ctx = home.take();
        let (prev, lent) = match CURRENT.try_with(|c| c.replace(ctx.take())) {
            Ok(prev) => (prev, true),
            // Thread-locals are being torn down: the closure did not run; keep the context.
            Err(_) => {
                *home = ctx;
                (None, false)
            }
        };
        Lent { home, prev, lent }
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if self.lent {
            let prev = self.prev.take();
            if let Ok(back) = CURRENT.try_with(|c| c.replace(prev)) {
                *self.home = back;
            }
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
}
