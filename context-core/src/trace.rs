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
//! the feature on but nobody listening, a cancellation pays one check of the global level
//! filter (an atomic load); the subscriber is asked only past it, inside the `catch_unwind`
//! that contains its panics (its `enabled` is user code too).

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
        // The global level filter: an atomic load, no subscriber code (which `enabled!` runs,
        // in `emit`, where its panics are contained).
        use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
        if tracing::Level::DEBUG <= STATIC_MAX_LEVEL
            && tracing::Level::DEBUG <= LevelFilter::current()
        {
            emit(origin, cancelled);
        }
    }
}

/// Asks the subscriber whether it wants the event, then builds and sends it: out of line, so
/// the call sites stay one check. `cancelled` is [`cancelled`]'s.
#[cfg(feature = "tracing")]
#[cold]
#[inline(never)]
fn emit<C: fmt::Debug>(origin: Origin, cancelled: impl FnOnce() -> (Option<Cause>, C)) {
    // The subscriber (its `enabled` too) and the cause's `Display` are user code: a panic in
    // them is handled as a waker's is (`tree::cancel`): re-raised to a `cancel()` caller,
    // dropped for every other origin, whose callers have bookkeeping left that an unwind would
    // skip (the drop of a last handle: its `unlink`, tree invariant 3).
    let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if !tracing::enabled!(target: "go_context", tracing::Level::DEBUG) {
            return;
        }
        // The caller holds no lock of ours (the module contract), so reading the cause (one
        // lock) and formatting user errors in the subscriber are both safe here.
        let (cause, chain) = cancelled();
        let Some(cause) = cause else {
            // Only a done context is reported; a caller that broke that rule emits nothing.
            debug_assert!(false, "trace::cancelled on a live context");
            return;
        };
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

#[cfg(all(test, feature = "tracing", not(loom)))]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use tracing::span::{Attributes, Id, Record};
    use tracing::subscriber::Interest;
    use tracing::{Event, Metadata, Subscriber};

    use crate::{tree, Context};

    /// A subscriber whose `enabled` panics when asked about this crate's event.
    struct PanicsWhenAsked;

    impl Subscriber for PanicsWhenAsked {
        fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
            // Asked once per callsite, on whichever thread gets there first: no panic here.
            Interest::sometimes()
        }
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            if metadata.target() == "go_context" {
                panic!("a subscriber's enabled panics (on purpose)");
            }
            false
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {}
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    /// Regression test (found by the locks audit): the subscriber's `enabled` is user code,
    /// asked outside the `catch_unwind` that contains the event's panics. A panic in it
    /// unwound out of the drop of a last handle between its `cancel` and its `unlink`, so the
    /// freed node's address stayed in its parent's children (tree invariant 3): the parent's
    /// cancellation would then use freed memory.
    #[test]
    fn a_panic_in_the_subscribers_enabled_does_not_cut_a_handle_drop_short() {
        // Declared first, dropped last: keeps the child alive (no use after free) even when
        // the drop below is cut short and the parent's cancellation walks its list.
        let mut keep = Vec::new();
        let (parent, _parent_cancel) = Context::background().with_cancel();
        let (child, handle) = parent.with_cancel();
        keep.push(child);
        let dropped = tracing::subscriber::with_default(PanicsWhenAsked, || {
            catch_unwind(AssertUnwindSafe(|| drop(handle)))
        });
        assert!(dropped.is_ok(), "the drop of the last handle unwound");
        assert_eq!(
            tree::child_count(&parent.node),
            0,
            "the child whose last handle was dropped is still listed"
        );
        drop(keep);
    }
}
