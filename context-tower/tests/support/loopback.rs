//! Loopback plumbing shared by the S13 bench and the race tests: a hyper server for a tower
//! service on 127.0.0.1 (HTTP/2 or HTTP/1.1), and hyper's HTTP/2 client connection as a tower
//! service.
#![allow(dead_code)] // each user takes part of it

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use go_context::BoxError;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::{Service, ServiceExt};

/// The HTTP version a loopback server speaks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Version {
    H2,
    H1,
}

/// Serves connections on 127.0.0.1 (an ephemeral port) with `svc`, until the runtime ends.
pub async fn serve<S, B>(svc: S, version: Version) -> SocketAddr
where
    S: Service<http::Request<Incoming>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            stream.set_nodelay(true).unwrap();
            let svc = svc.clone();
            let hyper_svc = hyper::service::service_fn(move |req| svc.clone().oneshot(req));
            let io = TokioIo::new(stream);
            match version {
                Version::H2 => {
                    tokio::spawn(
                        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                            .serve_connection(io, hyper_svc),
                    );
                }
                Version::H1 => {
                    tokio::spawn(
                        hyper::server::conn::http1::Builder::new().serve_connection(io, hyper_svc),
                    );
                }
            }
        }
    });
    addr
}

/// hyper's HTTP/2 `SendRequest` as a tower service: every clone shares the one connection.
#[derive(Clone)]
pub struct H2Sender(hyper::client::conn::http2::SendRequest<Empty<Bytes>>);

impl Service<http::Request<Empty<Bytes>>> for H2Sender {
    type Response = http::Response<Incoming>;
    type Error = hyper::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, hyper::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), hyper::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Empty<Bytes>>) -> Self::Future {
        Box::pin(self.0.send_request(req))
    }
}

/// One HTTP/2 connection to `addr` (no Nagle), its driver spawned.
pub async fn connect_h2(addr: SocketAddr) -> H2Sender {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    H2Sender(send)
}
