//! gRPC over real servers on 127.0.0.1: a chain A -> B -> C served through
//! `Routes::into_axum_router()` with `ContextLayer`, clients with `PropagateLayer`, and interop
//! with plain tonic servers and clients.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use context_tower::{
    ContextLayer, PropagateLayer, RemoteDeadline, RequestContextExt, RequestDropped,
};
use go_context::{go, Context, Error};
use support::grpc::*;
use support::*;
use tokio::sync::{oneshot, Notify};
use tonic::Code;

/// A hop that calls `next` (under its own request context, through `Context::current()`) and
/// prepends the budget it received.
fn forwarding(next: std::net::SocketAddr, margin: Duration, probe: Probe) -> ChainService {
    let client = our_hyper_client(next, &PropagateLayer::grpc().margin(margin));
    ChainService {
        unary: unary(move |req: tonic::Request<Hop>| {
            let mut client = client.clone();
            let probe = probe.clone();
            async move {
                let ctx = req.context();
                probe.put(ctx.clone());
                let mine = budget_micros(&ctx);
                // No context passed: the client layer takes Context::current().
                let mut rest = call(&mut client, req.into_inner(), None).await?;
                rest.micros.insert(0, mine);
                Ok(rest)
            }
        }),
        stream: no_stream(),
    }
}

/// The last hop: records its context, spawns a `go!` worker that runs until the context is
/// done (and reports when it stopped), then works `work_ms`.
fn worker(
    probe: Probe,
    started: Arc<Notify>,
    stopped: Arc<std::sync::Mutex<Option<oneshot::Sender<Error>>>>,
) -> ChainService {
    ChainService {
        unary: unary(move |req: tonic::Request<Hop>| {
            let probe = probe.clone();
            let started = started.clone();
            let stopped = stopped.clone();
            async move {
                let ctx = req.context();
                probe.put(ctx.clone());
                let tx = stopped.lock().unwrap().take();
                let _bg = go!(async move {
                    // A child of the current (request) context.
                    let err = Context::current().done().await;
                    if let Some(tx) = tx {
                        let _ = tx.send(err);
                    }
                });
                started.notify_one();
                let work = Duration::from_millis(req.get_ref().work_ms);
                match ctx.run(tokio::time::sleep(work)).await {
                    Ok(()) => Ok(Budgets {
                        micros: vec![budget_micros(&ctx)],
                    }),
                    Err(_) => Err(context_tower::tonic::status_from_context(&ctx)),
                }
            }
        }),
        stream: no_stream(),
    }
}

struct Chain {
    a: Server,
    b: Server,
    c: Server,
    probes: [Probe; 3],
    started: Arc<Notify>,
    stopped: oneshot::Receiver<Error>,
}

async fn chain(margin: Duration) -> Chain {
    let probes = [Probe::default(), Probe::default(), Probe::default()];
    let started = Arc::new(Notify::new());
    let (tx, stopped) = oneshot::channel();
    let c = serve_ours(
        worker(
            probes[2].clone(),
            started.clone(),
            Arc::new(std::sync::Mutex::new(Some(tx))),
        ),
        ContextLayer::grpc(),
    )
    .await;
    let b = serve_ours(
        forwarding(c.addr, margin, probes[1].clone()),
        ContextLayer::grpc(),
    )
    .await;
    let a = serve_ours(
        forwarding(b.addr, margin, probes[0].clone()),
        ContextLayer::grpc(),
    )
    .await;
    Chain {
        a,
        b,
        c,
        probes,
        started,
        stopped,
    }
}

impl Chain {
    async fn shutdown(self) {
        for s in [self.a, self.b, self.c] {
            s.stop.cancel();
            s.join().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_budget_shrinks_along_the_chain_and_is_never_extended() {
    bounded(async {
        let ch = chain(Duration::ZERO).await;
        let mut client = our_client(ch.a.addr);
        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(3000));
        let sent_at = Instant::now();
        let got = call(&mut client, Hop { work_ms: 0 }, Some(ctx.clone()))
            .await
            .unwrap();
        let [a, b, c] = got.micros[..] else {
            panic!("{got:?}")
        };
        // Each hop sees less than the one before it, and never more than the client had.
        assert!(a <= 3_000_000 && b <= a && c <= b, "{got:?}");
        let (ca, cc) = (ch.probes[0].get().unwrap(), ch.probes[2].get().unwrap());
        let (da, dc) = (ca.deadline().unwrap(), cc.deadline().unwrap());
        // C's handler sees the deadline as its ctx.deadline(): A's deadline, never earlier
        // (rounding is up), later only by the time the headers spent on the wire.
        assert!(dc >= da, "C's deadline is earlier than A's");
        assert!(
            dc - da < Duration::from_millis(200),
            "C got {:?} more than A",
            dc - da
        );
        // In budgets: C's is what A received minus the time spent in between, within slack.
        let spent = sent_at.elapsed();
        assert!(Duration::from_micros(c) <= Duration::from_micros(a) + Duration::from_millis(200));
        assert!(
            Duration::from_micros(c) + spent + Duration::from_millis(200)
                >= Duration::from_micros(a)
        );
        // The cause a deadline would report names the header it came from.
        drop(client);
        ch.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_expiring_while_c_works_is_deadline_exceeded_everywhere_and_stops_go_tasks() {
    bounded(async {
        // A margin per hop makes each callee time out before its caller gives up, so the
        // error travels back as a status (grpc-go's advice for deadline margins).
        let mut ch = chain(Duration::from_millis(40)).await;
        let mut client = our_client(ch.a.addr);
        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(300));
        let t0 = Instant::now();
        let err = call(&mut client, Hop { work_ms: 10_000 }, Some(ctx))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
        assert!(t0.elapsed() < Duration::from_secs(5));
        let cc = ch.probes[2].get().expect("C ran");
        assert_eq!(done_within(&cc, 5).await, Error::DeadlineExceeded);
        let cause = cc.cause().unwrap();
        let remote = cause
            .downcast_ref::<RemoteDeadline>()
            .expect("cause is RemoteDeadline");
        assert_eq!(remote.header().unwrap(), "grpc-timeout");
        assert!(remote.budget() < Duration::from_millis(300));
        // The task C spawned with go! saw the deadline and stopped.
        let seen = tokio::time::timeout(Duration::from_secs(5), &mut ch.stopped)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen, Error::DeadlineExceeded);
        drop(client);
        ch.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_deadline_firing_first_reports_deadline_exceeded_not_cancelled() {
    bounded(async {
        let mut ch = chain(Duration::ZERO).await;
        let mut client = our_client(ch.a.addr);
        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(200));
        let err = call(&mut client, Hop { work_ms: 10_000 }, Some(ctx))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
        // C's work ends either way (its own deadline or the dropped chain).
        let cc = ch.probes[2].get().expect("C ran");
        done_within(&cc, 5).await;
        tokio::time::timeout(Duration::from_secs(5), &mut ch.stopped)
            .await
            .unwrap()
            .unwrap();
        drop(client);
        ch.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_call_cancels_c_with_request_dropped() {
    bounded(async {
        let mut ch = chain(Duration::ZERO).await;
        let mut client = our_client(ch.a.addr);
        let started = ch.started.clone();
        let started = started.notified();
        let call = tokio::spawn(async move {
            // No deadline at all: only the drop can end it.
            let _ = call(&mut client, Hop { work_ms: 60_000 }, None).await;
        });
        started.await;
        call.abort();
        let cc = ch.probes[2].get().expect("C ran");
        assert_eq!(done_within(&cc, 5).await, Error::Canceled);
        let cause = cc.cause().unwrap();
        assert!(
            cause.downcast_ref::<RequestDropped>().is_some(),
            "C's cause is {cause:?}"
        );
        let seen = tokio::time::timeout(Duration::from_secs(5), &mut ch.stopped)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen, Error::Canceled);
        ch.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn already_done_context_fails_locally_without_sending() {
    bounded(async {
        let calls = Arc::new(AtomicUsize::new(0));
        let n = calls.clone();
        let svc = ChainService {
            unary: unary(move |_| {
                n.fetch_add(1, Ordering::SeqCst);
                async { Ok(Budgets::default()) }
            }),
            stream: no_stream(),
        };
        let s = serve_ours(svc, ContextLayer::grpc()).await;
        let mut client = our_client(s.addr);
        let (ctx, _c) = Context::background().with_deadline(Instant::now());
        let err = call(&mut client, Hop::default(), Some(ctx))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded);
        let (ctx, cancel) = Context::background().with_cancel();
        cancel.cancel_with_cause("user gave up");
        let err = call(&mut client, Hop::default(), Some(ctx))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Cancelled);
        assert!(err.message().contains("user gave up"), "{}", err.message());
        // Margin larger than the time left: nothing is sent either.
        let mut tight = tonic::client::Grpc::new(tower::Layer::layer(
            &PropagateLayer::grpc().margin(Duration::from_secs(10)),
            channel(s.addr),
        ));
        let (ctx, _c) = Context::background().with_timeout(Duration::from_secs(5));
        let err = call(&mut tight, Hop::default(), Some(ctx))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded);
        assert_eq!(calls.load(Ordering::SeqCst), 0, "the server was called");
        // A live context goes through.
        call(&mut client, Hop::default(), None).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        s.stop.cancel();
        s.join().await;
    })
    .await;
}

/// A stream that ticks every 20 ms until its request context is done.
fn ticking(probe: Probe) -> ChainService {
    ChainService {
        unary: unary(|_| async { Ok(Budgets::default()) }),
        stream: Arc::new(move |req: tonic::Request<Hop>| {
            probe.put(req.context());
            Box::pin(futures_util::stream::unfold(0u64, |n| async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Some((Ok(Tick { n }), n + 1))
            }))
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stream_outliving_the_deadline_ends_with_status_4() {
    bounded(async {
        let probe = Probe::default();
        let s = serve_ours(ticking(probe.clone()), ContextLayer::grpc()).await;
        // A plain tonic client: no client-side cut, so what ends the stream is our server.
        let mut client = plain_hyper_client(s.addr);
        let mut req = tonic::Request::new(Hop::default());
        req.set_timeout(Duration::from_millis(300));
        client.ready().await.unwrap();
        let mut stream = client
            .server_streaming::<_, Tick, _>(
                req,
                http::uri::PathAndQuery::from_static(STREAM),
                tonic_prost::ProstCodec::default(),
            )
            .await
            .unwrap()
            .into_inner();
        let mut ticks = 0;
        let status = loop {
            match stream.message().await {
                Ok(Some(_)) => ticks += 1,
                Ok(None) => panic!("stream ended without a status after {ticks} ticks"),
                Err(status) => break status,
            }
        };
        assert!(ticks >= 1, "no tick before the deadline");
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        let ctx = probe.get().unwrap();
        assert_eq!(done_within(&ctx, 5).await, Error::DeadlineExceeded);
        s.stop.cancel();
        s.join().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cancels_in_flight_requests_and_the_server_drains() {
    bounded(async {
        let probe = Probe::default();
        let started = Arc::new(Notify::new());
        let s = serve_ours(
            worker(probe.clone(), started.clone(), Default::default()),
            ContextLayer::grpc(),
        )
        .await;
        let addr = s.addr;
        let started = started.notified();
        let in_flight = tokio::spawn(async move {
            let mut client = plain_client(addr);
            call(&mut client, Hop { work_ms: 60_000 }, None).await
        });
        started.await;
        s.stop.cancel_with_cause("server shutting down");
        let err = in_flight.await.unwrap().unwrap_err();
        assert_eq!(err.code(), Code::Cancelled, "{err:?}");
        assert!(
            err.message().contains("server shutting down"),
            "{}",
            err.message()
        );
        let ctx = probe.get().unwrap();
        assert_eq!(ctx.err(), Some(Error::Canceled));
        s.join().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_plain_tonic_client_against_our_server() {
    bounded(async {
        let probe = Probe::default();
        let s = serve_ours(
            worker(probe.clone(), Default::default(), Default::default()),
            ContextLayer::grpc(),
        )
        .await;
        // tonic's `Channel` would enforce the timeout itself (answering CANCELLED); over a
        // hyper client, the status is the server's.
        let mut client = plain_hyper_client(s.addr);
        // tonic's set_timeout header reaches the handler as its deadline.
        let got = call_timed(&mut client, Hop { work_ms: 0 }, Duration::from_millis(800))
            .await
            .unwrap();
        assert!(got.micros[0] > 0 && got.micros[0] <= 800_000, "{got:?}");
        // Expiry: DEADLINE_EXCEEDED (tonic's own server says CANCELLED).
        let err = call_timed(
            &mut client,
            Hop { work_ms: 10_000 },
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
        // tonic sends `0n` for a zero timeout: answered without calling the handler.
        let before = probe.len();
        let err = call_timed(&mut client, Hop { work_ms: 0 }, Duration::ZERO)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
        assert_eq!(probe.len(), before, "the handler ran for 0n");
        s.stop.cancel();
        s.join().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_our_client_against_a_plain_tonic_server() {
    bounded(async {
        let seen = Arc::new(std::sync::Mutex::new(None::<String>));
        let s2 = seen.clone();
        let handed = Arc::new(std::sync::Mutex::new(Vec::<bool>::new()));
        let h2 = handed.clone();
        let svc = ChainService {
            unary: unary(move |req: tonic::Request<Hop>| {
                *s2.lock().unwrap() = req
                    .metadata()
                    .get("grpc-timeout")
                    .map(|v| v.to_str().unwrap().to_owned());
                // What tonic hands its handler of the deadline: nothing (no context, no
                // deadline), though its timeout layer read the header.
                h2.lock().unwrap().push(
                    req.context().deadline().is_some() || Context::current().deadline().is_some(),
                );
                let work = req.get_ref().work_ms;
                async move {
                    tokio::time::sleep(Duration::from_millis(work)).await;
                    Ok(Budgets::default())
                }
            }),
            stream: no_stream(),
        };
        // tonic's server timeout layer reads our header (and answers CANCELLED on expiry).
        let s = serve_plain_tonic(svc, Some(Duration::from_secs(60))).await;
        let mut ours = our_client(s.addr);
        let (ctx, _c) = Context::background().with_timeout(Duration::from_millis(500));
        call(&mut ours, Hop { work_ms: 0 }, Some(ctx))
            .await
            .unwrap();
        let header = seen.lock().unwrap().clone().expect("grpc-timeout sent");
        let sent = context_tower::wire::parse_grpc_timeout(header.as_bytes()).unwrap();
        assert!(
            sent <= Duration::from_millis(500) && sent > Duration::from_millis(100),
            "{header}"
        );
        assert!(header.len() <= 9 && header.ends_with('u'), "{header}");
        assert_eq!(
            *handed.lock().unwrap(),
            [false],
            "tonic changed: its handler sees a deadline"
        );
        // Expiry: we report DEADLINE_EXCEEDED ...
        let (ctx, _c) = Context::background().with_timeout(Duration::from_millis(200));
        let err = call(&mut ours, Hop { work_ms: 10_000 }, Some(ctx))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
        // ... where a plain tonic client, on the same server, gets CANCELLED.
        let mut plain = plain_client(s.addr);
        let err = call_timed(
            &mut plain,
            Hop { work_ms: 10_000 },
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::Cancelled, "tonic changed: {err:?}");
        s.stop.cancel();
        s.join().await;
    })
    .await;
}

/// tonic's own `Server` with `Server::layer(ContextLayer::grpc())` (no `Server::timeout`):
/// every tonic `Server` wraps the user's layers in its `GrpcTimeout`, which reads
/// `grpc-timeout` too and answers `CANCELLED` when it fires. Ours computes its deadline first
/// (tonic calls the inner service before it starts its sleep) and is polled first, at a
/// deadline no later than tonic's, so the caller gets `DEADLINE_EXCEEDED` and the handler its
/// deadline; `Server::timeout` shorter than the caller's deadline fires first, `CANCELLED`.
/// Pinned on tonic: if it reorders that, this fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tonic_server_with_our_layer_answers_deadline_exceeded_where_its_timeout_says_cancelled() {
    bounded(async {
        let probe = Probe::default();
        let s = serve_tonic_with_our_layer(oblivious(probe.clone()), ContextLayer::grpc()).await;
        // A hyper client enforces no timeout of its own: what it reports is the server's.
        let mut client = plain_hyper_client(s.addr);
        call_timed(&mut client, Hop { work_ms: 0 }, Duration::from_millis(800))
            .await
            .unwrap();
        let ctx = probe.get().expect("the handler ran");
        let left = ctx
            .deadline()
            .expect("the handler's context has the caller's deadline");
        assert!(left <= Instant::now() + Duration::from_millis(800));
        // A request whose deadline has passed when it is first polled (a loaded machine) is
        // answered without calling the handler: check the handler's context when it ran.
        let mut ran = 0;
        for budget in [50, 80, 120, 150, 200] {
            let before = probe.len();
            let err = call_timed(
                &mut client,
                Hop { work_ms: 10_000 },
                Duration::from_millis(budget),
            )
            .await
            .unwrap_err();
            assert_eq!(err.code(), Code::DeadlineExceeded, "{budget} ms: {err:?}");
            if probe.len() == before {
                continue;
            }
            ran += 1;
            let ctx = probe.get().unwrap();
            assert_eq!(
                done_within(&ctx, 5).await,
                Error::DeadlineExceeded,
                "{budget} ms: {:?}",
                ctx.cause()
            );
            assert!(ctx
                .cause()
                .unwrap()
                .downcast_ref::<RemoteDeadline>()
                .is_some());
        }
        assert!(ran > 0, "no call reached its handler");
        s.stop.cancel();
        s.join().await;

        // tonic's `Server::timeout` shorter than the caller's deadline: tonic's fires first.
        let s = serve_tonic_with_our_layer_and_timeout(
            oblivious(probe.clone()),
            ContextLayer::grpc(),
            Duration::from_millis(100),
        )
        .await;
        let mut client = plain_hyper_client(s.addr);
        let err = call_timed(&mut client, Hop { work_ms: 10_000 }, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Cancelled, "tonic changed: {err:?}");
        // tonic dropped our layer's future: the handler's context says so.
        let ctx = probe.get().unwrap();
        assert_eq!(done_within(&ctx, 5).await, Error::Canceled);
        assert!(ctx
            .cause()
            .unwrap()
            .downcast_ref::<RequestDropped>()
            .is_some());
        s.stop.cancel();
        s.join().await;
    })
    .await;
}

/// The wire-format points we make against tonic, pinned on tonic itself: its client truncates
/// (shortening the deadline it sends), sends `0n` for a zero timeout and panics on a huge one,
/// where `wire::format_grpc_timeout` rounds up, never writes `0n` and saturates.
#[test]
fn tonic_timeout_header_truncates_sends_0n_and_panics_where_ours_does_not() {
    use context_tower::wire::{format_grpc_timeout, parse_grpc_timeout};
    fn tonic_header(d: Duration) -> String {
        let mut req = tonic::Request::new(());
        req.set_timeout(d);
        req.metadata()
            .get("grpc-timeout")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }
    let d = Duration::from_nanos(100_000_999);
    let theirs = parse_grpc_timeout(tonic_header(d).as_bytes()).unwrap();
    assert!(
        theirs < d,
        "tonic changed: it no longer truncates ({theirs:?})"
    );
    let ours = parse_grpc_timeout(format_grpc_timeout(d).as_bytes()).unwrap();
    assert!(ours >= d, "ours shortened {d:?} to {ours:?}");

    assert_eq!(tonic_header(Duration::ZERO), "0n", "tonic changed");
    assert_ne!(format_grpc_timeout(Duration::ZERO).as_str(), "0n");

    let huge = std::panic::catch_unwind(|| tonic_header(Duration::MAX));
    assert!(huge.is_err(), "tonic changed: no panic on Duration::MAX");
    assert_eq!(format_grpc_timeout(Duration::MAX).as_str(), "99999999H");
}

/// Regression test (found by an audit): a deadline already on the request (tonic's own
/// `Request::set_timeout`) under a context without one counted for nothing when it expired:
/// tonic's `Channel` enforces the header and answered its own `CANCELLED` ("Timeout
/// expired"), which the layer passed on, where the same header under a context with a later
/// deadline is reported `DEADLINE_EXCEEDED`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_header_already_on_the_request_expires_as_deadline_exceeded() {
    bounded(async {
        let s = serve_plain_tonic(oblivious(Probe::default()), None).await;
        let mut ours = our_client(s.addr);
        // The current context (background) has no deadline: only the header's counts.
        let err = call_timed(
            &mut ours,
            Hop { work_ms: 10_000 },
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
        s.stop.cancel();
        s.join().await;
    })
    .await;
}
