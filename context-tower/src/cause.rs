//! The causes this crate cancels contexts with: find them with `ctx.cause()?.downcast_ref()`.

use std::fmt;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

/// The cause of a request context whose deadline came from the caller (or from the policy's
/// default): `ctx.cause()` reports it once the deadline fires.
///
/// ```
/// use context_tower::RemoteDeadline;
/// use go_context::Context;
/// use std::time::{Duration, Instant};
///
/// let cause = RemoteDeadline::from_header(
///     http::HeaderName::from_static("grpc-timeout"),
///     http::HeaderValue::from_static("1n"),
///     Duration::from_nanos(1),
/// );
/// let (ctx, _cancel) = Context::background().with_deadline_cause(Instant::now(), cause);
/// let cause = ctx.cause().unwrap();
/// let remote = cause.downcast_ref::<RemoteDeadline>().unwrap();
/// assert_eq!(remote.header().unwrap(), "grpc-timeout");
/// assert_eq!(remote.raw_value().unwrap(), "1n");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteDeadline {
    header: Option<HeaderName>,
    value: Option<HeaderValue>,
    budget: Duration,
}

impl RemoteDeadline {
    /// A deadline read from `header: value`, giving the request `budget` (after the clamps).
    ///
    /// ```
    /// # use context_tower::RemoteDeadline;
    /// # use std::time::Duration;
    /// let c = RemoteDeadline::from_header(
    ///     http::HeaderName::from_static("connect-timeout-ms"),
    ///     http::HeaderValue::from_static("250"),
    ///     Duration::from_millis(250),
    /// );
    /// assert_eq!(c.to_string(), "deadline sent by the caller (connect-timeout-ms: 250, budget 250ms)");
    /// ```
    pub fn from_header(header: HeaderName, value: HeaderValue, budget: Duration) -> RemoteDeadline {
        RemoteDeadline {
            header: Some(header),
            value: Some(value),
            budget,
        }
    }

    /// The policy's default deadline, used when the caller sent none.
    ///
    /// ```
    /// # use context_tower::RemoteDeadline;
    /// # use std::time::Duration;
    /// let c = RemoteDeadline::default_timeout(Duration::from_secs(2));
    /// assert!(c.header().is_none());
    /// assert_eq!(c.budget(), Duration::from_secs(2));
    /// ```
    pub fn default_timeout(budget: Duration) -> RemoteDeadline {
        RemoteDeadline {
            header: None,
            value: None,
            budget,
        }
    }

    /// The header the deadline came from, `None` for the policy's default.
    ///
    /// ```
    /// # use context_tower::RemoteDeadline;
    /// # use std::time::Duration;
    /// assert!(RemoteDeadline::default_timeout(Duration::ZERO).header().is_none());
    /// ```
    pub fn header(&self) -> Option<&HeaderName> {
        self.header.as_ref()
    }

    /// The header's raw value as the caller sent it.
    ///
    /// ```
    /// # use context_tower::RemoteDeadline;
    /// # use std::time::Duration;
    /// assert!(RemoteDeadline::default_timeout(Duration::ZERO).raw_value().is_none());
    /// ```
    pub fn raw_value(&self) -> Option<&HeaderValue> {
        self.value.as_ref()
    }

    /// The time the request was given, after the policy's clamps.
    ///
    /// ```
    /// # use context_tower::RemoteDeadline;
    /// # use std::time::Duration;
    /// assert_eq!(RemoteDeadline::default_timeout(Duration::from_secs(1)).budget(), Duration::from_secs(1));
    /// ```
    pub fn budget(&self) -> Duration {
        self.budget
    }
}

impl fmt::Display for RemoteDeadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.header, &self.value) {
            (Some(h), Some(v)) => write!(
                f,
                "deadline sent by the caller ({h}: {}, budget {:?})",
                String::from_utf8_lossy(v.as_bytes()),
                self.budget
            ),
            _ => write!(f, "server default deadline (budget {:?})", self.budget),
        }
    }
}

impl std::error::Error for RemoteDeadline {}

/// The cause of a request context cancelled because the request was dropped before its
/// response was complete: the client went away, reset the stream (HTTP/2 `RST_STREAM`) or
/// the connection closed.
///
/// ```
/// use context_tower::RequestDropped;
/// use go_context::Context;
///
/// let (ctx, cancel) = Context::background().with_cancel();
/// cancel.cancel_with_cause(RequestDropped::while_handling());
/// let cause = ctx.cause().unwrap();
/// assert!(!cause.downcast_ref::<RequestDropped>().unwrap().while_streaming());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestDropped {
    streaming: bool,
}

impl RequestDropped {
    /// Dropped while the handler was still running.
    ///
    /// ```
    /// # use context_tower::RequestDropped;
    /// assert!(!RequestDropped::while_handling().while_streaming());
    /// ```
    pub fn while_handling() -> RequestDropped {
        RequestDropped { streaming: false }
    }

    /// Dropped while the response body was still streaming.
    ///
    /// ```
    /// # use context_tower::RequestDropped;
    /// assert!(RequestDropped::during_body().while_streaming());
    /// ```
    pub fn during_body() -> RequestDropped {
        RequestDropped { streaming: true }
    }

    /// Whether the handler had answered and the body was streaming when the request dropped.
    ///
    /// ```
    /// # use context_tower::RequestDropped;
    /// assert!(RequestDropped::during_body().while_streaming());
    /// ```
    pub fn while_streaming(&self) -> bool {
        self.streaming
    }
}

impl fmt::Display for RequestDropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.streaming {
            f.write_str("request dropped while its response was streaming (client gone, stream reset or connection closed)")
        } else {
            f.write_str("request dropped before the handler answered (client gone, stream reset or connection closed)")
        }
    }
}

impl std::error::Error for RequestDropped {}
