//! tonic integration (feature `tonic`): `Status` <-> [`Error`] and `req.context()` on
//! `tonic::Request`.
//!
//! Serve tonic services through `Routes::into_axum_router()` with [`ContextLayer`] instead
//! of `Server::timeout`: tonic's own timeout answers `CANCELLED` ("Timeout expired") and gives
//! the handler no deadline; ours answers `DEADLINE_EXCEEDED` and makes the deadline the
//! handler's context (see the crate docs for the full server).
//!
//! [`ContextLayer`]: crate::ContextLayer

use go_context::{Cause, Context, Error};
use tonic::{Code, Status};

use crate::ext::RequestContextExt;
use crate::protocol;

/// The `Status` of a context error: `DeadlineExceeded` = 4, `Canceled` = 1, the message
/// naming the cause and where it came from.
///
/// ```
/// use context_tower::tonic::status_from_error;
/// use go_context::{Context, Error};
///
/// let (ctx, cancel) = Context::background().with_cancel();
/// cancel.cancel_with_cause("shutting down");
/// let status = status_from_error(ctx.err().unwrap(), ctx.cause().as_ref());
/// assert_eq!(status.code(), tonic::Code::Cancelled);
/// assert!(status.message().starts_with("context canceled: shutting down [at "));
/// ```
pub fn status_from_error(err: Error, cause: Option<&Cause>) -> Status {
    let code = match err {
        Error::DeadlineExceeded => Code::DeadlineExceeded,
        _ => Code::Cancelled,
    };
    Status::new(code, protocol::message(err, cause))
}

/// The `Status` of a done context (`CANCELLED` if it is not done).
///
/// ```
/// use context_tower::tonic::status_from_context;
/// use go_context::Context;
/// use std::time::Instant;
///
/// let (ctx, _cancel) = Context::background().with_deadline(Instant::now());
/// assert_eq!(status_from_context(&ctx).code(), tonic::Code::DeadlineExceeded);
/// ```
pub fn status_from_context(ctx: &Context) -> Status {
    let (err, msg) = protocol::done_error(ctx);
    let code = match err {
        Error::DeadlineExceeded => Code::DeadlineExceeded,
        _ => Code::Cancelled,
    };
    Status::new(code, msg)
}

/// The context error a `Status` stands for: 4 is `DeadlineExceeded`, 1 is `Canceled`.
///
/// ```
/// use context_tower::tonic::error_from_status;
/// use go_context::Error;
///
/// assert_eq!(error_from_status(&tonic::Status::deadline_exceeded("x")), Some(Error::DeadlineExceeded));
/// assert_eq!(error_from_status(&tonic::Status::cancelled("x")), Some(Error::Canceled));
/// assert_eq!(error_from_status(&tonic::Status::internal("x")), None);
/// ```
pub fn error_from_status(status: &Status) -> Option<Error> {
    match status.code() {
        Code::DeadlineExceeded => Some(Error::DeadlineExceeded),
        Code::Cancelled => Some(Error::Canceled),
        _ => None,
    }
}

impl<T> RequestContextExt for tonic::Request<T> {
    /// ```
    /// use context_tower::RequestContextExt;
    /// use go_context::Context;
    /// let mut req = tonic::Request::new(());
    /// req.set_context(Context::background().with_value(1u8));
    /// assert_eq!(req.context().value::<u8>(), Some(&1));
    /// ```
    fn context(&self) -> Context {
        self.extensions()
            .get::<Context>()
            .cloned()
            .unwrap_or_else(Context::current)
    }

    fn set_context(&mut self, ctx: Context) {
        self.extensions_mut().insert(ctx);
    }
}
