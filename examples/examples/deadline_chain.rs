//! One deadline across three services: a client calls A with 300 ms; A calls B, B calls C,
//! each over HTTP/2 on 127.0.0.1 with `PropagateLayer` (20 ms margin per hop), each served
//! with `ContextLayer`. Every hop prints the budget it received. C is slow: its deadline
//! fires first, its work (a `go!` task) stops, and the client gets DEADLINE_EXCEEDED (504).
//!
//! Run: `cargo run -p context-examples --example deadline_chain` (it ends by itself).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use context_tower::axum::Ctx;
use context_tower::{ContextLayer, PropagateLayer, RequestContextExt};
use go_context::{go, Context, Error};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use tokio::sync::oneshot;
use tower::{Service, ServiceBuilder, ServiceExt};

type Http = Client<HttpConnector, Empty<Bytes>>;

fn budget(ctx: &Context) -> String {
    match ctx.deadline() {
        Some(d) => format!("{:?}", d.saturating_duration_since(Instant::now())),
        None => "no deadline".into(),
    }
}

/// Calls `addr` under the current context (the request's, inside a handler).
async fn call(http: &Http, addr: SocketAddr, ctx: Option<Context>) -> (StatusCode, String) {
    let mut client = ServiceBuilder::new()
        .layer(PropagateLayer::http().margin(Duration::from_millis(20)))
        .service(http.clone());
    let mut req = http::Request::get(format!("http://{addr}/"))
        .body(Empty::new())
        .expect("request");
    if let Some(ctx) = ctx {
        req.set_context(ctx);
    }
    let ready = match client.ready().await {
        Ok(ready) => ready,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()),
    };
    match ready.call(req).await {
        Ok(resp) => {
            let status = resp.status();
            let body = resp.into_body().collect().await.map(|b| b.to_bytes());
            let text = body.map(|b| String::from_utf8_lossy(&b).trim().to_owned());
            (status, text.unwrap_or_else(|e| e.to_string()))
        }
        // The call's own context ended it (a boxed `ContextDone`), or the transport failed.
        Err(e) => (StatusCode::GATEWAY_TIMEOUT, e.to_string()),
    }
}

async fn serve(router: Router, shutdown: &Context) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = router.layer(ContextLayer::http().parent(shutdown));
    let done = shutdown.clone();
    let join = tokio::spawn(async move {
        let stop = async move {
            done.done().await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stop)
            .await
        {
            eprintln!("server error: {e}");
        }
    });
    (addr, join)
}

/// A or B: print the budget, call the next hop.
fn forwarding(name: &'static str, next: SocketAddr, http: Http) -> Router {
    Router::new().route(
        "/",
        get(move |Ctx(ctx): Ctx| async move {
            println!("{name}: received a budget of {}", budget(&ctx));
            // No context passed: PropagateLayer takes Context::current(), the request's.
            let (status, text) = call(&http, next, None).await;
            println!("{name}: next hop answered {status}");
            (status, format!("{name} <- {text}"))
        }),
    )
}

/// C: print the budget, start slow work in a `go!` task under the request's context.
fn slow(stopped: oneshot::Sender<(u32, Error)>) -> Router {
    let stopped = Arc::new(Mutex::new(Some(stopped)));
    Router::new().route(
        "/",
        get(move |Ctx(ctx): Ctx| {
            let stopped = stopped.lock().expect("lock").take();
            async move {
                println!("C: received a budget of {}", budget(&ctx));
                let _work = go!(|ctx| async move {
                    let mut steps = 0;
                    while ctx
                        .run(tokio::time::sleep(Duration::from_millis(100)))
                        .await
                        .is_ok()
                    {
                        steps += 1;
                        println!("C: working... step {steps} done");
                    }
                    let err = ctx.err().unwrap_or(Error::Canceled);
                    if let Some(tx) = stopped {
                        let _ = tx.send((steps, err));
                    }
                });
                // Wait for the work; the layer drops this future at C's deadline.
                std::future::pending::<()>().await;
                (StatusCode::OK, "C: done".to_owned())
            }
        }),
    )
}

#[tokio::main]
async fn main() {
    let (shutdown, stop) = Context::background().with_cancel();
    let mut builder = Client::builder(TokioExecutor::new());
    builder.http2_only(true);
    let http: Http = builder.build_http();

    let (tx, stopped) = oneshot::channel();
    let (c, join_c) = serve(slow(tx), &shutdown).await;
    let (b, join_b) = serve(forwarding("B", c, http.clone()), &shutdown).await;
    let (a, join_a) = serve(forwarding("A", b, http.clone()), &shutdown).await;

    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(300));
    println!("client: calling A with a deadline of {}", budget(&ctx));
    let t0 = Instant::now();
    let (status, text) = call(&http, a, Some(ctx)).await;
    let verdict = if status == StatusCode::GATEWAY_TIMEOUT {
        "DEADLINE_EXCEEDED"
    } else {
        "unexpected"
    };
    println!(
        "client: {verdict} ({status}) after {:?}: {text}",
        t0.elapsed()
    );

    match tokio::time::timeout(Duration::from_secs(5), stopped).await {
        Ok(Ok((steps, err))) => println!("C: work stopped after {steps} steps: {err}"),
        _ => println!("C: work did not report stopping"),
    }
    stop.cancel();
    for join in [join_a, join_b, join_c] {
        let _ = tokio::time::timeout(Duration::from_secs(5), join).await;
    }
    assert_eq!(
        status,
        StatusCode::GATEWAY_TIMEOUT,
        "the client should see the deadline"
    );
}
