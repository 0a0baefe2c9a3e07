//! [`CancelHandle`]: the right to cancel one context, Go's `CancelFunc`, cancelling on drop.

use std::fmt;
use std::panic::Location;

use crate::error::{BoxError, CauseData, Error};
use crate::sync::Arc;
use crate::trace::Origin;
use crate::tree::{self, Node};
use crate::Context;

/// Cancels the context it came with: Go's `CancelFunc` / `CancelCauseFunc`.
///
/// Cancelling is idempotent and can be done from any thread; the first cancellation wins and
/// later ones change nothing. When [`cancel`](CancelHandle::cancel) returns, the context and every
/// descendant already report done.
///
/// **Dropping the last clone cancels the context.** This is the Rust form of Go's
/// `defer cancel()`: work is never orphaned, and a context nobody can cancel any more leaves its
/// parent's child list and the timer at once. (A context cancelled while a handle is kept leaves
/// the timer at the cancellation and its parent's list with the last handle, as tokio-util's
/// child tokens do: `cancel()` does only what waiters wait for.) The flip side: `let (ctx, _) = parent.with_cancel();`
/// drops the handle on the spot and `ctx` is born cancelled. Bind it to a name
/// (`let (ctx, _cancel) = …`) to keep it for the scope.
///
/// # Panics
///
/// A waker registered on the context (or a descendant) that panics when woken does not stop
/// the cancellation: every other waiter is still woken, and the whole subtree reports done.
/// [`cancel`](CancelHandle::cancel) and [`cancel_with_cause`](CancelHandle::cancel_with_cause)
/// then re-raise the first such panic to their caller. Every other cancellation (the drop of
/// the last handle, a deadline, a failed [`Group`](crate::Group) member, a signal or a token)
/// never unwinds: the panic hook has reported the panic, and it goes no further, so a `Drop`
/// or a thread of the library is never cut short by someone else's waker.
///
/// # Examples
///
/// ```
/// use go_context::{Context, Error};
///
/// let (ctx, cancel) = Context::background().with_cancel();
/// {
///     let _cancel = cancel; // dropped at the end of this scope: cancels `ctx`
///     assert!(!ctx.is_done());
/// }
/// assert_eq!(ctx.err(), Some(Error::Canceled));
/// ```
#[must_use = "dropping the last CancelHandle cancels its context at once; bind it to a name (`let (ctx, _cancel) = ...`)"]
pub struct CancelHandle {
    node: Arc<Node>,
    /// Where the context was created: the location reported when a drop cancels it.
    origin: &'static Location<'static>,
}

impl CancelHandle {
    pub(crate) fn new(node: Arc<Node>, origin: &'static Location<'static>) -> CancelHandle {
        CancelHandle { node, origin }
    }

    /// Cancels the context with [`Error::Canceled`]; the cause records the caller's location.
    ///
    /// ```
    /// use go_context::{Context, Error};
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let (child, _child_cancel) = ctx.with_cancel();
    /// cancel.cancel();
    /// assert_eq!(child.err(), Some(Error::Canceled)); // already, synchronously
    /// cancel.cancel(); // idempotent
    /// ```
    #[track_caller]
    pub fn cancel(&self) {
        let cause = CauseData::plain(Location::caller());
        tree::cancel(&self.node, Error::Canceled, cause, Origin::Cancel);
    }

    /// Cancels the context with [`Error::Canceled`] and `cause` as its [`Cause`](crate::Cause): Go's
    /// `CancelCauseFunc`. If the context is already done, nothing changes.
    ///
    /// ```
    /// use go_context::Context;
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// cancel.cancel_with_cause("upstream failed");
    /// cancel.cancel_with_cause("too late"); // the first cause wins
    /// assert_eq!(ctx.cause().unwrap().to_string(), "upstream failed");
    /// ```
    #[track_caller]
    pub fn cancel_with_cause(&self, cause: impl Into<BoxError>) {
        let cause = CauseData::custom(cause.into(), Location::caller());
        tree::cancel(&self.node, Error::Canceled, cause, Origin::Cancel);
    }

    /// [`cancel_with_cause`](CancelHandle::cancel_with_cause), reporting `location` as where
    /// the cancellation came from (e.g. where a failed `Group` member was started).
    pub(crate) fn cancel_with_cause_at(
        &self,
        cause: impl Into<BoxError>,
        location: &'static Location<'static>,
    ) {
        let cause = CauseData::custom(cause.into(), location);
        tree::cancel(&self.node, Error::Canceled, cause, Origin::MemberFailed);
    }

    /// The context this handle cancels.
    ///
    /// ```
    /// use go_context::Context;
    ///
    /// let (_ctx, cancel) = Context::background().with_cancel();
    /// let ctx = cancel.context();
    /// cancel.cancel();
    /// assert!(ctx.is_done());
    /// ```
    pub fn context(&self) -> Context {
        Context {
            node: Arc::clone(&self.node),
        }
    }
}

impl Clone for CancelHandle {
    fn clone(&self) -> Self {
        if let Some(core) = self.node.cancel_node() {
            core.acquire_handle();
        }
        CancelHandle {
            node: Arc::clone(&self.node),
            origin: self.origin,
        }
    }
}

impl Drop for CancelHandle {
    fn drop(&mut self) {
        let Some(core) = self.node.cancel_node() else {
            return;
        };
        if core.release_handle() {
            let cause = CauseData::plain(self.origin);
            tree::cancel(&self.node, Error::Canceled, cause, Origin::HandleDropped);
            // Out of the parent's list now, not at the `cancel()` (tree invariant 2): a
            // cancellation's latency is its wake-ups', and a child's unlink and its parent's
            // release come together when the node goes.
            tree::unlink(&self.node);
        }
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHandle")
            .field("context", &self.context())
            .field("created_at", &format_args!("{}", self.origin))
            .finish()
    }
}
