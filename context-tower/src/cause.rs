//! The causes this crate cancels contexts with: find them with `ctx.cause()?.downcast_ref()`.

use std::fmt;
use std::time::Duration;

use http::HeaderName;

/// The cause of a request context whose deadline came from the caller (or from the policy's
/// default): `ctx.cause()` reports it once the deadline fires.
///
/// It keeps the header's name and its raw value inline (a deadline value that parses is at
/// most 10 bytes), so building one per request allocates nothing.
///
/// ```
/// use context_tower::RemoteDeadline;
/// use go_context::Context;
/// use std::time::{Duration, Instant};
///
/// let cause = RemoteDeadline::from_header(
///     http::HeaderName::from_static("grpc-timeout"),
///     b"1n",
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
    value: RawValue,
    budget: Duration,
}

/// Up to [`RawValue::CAP`] bytes of a header value, kept inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RawValue {
    buf: [u8; RawValue::CAP],
    len: u8,
}

impl RawValue {
    /// Room for any deadline value that parses (10 digits at most) and some more.
    const CAP: usize = 22;

    fn new(bytes: &[u8]) -> RawValue {
        let len = bytes.len().min(RawValue::CAP);
        let mut buf = [0u8; RawValue::CAP];
        buf[..len].copy_from_slice(&bytes[..len]);
        RawValue {
            buf,
            len: len as u8,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl RemoteDeadline {
    /// A deadline read from `header: value`, giving the request `budget` (after the clamps).
    /// `value` is kept as sent, up to 22 bytes (every deadline value that parses is shorter).
    ///
    /// ```
    /// # use context_tower::RemoteDeadline;
    /// # use std::time::Duration;
    /// let c = RemoteDeadline::from_header(
    ///     http::HeaderName::from_static("connect-timeout-ms"),
    ///     b"250",
    ///     Duration::from_millis(250),
    /// );
    /// assert_eq!(c.to_string(), "deadline sent by the caller (connect-timeout-ms: 250, budget 250ms)");
    /// ```
    pub fn from_header(header: HeaderName, value: &[u8], budget: Duration) -> RemoteDeadline {
        RemoteDeadline {
            header: Some(header),
            value: RawValue::new(value),
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
            value: RawValue::new(b""),
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

    /// The header's raw value as the caller sent it (`None` for the policy's default, or if
    /// it is not UTF-8, which a value that parses always is).
    ///
    /// ```
    /// # use context_tower::RemoteDeadline;
    /// # use std::time::Duration;
    /// assert!(RemoteDeadline::default_timeout(Duration::ZERO).raw_value().is_none());
    /// ```
    pub fn raw_value(&self) -> Option<&str> {
        self.header.as_ref()?;
        std::str::from_utf8(self.value.as_bytes()).ok()
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
        match &self.header {
            Some(h) => write!(
                f,
                "deadline sent by the caller ({h}: {}, budget {:?})",
                String::from_utf8_lossy(self.value.as_bytes()),
                self.budget
            ),
            None => write!(f, "server default deadline (budget {:?})", self.budget),
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
