//! What gRPC and HTTP say when a context ends a call: status codes, trailers-only answers,
//! the `grpc-message` encoding. Shared by the server layer, the client layer and the body;
//! the text itself is [`ContextDone`]'s (`error.rs`), so each error is spelled one way.

use std::fmt::Write as _;
use std::time::Instant;

use go_context::{Context, Error};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

use crate::error::{self, ContextDone};

/// gRPC status `CANCELLED`.
pub(crate) const GRPC_CANCELLED: u16 = 1;
/// gRPC status `DEADLINE_EXCEEDED`.
pub(crate) const GRPC_DEADLINE_EXCEEDED: u16 = 4;
/// gRPC status `INTERNAL`.
pub(crate) const GRPC_INTERNAL: u16 = 13;

pub(crate) static GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");
pub(crate) static GRPC_MESSAGE: http::HeaderName = http::HeaderName::from_static("grpc-message");

/// Whether a request or response speaks gRPC (`content-type: application/grpc...`, gRPC-Web
/// included).
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    Proto::of(headers).is_grpc()
}

/// What a server's request speaks, from its `content-type`: how its answers and cuts are
/// spelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Proto {
    Http,
    /// `application/grpc...`: the status in trailers (or trailers-only headers).
    Grpc,
    /// `application/grpc-web...`: the trailers travel in the body, as a frame flagged `0x80`
    /// (base64, as the whole body is, for `-text`), since browsers cannot read HTTP trailers.
    Web {
        text: bool,
    },
}

impl Proto {
    pub(crate) fn of(headers: &HeaderMap) -> Proto {
        let Some(v) = header(headers, &http::header::CONTENT_TYPE) else {
            return Proto::Http;
        };
        let v = v.as_bytes();
        match v.strip_prefix(b"application/grpc".as_slice()) {
            None => Proto::Http,
            Some(rest) => match rest.strip_prefix(b"-web".as_slice()) {
                None => Proto::Grpc,
                Some(rest) => Proto::Web {
                    text: rest.starts_with(b"-text"),
                },
            },
        }
    }

    pub(crate) fn is_grpc(self) -> bool {
        self != Proto::Http
    }

    /// The `content-type` of a trailers-only answer (none for HTTP).
    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Proto::Http => "text/plain; charset=utf-8",
            Proto::Grpc => "application/grpc",
            Proto::Web { text: false } => "application/grpc-web+proto",
            Proto::Web { text: true } => "application/grpc-web-text+proto",
        })
    }
}

/// Whether a request accepts trailers (`te: trailers`): hyper's HTTP/1 server sends a
/// response's trailers only then, and only the fields its `trailer` header declares.
pub(crate) fn accepts_trailers(headers: &HeaderMap) -> bool {
    lists_token(headers, &http::header::TE, b"trailers")
}

/// Whether a comma-separated list header (`te`, `trailer`), in any of its values, has
/// `token` (compared ignoring ASCII case and the spaces around it).
pub(crate) fn lists_token(headers: &HeaderMap, name: &HeaderName, token: &[u8]) -> bool {
    header_values(headers, name).any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
    })
}

/// The trailer fields a cut writes, as a `trailer` header declares them.
pub(crate) static CUT_TRAILER_FIELDS: HeaderValue =
    HeaderValue::from_static("grpc-status, grpc-message");

/// A gRPC-Web trailer frame carrying `code` and `msg`: flag `0x80`, a 4-byte big-endian
/// length, then `name:value` lines ending in CRLF (base64 for `-text`).
pub(crate) fn grpc_web_trailer_frame(code: u16, msg: &str, text: bool) -> bytes::Bytes {
    let block = format!(
        "grpc-status:{code}\r\ngrpc-message:{}\r\n",
        String::from_utf8_lossy(grpc_message_value(msg).as_bytes())
    );
    let mut frame = Vec::with_capacity(5 + block.len());
    frame.push(0x80);
    let len = u32::try_from(block.len()).unwrap_or(u32::MAX);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(block.as_bytes());
    if text {
        frame = base64(&frame).into_bytes();
    }
    frame.into()
}

/// Standard base64 with padding (RFC 4648 section 4), what gRPC-Web's `-text` uses.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Where a gRPC-Web body stands in its frames (each a flag byte, a 4-byte big-endian length,
/// then that many bytes), followed through the data it sends, decoded first for `-text`. A
/// cut may end the body with the trailer frame only between frames: in the middle of one,
/// the peer would read the trailer frame as the rest of a message.
#[derive(Debug)]
pub(crate) struct WebFrames {
    /// The current frame's header, `have` bytes of it read (at 5 it is whole).
    header: [u8; 5],
    have: u8,
    /// Bytes of the current frame's payload still to come.
    left: u64,
    /// `-text`: the base64 characters of a group not yet decoded (4 make a group).
    text: Option<([u8; 4], u8)>,
    /// The data could not be followed (not base64): never between frames.
    lost: bool,
    /// The last frame whose header was read is a trailer frame (flag `0x80`): once it is
    /// whole, the stream's status is out.
    trailer: bool,
}

impl WebFrames {
    pub(crate) fn new(text: bool) -> WebFrames {
        WebFrames {
            header: [0; 5],
            have: 0,
            left: 0,
            text: text.then_some(([0; 4], 0)),
            lost: false,
            trailer: false,
        }
    }

    /// Whether everything sent so far ends a frame.
    pub(crate) fn between(&self) -> bool {
        !self.lost && self.have == 0 && self.left == 0 && self.text.is_none_or(|(_, n)| n == 0)
    }

    /// Whether everything sent so far ends a trailer frame: the stream's status is out.
    pub(crate) fn after_trailers(&self) -> bool {
        self.trailer && self.between()
    }

    /// The data can no longer be followed (the caller cannot see all of it).
    pub(crate) fn lose(&mut self) {
        self.lost = true;
    }

    /// Follows `data`, the next bytes of the body.
    pub(crate) fn feed(&mut self, data: &[u8]) {
        if self.lost {
            return;
        }
        let Some((mut group, mut n)) = self.text else {
            self.frames(data);
            return;
        };
        for &c in data {
            let Some(v) = unbase64(c) else {
                self.lost = true;
                return;
            };
            group[usize::from(n)] = v;
            n += 1;
            if n == 4 {
                n = 0;
                // `=` (64) pads only the end of a group: `xx==` or `xxx=`.
                let pad = group.iter().rev().take_while(|&&v| v == 64).count();
                if pad > 2 || group[..4 - pad].contains(&64) {
                    self.lost = true;
                    return;
                }
                let bits = group
                    .iter()
                    .fold(0u32, |bits, &v| bits << 6 | u32::from(v & 63));
                self.frames(&bits.to_be_bytes()[1..4 - pad]);
            }
        }
        self.text = Some((group, n));
    }

    fn frames(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.left > 0 {
                let n = data
                    .len()
                    .min(usize::try_from(self.left).unwrap_or(usize::MAX));
                self.left -= n as u64;
                data = &data[n..];
                continue;
            }
            let have = usize::from(self.have);
            let n = data.len().min(5 - have);
            self.header[have..have + n].copy_from_slice(&data[..n]);
            data = &data[n..];
            self.have += n as u8;
            if self.have == 5 {
                let len = [
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ];
                self.left = u64::from(u32::from_be_bytes(len));
                self.have = 0;
                self.trailer = self.header[0] & 0x80 != 0;
            }
        }
    }
}

/// A base64 character's value (64 for the padding `=`), or `None`.
fn unbase64(c: u8) -> Option<u8> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        b'=' => 64,
        _ => return None,
    })
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
/// gRPC-Web too answers trailers-only (its spec keeps gRPC's), with its own `content-type`.
pub(crate) fn error_answer(proto: Proto, code: u16, status: StatusCode, msg: &str) -> ErrorAnswer {
    let mut response = Response::new(());
    if proto.is_grpc() {
        let mut h = grpc_status_headers(code, msg);
        h.insert(http::header::CONTENT_TYPE, proto.content_type());
        *response.headers_mut() = h;
        ErrorAnswer { response, body: "" }
    } else {
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, proto.content_type());
        let body = match status {
            StatusCode::GATEWAY_TIMEOUT => "context deadline exceeded\n",
            StatusCode::SERVICE_UNAVAILABLE => "context canceled\n",
            _ => "bad request: malformed timeout header\n",
        };
        ErrorAnswer { response, body }
    }
}

/// The answer for a done context.
pub(crate) fn context_answer(proto: Proto, ctx: &Context) -> ErrorAnswer {
    let done = ContextDone::of(ctx);
    let err = done.error();
    error_answer(proto, grpc_code(err), http_status(err), &done.to_string())
}

/// The answer to a request whose deadline passed before the timer marked its context done
/// (server invariant 3): what [`context_answer`] gives once it has.
pub(crate) fn deadline_answer(proto: Proto) -> ErrorAnswer {
    let err = Error::DeadlineExceeded;
    error_answer(
        proto,
        grpc_code(err),
        http_status(err),
        &error::message(err, None),
    )
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

    fn content_type(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn a_requests_protocol_is_told_from_its_content_type() {
        for (ct, proto) in [
            ("application/grpc", Proto::Grpc),
            ("application/grpc+proto", Proto::Grpc),
            ("application/grpc-web", Proto::Web { text: false }),
            ("application/grpc-web+proto", Proto::Web { text: false }),
            ("application/grpc-web-text", Proto::Web { text: true }),
            ("application/grpc-web-text+proto", Proto::Web { text: true }),
            ("application/json", Proto::Http),
        ] {
            assert_eq!(Proto::of(&content_type(ct)), proto, "{ct}");
        }
        assert_eq!(Proto::of(&HeaderMap::new()), Proto::Http);
    }

    #[test]
    fn te_trailers_is_found_among_other_codings() {
        for (te, accepts) in [
            ("trailers", true),
            ("gzip, Trailers", true),
            (" trailers ,deflate", true),
            ("gzip", false),
            ("trailersx", false),
        ] {
            let mut h = HeaderMap::new();
            h.insert(http::header::TE, HeaderValue::from_static(te));
            assert_eq!(accepts_trailers(&h), accepts, "{te:?}");
        }
        assert!(!accepts_trailers(&HeaderMap::new()));
    }

    /// RFC 4648's test vectors.
    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
        assert_eq!(base64(&[0xfb, 0xff, 0xbf]), "+/+/");
    }

    /// The framing is followed across any split of the data, binary and `-text` (whose
    /// chunks may each be padded), and is between frames only where one ends.
    #[test]
    fn web_frames_are_followed_across_any_split() {
        // Two frames: an empty message, then one of 3 bytes.
        let body: &[u8] = &[0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 7, 8, 9];
        let ends = [0, 5, 13];
        for text in [false, true] {
            for cut in 0..=body.len() {
                for split in 0..=cut {
                    let mut f = WebFrames::new(text);
                    for part in [&body[..split], &body[split..cut]] {
                        if text {
                            // Each chunk encoded on its own, padded, as gRPC-Web allows.
                            f.feed(base64(part).as_bytes());
                        } else {
                            f.feed(part);
                        }
                    }
                    assert_eq!(
                        f.between(),
                        ends.contains(&cut),
                        "text {text}, {split}/{cut}"
                    );
                }
            }
        }
        let mut f = WebFrames::new(true);
        f.feed(b"AAAA");
        assert!(!f.between(), "a group without its frame's end");
        let mut f = WebFrames::new(true);
        f.feed(b"AA=A");
        assert!(!f.between(), "padding inside a group");
        let mut f = WebFrames::new(true);
        f.feed(b"AA AA");
        assert!(!f.between(), "not base64");
        let mut f = WebFrames::new(false);
        f.feed(&[0, 0, 0, 0, 0]);
        f.lose();
        assert!(!f.between());
    }

    /// The frame gRPC-Web's spec describes: flag `0x80`, the block's length (big-endian),
    /// then the block; in `-text`, the same bytes in base64.
    #[test]
    fn a_grpc_web_trailer_frame_is_flagged_sized_and_encoded() {
        let frame = grpc_web_trailer_frame(4, "context deadline exceeded 100%", false);
        let block = b"grpc-status:4\r\ngrpc-message:context deadline exceeded 100%25\r\n";
        assert_eq!(frame[0], 0x80);
        assert_eq!(
            frame[1..5],
            u32::try_from(block.len()).unwrap().to_be_bytes()
        );
        assert_eq!(&frame[5..], block);
        let text = grpc_web_trailer_frame(4, "context deadline exceeded 100%", true);
        assert_eq!(text, base64(&frame).into_bytes());
    }

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
