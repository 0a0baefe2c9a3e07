//! Tracing of cancellation origins (feature `tracing`).
//!
//! One event per *origin* of a cancellation: a `cancel()` call, a deadline firing, the drop of
//! the last `CancelHandle`, a `Group` member failing; never one per descendant. Callers invoke
//! [`cancelled`] once, after every lock of ours is released, only when their call is the one that
//! moved the context from live to done. Without the feature this compiles to nothing: the
//! closure is never called, so not even the `Arc` clone is paid.

use crate::context::Context;

/// What started a cancellation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)] // each variant is emitted by its own wing
pub(crate) enum Origin {
    /// `CancelHandle::cancel` / `cancel_with_cause`.
    Cancel,
    /// The context's own deadline fired on the timer.
    Deadline,
    /// The last `CancelHandle` was dropped.
    HandleDropped,
    /// A `Group` member failed (error or panic) and cancelled the group's context.
    MemberFailed,
}

/// Reports one cancellation origin. `ctx` builds the context that was cancelled (it is only
/// called with the feature on).
#[inline(always)]
#[allow(unused_variables, dead_code)]
pub(crate) fn cancelled(origin: Origin, ctx: impl FnOnce() -> Context) {
    #[cfg(feature = "tracing")]
    {
        // Implemented by the `tracing` feature work (issue 9).
        let _ = (origin, ctx());
    }
}
