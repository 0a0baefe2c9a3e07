//! [`ContextDone`]: the error a call reports when its context ended it, and [`message`], the
//! one text that names a context error wherever one is reported (a `grpc-message`, an HTTP
//! answer's body, a `tonic::Status`, this error's `Display`).

use std::fmt;
use std::fmt::Write as _;

use go_context::{Cause, Context, Error};

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
        f.write_str(&message(self.err, self.cause.as_ref()))
    }
}

/// The message shows the error and the cause, so the source is what the cause wraps (as
/// go-context's `Cause` is transparent in a chain): a chain printer shows each message once.
/// The error itself is [`ContextDone::error`], the cause [`ContextDone::cause`].
impl std::error::Error for ContextDone {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_ref().and_then(std::error::Error::source)
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

/// The text that names a context error, its cause and where the cause came from:
/// `context deadline exceeded: deadline sent by the caller (...) [at src/x.rs:10:5]`.
pub(crate) fn message(err: Error, cause: Option<&Cause>) -> String {
    let mut s = err.to_string();
    if let Some(c) = cause {
        if !c.is_plain() {
            let _ = write!(s, ": {c}");
        }
        let loc = c.location();
        let _ = write!(s, " [at {}:{}:{}]", loc.file(), loc.line(), loc.column());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message of the chain from `e`, as a chain printer (anyhow, eyre, tracing's
    /// `error.sources`) shows them.
    fn chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
        let mut out = vec![e.to_string()];
        let mut next = e.source();
        while let Some(s) = next {
            out.push(s.to_string());
            next = s.source();
        }
        out
    }

    #[derive(Debug)]
    struct Upstream(std::io::Error);

    impl fmt::Display for Upstream {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("upstream failed")
        }
    }

    impl std::error::Error for Upstream {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    /// Regression test (found by an audit): the message shows the error and the cause, yet
    /// `source()` returned the error again, so a chain printer showed `context canceled`
    /// twice, and the cause's own source (what it wraps) not at all; go-context's `Cause`
    /// keeps std's convention (a message shown or returned as the source, never both).
    #[test]
    fn a_context_done_prints_each_message_of_its_chain_once() {
        let (ctx, cancel) = Context::background().with_cancel();
        cancel.cancel_with_cause(Upstream(std::io::Error::other("connection reset")));
        let done = ContextDone::of(&ctx);
        let messages = chain(&done);
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(
            messages[0].starts_with("context canceled: upstream failed [at "),
            "{messages:?}"
        );
        assert_eq!(messages[1], "connection reset");
        // The cause itself stays reachable by type, the error by `error()`.
        assert!(done.cause().unwrap().downcast_ref::<Upstream>().is_some());
        assert_eq!(done.error(), Error::Canceled);

        let (ctx, cancel) = Context::background().with_cancel();
        cancel.cancel();
        let messages = chain(&ContextDone::of(&ctx));
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(
            messages[0].starts_with("context canceled [at "),
            "{messages:?}"
        );
        assert_eq!(
            chain(&ContextDone::no_time_left()),
            ["context deadline exceeded"]
        );
    }
}
