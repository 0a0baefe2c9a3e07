//! What gRPC and HTTP say when a context ends a call: status codes, trailers-only answers,
//! the `grpc-message` text. Shared by the server layer, the client layer and the `tonic`
//! mapping, so each error is spelled one way.

use std::fmt::Write as _;
use std::time::Instant;

use go_context::{Cause, Context, Error};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

/// gRPC status `CANCELLED`.
pub(crate) const GRPC_CANCELLED: u16 = 1;
/// gRPC status `DEADLINE_EXCEEDED`.
pub(crate) const GRPC_DEADLINE_EXCEEDED: u16 = 4;
/// gRPC status `INTERNAL`.
pub(crate) const GRPC_INTERNAL: u16 = 13;

pub(crate) static GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");
pub(crate) static GRPC_MESSAGE: http::HeaderName = http::HeaderName::from_static("grpc-message");

/// Whether a request or response speaks gRPC (`content-type: application/grpc...`).
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    header(headers, &http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Maps with at most this many values are searched by [`header`] with a scan.
const SCAN_MAX: usize = 8;

/// `headers.get(name)`: the first value of `name`. A small map is scanned, comparing names
/// (a length and a tag mostly), instead of hashing `name` (FNV, a byte at a time: a lookup
/// of `connect-timeout-ms` cost 210 instructions, a scan of one entry about 20; S13).
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a HeaderValue> {
    if headers.len() > SCAN_MAX {
        return headers.get(name);
    }
    // The first pair of a name is its first value, as `get` returns.
    headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
}

/// `headers.get_all(name)`: every value of `name`, in order, found as [`header`] finds the
/// first.
pub(crate) fn header_values<'a>(
    headers: &'a HeaderMap,
    name: &'a HeaderName,
) -> impl Iterator<Item = &'a HeaderValue> + 'a {
    let large = headers.len() > SCAN_MAX;
    let scanned = (!large).then(|| {
        headers
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v)
    });
    let hashed = large.then(|| headers.get_all(name).iter());
    scanned
        .into_iter()
        .flatten()
        .chain(hashed.into_iter().flatten())
}

/// The gRPC code of a context error.
pub(crate) fn grpc_code(err: Error) -> u16 {
    match err {
        Error::DeadlineExceeded => GRPC_DEADLINE_EXCEEDED,
        _ => GRPC_CANCELLED,
    }
}

/// The HTTP status of a context error: 504 for a deadline, 503 for a cancellation (shutdown).
pub(crate) fn http_status(err: Error) -> StatusCode {
    match err {
        Error::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
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

/// The error and message of a done context (`Canceled` if it is, oddly, not done).
pub(crate) fn done_error(ctx: &Context) -> (Error, String) {
    let err = ctx.err().unwrap_or(Error::Canceled);
    let cause = ctx.cause();
    (err, message(err, cause.as_ref()))
}

/// `grpc-message` is percent-encoded: bytes outside printable ASCII, and `%` itself.
pub(crate) fn grpc_message_value(msg: &str) -> HeaderValue {
    let mut out = String::with_capacity(msg.len());
    for &b in msg.as_bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    HeaderValue::from_str(&out).unwrap_or_else(|_| HeaderValue::from_static("context done"))
}

/// gRPC trailers (or trailers-only headers) carrying `code` and `msg`.
pub(crate) fn grpc_status_headers(code: u16, msg: &str) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(3);
    h.insert(GRPC_STATUS.clone(), HeaderValue::from(code));
    h.insert(GRPC_MESSAGE.clone(), grpc_message_value(msg));
    h
}

/// The parts of an answer a server gives without (or instead of) its handler.
#[derive(Debug)]
pub(crate) struct ErrorAnswer {
    pub(crate) response: Response<()>,
    /// The HTTP body text (empty for gRPC, which answers trailers-only).
    pub(crate) body: &'static str,
}

/// A trailers-only gRPC answer (HTTP 200, status in the headers) or an HTTP error status.
pub(crate) fn error_answer(grpc: bool, code: u16, status: StatusCode, msg: &str) -> ErrorAnswer {
    let mut response = Response::new(());
    if grpc {
        let mut h = grpc_status_headers(code, msg);
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        *response.headers_mut() = h;
        ErrorAnswer { response, body: "" }
    } else {
        *response.status_mut() = status;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        let body = match status {
            StatusCode::GATEWAY_TIMEOUT => "context deadline exceeded\n",
            StatusCode::SERVICE_UNAVAILABLE => "context canceled\n",
            _ => "bad request: malformed timeout header\n",
        };
        ErrorAnswer { response, body }
    }
}

/// The answer for a done context.
pub(crate) fn context_answer(grpc: bool, ctx: &Context) -> ErrorAnswer {
    let (err, msg) = done_error(ctx);
    error_answer(grpc, grpc_code(err), http_status(err), &msg)
}

/// The answer to a request whose deadline passed before the timer marked its context done
/// (server invariant 3): what [`context_answer`] gives once it has.
pub(crate) fn deadline_answer(grpc: bool) -> ErrorAnswer {
    let err = Error::DeadlineExceeded;
    error_answer(grpc, grpc_code(err), http_status(err), &message(err, None))
}

/// The gRPC status code in `headers`, if any.
pub(crate) fn grpc_status_of(headers: &HeaderMap) -> Option<u16> {
    let v = header(headers, &GRPC_STATUS)?;
    std::str::from_utf8(v.as_bytes()).ok()?.parse().ok()
}

/// A `CANCELLED` that reaches a client after the deadline it sent passed is reported as
/// `DEADLINE_EXCEEDED` (the gRPC spec's advice; tonic answers `CANCELLED` on expiry).
pub(crate) fn fix_late_cancelled(headers: &mut HeaderMap, deadline: Instant) {
    if grpc_status_of(headers) == Some(GRPC_CANCELLED) && Instant::now() >= deadline {
        headers.insert(
            GRPC_STATUS.clone(),
            HeaderValue::from(GRPC_DEADLINE_EXCEEDED),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Standard and custom names, two of the same length (`grpc-timeout`, `grpc-message`).
    const NAMES: [&str; 6] = [
        "content-type",
        "te",
        "grpc-timeout",
        "grpc-message",
        "connect-timeout-ms",
        "user-agent",
    ];

    proptest! {
        #[test]
        fn header_is_get_and_header_values_get_all_on_small_and_large_maps(
            pairs in proptest::collection::vec((0..NAMES.len(), 0u8..4, any::<bool>()), 0..20),
        ) {
            let mut map = HeaderMap::new();
            for (name, value, append) in pairs {
                let name = HeaderName::from_static(NAMES[name]);
                let value = HeaderValue::from(u16::from(value));
                if append {
                    map.append(name, value);
                } else {
                    map.insert(name, value);
                }
            }
            for name in NAMES {
                let name = HeaderName::from_static(name);
                prop_assert_eq!(header(&map, &name), map.get(&name), "{:?} in {:?}", name, map);
                prop_assert!(
                    header_values(&map, &name).eq(map.get_all(&name)),
                    "{:?} in {:?}", name, map
                );
            }
        }
    }

    #[test]
    fn message_is_percent_encoded() {
        assert_eq!(grpc_message_value("a%b é"), "a%25b %C3%A9");
    }

    #[test]
    fn late_cancelled_becomes_deadline_exceeded() {
        let mut h = grpc_status_headers(GRPC_CANCELLED, "Timeout expired");
        fix_late_cancelled(&mut h, Instant::now());
        assert_eq!(grpc_status_of(&h), Some(GRPC_DEADLINE_EXCEEDED));
        let later = Instant::now() + std::time::Duration::from_secs(60);
        let mut h = grpc_status_headers(GRPC_CANCELLED, "x");
        fix_late_cancelled(&mut h, later);
        assert_eq!(grpc_status_of(&h), Some(GRPC_CANCELLED));
        let mut h = grpc_status_headers(GRPC_INTERNAL, "x");
        fix_late_cancelled(&mut h, Instant::now());
        assert_eq!(grpc_status_of(&h), Some(GRPC_INTERNAL));
    }
}
