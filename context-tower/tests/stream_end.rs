//! How a response's end reaches both sides, over real connections on 127.0.0.1: a client
//! body cut by its context resets the HTTP/2 stream at once (the server's handler context
//! ends while the user still holds the ended body), and an HTTP/1.1 response that hyper
//! completes without polling the body to its end (a known `content-length`, an answer to
//! `HEAD`) is not taken for a client that went away, while over HTTP/2, where hyper polls
//! every body to its end, such a response is still cut at its deadline and still a dropped
//! request when reset; a gRPC stream cut over HTTP/1.1, where hyper sends only declared
//! trailers, ends with status 4 in declared trailers, or is aborted, never ended as if
//! complete; a gRPC or gRPC-Web stream of known length still ends with the status of its
//! cut; and a body the callee cut at the deadline it was sent is that deadline on the client
//! too. Each was found by an audit or a review and failed before its fix.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use context_tower::{
    ContextLayer, DeadlinePolicy, PropagateLayer, RequestContextExt, RequestDropped,
};
use go_context::Context;
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, Service, ServiceExt};

#[path = "support/loopback.rs"]
mod loopback;

type Seen = Arc<Mutex<Option<Context>>>;

/// Serves `body()` as every answer, under `ContextLayer::new(policy)`, recording each
/// handler's context in the returned slot.
async fn serve_with<B, F>(
    version: loopback::Version,
    policy: DeadlinePolicy,
    body: F,
) -> (std::net::SocketAddr, Seen)
where
    F: Fn() -> http::Response<B> + Clone + Send + Sync + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<go_context::BoxError>,
{
    let seen: Seen = Arc::default();
    let slot = Arc::clone(&seen);
    let svc = ContextLayer::new(policy).layer(tower::service_fn(
        move |req: http::Request<hyper::body::Incoming>| {
            *slot.lock().unwrap() = Some(req.context());
            let resp = body();
            async move { Ok::<_, Infallible>(resp) }
        },
    ));
    (loopback::serve(svc, version).await, seen)
}

/// [`serve_with`] under `DeadlinePolicy::http()`.
async fn serve<B, F>(version: loopback::Version, body: F) -> (std::net::SocketAddr, Seen)
where
    F: Fn() -> http::Response<B> + Clone + Send + Sync + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<go_context::BoxError>,
{
    serve_with(version, DeadlinePolicy::http(), body).await
}

fn handler_context(seen: &Seen) -> Context {
    seen.lock().unwrap().clone().expect("the handler ran")
}

/// Whether `ctx` ended with `RequestDropped`, once it ends (bounded).
async fn ended_as_dropped(ctx: &Context) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(10), ctx.done())
        .await
        .expect("the handler's context ended");
    let cause = ctx.cause().unwrap();
    cause
        .downcast_ref::<RequestDropped>()
        .map(|_| cause.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_body_cut_by_its_context_resets_the_stream_at_once() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (addr, seen) = serve(loopback::Version::H2, || {
            let ticks = futures_util::stream::unfold((), |()| async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Some((Ok::<_, Infallible>(Frame::data(Bytes::from("tick"))), ()))
            });
            http::Response::new(http_body_util::StreamBody::new(ticks))
        })
        .await;
        let mut b = Client::builder(TokioExecutor::new());
        b.http2_only(true);
        let mut client = PropagateLayer::http().layer(b.build_http::<Empty<Bytes>>());
        let (ctx, cancel) = Context::background().with_cancel();
        let mut req = http::Request::get(format!("http://{addr}/"))
            .body(Empty::new())
            .unwrap();
        req.set_context(ctx);
        let resp = client.ready().await.unwrap().call(req).await.unwrap();
        let mut body = resp.into_body();
        assert!(body.frame().await.unwrap().unwrap().is_data());
        cancel.cancel_with_cause("the user gave up");
        // The cut: an error frame at the latest after the next tick.
        while let Some(Ok(_)) = body.frame().await {}
        assert!(body.is_end_stream());
        // The user still holds the ended body; the server hears of it anyway.
        let server = handler_context(&seen);
        let dropped = ended_as_dropped(&server).await;
        assert!(
            dropped.is_some(),
            "the server's handler context did not end with RequestDropped: {:?}",
            server.cause()
        );
        drop(body);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_http1_body_of_known_length_is_not_request_dropped() {
    tokio::time::timeout(Duration::from_secs(30), async {
        // A streamed body with its length declared (a file download): hyper stops polling
        // after the fifth byte and drops the body without asking for its end.
        let (addr, seen) = serve(loopback::Version::H1, || {
            let chunks = futures_util::stream::iter([
                Ok::<_, Infallible>(Frame::data(Bytes::from("hel"))),
                Ok(Frame::data(Bytes::from("lo"))),
            ]);
            let mut resp = http::Response::new(http_body_util::StreamBody::new(chunks));
            resp.headers_mut()
                .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(5u32));
            resp
        })
        .await;
        let http = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let req = http::Request::get(format!("http://{addr}/"))
            .body(Empty::new())
            .unwrap();
        let resp = http.request(req).await.unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hello");
        let dropped = ended_as_dropped(&handler_context(&seen)).await;
        assert_eq!(dropped, None, "a complete response taken for a client gone");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_to_head_is_not_request_dropped() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (addr, seen) = serve(loopback::Version::H1, || {
            http::Response::new(http_body_util::Full::new(Bytes::from("hello")))
        })
        .await;
        let http = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let req = http::Request::head(format!("http://{addr}/"))
            .body(Empty::new())
            .unwrap();
        let resp = http.request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .is_empty());
        let dropped = ended_as_dropped(&handler_context(&seen)).await;
        assert_eq!(
            dropped, None,
            "a complete HEAD answer taken for a client gone"
        );
    })
    .await
    .unwrap();
}

fn h2_client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>> {
    let mut b = Client::builder(TokioExecutor::new());
    b.http2_only(true);
    b.build_http()
}

/// "hello", declared as the whole body (`content-length: 5`), then a stream that never ends.
fn hello_then_nothing() -> http::Response<impl http_body::Body<Data = Bytes, Error = Infallible>> {
    use futures_util::StreamExt;
    let chunks =
        futures_util::stream::iter([Ok::<_, Infallible>(Frame::data(Bytes::from("hello")))])
            .chain(futures_util::stream::pending());
    let mut resp = http::Response::new(http_body_util::StreamBody::new(chunks));
    resp.headers_mut()
        .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(5u32));
    resp
}

/// Regression test (found by a review of the fix above): over HTTP/2 hyper polls a body past
/// its declared length, so the deadline must still cut it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_body_of_known_length_is_still_cut_at_its_deadline() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let policy = DeadlinePolicy::http().default_timeout(Duration::from_millis(200));
        let (addr, seen) = serve_with(loopback::Version::H2, policy, hello_then_nothing).await;
        let req = http::Request::get(format!("http://{addr}/"))
            .body(Empty::new())
            .unwrap();
        let mut body = h2_client().request(req).await.unwrap().into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from("hello"));
        // Bounded by the test's timeout: without the cut this waits forever.
        let next = body.frame().await;
        assert!(matches!(next, Some(Err(_))), "not cut: {next:?}");
        let server = handler_context(&seen);
        assert_eq!(
            server.err(),
            Some(go_context::Error::DeadlineExceeded),
            "{:?}",
            server.cause()
        );
    })
    .await
    .unwrap();
}

/// Regression test (found by a review of the fix above): over HTTP/2 hyper sends the body of
/// an answer to `HEAD` too, so a client that resets the stream while it streams is a dropped
/// request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_answer_to_head_reset_mid_body_is_request_dropped() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (addr, seen) = serve(loopback::Version::H2, hello_then_nothing).await;
        let req = http::Request::head(format!("http://{addr}/"))
            .body(Empty::new())
            .unwrap();
        let resp = h2_client().request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        drop(resp); // resets the stream while the server's body still waits
        let dropped = ended_as_dropped(&handler_context(&seen)).await;
        assert!(
            dropped.is_some(),
            "a reset HTTP/2 stream not taken as dropped"
        );
    })
    .await
    .unwrap();
}

/// Regression test (found by an audit): over HTTP/1.1 a gRPC stream cut at its deadline
/// ended with trailers, which hyper's HTTP/1 server drops (it sends only the fields the
/// response's `trailer` header declares, and only to a request with `te: trailers`) before
/// it ends the chunked body as if complete: the client saw a clean end, with no status 4 and
/// no sign of a cut. Now a request with `te: trailers` (every gRPC client, and tonic-web in
/// front of us) gets a response that declares `grpc-status, grpc-message`, so the cut's
/// trailers arrive (session 14; before, it was aborted); without it, the stream is cut with
/// an error, so the message is aborted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_stream_cut_over_http1_ends_with_status_4_or_is_aborted_never_clean() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (addr, seen) = serve_with(loopback::Version::H1, DeadlinePolicy::grpc(), || {
            use futures_util::StreamExt;
            let chunks = futures_util::stream::iter([Ok::<_, Infallible>(Frame::data(
                Bytes::from_static(b"\0\0\0\0\0"),
            ))])
            .chain(futures_util::stream::pending());
            let mut resp = http::Response::new(http_body_util::StreamBody::new(chunks));
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/grpc"),
            );
            resp
        })
        .await;
        let http = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        for te in [true, false] {
            let mut req = http::Request::post(format!("http://{addr}/pkg.Svc/Stream"))
                .header("content-type", "application/grpc")
                .header("grpc-timeout", "200m");
            if te {
                req = req.header("te", "trailers");
            }
            let resp = http.request(req.body(Empty::new()).unwrap()).await.unwrap();
            assert_eq!(resp.status(), 200);
            let declared = resp.headers().get("trailer").cloned();
            let mut body = resp.into_body();
            assert!(body.frame().await.unwrap().unwrap().is_data());
            // Bounded by the test's timeout: without the cut this waits forever.
            let next = body.frame().await;
            if te {
                assert_eq!(declared.unwrap(), "grpc-status, grpc-message");
                let trailers = next.unwrap().unwrap().into_trailers();
                let trailers = trailers.unwrap_or_else(|f| panic!("not trailers: {f:?}"));
                assert_eq!(trailers["grpc-status"], "4");
                assert!(body.frame().await.is_none(), "the stream goes on");
            } else {
                assert!(
                    matches!(next, Some(Err(_))),
                    "the cut looked like a complete stream: {next:?}"
                );
            }
            let server = handler_context(&seen);
            assert_eq!(server.err(), Some(go_context::Error::DeadlineExceeded));
        }
    })
    .await
    .unwrap();
}

/// A body that reports `hint` as its size, whatever it yields.
struct Hinted<B> {
    inner: std::pin::Pin<Box<B>>,
    hint: http_body::SizeHint,
}

impl<B: http_body::Body> http_body::Body for Hinted<B> {
    type Data = B::Data;
    type Error = B::Error;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        self.inner.as_mut().poll_frame(cx)
    }
    fn size_hint(&self) -> http_body::SizeHint {
        self.hint
    }
}

/// Regression test (found by a review): a gRPC or gRPC-Web stream whose length was known up
/// front, declared (`content-length`) or as an exact size hint (from which hyper writes
/// `content-length` itself), could not end with the status of its cut: the cut's trailers
/// (gRPC) leave the declared bytes short, and gRPC-Web's trailer frame runs past them, so the
/// client saw a broken stream instead of status 4. A response the deadline may cut no longer
/// claims a length: its declared `content-length` goes, and its size hint is not exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_grpc_stream_of_known_length_still_ends_with_status_4() {
    tokio::time::timeout(Duration::from_secs(60), async {
        for (web, declared, version) in [false, true]
            .into_iter()
            .flat_map(|web| [(web, true), (web, false)])
            .flat_map(|(web, declared)| {
                [loopback::Version::H2, loopback::Version::H1].map(|v| (web, declared, v))
            })
        {
            {
                let content_type = if web {
                    "application/grpc-web+proto"
                } else {
                    "application/grpc"
                };
                let (addr, seen) = serve_with(version, DeadlinePolicy::grpc(), move || {
                    use futures_util::StreamExt;
                    // One empty message, then nothing, said to be 10 bytes long.
                    let chunks = futures_util::stream::iter([Ok::<_, Infallible>(Frame::data(
                        Bytes::from_static(b"\0\0\0\0\0"),
                    ))])
                    .chain(futures_util::stream::pending());
                    let body = Hinted {
                        inner: Box::pin(http_body_util::StreamBody::new(chunks)),
                        hint: if declared {
                            http_body::SizeHint::default()
                        } else {
                            http_body::SizeHint::with_exact(10)
                        },
                    };
                    let mut resp = http::Response::new(body);
                    let headers = resp.headers_mut();
                    headers.insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static(content_type),
                    );
                    if declared {
                        headers
                            .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(10u32));
                    }
                    resp
                })
                .await;
                let case = format!("web {web}, declared {declared}, {version:?}");
                let mut client = Client::builder(TokioExecutor::new());
                client.http2_only(version == loopback::Version::H2);
                {
                    let req = http::Request::post(format!("http://{addr}/pkg.Svc/Stream"))
                        .header("content-type", content_type)
                        .header("te", "trailers")
                        .header("grpc-timeout", "200m")
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    let resp = client.build_http().request(req).await.unwrap();
                    assert_eq!(resp.status(), 200, "{case}");
                    let length = resp.headers().get("content-length").cloned();
                    // Bounded by the test's timeout: without the cut this waits forever.
                    let collected = resp.into_body().collect().await;
                    let collected =
                        collected.unwrap_or_else(|e| panic!("{case}: broken stream: {e:?}"));
                    if web {
                        let body = collected.to_bytes();
                        assert_eq!(&body[..5], b"\0\0\0\0\0", "{case}: the message");
                        assert_eq!(body[5], 0x80, "{case}: not a trailer frame: {body:?}");
                        let len = u32::from_be_bytes(body[6..10].try_into().unwrap()) as usize;
                        assert_eq!(body.len(), 10 + len, "{case}: {body:?}");
                        let block = String::from_utf8_lossy(&body[10..]).to_ascii_lowercase();
                        assert!(block.starts_with("grpc-status:4\r\n"), "{case}: {block:?}");
                    } else {
                        let trailers = collected.trailers().cloned();
                        assert_eq!(collected.to_bytes().as_ref(), b"\0\0\0\0\0", "{case}");
                        let trailers = trailers.unwrap_or_else(|| panic!("{case}: no trailers"));
                        assert_eq!(trailers["grpc-status"], "4", "{case}");
                    }
                    assert!(
                        length.is_none(),
                        "{case}: a length claimed for a stream that may be cut: {length:?}"
                    );
                    let server = handler_context(&seen);
                    assert_eq!(
                        server.err(),
                        Some(go_context::Error::DeadlineExceeded),
                        "{case}"
                    );
                }
            }
        }
    })
    .await
    .unwrap();
}

/// Regression test (found by an audit): a response body that the callee ended at the
/// deadline we sent it (with a margin, it comes before our own) reached the caller as the
/// transport's error (hyper's reset stream; through tonic an `INTERNAL` or, for a `CANCEL`
/// reset as grpc-go's server sends at expiry, `CANCELLED`), where the same failure before the
/// response's headers is reported as the deadline it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_the_callee_cut_at_the_deadline_we_sent_is_deadline_exceeded() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (addr, seen) = serve(loopback::Version::H2, || {
            let ticks = futures_util::stream::unfold((), |()| async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Some((Ok::<_, Infallible>(Frame::data(Bytes::from("tick"))), ()))
            });
            http::Response::new(http_body_util::StreamBody::new(ticks))
        })
        .await;
        // The callee gets 300 ms; our own deadline is far off.
        let mut client = PropagateLayer::http()
            .margin(Duration::from_millis(19_700))
            .layer(h2_client());
        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(20));
        let mut req = http::Request::get(format!("http://{addr}/"))
            .body(Empty::new())
            .unwrap();
        req.set_context(ctx.clone());
        let resp = client.ready().await.unwrap().call(req).await.unwrap();
        let mut body = resp.into_body();
        // Bounded by the server's cut at the deadline it was sent.
        let err = loop {
            match body.frame().await {
                Some(Ok(_)) => {}
                Some(Err(e)) => break e,
                None => panic!("the stream ended cleanly"),
            }
        };
        let server = handler_context(&seen);
        assert_eq!(server.err(), Some(go_context::Error::DeadlineExceeded));
        assert!(!ctx.is_done(), "our own deadline passed: the test is moot");
        let done = err.downcast_ref::<context_tower::ContextDone>();
        assert_eq!(
            done.map(context_tower::ContextDone::error),
            Some(go_context::Error::DeadlineExceeded),
            "{err:?}"
        );
    })
    .await
    .unwrap();
}

/// Regression test (found by an audit): over HTTP/1.1 hyper stops polling a body of known
/// length (declared, or from an exact size hint) once that many bytes are out, and drops it
/// without asking for its end, gRPC ones too. The layer took every gRPC response as polled to
/// its end, so such a response, sent whole, ended its handler's context with
/// `RequestDropped`: a gRPC-Web answer with its length declared and a unary gRPC answer
/// (message and trailers, its size hint exact) under `cover_streaming(false)`, where the
/// length stands, and a gRPC answer to a request without `te: trailers`, whose cut is an
/// error and keeps the hint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_grpc_answer_of_known_length_over_http1_is_not_request_dropped() {
    type Answer = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;
    const MESSAGE: &[u8] = b"\0\0\0\0\x02hi";
    fn unary() -> Answer {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        http_body_util::Full::new(Bytes::from_static(MESSAGE))
            .with_trailers(async move { Some(Ok(trailers)) })
            .boxed_unsync()
    }
    fn web() -> Answer {
        let trailer = b"\x80\0\0\0\x0fgrpc-status:0\r\n";
        let chunks = futures_util::stream::iter([
            Ok::<_, Infallible>(Frame::data(Bytes::from_static(MESSAGE))),
            Ok(Frame::data(Bytes::from_static(trailer))),
        ]);
        http_body_util::StreamBody::new(chunks).boxed_unsync()
    }
    tokio::time::timeout(Duration::from_secs(60), async {
        let cases: [(&str, &str, bool, bool); 3] = [
            // (case, content-type, te: trailers, cover_streaming)
            (
                "gRPC-Web, declared, not covered",
                "application/grpc-web+proto",
                false,
                false,
            ),
            (
                "gRPC unary, te, not covered",
                "application/grpc",
                true,
                false,
            ),
            (
                "gRPC unary, no te, covered",
                "application/grpc",
                false,
                true,
            ),
        ];
        for (case, content_type, te, cover) in cases {
            let policy = DeadlinePolicy::grpc()
                .default_timeout(Duration::from_secs(20))
                .cover_streaming(cover);
            let web_answer = content_type.contains("web");
            let (addr, seen) = serve_with(loopback::Version::H1, policy, move || {
                let (body, length) = if web_answer {
                    (web(), Some(MESSAGE.len() + 20))
                } else {
                    (unary(), None)
                };
                let mut resp = http::Response::new(body);
                let headers = resp.headers_mut();
                headers.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static(content_type),
                );
                if let Some(n) = length {
                    headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(n));
                }
                resp
            })
            .await;
            let http = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
            let mut req = http::Request::post(format!("http://{addr}/pkg.Svc/Unary"))
                .header("content-type", content_type);
            if te {
                req = req.header("te", "trailers");
            }
            let resp = http.request(req.body(Empty::new()).unwrap()).await.unwrap();
            assert_eq!(resp.status(), 200, "{case}");
            let body = resp.into_body().collect().await;
            let body = body.unwrap_or_else(|e| panic!("{case}: {e:?}")).to_bytes();
            assert_eq!(&body[..MESSAGE.len()], MESSAGE, "{case}");
            let dropped = ended_as_dropped(&handler_context(&seen)).await;
            assert_eq!(
                dropped, None,
                "{case}: a complete answer taken for a client gone"
            );
        }
    })
    .await
    .unwrap();
}

/// Regression test (found by an audit): a successful answer to `CONNECT` has no body on the
/// wire (the connection, or the HTTP/2 stream, becomes the tunnel), so hyper drops its body
/// without polling it, over HTTP/1.1 and HTTP/2 alike, as it does for `HEAD`; the layer
/// waited for the body's end and took that drop for a client gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_answer_to_connect_is_not_request_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::time::timeout(Duration::from_secs(30), async {
        // A body that says nothing of its end before it is polled.
        let tunnel = || {
            let nothing = futures_util::stream::empty::<Result<Frame<Bytes>, Infallible>>();
            http::Response::new(http_body_util::StreamBody::new(nothing))
        };
        // HTTP/1.1, by hand: hyper's client would take the connection for the tunnel.
        let (addr, seen) = serve(loopback::Version::H1, tunnel).await;
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nhost: 127.0.0.1:9\r\n\r\n")
            .await
            .unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            if tcp.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        assert!(head.starts_with("HTTP/1.1 200"), "{head:?}");
        let dropped = ended_as_dropped(&handler_context(&seen)).await;
        assert_eq!(
            dropped, None,
            "HTTP/1.1: a complete CONNECT answer taken for a client gone"
        );
        drop(tcp);

        let (addr, seen) = serve(loopback::Version::H2, tunnel).await;
        let mut h2 = loopback::connect_h2(addr).await;
        let req = http::Request::connect("127.0.0.1:9")
            .body(Empty::new())
            .unwrap();
        let resp = h2.ready().await.unwrap().call(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let dropped = ended_as_dropped(&handler_context(&seen)).await;
        assert_eq!(
            dropped, None,
            "HTTP/2: a complete CONNECT answer taken for a client gone"
        );
        drop(resp);
    })
    .await
    .unwrap();
}
