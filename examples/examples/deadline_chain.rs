//! One deadline across three services: a client calls A with 300 ms; A calls B, B calls C,
//! each over HTTP/2 on 127.0.0.1 with `PropagateLayer` (20 ms margin per hop), each served
//! with `ContextLayer`. Every hop prints the budget it received. C is slow: its deadline
//! fires first, its work (a `go!` task) stops, and the client gets DEADLINE_EXCEEDED.
//!
//! The chain runs over plain HTTP (axum, `connect-timeout-ms`, 504) and, with the feature
//! `grpc`, over gRPC (tonic behind the same layers, `grpc-timeout`, status 4): a codegen-free
//! tonic service with hand-written prost messages, so no protoc. Each ends by itself:
//!
//! - `cargo run -p context-examples --example deadline_chain` (HTTP)
//! - `cargo run -p context-examples --example deadline_chain --features grpc -- grpc` (gRPC;
//!   with no argument, the `grpc` build runs both chains, HTTP first)
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

async fn serve(
    router: Router,
    layer: ContextLayer,
    shutdown: &Context,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = router.layer(layer.parent(shutdown));
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

/// The HTTP chain: the client sees 504 (`DEADLINE_EXCEEDED`).
async fn http_chain() -> bool {
    println!("== over HTTP (axum, connect-timeout-ms)");
    let (shutdown, stop) = Context::background().with_cancel();
    let mut builder = Client::builder(TokioExecutor::new());
    builder.http2_only(true);
    let http: Http = builder.build_http();

    let (tx, stopped) = oneshot::channel();
    let layer = ContextLayer::http();
    let (c, join_c) = serve(slow(tx), layer.clone(), &shutdown).await;
    let (b, join_b) = serve(forwarding("B", c, http.clone()), layer.clone(), &shutdown).await;
    let (a, join_a) = serve(forwarding("A", b, http.clone()), layer, &shutdown).await;

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

    let stopped = report_stopped(stopped).await;
    stop.cancel();
    for join in [join_a, join_b, join_c] {
        let _ = tokio::time::timeout(Duration::from_secs(5), join).await;
    }
    status == StatusCode::GATEWAY_TIMEOUT && stopped
}

/// Waits (bounded) for C's work to report that it stopped, and prints how.
async fn report_stopped(stopped: oneshot::Receiver<(u32, Error)>) -> bool {
    match tokio::time::timeout(Duration::from_secs(5), stopped).await {
        Ok(Ok((steps, err))) => {
            println!("C: work stopped after {steps} steps: {err}");
            true
        }
        _ => {
            println!("C: work did not report stopping");
            false
        }
    }
}

/// The same chain over gRPC: tonic services behind `ContextLayer::grpc()`, tonic clients
/// through `PropagateLayer::grpc()`.
#[cfg(feature = "grpc")]
mod grpc {
    use std::convert::Infallible;
    use std::future::Future;
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use context_tower::{ContextLayer, PropagateLayer, RequestContextExt};
    use go_context::{go, Context, Error};
    use http::uri::PathAndQuery;
    use hyper_util::client::legacy::{connect::HttpConnector, Client};
    use hyper_util::rt::TokioExecutor;
    use tokio::sync::oneshot;
    use tonic::server::{NamedService, UnaryService};
    use tonic::{Code, Request, Response, Status};
    use tonic_prost::ProstCodec;

    use super::{budget, report_stopped, serve};

    /// The request of `chain.Hop/Call` (empty: the deadline travels in the headers).
    #[derive(Clone, PartialEq, prost::Message)]
    struct Ask {}

    /// Its answer: who answered, hop by hop.
    #[derive(Clone, PartialEq, prost::Message)]
    struct Answer {
        #[prost(string, tag = "1")]
        text: String,
    }

    const CALL: &str = "/chain.Hop/Call";

    type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;
    type Handler = Arc<dyn Fn(Request<Ask>) -> BoxFut<Result<Answer, Status>> + Send + Sync>;

    /// The service `chain.Hop`, written by hand (what tonic-build would generate).
    #[derive(Clone)]
    struct HopService(Handler);

    impl NamedService for HopService {
        const NAME: &'static str = "chain.Hop";
    }

    struct Unary(Handler);

    impl UnaryService<Ask> for Unary {
        type Response = Answer;
        type Future = BoxFut<Result<Response<Answer>, Status>>;

        fn call(&mut self, req: Request<Ask>) -> Self::Future {
            let answer = (self.0)(req);
            Box::pin(async move { answer.await.map(Response::new) })
        }
    }

    impl tower::Service<http::Request<tonic::body::Body>> for HopService {
        type Response = http::Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = BoxFut<Result<Self::Response, Infallible>>;

        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Infallible>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
            let handler = self.0.clone();
            Box::pin(async move {
                Ok(if req.uri().path() == CALL {
                    let mut grpc = tonic::server::Grpc::new(ProstCodec::<Answer, Ask>::default());
                    grpc.unary(Unary(handler), req).await
                } else {
                    Status::unimplemented("no such method").into_http()
                })
            })
        }
    }

    /// Calls `addr` under `ctx`, else under the current context (the request's, inside a
    /// handler). Over hyper-util's client: tonic's `Channel` works too, but it enforces the
    /// `grpc-timeout` we write on its own side as well, and resets the call just before the
    /// callee's deadline fires (the callee then sees `RequestDropped`, not its deadline).
    async fn call(addr: SocketAddr, ctx: Option<Context>) -> Result<Answer, Status> {
        let http: Client<HttpConnector, tonic::body::Body> = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http();
        let layer = PropagateLayer::grpc().margin(Duration::from_millis(20));
        let origin = format!("http://{addr}").parse().expect("uri");
        let mut client =
            tonic::client::Grpc::with_origin(tower::Layer::layer(&layer, http), origin);
        let mut req = Request::new(Ask {});
        if let Some(ctx) = ctx {
            req.set_context(ctx);
        }
        client.ready().await.map_err(Status::from_error)?;
        client
            .unary(req, PathAndQuery::from_static(CALL), ProstCodec::default())
            .await
            .map(Response::into_inner)
    }

    /// A or B: print the budget, call the next hop.
    fn forwarding(name: &'static str, next: SocketAddr) -> HopService {
        HopService(Arc::new(move |req: Request<Ask>| {
            Box::pin(async move {
                println!("{name}: received a budget of {}", budget(&req.context()));
                // No context passed: PropagateLayer takes Context::current(), the request's.
                let answer = call(next, None).await;
                match &answer {
                    Ok(_) => println!("{name}: next hop answered OK"),
                    Err(s) => println!("{name}: next hop answered {:?}", s.code()),
                }
                answer.map(|a| Answer {
                    text: format!("{name} <- {}", a.text),
                })
            })
        }))
    }

    /// C: print the budget, start slow work in a `go!` task under the request's context.
    fn slow(stopped: oneshot::Sender<(u32, Error)>) -> HopService {
        let stopped = Arc::new(Mutex::new(Some(stopped)));
        HopService(Arc::new(move |req: Request<Ask>| {
            let stopped = stopped.lock().expect("lock").take();
            Box::pin(async move {
                println!("C: received a budget of {}", budget(&req.context()));
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
                Ok(Answer {
                    text: "C: done".into(),
                })
            })
        }))
    }

    fn router(svc: HopService) -> axum::Router {
        // tonic's routes as an axum router, so that our layer (not `Server::timeout`) answers
        // the deadline.
        tonic::service::Routes::new(svc).into_axum_router()
    }

    /// The gRPC chain: the client sees status 4 (`DEADLINE_EXCEEDED`).
    pub async fn chain() -> bool {
        println!("== over gRPC (tonic, grpc-timeout)");
        let (shutdown, stop) = Context::background().with_cancel();
        let (tx, stopped) = oneshot::channel();
        let layer = ContextLayer::grpc();
        let (c, join_c) = serve(router(slow(tx)), layer.clone(), &shutdown).await;
        let (b, join_b) = serve(router(forwarding("B", c)), layer.clone(), &shutdown).await;
        let (a, join_a) = serve(router(forwarding("A", b)), layer, &shutdown).await;

        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(300));
        println!("client: calling A with a deadline of {}", budget(&ctx));
        let t0 = Instant::now();
        let answer = call(a, Some(ctx)).await;
        let code = match &answer {
            Ok(a) => {
                println!(
                    "client: unexpected answer after {:?}: {}",
                    t0.elapsed(),
                    a.text
                );
                Code::Ok
            }
            Err(s) => {
                println!(
                    "client: {:?} (status {}) after {:?}: {}",
                    s.code(),
                    s.code() as i32,
                    t0.elapsed(),
                    s.message()
                );
                s.code()
            }
        };
        let stopped = report_stopped(stopped).await;
        stop.cancel();
        for join in [join_a, join_b, join_c] {
            let _ = tokio::time::timeout(Duration::from_secs(5), join).await;
        }
        code == Code::DeadlineExceeded && stopped
    }
}

#[tokio::main]
async fn main() {
    let which = std::env::args().nth(1);
    let (http, grpc) = match which.as_deref() {
        None => (true, cfg!(feature = "grpc")),
        Some("http") => (true, false),
        Some("grpc") => (false, true),
        Some(other) => panic!("unknown argument {other:?}: `http` or `grpc`"),
    };
    if http {
        assert!(
            http_chain().await,
            "the client should see the deadline and C's work stop"
        );
    }
    if grpc {
        #[cfg(feature = "grpc")]
        assert!(
            grpc::chain().await,
            "the client should see DEADLINE_EXCEEDED and C's work stop"
        );
        #[cfg(not(feature = "grpc"))]
        panic!("the gRPC chain needs `--features grpc`");
    }
}
