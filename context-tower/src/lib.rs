//! A request's deadline and cancellation across services, for HTTP and gRPC: tower layers
//! that carry a [`go_context::Context`] over the wire the way grpc-go does, and further.
//!
//! - **Server: [`ContextLayer`]** runs each request under a child of a shutdown context with
//!   the caller's deadline (`grpc-timeout`, `connect-timeout-ms`; trust and clamps in
//!   [`DeadlinePolicy`]). The handler sees it as `Context::current()` and as
//!   [`req.context()`](RequestContextExt::context). At the deadline the handler future is
//!   dropped and the caller gets `DEADLINE_EXCEEDED` (gRPC 4) or HTTP 504, streams included;
//!   on shutdown `CANCELLED` (1) or 503; a caller that went away cancels the context with
//!   [`RequestDropped`], so work spawned with `go!` or a `Group` stops too.
//! - **Client: [`PropagateLayer`]** sends the remaining time of the call's context (rounded up,
//!   never `0n`, minus an optional margin), fails at once without sending when the context is
//!   already done, and ends the call (HTTP/2 `RST_STREAM`) when the context is done.
//! - [`wire`]: the header forms, pure and panic-free on any bytes.
//!
//! Inside a handler served with `ContextLayer`, a client with `PropagateLayer` needs no code
//! at all: the request's context is current, so its deadline (less the time spent) goes on.
//!
//! ```
//! use context_tower::{ContextLayer, PropagateLayer};
//! use std::time::Duration;
//! use tower::{Layer, Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // The downstream service: answers with the deadline header it received.
//! let downstream = tower::service_fn(|req: http::Request<()>| async move {
//!     let sent = req.headers()["grpc-timeout"].clone();
//!     let mut resp = http::Response::new(String::new());
//!     resp.headers_mut().insert("sent", sent);
//!     Ok::<_, std::convert::Infallible>(resp)
//! });
//! let client = PropagateLayer::grpc().layer(downstream);
//! // Our service calls downstream from its handler: no context is passed by hand.
//! let mut server = ContextLayer::grpc().layer(tower::service_fn(move |_req: http::Request<()>| {
//!     let client = client.clone();
//!     async move {
//!         let inner = client.oneshot(http::Request::new(())).await.unwrap();
//!         let mut resp = http::Response::new(String::new());
//!         resp.headers_mut().insert("sent", inner.headers()["sent"].clone());
//!         Ok::<_, std::convert::Infallible>(resp)
//!     }
//! }));
//! let req = http::Request::builder().header("grpc-timeout", "300m").body(()).unwrap();
//! let resp = server.ready().await.unwrap().call(req).await.unwrap();
//! let sent = resp.headers()["sent"].as_bytes();
//! let left = context_tower::wire::parse_grpc_timeout(sent).unwrap();
//! assert!(left <= Duration::from_millis(300) && left > Duration::from_millis(200));
//! # }
//! ```
//!
//! # The stacks
//!
//! - **tonic server**: `Routes::into_axum_router()` with `ContextLayer` on axum's server, or
//!   tonic's own `Server::builder().layer(ContextLayer::grpc())` (see the
//!   `context_tower::tonic` module, feature `tonic`). tonic's `Server` keeps its timeout layer
//!   around ours, but ours fires first and the caller gets `DEADLINE_EXCEEDED`; do not set
//!   `Server::timeout` shorter than the deadlines you accept, whose layer then answers
//!   `CANCELLED` and hands the handler nothing.
//! - **axum server**: `Router::layer(ContextLayer::http())` and the `context_tower::axum::Ctx`
//!   extractor (feature `axum`).
//! - **tonic client over a `Channel`**: `tonic::client::Grpc::new(PropagateLayer::grpc().layer(channel))`
//!   (or `ServiceBuilder`), see the `context_tower::tonic` module. Note that tonic's
//!   `Channel` itself enforces the `grpc-timeout` header we write, and would answer its own
//!   `CANCELLED`; the layer reports that as `DEADLINE_EXCEEDED`.
//! - **hyper-util client**: the same layer around `hyper_util::client::legacy::Client`:
//!
//! ```no_run
//! use context_tower::{PropagateLayer, RequestContextExt};
//! use go_context::Context;
//! use http_body_util::Empty;
//! use std::time::Duration;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! # async fn run() -> Result<(), go_context::BoxError> {
//! let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
//!     .build_http::<Empty<bytes::Bytes>>();
//! let mut client = ServiceBuilder::new()
//!     .layer(PropagateLayer::http().margin(Duration::from_millis(10)))
//!     .service(http);
//! let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(2));
//! let mut req = http::Request::get("http://127.0.0.1:8080/").body(Empty::new())?;
//! req.set_context(ctx); // or nothing, inside a handler: Context::current() is used
//! let resp = client.ready().await?.call(req).await?; // Err(ContextDone) when ctx ends it
//! # let _ = resp; Ok(()) }
//! ```
//!
//! # What we do better than grpc-go and tonic
//!
//! Each point is pinned by a test in `tests/` (real servers on 127.0.0.1):
//!
//! - Deadlines cover streaming responses: a stream that outlives the deadline ends with
//!   status 4 in its trailers (tonic stops at the headers):
//!   `grpc::server_stream_outliving_the_deadline_ends_with_status_4`,
//!   `http::http_stream_is_cut_at_the_deadline`.
//! - Expiry is `DEADLINE_EXCEEDED` on both ends (tonic answers `CANCELLED`, "Timeout
//!   expired"): `grpc::interop_plain_tonic_client_against_our_server`,
//!   `grpc::interop_our_client_against_a_plain_tonic_server`,
//!   `grpc::deadline_expiring_while_c_works_is_deadline_exceeded_everywhere_and_stops_go_tasks`.
//! - The handler sees the deadline as its context, and calls it makes carry it on (tonic
//!   hands it nothing): `grpc::chain_budget_shrinks_along_the_chain_and_is_never_extended`,
//!   `grpc::interop_our_client_against_a_plain_tonic_server`.
//! - The client rounds up, never sends `0n`, and saturates instead of panicking on
//!   `Duration::MAX` (tonic truncates, sends `0n`, panics):
//!   `grpc::tonic_timeout_header_truncates_sends_0n_and_panics_where_ours_does_not`, the
//!   property tests in `wire`, `grpc::already_done_context_fails_locally_without_sending`.
//! - Untrusted deadlines are clamped (`max`, `min`, a default):
//!   `http::untrusted_deadlines_are_clamped_and_defaulted`.
//! - A dropped request cancels its whole subtree with a cause, `go!` tasks included:
//!   `grpc::dropped_call_cancels_c_with_request_dropped`,
//!   `http::http_client_propagates_and_ends_the_call_with_its_context`; and nothing is
//!   kept after 1,000 requests: `leaks::no_leaks_after_1000_requests`.
//! - A shutdown (cancelling the layer's parent) answers in-flight requests `CANCELLED`/503
//!   with its cause, then the server drains:
//!   `grpc::shutdown_cancels_in_flight_requests_and_the_server_drains`,
//!   `http::shutdown_answers_503_and_the_server_drains`.
//!
//! # Features
//!
//! - `tonic`: `req.context()` on `tonic::Request`, `Status` <-> `Error` mapping.
//! - `axum`: the `context_tower::axum::Ctx` extractor (through `axum-core`).
//!
//! The default build depends on `http`, `http-body`, `tower-layer`, `tower-service` only.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod body;
mod cause;
pub mod client;
mod error;
mod ext;
mod policy;
mod protocol;
pub mod server;
pub mod wire;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub mod tonic;

pub use body::ContextBody;
pub use cause::{RemoteDeadline, RequestDropped};
pub use client::{PropagateLayer, PropagateService};
pub use error::ContextDone;
pub use ext::RequestContextExt;
pub use policy::DeadlinePolicy;
pub use server::{ContextLayer, ContextService};
