//! [`CancelHandle`]: the right to cancel one context, Go's `CancelFunc`, cancelling on drop.

use std::fmt;
use std::panic::Location;

use crate::error::{BoxError, CauseData, Error};
use crate::sync::Arc;
use crate::trace::{self, Origin};
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
/// parent's child list and the timer at once. The flip side: `let (ctx, _) = parent.with_cancel();`
/// drops the handle on the spot and `ctx` is born cancelled. Bind it to a name
/// (`let (ctx, _cancel) = …`) to keep it for the scope.
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
        self.cancel_traced(Origin::Cancel, cause);
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
        self.cancel_traced(Origin::Cancel, cause);
    }

    /// [`cancel_with_cause`](CancelHandle::cancel_with_cause), reporting `location` as where
    /// the cancellation came from (e.g. where a failed `Group` member was started).
    pub(crate) fn cancel_with_cause_at(
        &self,
        cause: impl Into<BoxError>,
        location: &'static Location<'static>,
    ) {
        let cause = CauseData::custom(cause.into(), location);
        self.cancel_traced(Origin::MemberFailed, cause);
    }

    /// Cancels with `cause`; if this call is the origin of the cancellation, traces it.
    fn cancel_traced(&self, origin: Origin, cause: CauseData) {
        if tree::cancel(&self.node, Error::Canceled, cause) {
            trace::cancelled(origin, || self.context());
        }
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
            self.cancel_traced(Origin::HandleDropped, cause);
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
