//! gRPC-Web, over real connections on 127.0.0.1, with tonic-web's `GrpcWebLayer` on either
//! side of `ContextLayer`: a browser cannot read HTTP trailers, so a stream the deadline cuts
//! must end with gRPC-Web's trailer frame (`0x80`) in the body, carrying status 4, and not
//! with an aborted body or trailers nobody sees. Over HTTP/2 and HTTP/1.1 (what browsers use
//! most), binary and `-text`. Each case failed before the fix.

mod support;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use context_tower::{ContextLayer, RequestContextExt};
use go_context::Error;
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use support::{bounded, done_within, Probe};
use tower::{Layer, ServiceBuilder};

#[path = "support/loopback.rs"]
mod loopback;

/// An empty gRPC message: flag 0, length 0.
const EMPTY_MESSAGE: &[u8] = &[0, 0, 0, 0, 0];

/// A gRPC handler (what tonic-web calls) that sends one empty message and then nothing, for
/// as long as it is polled; it records its context.
fn endless(
    probe: Probe,
) -> impl tower::Service<
    http::Request<tonic::body::Body>,
    Response = http::Response<tonic::body::Body>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    tower::service_fn(move |req: http::Request<tonic::body::Body>| {
        probe.put(req.context());
        async {
            use futures_util::StreamExt;
            let frames = futures_util::stream::iter([Ok::<_, tonic::Status>(Frame::data(
                Bytes::from_static(EMPTY_MESSAGE),
            ))])
            .chain(futures_util::stream::pending());
            let mut resp = http::Response::new(tonic::body::Body::new(
                http_body_util::StreamBody::new(frames),
            ));
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/grpc"),
            );
            Ok::<_, Infallible>(resp)
        }
    })
}

/// Which side of `ContextLayer` tonic-web sits on.
#[derive(Clone, Copy, Debug)]
enum Order {
    /// `ContextLayer` sees the browser's `application/grpc-web...` request.
    OursOutside,
    /// `ContextLayer` sees tonic-web's `application/grpc` request (with `te: trailers`).
    WebOutside,
}

async fn serve(order: Order, version: loopback::Version, probe: Probe) -> std::net::SocketAddr {
    match order {
        Order::OursOutside => {
            let svc =
                ContextLayer::grpc().layer(tonic_web::GrpcWebLayer::new().layer(endless(probe)));
            loopback::serve(svc, version).await
        }
        Order::WebOutside => {
            let svc = ServiceBuilder::new()
                .layer(tonic_web::GrpcWebLayer::new())
                .map_response(|r: http::Response<_>| r.map(tonic::body::Body::new))
                .layer(ContextLayer::grpc())
                .service(endless(probe));
            loopback::serve(svc, version).await
        }
    }
}

/// Standard base64 with padding, decoded group by group (gRPC-Web `-text` may pad between
/// chunks).
fn unbase64(text: &[u8]) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c:#x}"),
    };
    assert_eq!(text.len() % 4, 0, "base64 in groups of 4: {text:?}");
    let mut out = Vec::new();
    for group in text.chunks(4) {
        let pad = group.iter().rev().take_while(|&&c| c == b'=').count();
        let n = group[..4 - pad]
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | u32::from(value(c)) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    out
}

/// The frames of a gRPC-Web body: `(flag, payload)`.
fn frames(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !body.is_empty() {
        assert!(body.len() >= 5, "a truncated frame header: {body:?}");
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        assert!(body.len() >= 5 + len, "a truncated frame: {body:?}");
        out.push((body[0], body[5..5 + len].to_vec()));
        body = &body[5 + len..];
    }
    out
}

/// A browser's gRPC-Web call with a 200 ms deadline to a handler that never finishes: the
/// body ends whole, with one message and then the trailer frame carrying status 4; the
/// handler's context ends with `DeadlineExceeded`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_web_stream_cut_at_its_deadline_ends_with_a_trailer_frame_of_status_4() {
    bounded(async {
        for order in [Order::OursOutside, Order::WebOutside] {
            for version in [loopback::Version::H1, loopback::Version::H2] {
                for text in [false, true] {
                    let case = format!("{order:?}, {version:?}, text {text}");
                    let probe = Probe::default();
                    let addr = serve(order, version, probe.clone()).await;
                    let (content_type, request) = if text {
                        (
                            "application/grpc-web-text+proto",
                            Bytes::from_static(b"AAAAAAA="),
                        )
                    } else {
                        (
                            "application/grpc-web+proto",
                            Bytes::from_static(EMPTY_MESSAGE),
                        )
                    };
                    let mut client = Client::builder(TokioExecutor::new());
                    client.http2_only(version == loopback::Version::H2);
                    let req = http::Request::post(format!("http://{addr}/pkg.Svc/Watch"))
                        .header("content-type", content_type)
                        .header("accept", content_type)
                        .header("x-grpc-web", "1")
                        .header("grpc-timeout", "200m")
                        .body(Full::new(request))
                        .unwrap();
                    let resp = client.build_http().request(req).await.unwrap();
                    assert_eq!(resp.status(), 200, "{case}");
                    assert_eq!(resp.headers()["content-type"], content_type, "{case}");
                    // Bounded by `bounded`: without the cut this waits forever.
                    let body = resp.into_body().collect().await;
                    let body = body
                        .unwrap_or_else(|e| panic!("{case}: the body was aborted: {e:?}"))
                        .to_bytes();
                    let body = if text { unbase64(&body) } else { body.to_vec() };
                    let frames = frames(&body);
                    assert_eq!(frames.len(), 2, "{case}: {frames:?}");
                    assert_eq!(frames[0], (0, Vec::new()), "{case}: the message");
                    let (flag, block) = &frames[1];
                    assert_eq!(*flag, 0x80, "{case}: not a trailer frame");
                    let block = String::from_utf8_lossy(block).to_ascii_lowercase();
                    assert!(
                        block.contains("grpc-status:4\r\n"),
                        "{case}: trailers {block:?}"
                    );
                    assert!(block.contains("deadline exceeded"), "{case}: {block:?}");
                    let ctx = probe.get().expect("the handler ran");
                    assert_eq!(
                        done_within(&ctx, 10).await,
                        Error::DeadlineExceeded,
                        "{case}"
                    );
                }
            }
        }
    })
    .await;
}

/// A gRPC-Web call whose budget is spent on arrival is answered trailers-only, without
/// calling the handler, with gRPC-Web's `content-type` (a browser client checks it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_grpc_web_budget_is_answered_trailers_only_in_grpc_web() {
    bounded(async {
        for order in [Order::OursOutside, Order::WebOutside] {
            let probe = Probe::default();
            let addr = serve(order, loopback::Version::H1, probe.clone()).await;
            let req = http::Request::post(format!("http://{addr}/pkg.Svc/Watch"))
                .header("content-type", "application/grpc-web+proto")
                .header("grpc-timeout", "0n")
                .body(Full::new(Bytes::from_static(EMPTY_MESSAGE)))
                .unwrap();
            let client = Client::builder(TokioExecutor::new()).build_http();
            let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(resp.status(), 200, "{order:?}");
            assert_eq!(resp.headers()["grpc-status"], "4", "{order:?}");
            assert_eq!(
                resp.headers()["content-type"],
                "application/grpc-web+proto",
                "{order:?}"
            );
            assert_eq!(probe.len(), 0, "{order:?}: the handler was called");
        }
    })
    .await;
}

/// Regression test (found by a review): a gRPC-Web stream cut at its deadline in the middle
/// of a message (a body that splits messages across frames, as a proxy relaying an upstream's
/// bytes does) got the trailer frame glued to the partial message, so a browser read the
/// trailer's bytes as the rest of that message: a corrupt message, then garbage. Such a cut
/// now aborts the stream, as an HTTP stream's cut does; a cut between messages still ends
/// with the trailer frame (the test above). Binary and `-text`, over HTTP/1.1 and HTTP/2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_web_stream_cut_in_the_middle_of_a_message_is_aborted_not_glued() {
    bounded(async {
        for version in [loopback::Version::H1, loopback::Version::H2] {
            for text in [false, true] {
                let case = format!("{version:?}, text {text}");
                let content_type = if text {
                    "application/grpc-web-text+proto"
                } else {
                    "application/grpc-web+proto"
                };
                // A message that says it has 10 bytes, of which 3 come, then nothing more.
                let partial: &'static [u8] = if text {
                    b"AAAAAApBQkM=" // base64 of [0, 0, 0, 0, 10, 'A', 'B', 'C']
                } else {
                    &[0, 0, 0, 0, 10, b'A', b'B', b'C']
                };
                let probe = Probe::default();
                let seen = probe.clone();
                let handler =
                    tower::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        seen.put(req.context());
                        async move {
                            use futures_util::StreamExt;
                            let frames = futures_util::stream::iter([Ok::<_, Infallible>(
                                Frame::data(Bytes::from_static(partial)),
                            )])
                            .chain(futures_util::stream::pending());
                            let mut resp =
                                http::Response::new(http_body_util::StreamBody::new(frames));
                            resp.headers_mut().insert(
                                http::header::CONTENT_TYPE,
                                http::HeaderValue::from_static(content_type),
                            );
                            Ok::<_, Infallible>(resp)
                        }
                    });
                let addr = loopback::serve(ContextLayer::grpc().layer(handler), version).await;
                let mut client = Client::builder(TokioExecutor::new());
                client.http2_only(version == loopback::Version::H2);
                let req = http::Request::post(format!("http://{addr}/pkg.Svc/Watch"))
                    .header("content-type", content_type)
                    .header("accept", content_type)
                    .header("grpc-timeout", "200m")
                    .body(Full::new(Bytes::from_static(EMPTY_MESSAGE)))
                    .unwrap();
                let resp = client.build_http().request(req).await.unwrap();
                assert_eq!(resp.status(), 200, "{case}");
                // Bounded by `bounded`: without the cut this waits forever.
                let body = resp.into_body().collect().await;
                if let Ok(body) = body {
                    panic!(
                        "{case}: a cut mid-message ended as if whole: {:?}",
                        body.to_bytes()
                    );
                }
                let ctx = probe.get().expect("the handler ran");
                assert_eq!(
                    done_within(&ctx, 10).await,
                    Error::DeadlineExceeded,
                    "{case}"
                );
            }
        }
    })
    .await;
}
