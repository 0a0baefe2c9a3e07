//! [`ContextDone`]: the error a call reports when its context ended it.

use std::fmt;

use go_context::{BoxError, Cause, Context, Error};

use crate::protocol;

/// A call (or its response body) was ended by its context: the deadline passed or the
/// context was cancelled. The client layer returns it boxed (for gRPC calls with the `tonic`
/// feature, a `tonic::Status` instead, so tonic clients see `DEADLINE_EXCEEDED`/`CANCELLED`);
/// an HTTP response body cut by the server at its deadline ends with it.
///
/// ```
/// use context_tower::ContextDone;
/// use go_context::{Context, Error};
/// use std::time::Instant;
///
/// let (ctx, _cancel) = Context::background().with_deadline_cause(Instant::now(), "too slow");
/// let e = ContextDone::of(&ctx);
/// assert_eq!(e.error(), Error::DeadlineExceeded);
/// assert!(e.to_string().starts_with("context deadline exceeded: too slow [at "));
/// ```
#[derive(Clone, Debug)]
pub struct ContextDone {
    err: Error,
    cause: Option<Cause>,
}

impl ContextDone {
    /// The error of `ctx`, which should be done (`Canceled` otherwise).
    ///
    /// ```
    /// # use context_tower::ContextDone;
    /// # use go_context::{Context, Error};
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// cancel.cancel();
    /// assert_eq!(ContextDone::of(&ctx).error(), Error::Canceled);
    /// ```
    pub fn of(ctx: &Context) -> ContextDone {
        ContextDone {
            err: ctx.err().unwrap_or(Error::Canceled),
            cause: ctx.cause(),
        }
    }

    /// `DeadlineExceeded` or `Canceled`.
    ///
    /// ```
    /// # use context_tower::ContextDone;
    /// # use go_context::{Context, Error};
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// cancel.cancel();
    /// assert!(!ContextDone::of(&ctx).error().is_timeout());
    /// ```
    pub fn error(&self) -> Error {
        self.err
    }

    /// Why, and where the cancellation came from.
    ///
    /// ```
    /// # use context_tower::ContextDone;
    /// # use go_context::Context;
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// cancel.cancel_with_cause("shutting down");
    /// assert_eq!(ContextDone::of(&ctx).cause().unwrap().to_string(), "shutting down");
    /// ```
    pub fn cause(&self) -> Option<&Cause> {
        self.cause.as_ref()
    }
}

impl fmt::Display for ContextDone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&protocol::message(self.err, self.cause.as_ref()))
    }
}

impl std::error::Error for ContextDone {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.err)
    }
}

impl ContextDone {
    /// A deadline that leaves no time for the call: the client's margin ate it, or the
    /// deadline sent to the callee passed.
    pub(crate) fn no_time_left() -> ContextDone {
        ContextDone {
            err: Error::DeadlineExceeded,
            cause: None,
        }
    }
}

/// The boxed error a client call fails with: for gRPC with feature `tonic`, a `Status`, so
/// tonic's client reports the code.
pub(crate) fn call_error(grpc: bool, done: ContextDone) -> BoxError {
    #[cfg(feature = "tonic")]
    if grpc {
        return Box::new(crate::tonic::status_from_error(
            done.err,
            done.cause.as_ref(),
        ));
    }
    let _ = grpc;
    Box::new(done)
}
