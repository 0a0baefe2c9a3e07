//! No leaks: after 1,000 requests (ok, expired at the server, dropped by the client), the live
//! heap (so contexts and timer entries), the handlers, the `go!` tasks and tokio's live tasks
//! are back at their baseline. One #[test]: the counting allocator sees the whole process.

#[path = "support/alive.rs"]
mod alive;
#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use alive::Alive;

use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use context_tower::axum::Ctx;
use context_tower::{ContextDone, ContextLayer, PropagateLayer, RequestContextExt};
use go_context::{go, Context};
use http::HeaderName;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceExt};

static HANDLERS: AtomicIsize = AtomicIsize::new(0);
static GO_TASKS: AtomicIsize = AtomicIsize::new(0);

async fn handler(ctx: Context, slow: bool) -> &'static str {
    let _alive = Alive::new(&HANDLERS);
    let _task = go!(async move {
        let _alive = Alive::new(&GO_TASKS);
        Context::current().done().await;
    });
    if slow {
        std::future::pending::<()>().await;
    }
    drop(ctx);
    "ok"
}

/// A fresh HTTP/2 connection per call (HTTP/2, so a dropped call resets its stream): h2
/// keeps per-connection state that grows with the stream ids, which is not ours to measure,
/// and a fresh pool per call avoids hyper-util's checkout race between a dropped call and
/// the others.
fn client() -> Client<HttpConnector, Empty<Bytes>> {
    let mut builder = Client::builder(TokioExecutor::new());
    builder.http2_only(true);
    builder.build_http()
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Ok,
    Expired,
    Dropped,
}

#[test]
fn no_leaks_after_1000_requests() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(120), run()).await })
        .expect("finished in time");
}

async fn run() {
    let (shutdown, stop) = Context::background().with_cancel();
    let router = Router::new()
        .route("/ok", get(|Ctx(ctx): Ctx| handler(ctx, false)))
        .route("/slow", get(|Ctx(ctx): Ctx| handler(ctx, true)))
        .layer(ContextLayer::http().parent(&shutdown));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let done = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(l, router)
            .with_graceful_shutdown(async move {
                done.done().await;
            })
            .await
            .unwrap();
    });
    let one = |kind: Kind, http: Client<HttpConnector, Empty<Bytes>>| async move {
        let mut sends = tower::ServiceBuilder::new()
            .layer(PropagateLayer::http())
            .service(http.clone());
        // For dropped calls the server gets no deadline: only the reset can end its handler.
        let mut hides = tower::ServiceBuilder::new()
            .layer(PropagateLayer::header_ms(HeaderName::from_static(
                "x-not-read",
            )))
            .service(http);
        let (path, timeout) = match kind {
            Kind::Ok => ("/ok", Duration::from_secs(10)),
            Kind::Expired => ("/slow", Duration::from_secs(10)),
            Kind::Dropped => ("/slow", Duration::from_millis(10)),
        };
        let (ctx, _cancel) = Context::background().with_timeout(timeout);
        let mut req = http::Request::get(format!("http://{addr}{path}"));
        if let Kind::Expired = kind {
            // Shorter than the context: the client keeps it, the server expires first.
            req = req.header("connect-timeout-ms", "10");
        }
        let mut req = req.body(Empty::<Bytes>::new()).unwrap();
        req.set_context(ctx);
        let result = match kind {
            Kind::Dropped => hides.ready().await.unwrap().call(req).await,
            _ => sends.ready().await.unwrap().call(req).await,
        };
        match (kind, result) {
            (Kind::Ok, Ok(resp)) => {
                assert_eq!(resp.status(), 200);
                resp.into_body().collect().await.unwrap();
            }
            (Kind::Expired, Ok(resp)) => assert_eq!(resp.status(), 504),
            (Kind::Dropped, Err(e)) => assert!(e.downcast_ref::<ContextDone>().is_some(), "{e}"),
            (kind, other) => panic!("{kind:?}: {:?}", other.map(|r| r.status())),
        }
    };
    let batch = |n: usize| {
        let one = &one;
        async move {
            // Four lanes in flight at a time.
            for chunk in (0..n).collect::<Vec<_>>().chunks(4) {
                let calls = chunk
                    .iter()
                    .map(|i| one([Kind::Ok, Kind::Expired, Kind::Dropped][i % 3], client()));
                futures_util::future::join_all(calls).await;
            }
        }
    };

    let metrics = tokio::runtime::Handle::current().metrics();
    batch(150).await; // warm-up: connection, pools, the timer's slabs
    settle(metrics.num_alive_tasks(), &metrics).await;
    let (tasks0, heap0) = (metrics.num_alive_tasks(), counting_alloc::live());

    batch(1000).await;
    settle(tasks0, &metrics).await;
    let (tasks1, heap1) = (metrics.num_alive_tasks(), counting_alloc::live());
    println!(
        "live heap: {heap0} B before, {heap1} B after 1,000 requests; tasks {tasks0} -> {tasks1}"
    );
    assert_eq!(HANDLERS.load(Ordering::SeqCst), 0, "handlers still running");
    assert_eq!(
        GO_TASKS.load(Ordering::SeqCst),
        0,
        "go! tasks still running"
    );
    assert!(
        tasks1 <= tasks0,
        "tokio tasks left behind: {tasks0} -> {tasks1}"
    );
    // One leaked context (or timer entry) per request would be 1,000 x 100+ bytes; even
    // one per twenty-five requests shows.
    assert!(heap1 - heap0 < 4096, "heap grew by {} B", heap1 - heap0);

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .unwrap()
        .unwrap();
}

/// Waits (bounded) until every handler and go! task ended and tokio's live tasks are at
/// `tasks` or fewer: contexts end on the server's side after the client saw its answer.
async fn settle(tasks: usize, metrics: &tokio::runtime::RuntimeMetrics) {
    alive::settle(Duration::from_secs(30), || {
        let (h, g, t) = (
            HANDLERS.load(Ordering::SeqCst),
            GO_TASKS.load(Ordering::SeqCst),
            metrics.num_alive_tasks(),
        );
        (h != 0 || g != 0 || t > tasks).then(|| format!("{h} handlers, {g} go tasks, {t} tasks"))
    })
    .await;
}
