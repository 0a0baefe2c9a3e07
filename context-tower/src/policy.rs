//! [`DeadlinePolicy`]: where a server reads the caller's deadline and how far it trusts it.

use std::cell::RefCell;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::cause::RemoteDeadline;
use crate::wire::{self, TimeoutValue, WireError};

/// The wire form of one deadline header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// `grpc-timeout`: digits and a unit.
    Grpc,
    /// `*-timeout-ms`: digits of milliseconds.
    Millis,
}

impl Format {
    pub(crate) fn parse(self, value: &[u8]) -> Result<Duration, WireError> {
        match self {
            Format::Grpc => wire::parse_grpc_timeout(value),
            Format::Millis => wire::parse_timeout_ms(value),
        }
    }

    /// The header value to send. It is marked sensitive, so HTTP/2 sends it as HPACK
    /// "never indexed": it changes with every call, and indexing it would fill the
    /// connection's header table with dead entries (and evict the live ones) at each request.
    ///
    /// Calls made within one unit of each other (a millisecond for `*-timeout-ms`) send the
    /// same value: from the second such call on, this thread's last header value is shared (a
    /// reference count) instead of written and allocated again. The cache is keyed by the
    /// number and unit, so a repeat skips the digits too; a value that differs from the last
    /// costs one comparison more than no cache at all.
    pub(crate) fn format(self, timeout: Duration) -> HeaderValue {
        let key = match self {
            Format::Grpc => {
                let (value, unit) = wire::grpc_timeout_parts(timeout);
                (value, Some(unit))
            }
            Format::Millis => (wire::timeout_ms_value(timeout), None),
        };
        LAST_VALUE
            .try_with(|last| {
                let mut last = last.borrow_mut();
                match &mut last[self as usize] {
                    Some((k, Some(value))) if *k == key => value.clone(),
                    Some((k, cached @ None)) if *k == key => {
                        // The value repeats: keep a header value to share from now on.
                        let value = sensitive(key);
                        *cached = Some(value.clone());
                        value
                    }
                    slot => {
                        // Only the key is kept (no allocation) until it repeats. The old
                        // value dropped here is bytes only: no user code runs.
                        *slot = Some((key, None));
                        sensitive(key)
                    }
                }
            })
            .unwrap_or_else(|_| sensitive(key))
    }
}

/// What a formatted deadline is made of: the number and, for `grpc-timeout`, the unit.
type Key = (u64, Option<u8>);

fn sensitive((value, unit): Key) -> HeaderValue {
    let mut value = TimeoutValue::new(value, unit).to_header_value();
    value.set_sensitive(true);
    value
}

/// The last deadline formatted on a thread, and its header value once it repeated.
type Last = Option<(Key, Option<HeaderValue>)>;

thread_local! {
    /// [`Last`], per [`Format`].
    static LAST_VALUE: RefCell<[Last; 2]> = const { RefCell::new([None, None]) };
}

#[derive(Clone, Debug)]
pub(crate) struct Source {
    pub(crate) header: HeaderName,
    pub(crate) format: Format,
}

/// What to do with a deadline header that does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Malformed {
    Ignore,
    Reject,
}

/// Where a server reads the caller's deadline, and how far it trusts it.
///
/// The shortest value of all the source headers wins, whichever header and however many
/// values each has (a hop that appended its deadline, or a proxy that forwarded a stale longer
/// one beside it, never extends the caller's); a malformed value among them is ignored or
/// rejected as a lone one is. The budget it gives is clamped to
/// `[min, max]`; with no header (or a malformed one, ignored), the [`default_timeout`](Self::default_timeout)
/// applies, clamped to `max`, and with no default `max` itself: with `max` set, no request
/// runs longer than `max`, whatever it sent. A budget of
/// zero (`0n`, `0`) means the caller has no time left: the request is answered with
/// `DEADLINE_EXCEEDED`/504 without calling the handler (the `min` clamp does not revive it).
/// A header that does not parse is ignored (the default) or rejected with gRPC `INTERNAL` /
/// HTTP 400, as grpc-go does.
///
/// ```
/// use context_tower::DeadlinePolicy;
/// use std::time::Duration;
///
/// let policy = DeadlinePolicy::grpc()
///     .max(Duration::from_secs(30))          // never trust a caller for longer
///     .min(Duration::from_millis(5))         // nor give less than this
///     .default_timeout(Duration::from_secs(10))
///     .reject_malformed();
/// # let _ = policy;
/// ```
#[derive(Clone, Debug)]
pub struct DeadlinePolicy {
    pub(crate) sources: Vec<Source>,
    pub(crate) max: Option<Duration>,
    pub(crate) min: Option<Duration>,
    pub(crate) default: Option<Duration>,
    pub(crate) malformed: Malformed,
    pub(crate) cover_body: bool,
}

/// What the policy made of a request's headers.
#[derive(Debug)]
pub(crate) enum Budget {
    /// No deadline: the request runs under the parent's.
    None,
    /// This budget, and the cause to report when it runs out.
    Some(Duration, RemoteDeadline),
    /// A header did not parse and the policy rejects that.
    Malformed(HeaderName, WireError),
}

impl DeadlinePolicy {
    /// gRPC: the deadline is read from `grpc-timeout`.
    ///
    /// ```
    /// # use context_tower::DeadlinePolicy;
    /// let p = DeadlinePolicy::grpc();
    /// # let _ = p;
    /// ```
    pub fn grpc() -> DeadlinePolicy {
        DeadlinePolicy::empty().source_grpc(HeaderName::from_static("grpc-timeout"))
    }

    /// HTTP: the deadline is read from `connect-timeout-ms` and `grpc-timeout` (the shorter
    /// wins if both are sent).
    ///
    /// ```
    /// # use context_tower::DeadlinePolicy;
    /// let p = DeadlinePolicy::http().source_ms(http::HeaderName::from_static("x-timeout-ms"));
    /// # let _ = p;
    /// ```
    pub fn http() -> DeadlinePolicy {
        DeadlinePolicy::empty()
            .source_ms(HeaderName::from_static("connect-timeout-ms"))
            .source_grpc(HeaderName::from_static("grpc-timeout"))
    }

    /// No header sources at all (only [`default_timeout`](Self::default_timeout), if set).
    ///
    /// ```
    /// # use context_tower::DeadlinePolicy;
    /// # use std::time::Duration;
    /// let p = DeadlinePolicy::empty().default_timeout(Duration::from_secs(1));
    /// # let _ = p;
    /// ```
    pub fn empty() -> DeadlinePolicy {
        DeadlinePolicy {
            sources: Vec::new(),
            max: None,
            min: None,
            default: None,
            malformed: Malformed::Ignore,
            cover_body: true,
        }
    }

    /// Also read `header` in the `grpc-timeout` form (after the sources already given, which
    /// name the cause on a tie: the shortest value of all sources wins).
    ///
    /// ```
    /// # use context_tower::DeadlinePolicy;
    /// let p = DeadlinePolicy::empty().source_grpc(http::HeaderName::from_static("x-grpc-timeout"));
    /// # let _ = p;
    /// ```
    pub fn source_grpc(mut self, header: HeaderName) -> DeadlinePolicy {
        self.sources.push(Source {
            header,
            format: Format::Grpc,
        });
        self
    }

    /// Also read `header` in the milliseconds form (after the sources already given, which
    /// name the cause on a tie: the shortest value of all sources wins).
    ///
    /// ```
    /// # use context_tower::DeadlinePolicy;
    /// let p = DeadlinePolicy::empty().source_ms(http::HeaderName::from_static("x-timeout-ms"));
    /// # let _ = p;
    /// ```
    pub fn source_ms(mut self, header: HeaderName) -> DeadlinePolicy {
        self.sources.push(Source {
            header,
            format: Format::Millis,
        });
        self
    }

    /// Never give a request more than `max`, whatever the caller sent: a longer deadline is
    /// cut to `max`, and a request that sends none (or a malformed one, ignored) gets the
    /// default clamped to `max`, or `max` itself with no default.
    ///
    /// ```
    /// # use context_tower::DeadlinePolicy;
    /// # use std::time::Duration;
    /// let p = DeadlinePolicy::grpc().max(Duration::from_secs(30));
    /// # let _ = p;
    /// ```
    pub fn max(mut self, max: Duration) -> DeadlinePolicy {
        self.max = Some(max);
        self
    }

    /// Never give a request (with a non-zero budget) less than `min`.
    ///
    /// ```
    /// # use context_tower::DeadlinePolicy;
    /// # use std::time::Duration;
    /// let p = DeadlinePolicy::grpc().min(Duration::from_millis(1));
    /// # let _ = p;
    /// ```
    pub fn min(mut self, min: Duration) -> DeadlinePolicy {
        self.min = Some(min);
        self
    }

    /// The budget of a request that sent no deadline, clamped to [`max`](Self::max) (none by
    /// default: without `max` either, it runs under the parent's deadline only).
    ///
    /// ```
    /// # use context_tower::DeadlinePolicy;
    /// # use std::time::Duration;
    /// let p = DeadlinePolicy::http().default_timeout(Duration::from_secs(10));
    /// # let _ = p;
    /// ```
    pub fn default_timeout(mut self, timeout: Duration) -> DeadlinePolicy {
        self.default = Some(timeout);
        self
    }

    /// Answer a request whose deadline header does not parse with gRPC `INTERNAL` (13) or
    /// HTTP 400, without calling the handler (grpc-go's behaviour).
    ///
    /// ```
    /// # use context_tower::DeadlinePolicy;
    /// let p = DeadlinePolicy::grpc().reject_malformed();
    /// # let _ = p;
    /// ```
    pub fn reject_malformed(mut self) -> DeadlinePolicy {
        self.malformed = Malformed::Reject;
        self
    }

    /// Treat a deadline header that does not parse as absent (the default; tonic's behaviour).
    ///
    /// ```
    /// # use context_tower::DeadlinePolicy;
    /// let p = DeadlinePolicy::grpc().reject_malformed().ignore_malformed();
    /// # let _ = p;
    /// ```
    pub fn ignore_malformed(mut self) -> DeadlinePolicy {
        self.malformed = Malformed::Ignore;
        self
    }

    /// Whether the deadline also covers the response body (default `true`: the deadline is
    /// the whole call's, so a stream that outlives it ends with `DEADLINE_EXCEEDED` in its
    /// trailers). With `false` the body is not cut: a stream that does not watch its context
    /// runs past the deadline to its end, as tonic's do. The deadline still ends the request's
    /// context at its time (a context's deadline cannot be lifted): work that watches the
    /// context stops then, even while the body streams.
    ///
    /// ```
    /// # use context_tower::DeadlinePolicy;
    /// let p = DeadlinePolicy::grpc().cover_streaming(false);
    /// # let _ = p;
    /// ```
    pub fn cover_streaming(mut self, cover: bool) -> DeadlinePolicy {
        self.cover_body = cover;
        self
    }

    fn clamp(&self, budget: Duration) -> Duration {
        if budget.is_zero() {
            return budget;
        }
        let mut b = budget;
        if let Some(min) = self.min {
            b = b.max(min);
        }
        if let Some(max) = self.max {
            b = b.min(max);
        }
        b
    }

    /// Reads the budget from `headers`.
    pub(crate) fn budget(&self, headers: &HeaderMap) -> Budget {
        // The shortest value of every source: callers (and proxies that append instead of
        // replacing, or forward a stale header beside a fresh one) differ on which one counts,
        // and grpc-go reads the last. Honouring the shortest never extends a caller's
        // deadline. On a tie the earlier source names the cause.
        let mut shortest: Option<(Duration, &HeaderValue, &Source)> = None;
        for source in &self.sources {
            for value in crate::protocol::header_values(headers, &source.header) {
                match source.format.parse(value.as_bytes()) {
                    Ok(sent) => {
                        if shortest.is_none_or(|(s, _, _)| sent < s) {
                            shortest = Some((sent, value, source));
                        }
                    }
                    Err(e) if self.malformed == Malformed::Reject => {
                        return Budget::Malformed(source.header.clone(), e);
                    }
                    Err(_) => {}
                }
            }
        }
        if let Some((sent, value, source)) = shortest {
            let budget = self.clamp(sent);
            let cause =
                RemoteDeadline::from_header(source.header.clone(), value.as_bytes(), budget);
            return Budget::Some(budget, cause);
        }
        let budget = match (self.default, self.max) {
            (Some(d), Some(max)) => Some(d.min(max)),
            (Some(d), None) => Some(d),
            // `max` bounds every request, those that sent nothing too.
            (None, max) => max,
        };
        match budget {
            Some(budget) => Budget::Some(budget, RemoteDeadline::default_timeout(budget)),
            None => Budget::None,
        }
    }
}

impl Default for DeadlinePolicy {
    /// [`DeadlinePolicy::http`], which also reads `grpc-timeout`.
    ///
    /// ```
    /// # use context_tower::DeadlinePolicy;
    /// let p = DeadlinePolicy::default();
    /// # let _ = p;
    /// ```
    fn default() -> DeadlinePolicy {
        DeadlinePolicy::http()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn sources_in_order_and_clamps() {
        let p = DeadlinePolicy::http()
            .max(Duration::from_secs(1))
            .min(Duration::from_millis(10));
        let h = headers(&[("grpc-timeout", "5S"), ("connect-timeout-ms", "300")]);
        match p.budget(&h) {
            Budget::Some(b, c) => {
                assert_eq!(b, Duration::from_millis(300));
                assert_eq!(c.header().unwrap(), "connect-timeout-ms");
            }
            other => panic!("{other:?}"),
        }
        match p.budget(&headers(&[("grpc-timeout", "5S")])) {
            Budget::Some(b, _) => assert_eq!(b, Duration::from_secs(1)),
            other => panic!("{other:?}"),
        }
        match p.budget(&headers(&[("grpc-timeout", "1n")])) {
            Budget::Some(b, _) => assert_eq!(b, Duration::from_millis(10)),
            other => panic!("{other:?}"),
        }
        match p.budget(&headers(&[("grpc-timeout", "0n")])) {
            Budget::Some(b, _) => assert_eq!(b, Duration::ZERO),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn repeated_values_are_shared_and_stay_sensitive() {
        let ms = Duration::from_micros(2_500_300);
        let a = Format::Millis.format(ms);
        let b = Format::Millis.format(ms);
        let c = Format::Millis.format(ms);
        assert_eq!(
            (a.as_bytes(), b.as_bytes(), c.as_bytes()),
            (&b"2501"[..], &b"2501"[..], &b"2501"[..])
        );
        // From the second repeat on, the bytes are shared with the cached value.
        assert_eq!(b.as_bytes().as_ptr(), c.as_bytes().as_ptr());
        assert!(a.is_sensitive() && b.is_sensitive() && c.is_sensitive());
        // Another text, and the other format, are formatted afresh.
        assert_eq!(Format::Millis.format(Duration::from_millis(7)), "7");
        assert_eq!(Format::Grpc.format(ms), "2500300u");
        assert_eq!(Format::Millis.format(ms), "2501");
    }

    #[test]
    fn malformed_ignored_or_rejected_and_default() {
        let h = headers(&[("grpc-timeout", "123456789S")]);
        assert!(matches!(DeadlinePolicy::grpc().budget(&h), Budget::None));
        assert!(matches!(
            DeadlinePolicy::grpc().reject_malformed().budget(&h),
            Budget::Malformed(_, WireError::TooManyDigits)
        ));
        let p = DeadlinePolicy::grpc()
            .default_timeout(Duration::from_secs(9))
            .max(Duration::from_secs(2));
        match p.budget(&h) {
            Budget::Some(b, c) => {
                assert_eq!(b, Duration::from_secs(2));
                assert!(c.header().is_none());
            }
            other => panic!("{other:?}"),
        }
    }

    /// Regression test (found by an audit): of several values of one deadline header only
    /// the first was read, so a caller's shorter later value (a hop that appended its
    /// deadline instead of replacing it; grpc-go reads the last) gave way to the longer
    /// first one, and a malformed first value hid a valid one behind it.
    #[test]
    fn the_shortest_of_several_values_of_a_header_wins() {
        let mut h = HeaderMap::new();
        for v in ["10S", "bogus", "1S", "5S"] {
            h.append("grpc-timeout", HeaderValue::from_static(v));
        }
        match DeadlinePolicy::grpc().budget(&h) {
            Budget::Some(b, c) => {
                assert_eq!(b, Duration::from_secs(1));
                assert_eq!(c.header().unwrap(), "grpc-timeout");
                assert_eq!(c.raw_value(), Some("1S"));
            }
            other => panic!("{other:?}"),
        }
        let mut h = HeaderMap::new();
        for v in ["bogus", "300"] {
            h.append("connect-timeout-ms", HeaderValue::from_static(v));
        }
        match DeadlinePolicy::http().budget(&h) {
            Budget::Some(b, _) => assert_eq!(b, Duration::from_millis(300)),
            other => panic!("{other:?}"),
        }
        // A malformed value among them is still rejected when the policy says so.
        assert!(matches!(
            DeadlinePolicy::http().reject_malformed().budget(&h),
            Budget::Malformed(_, WireError::InvalidDigit)
        ));
        // Across sources the shortest wins too: before, the first source present won even
        // when longer (`connect-timeout-ms: 5000` beat `grpc-timeout: 1S`).
        let h = headers(&[("connect-timeout-ms", "5000"), ("grpc-timeout", "1S")]);
        match DeadlinePolicy::http().budget(&h) {
            Budget::Some(b, c) => {
                assert_eq!(b, Duration::from_secs(1));
                assert_eq!(c.header().unwrap(), "grpc-timeout");
                assert_eq!(c.raw_value(), Some("1S"));
            }
            other => panic!("{other:?}"),
        }
        // On a tie the earlier source names the cause.
        let h = headers(&[("connect-timeout-ms", "1000"), ("grpc-timeout", "1S")]);
        match DeadlinePolicy::http().budget(&h) {
            Budget::Some(b, c) => {
                assert_eq!(b, Duration::from_secs(1));
                assert_eq!(c.header().unwrap(), "connect-timeout-ms");
            }
            other => panic!("{other:?}"),
        }
        // A malformed value in a later source is rejected too, when the policy says so.
        let h = headers(&[("connect-timeout-ms", "300"), ("grpc-timeout", "1x")]);
        assert!(matches!(
            DeadlinePolicy::http().reject_malformed().budget(&h),
            Budget::Malformed(_, _)
        ));
    }

    /// Regression test (found by an audit): `max` did not bound a request that sent no
    /// deadline, or a malformed one, when no default was set: it got none at all.
    #[test]
    fn max_bounds_a_request_that_sent_nothing_or_garbage() {
        let p = DeadlinePolicy::grpc().max(Duration::from_secs(1));
        for h in [headers(&[]), headers(&[("grpc-timeout", "bogus")])] {
            match p.budget(&h) {
                Budget::Some(b, c) => {
                    assert_eq!(b, Duration::from_secs(1));
                    assert!(c.header().is_none());
                }
                other => panic!("{h:?}: {other:?}"),
            }
        }
        // Without `max` or a default, no deadline.
        assert!(matches!(
            DeadlinePolicy::grpc().budget(&headers(&[])),
            Budget::None
        ));
    }
}
