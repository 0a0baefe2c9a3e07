//! Tracing of cancellation origins (feature `tracing`).
//!
//! One event per *origin* of a cancellation: a `cancel()` call, a deadline firing, the drop of
//! the last `CancelHandle`, a `Group` member failing (and, with their features, a bridged
//! token or a signal); never one per descendant. Callers invoke
//! [`cancelled`] once, after every lock of ours is released, only when their call is the one that
//! moved the context from live to done. Without the feature this compiles to nothing: the
//! closure that reads the cause and the chain is never called. This module imports nothing of
//! the tree or of `Context`: the caller hands it the cause and something that prints the chain.
//!
//! # The event
//!
//! Target `go_context` (the crate's path, so `RUST_LOG=go_context=debug` selects it), level
//! `DEBUG` (a cancellation is routine; what went wrong is the caller's to report), message
//! `context done`, and the fields:
//!
//! | field | value |
//! |---|---|
//! | `origin` | `cancel`, `deadline`, `handle_dropped`, `member_failed`, `token` or `signal` |
//! | `error` | the [`Error`](crate::Error) (`Display`: `context canceled` / `context deadline exceeded`) |
//! | `cause` | the [`Cause`] (`Display`: the custom message, or the error) |
//! | `cause.location` | where it came from: `file:line:column` |
//! | `context` | the context's chain (`Debug`), e.g. `background.with_value(RequestId).with_cancel` |
//!
//! The fields are built only if a subscriber wants the event (`tracing::enabled!`): with
//! the feature on but nobody listening, a cancellation pays one check of a cached interest.

use std::fmt;

use crate::error::Cause;

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
    /// A tokio-util `CancellationToken` bridged with `Context::with_token` was cancelled.
    Token,
    /// A signal arrived for a `Context::with_signals` context.
    Signal,
}

#[cfg(feature = "tracing")]
impl Origin {
    /// The event's `origin` field.
    fn as_str(self) -> &'static str {
        match self {
            Origin::Cancel => "cancel",
            Origin::Deadline => "deadline",
            Origin::HandleDropped => "handle_dropped",
            Origin::MemberFailed => "member_failed",
            Origin::Token => "token",
            Origin::Signal => "signal",
        }
    }
}

/// Reports one cancellation origin. `cancelled` gives the cause of the context that was
/// cancelled and its chain (`Debug`); it is only called with the feature on, and only if a
/// subscriber wants the event.
#[inline(always)]
#[allow(unused_variables, dead_code)]
pub(crate) fn cancelled<C: fmt::Debug>(
    origin: Origin,
    cancelled: impl FnOnce() -> (Option<Cause>, C),
) {
    #[cfg(feature = "tracing")]
    {
        if tracing::enabled!(target: "go_context", tracing::Level::DEBUG) {
            let (cause, chain) = cancelled();
            emit(origin, cause, &chain);
        }
    }
}

/// Builds and sends the event: out of line, so the call sites stay one check.
#[cfg(feature = "tracing")]
#[cold]
#[inline(never)]
fn emit(origin: Origin, cause: Option<Cause>, chain: &dyn fmt::Debug) {
    // The caller holds no lock of ours (the module contract), so reading the cause (one lock)
    // and formatting user errors in the subscriber are both safe here.
    let Some(cause) = cause else {
        // Only a done context is reported; a caller that broke that rule emits nothing.
        debug_assert!(false, "trace::cancelled on a live context");
        return;
    };
    // The subscriber and the cause's `Display` are user code: a panic in them is handled as
    // a waker's is (`tree::cancel`): re-raised to a `cancel()` caller, dropped for every other
    // origin, whose callers have bookkeeping left that an unwind would skip.
    let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tracing::event!(
            target: "go_context",
            tracing::Level::DEBUG,
            origin = origin.as_str(),
            error = %cause.err(),
            cause = %cause,
            cause.location = %cause.location(),
            context = ?chain,
            "context done"
        );
    }));
    if let Err(payload) = sent {
        if origin == Origin::Cancel && !std::thread::panicking() {
            std::panic::resume_unwind(payload);
        }
        crate::unwind::discard(payload);
    }
}
