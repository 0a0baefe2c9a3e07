//! gRPC harness: a codegen-free tonic service (hand-written prost messages, no protoc), real
//! servers on 127.0.0.1 with ephemeral ports, and clients with or without our layers.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use context_tower::{ContextLayer, PropagateLayer, PropagateService, RequestContextExt};
use go_context::{CancelHandle, Context};
use http::uri::PathAndQuery;
use tonic::body::Body;
use tonic::server::{NamedService, ServerStreamingService, UnaryService};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

/// What a hop is asked to do.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Hop {
    /// How long the last hop works (ms).
    #[prost(uint64, tag = "1")]
    pub work_ms: u64,
}

/// The budget each hop received, in microseconds, first hop first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Budgets {
    #[prost(uint64, repeated, tag = "1")]
    pub micros: Vec<u64>,
}

/// One item of a server stream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Tick {
    #[prost(uint64, tag = "1")]
    pub n: u64,
}

pub type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;
pub type TickStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<Tick, Status>> + Send>>;
pub type UnaryFn = Arc<dyn Fn(Request<Hop>) -> BoxFut<Result<Budgets, Status>> + Send + Sync>;
pub type StreamFn = Arc<dyn Fn(Request<Hop>) -> TickStream + Send + Sync>;

pub const CALL: &str = "/test.Chain/Call";
pub const STREAM: &str = "/test.Chain/Stream";

/// The service `test.Chain`: `Call` (unary) and `Stream` (server streaming).
#[derive(Clone)]
pub struct ChainService {
    pub unary: UnaryFn,
    pub stream: StreamFn,
}

impl NamedService for ChainService {
    const NAME: &'static str = "test.Chain";
}

struct UnaryAdapter(UnaryFn);
impl UnaryService<Hop> for UnaryAdapter {
    type Response = Budgets;
    type Future = BoxFut<Result<Response<Budgets>, Status>>;
    fn call(&mut self, req: Request<Hop>) -> Self::Future {
        let f = self.0.clone();
        Box::pin(async move { f(req).await.map(Response::new) })
    }
}

struct StreamAdapter(StreamFn);
impl ServerStreamingService<Hop> for StreamAdapter {
    type Response = Tick;
    type ResponseStream = TickStream;
    type Future = BoxFut<Result<Response<TickStream>, Status>>;
    fn call(&mut self, req: Request<Hop>) -> Self::Future {
        let s = (self.0)(req);
        Box::pin(async move { Ok(Response::new(s)) })
    }
}

impl tower::Service<http::Request<Body>> for ChainService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFut<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<Budgets, Hop>::default());
            Ok(match req.uri().path() {
                CALL => grpc.unary(UnaryAdapter(this.unary), req).await,
                STREAM => {
                    let mut grpc = tonic::server::Grpc::new(ProstCodec::<Tick, Hop>::default());
                    grpc.server_streaming(StreamAdapter(this.stream), req).await
                }
                _ => Status::unimplemented("no such method").into_http(),
            })
        })
    }
}

pub fn unary<F, Fut>(f: F) -> UnaryFn
where
    F: Fn(Request<Hop>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Budgets, Status>> + Send + 'static,
{
    Arc::new(move |r| Box::pin(f(r)))
}

pub fn no_stream() -> StreamFn {
    Arc::new(|_| Box::pin(tokio_stream::once(Err(Status::unimplemented("no stream")))))
}

/// A running server: cancel `stop` to shut it down (in-flight requests end with
/// `CANCELLED`), then `join` waits until it drained.
pub struct Server {
    pub addr: SocketAddr,
    pub stop: CancelHandle,
    pub shutdown: Context,
    join: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn join(self) {
        tokio::time::timeout(Duration::from_secs(20), self.join)
            .await
            .expect("server drained in time")
            .expect("server task");
    }
}

async fn listener() -> (tokio::net::TcpListener, SocketAddr) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

/// Serves `svc` through `Routes::into_axum_router()` with our `ContextLayer` (the way the docs
/// recommend), on axum's server.
pub async fn serve_ours(svc: ChainService, layer: ContextLayer) -> Server {
    let (shutdown, stop) = Context::background().with_cancel();
    let router = tonic::service::Routes::new(svc)
        .into_axum_router()
        .layer(layer.parent(&shutdown));
    let (l, addr) = listener().await;
    let done = shutdown.clone();
    let serving = axum::serve(l, router).with_graceful_shutdown(async move {
        done.done().await;
    });
    server(addr, shutdown, stop, async move { serving.await.unwrap() })
}

fn server<F>(addr: SocketAddr, shutdown: Context, stop: CancelHandle, serving: F) -> Server
where
    F: Future<Output = ()> + Send + 'static,
{
    Server {
        addr,
        stop,
        shutdown,
        join: tokio::spawn(serving),
    }
}

/// A plain tonic server (its own `timeout`, no layer of ours).
pub async fn serve_plain_tonic(svc: ChainService, timeout: Option<Duration>) -> Server {
    serve_tonic(svc, timeout, |_| tower::layer::util::Identity::new()).await
}

/// tonic's own `Server` with our `ContextLayer` added with `Server::layer` (no
/// `Server::timeout`): tonic's `GrpcTimeout`, which every tonic `Server` puts outside the
/// user's layers, still reads `grpc-timeout` and races ours.
pub async fn serve_tonic_with_our_layer(svc: ChainService, layer: ContextLayer) -> Server {
    serve_tonic(svc, None, |shutdown| layer.parent(shutdown)).await
}

/// [`serve_tonic_with_our_layer`] with tonic's `Server::timeout` set too.
pub async fn serve_tonic_with_our_layer_and_timeout(
    svc: ChainService,
    layer: ContextLayer,
    timeout: Duration,
) -> Server {
    serve_tonic(svc, Some(timeout), |shutdown| layer.parent(shutdown)).await
}

/// tonic's own `Server` (with its `Server::timeout` if given) serving `svc` through the layer
/// `layer` makes from the server's shutdown context, until that context is cancelled.
async fn serve_tonic<L, ResBody>(
    svc: ChainService,
    timeout: Option<Duration>,
    layer: impl FnOnce(&Context) -> L,
) -> Server
where
    L: tower::Layer<tonic::service::Routes> + Clone + Send + 'static,
    L::Service: tower::Service<http::Request<Body>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    <L::Service as tower::Service<http::Request<Body>>>::Future: Send,
    <L::Service as tower::Service<http::Request<Body>>>::Error: Into<go_context::BoxError> + Send,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<go_context::BoxError>,
{
    let (shutdown, stop) = Context::background().with_cancel();
    let (l, addr) = listener().await;
    let mut builder = tonic::transport::Server::builder();
    if let Some(t) = timeout {
        builder = builder.timeout(t);
    }
    let done = shutdown.clone();
    let serving = builder
        .layer(layer(&shutdown))
        .add_service(svc)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(l),
            async move {
                done.done().await;
            },
        );
    server(addr, shutdown, stop, async move { serving.await.unwrap() })
}

pub type OurClient = tonic::client::Grpc<PropagateService<Channel>>;
pub type PlainClient = tonic::client::Grpc<Channel>;

pub fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect_lazy()
}

pub fn our_client(addr: SocketAddr) -> OurClient {
    tonic::client::Grpc::new(tower::Layer::layer(&PropagateLayer::grpc(), channel(addr)))
}

pub fn plain_client(addr: SocketAddr) -> PlainClient {
    tonic::client::Grpc::new(channel(addr))
}

pub type HyperGrpc =
    hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Body>;

/// A plain tonic client over a hyper-util client: unlike tonic's `Channel`, it enforces no
/// timeout of its own, so what it reports is what the server answered.
pub fn plain_hyper_client(addr: SocketAddr) -> tonic::client::Grpc<HyperGrpc> {
    tonic::client::Grpc::with_origin(hyper_grpc(), format!("http://{addr}").parse().unwrap())
}

fn hyper_grpc() -> HyperGrpc {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// Our layer over a hyper-util client. Over a `Channel`, tonic enforces the header we write
/// on the calling side too, with the same budget measured from the send: it resets the call
/// just before the callee's own deadline fires, so the callee ends `Canceled`
/// (`RequestDropped`) rather than `DeadlineExceeded`. Hops that must see their own deadline
/// fire use this transport.
pub fn our_hyper_client(
    addr: SocketAddr,
    layer: &PropagateLayer,
) -> tonic::client::Grpc<PropagateService<HyperGrpc>> {
    tonic::client::Grpc::with_origin(
        tower::Layer::layer(layer, hyper_grpc()),
        format!("http://{addr}").parse().unwrap(),
    )
}

/// What a tonic client here runs over: a `Channel` (layered or not) or a hyper client.
pub trait Transport:
    tonic::client::GrpcService<
    Body,
    Error: Into<go_context::BoxError>,
    ResponseBody: http_body::Body<Data = bytes::Bytes, Error: Into<go_context::BoxError>>
                      + Send
                      + 'static,
>
{
}

impl<T> Transport for T where
    T: tonic::client::GrpcService<
        Body,
        Error: Into<go_context::BoxError>,
        ResponseBody: http_body::Body<Data = bytes::Bytes, Error: Into<go_context::BoxError>>
                          + Send
                          + 'static,
    >
{
}

/// One `Call`, under `ctx` if given (else the current context).
pub async fn call<T>(
    client: &mut tonic::client::Grpc<T>,
    hop: Hop,
    ctx: Option<Context>,
) -> Result<Budgets, Status>
where
    T: Transport,
{
    let mut req = Request::new(hop);
    if let Some(ctx) = ctx {
        req.set_context(ctx);
    }
    call_req(client, req).await
}

/// One `Call` with tonic's own `set_timeout` (the `grpc-timeout` header tonic writes).
pub async fn call_timed<T>(
    client: &mut tonic::client::Grpc<T>,
    hop: Hop,
    timeout: Duration,
) -> Result<Budgets, Status>
where
    T: Transport,
{
    let mut req = Request::new(hop);
    req.set_timeout(timeout);
    call_req(client, req).await
}

async fn call_req<T>(
    client: &mut tonic::client::Grpc<T>,
    req: Request<Hop>,
) -> Result<Budgets, Status>
where
    T: Transport,
{
    client
        .ready()
        .await
        .map_err(|e| Status::from_error(e.into()))?;
    client
        .unary(req, PathAndQuery::from_static(CALL), ProstCodec::default())
        .await
        .map(Response::into_inner)
}
