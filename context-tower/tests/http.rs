//! HTTP over real servers on 127.0.0.1: axum with `ContextLayer` and the `Ctx` extractor, a
//! hyper-util client with `PropagateLayer`; the deadline headers' policy on bad input.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use context_tower::axum::Ctx;
use context_tower::{
    ContextDone, ContextLayer, DeadlinePolicy, PropagateLayer, RequestContextExt, RequestDropped,
};
use go_context::{CancelHandle, Context, Error};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use support::{bounded, done_within, Probe};

#[path = "support/loopback.rs"]
mod loopback;
use tower::{Layer, Service, ServiceExt};

struct App {
    addr: SocketAddr,
    stop: CancelHandle,
    calls: Arc<AtomicUsize>,
    probe: Probe,
    join: tokio::task::JoinHandle<()>,
}

impl App {
    async fn shutdown(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.join)
            .await
            .unwrap()
            .unwrap();
    }
}

/// `/budget` answers the deadline it got in ms ("none" without one); `/slow` waits for its
/// context; `/stream` sends a chunk every 20 ms for as long as it is polled.
async fn serve(policy: DeadlinePolicy) -> App {
    let (shutdown, stop) = Context::background().with_cancel();
    let calls = Arc::new(AtomicUsize::new(0));
    let probe = Probe::default();
    let (c1, c2, p) = (calls.clone(), calls.clone(), probe.clone());
    let router = Router::new()
        .route(
            "/budget",
            get(move |Ctx(ctx): Ctx| async move {
                c1.fetch_add(1, Ordering::SeqCst);
                match ctx.deadline() {
                    Some(d) => d
                        .saturating_duration_since(std::time::Instant::now())
                        .as_millis()
                        .to_string(),
                    None => "none".to_owned(),
                }
            }),
        )
        .route(
            "/slow",
            get(move |Ctx(ctx): Ctx| async move {
                c2.fetch_add(1, Ordering::SeqCst);
                p.put(ctx.clone());
                // Without a deadline of its own, this waits for the layer to end it.
                std::future::pending::<()>().await;
                "never"
            }),
        )
        .route(
            "/stream",
            get(|| async {
                let s = futures_util::stream::unfold(0u32, |n| async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Some((
                        Ok::<_, Infallible>(http_body::Frame::data(Bytes::from("tick\n"))),
                        n + 1,
                    ))
                });
                axum::body::Body::new(http_body_util::StreamBody::new(s))
            }),
        )
        .layer(ContextLayer::new(policy).parent(&shutdown));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let join = tokio::spawn(async move {
        axum::serve(l, router)
            .with_graceful_shutdown(async move {
                shutdown.done().await;
            })
            .await
            .unwrap();
    });
    App {
        addr,
        stop,
        calls,
        probe,
        join,
    }
}

fn client(h2: bool) -> Client<HttpConnector, Empty<Bytes>> {
    let mut b = Client::builder(TokioExecutor::new());
    b.http2_only(h2);
    b.build_http()
}

async fn get_with(
    app: &App,
    path: &str,
    headers: &[(&str, &[u8])],
) -> (u16, http::HeaderMap, String) {
    let mut req = http::Request::get(format!("http://{}{path}", app.addr));
    for (k, v) in headers {
        req = req.header(*k, http::HeaderValue::from_bytes(v).unwrap());
    }
    let resp = client(false)
        .request(req.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

const BAD: [&[u8]; 6] = [b"-1S", b"-5", b"123456789n", b"10x", b"\xff\xfe", b"1.5S"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_headers_are_ignored_by_default() {
    bounded(async {
        let app = serve(DeadlinePolicy::http()).await;
        for bad in BAD {
            for header in ["grpc-timeout", "connect-timeout-ms"] {
                let (status, _, body) = get_with(&app, "/budget", &[(header, bad)]).await;
                assert_eq!((status, body.as_str()), (200, "none"), "{header}: {bad:?}");
            }
        }
        assert_eq!(app.calls.load(Ordering::SeqCst), 2 * BAD.len());
        app.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_headers_rejected_without_calling_the_handler() {
    bounded(async {
        let app = serve(DeadlinePolicy::http().reject_malformed()).await;
        for bad in BAD {
            let (status, _, _) = get_with(&app, "/budget", &[("grpc-timeout", bad)]).await;
            assert_eq!(status, 400, "{bad:?}");
            // gRPC callers get INTERNAL (13), trailers-only, as from grpc-go.
            let (status, headers, _) = get_with(
                &app,
                "/budget",
                &[("grpc-timeout", bad), ("content-type", b"application/grpc")],
            )
            .await;
            assert_eq!(status, 200);
            assert_eq!(headers["grpc-status"], "13", "{bad:?}");
            assert!(headers["grpc-message"]
                .to_str()
                .unwrap()
                .starts_with("malformed grpc-timeout"));
        }
        assert_eq!(app.calls.load(Ordering::SeqCst), 0, "the handler ran");
        app.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_budget_is_answered_without_calling_the_handler() {
    bounded(async {
        for policy in [
            DeadlinePolicy::http(),
            DeadlinePolicy::http()
                .reject_malformed()
                .min(Duration::from_secs(1)),
        ] {
            let app = serve(policy).await;
            let (status, _, body) = get_with(&app, "/budget", &[("grpc-timeout", b"0n")]).await;
            assert_eq!(
                (status, body.as_str()),
                (504, "context deadline exceeded\n")
            );
            let (status, _, _) = get_with(&app, "/budget", &[("connect-timeout-ms", b"0")]).await;
            assert_eq!(status, 504);
            let (status, headers, _) = get_with(
                &app,
                "/budget",
                &[
                    ("grpc-timeout", b"0m"),
                    ("content-type", b"application/grpc"),
                ],
            )
            .await;
            assert_eq!(
                (status, headers["grpc-status"].to_str().unwrap()),
                (200, "4")
            );
            assert_eq!(app.calls.load(Ordering::SeqCst), 0, "the handler ran");
            app.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_deadlines_are_clamped_and_defaulted() {
    bounded(async {
        let policy = DeadlinePolicy::http()
            .max(Duration::from_secs(2))
            .min(Duration::from_millis(500))
            .default_timeout(Duration::from_secs(60));
        let app = serve(policy).await;
        let ms = |b: String| b.parse::<u64>().unwrap();
        let (_, _, body) = get_with(&app, "/budget", &[("grpc-timeout", b"99999999H")]).await;
        assert!((1000..=2000).contains(&ms(body.clone())), "max: {body}");
        let (_, _, body) = get_with(&app, "/budget", &[("connect-timeout-ms", b"1")]).await;
        assert!((100..=500).contains(&ms(body.clone())), "min: {body}");
        let (_, _, body) = get_with(&app, "/budget", &[]).await;
        assert!(
            (1000..=2000).contains(&ms(body.clone())),
            "default, clamped: {body}"
        );
        let (_, _, body) = get_with(&app, "/budget", &[("connect-timeout-ms", b"1200")]).await;
        assert!((200..=1200).contains(&ms(body.clone())), "as sent: {body}");
        app.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_is_504_and_the_handler_context_is_deadline_exceeded() {
    bounded(async {
        let app = serve(DeadlinePolicy::http()).await;
        let (status, _, _) = get_with(&app, "/slow", &[("connect-timeout-ms", b"150")]).await;
        assert_eq!(status, 504);
        let ctx = app.probe.get().unwrap();
        assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
        app.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_503_and_the_server_drains() {
    bounded(async {
        let app = serve(DeadlinePolicy::http()).await;
        let url = format!("http://{}/slow", app.addr);
        let in_flight = tokio::spawn(async move {
            let req = http::Request::get(url).body(Empty::<Bytes>::new()).unwrap();
            client(false).request(req).await.unwrap().status().as_u16()
        });
        // Wait for the handler to hold its context.
        let ctx = app.probe.wait(1).await;
        app.stop.cancel_with_cause("draining");
        assert_eq!(in_flight.await.unwrap(), 503);
        assert_eq!(ctx.cause().unwrap().to_string(), "draining");
        tokio::time::timeout(Duration::from_secs(20), app.join)
            .await
            .unwrap()
            .unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_client_propagates_and_ends_the_call_with_its_context() {
    bounded(async {
        let app = serve(DeadlinePolicy::http()).await;
        let mut svc = tower::ServiceBuilder::new()
            .layer(PropagateLayer::http())
            .service(client(true));
        // The remaining time arrives as connect-timeout-ms.
        let (ctx, _c) = Context::background().with_timeout(Duration::from_millis(1500));
        let mut req = http::Request::get(format!("http://{}/budget", app.addr))
            .body(Empty::<Bytes>::new())
            .unwrap();
        req.set_context(ctx);
        let resp = svc.ready().await.unwrap().call(req).await.unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let ms: u64 = std::str::from_utf8(&body).unwrap().parse().unwrap();
        assert!(ms <= 1500 && ms > 500, "{ms}");
        // A client deadline while the server works: a typed DeadlineExceeded, and the
        // server's context ends (its own deadline, or the reset stream).
        let (ctx, cancel) = Context::background().with_timeout(Duration::from_millis(200));
        let mut req = http::Request::get(format!("http://{}/slow", app.addr))
            .body(Empty::<Bytes>::new())
            .unwrap();
        req.set_context(ctx);
        let err = svc.ready().await.unwrap().call(req).await.unwrap_err();
        let done = err.downcast_ref::<ContextDone>().expect("a ContextDone");
        assert_eq!(done.error(), Error::DeadlineExceeded);
        drop(cancel);
        done_within(&app.probe.get().unwrap(), 5).await;
        // Cancelling the call's context resets the HTTP/2 stream: the server's context is
        // cancelled with RequestDropped.
        let (ctx, cancel) = Context::background().with_cancel();
        let mut req = http::Request::get(format!("http://{}/slow", app.addr))
            .body(Empty::<Bytes>::new())
            .unwrap();
        req.set_context(ctx);
        let before = app.probe.len();
        let call = svc.ready().await.unwrap().call(req);
        let waiter = tokio::spawn(call);
        let server_ctx = app.probe.wait(before + 1).await;
        cancel.cancel_with_cause("user navigated away");
        let err = waiter.await.unwrap().unwrap_err();
        assert_eq!(
            err.downcast_ref::<ContextDone>().unwrap().error(),
            Error::Canceled
        );
        assert_eq!(done_within(&server_ctx, 5).await, Error::Canceled);
        assert!(server_ctx
            .cause()
            .unwrap()
            .downcast_ref::<RequestDropped>()
            .is_some());
        app.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_stream_is_cut_at_the_deadline() {
    bounded(async {
        let app = serve(DeadlinePolicy::http()).await;
        let req = http::Request::get(format!("http://{}/stream", app.addr))
            .header("connect-timeout-ms", "200")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = client(true).request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        let mut chunks = 0;
        let ended = loop {
            match body.frame().await {
                Some(Ok(_)) => chunks += 1,
                Some(Err(e)) => break e,
                None => panic!("stream ended cleanly after {chunks} chunks"),
            }
        };
        assert!(chunks >= 1, "{ended}");
        app.shutdown().await;
    })
    .await;
}

/// Regression test: a handler that answered with a body of known length just before the
/// shutdown (here: it starts the shutdown itself, then answers) had that body cut at its first
/// poll, before hyper flushed the headers, and the client's call failed (HTTP/2: a reset
/// stream; HTTP/1.1: a closed connection). The answer was given in time: it goes out whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_of_known_length_given_before_the_shutdown_goes_out_whole() {
    bounded(async {
        for version in [loopback::Version::H2, loopback::Version::H1] {
            let (shutdown, stop) = Context::background().with_cancel();
            let stop = Arc::new(std::sync::Mutex::new(Some(stop)));
            let probe = Probe::default();
            let p = probe.clone();
            let svc = ContextLayer::http()
                .parent(&shutdown)
                .layer(tower::service_fn(
                    move |req: http::Request<hyper::body::Incoming>| {
                        let stop = stop.lock().unwrap().take();
                        p.put(req.context());
                        async move {
                            if let Some(stop) = stop {
                                stop.cancel_with_cause("stopping");
                            }
                            Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(
                                Bytes::from_static(b"answered in time"),
                            )))
                        }
                    },
                ));
            let addr = loopback::serve(svc, version).await;
            let req = http::Request::get(format!("http://{addr}/"))
                .body(Empty::<Bytes>::new())
                .unwrap();
            let resp = client(version == loopback::Version::H2)
                .request(req)
                .await
                .unwrap_or_else(|e| panic!("{version:?}: the call failed: {e:?}"));
            assert_eq!(resp.status(), 200, "{version:?}");
            let body = resp.into_body().collect().await;
            let body = body.unwrap_or_else(|e| panic!("{version:?}: the body was cut: {e:?}"));
            assert_eq!(body.to_bytes(), "answered in time", "{version:?}");
            // The handler's context still ends with the shutdown's cause.
            let ctx = probe.get().unwrap();
            assert_eq!(done_within(&ctx, 10).await, Error::Canceled);
            assert_eq!(ctx.cause().unwrap().to_string(), "stopping", "{version:?}");
        }
    })
    .await;
}

/// Regression test: a `ContextLayer` inside another (one on the router, one on a route)
/// derived its context from its own `parent` and ignored the outer request's: the outer
/// layer's clamp did not reach the handler's `ctx.deadline()`, and a shutdown of the outer
/// parent cut the inner future, whose context then ended with `RequestDropped` instead of the
/// shutdown's cause. Now the inner layer derives from the request's context, and joins its
/// own `parent` when it has one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_context_layer_runs_under_the_outer_request_context() {
    bounded(async {
        for version in [loopback::Version::H2, loopback::Version::H1] {
            // Which parent the test cancels: the outer layer's or the inner layer's.
            for outer_stops in [true, false] {
                let (outer_parent, outer_stop) = Context::background().with_cancel();
                let (inner_parent, inner_stop) = Context::background().with_cancel();
                let probe = Probe::default();
                let p = probe.clone();
                let handler =
                    tower::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        p.put(req.context());
                        async move {
                            // Waits for a layer to end it.
                            Context::current().done().await;
                            Ok::<_, Infallible>(http::Response::new(Empty::<Bytes>::new()))
                        }
                    });
                let svc = ContextLayer::new(DeadlinePolicy::http().max(Duration::from_secs(60)))
                    .parent(&outer_parent)
                    .layer(ContextLayer::http().parent(&inner_parent).layer(handler));
                let addr = loopback::serve(svc, version).await;
                let call = tokio::spawn(async move {
                    let req = http::Request::get(format!("http://{addr}/"))
                        .header("connect-timeout-ms", "3600000")
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    let resp = client(version == loopback::Version::H2).request(req).await;
                    resp.unwrap().status().as_u16()
                });
                let ctx = probe.wait(1).await;
                let left = ctx.deadline().expect("a deadline") - std::time::Instant::now();
                assert!(
                    left <= Duration::from_secs(60),
                    "{version:?}: the handler saw {left:?}, past the outer layer's 60 s clamp"
                );
                let (stop, other) = if outer_stops {
                    (outer_stop, inner_stop)
                } else {
                    (inner_stop, outer_stop)
                };
                stop.cancel_with_cause("draining");
                assert_eq!(call.await.unwrap(), 503, "{version:?}, outer {outer_stops}");
                assert_eq!(done_within(&ctx, 10).await, Error::Canceled);
                let cause = ctx.cause().unwrap().to_string();
                assert!(
                    cause.contains("draining"),
                    "{version:?}, outer {outer_stops}: the handler's context ended with {cause:?}"
                );
                drop(other);
            }
        }
    })
    .await;
}

#[test]
fn request_context_ext_falls_back_to_current() {
    let ctx = Context::background().with_value(3u16);
    let _g = ctx.enter();
    let req = http::Request::new(());
    assert_eq!(req.context().value::<u16>(), Some(&3));
}

/// Regression test (found by an audit): a deadline header already on the request (from
/// upstream, or tonic's `set_timeout(Duration::ZERO)`) that says `0n` was kept as the shorter
/// of the two and sent: the call must fail here, with nothing sent, as a done context does.
#[tokio::test(flavor = "current_thread")]
async fn a_spent_budget_already_on_the_request_is_never_sent() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let inner = tower::service_fn(move |_req: http::Request<()>| {
        seen.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(http::Response::new(String::new())) }
    });
    let client = tower::Layer::layer(&PropagateLayer::grpc(), inner);
    // With a deadline of the call's own, and with none (found by a review of the first fix).
    let (timed, _cancel) = Context::background().with_timeout(Duration::from_secs(5));
    let (untimed, _cancel2) = Context::background().with_cancel();
    for ctx in [timed, untimed] {
        let mut req = http::Request::builder()
            .header("grpc-timeout", "0n")
            .body(())
            .unwrap();
        req.set_context(ctx);
        let err = client.clone().oneshot(req).await.unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 0, "the call was sent");
        let done = err.downcast_ref::<ContextDone>().expect("a ContextDone");
        assert_eq!(done.error(), Error::DeadlineExceeded);
    }
}

/// A nested layer's own parent is joined by a callback that holds a clone of the request's
/// cancel handle: the request's end must stop it, or the context would outlive its request
/// (the handle's drop would not be the last). And a request already under a done outer
/// context is answered without calling the handler.
#[tokio::test(flavor = "current_thread")]
async fn a_nested_layer_with_its_own_parent_ends_the_context_with_the_request() {
    let (inner_parent, _stop) = Context::background().with_cancel();
    let probe = Probe::default();
    let p = probe.clone();
    let handler = tower::service_fn(move |req: http::Request<()>| {
        p.put(req.context());
        async { Ok::<_, Infallible>(http::Response::new(String::from("ok"))) }
    });
    let svc = ContextLayer::http().layer(ContextLayer::http().parent(&inner_parent).layer(handler));
    let resp = svc.clone().oneshot(http::Request::new(())).await.unwrap();
    assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "ok");
    let ctx = probe.get().unwrap();
    assert_eq!(
        ctx.err(),
        Some(Error::Canceled),
        "the request is over, but the joined parent's callback kept its context alive"
    );
    let cause = ctx.cause().unwrap();
    assert!(
        cause.downcast_ref::<RequestDropped>().is_none(),
        "a finished request ended with {cause}"
    );

    // The outer context is done already (here: a value of the user's middleware).
    let (outer, cancel) = Context::background().with_cancel();
    cancel.cancel_with_cause("gone");
    let mut req = http::Request::new(());
    req.set_context(outer);
    let resp = svc.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(
        probe.len(),
        1,
        "the handler was called under a done context"
    );
}

/// Regression test (found by the session-14 review): a nested layer whose own parent was
/// already cancelled (a shutdown under way) called the handler anyway, since its join ran
/// the cancellation later, on the callback pool; such a request is answered at once, with
/// the parent's cause, as one without an outer context is.
#[tokio::test(flavor = "current_thread")]
async fn a_nested_layer_whose_own_parent_is_done_answers_without_the_handler() {
    let (inner_parent, stop) = Context::background().with_cancel();
    stop.cancel_with_cause("draining");
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let handler = tower::service_fn(move |_req: http::Request<()>| {
        seen.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(http::Response::new(String::new())) }
    });
    let svc = ContextLayer::http().layer(ContextLayer::http().parent(&inner_parent).layer(handler));
    let resp = svc.oneshot(http::Request::new(())).await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "the handler was called under a done parent"
    );
}
