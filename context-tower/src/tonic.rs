//! tonic integration (feature `tonic`): `Status` <-> [`Error`] and `req.context()` on
//! `tonic::Request`.
//!
//! Serve tonic services with [`ContextLayer`] rather than tonic's own timeout, which answers
//! `CANCELLED` ("Timeout expired") and gives the handler no deadline; ours answers
//! `DEADLINE_EXCEEDED` and makes the deadline the handler's context. Two ways:
//!
//! - `Routes::into_axum_router()` with the layer, on axum's server (below): no tonic timeout
//!   at all;
//! - tonic's own `Server::builder().layer(ContextLayer::grpc())`: every tonic `Server` wraps
//!   the user's layers in its timeout layer, which reads `grpc-timeout` as well, but ours takes
//!   the deadline before tonic starts its timer and is polled before it, so ours answers
//!   (pinned by the test
//!   `tonic_server_with_our_layer_answers_deadline_exceeded_where_its_timeout_says_cancelled`).
//!   Leave `Server::timeout` unset, or longer than any deadline you accept: a shorter one
//!   fires first and answers `CANCELLED`.
//!
//! A tonic server (any generated or hand-written service `svc`) behind our layer, with
//! graceful shutdown through the parent context:
//!
//! ```no_run
//! use context_tower::ContextLayer;
//! use go_context::Context;
//! use std::convert::Infallible;
//! use tonic::server::NamedService;
//!
//! async fn serve<S>(svc: S) -> std::io::Result<()>
//! where
//!     S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>, Error = Infallible>
//!         + NamedService + Clone + Send + Sync + 'static,
//!     S::Future: Send + 'static,
//! {
//!     let (shutdown, _stop) = Context::background().with_cancel(); // `_stop.cancel()` drains
//!     let app = tonic::service::Routes::new(svc)
//!         .into_axum_router()
//!         .layer(ContextLayer::grpc().parent(&shutdown));
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await?;
//!     axum::serve(listener, app)
//!         .with_graceful_shutdown(async move { shutdown.done().await; })
//!         .await
//! }
//! ```
//!
//! The same on tonic's own `Server` (no `Server::timeout`):
//!
//! ```no_run
//! use context_tower::ContextLayer;
//! use go_context::Context;
//! use std::convert::Infallible;
//! use tonic::server::NamedService;
//!
//! async fn serve<S>(svc: S) -> Result<(), tonic::transport::Error>
//! where
//!     S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>, Error = Infallible>
//!         + NamedService + Clone + Send + Sync + 'static,
//!     S::Future: Send + 'static,
//! {
//!     let (shutdown, _stop) = Context::background().with_cancel(); // `_stop.cancel()` drains
//!     tonic::transport::Server::builder()
//!         .layer(ContextLayer::grpc().parent(&shutdown))
//!         .add_service(svc)
//!         .serve_with_shutdown("127.0.0.1:50051".parse().unwrap(), async move {
//!             shutdown.done().await;
//!         })
//!         .await
//! }
//! ```
//!
//! In a handler, the request's context carries the caller's deadline:
//!
//! ```
//! use context_tower::{tonic::status_from_context, RequestContextExt};
//! use std::time::Duration;
//!
//! async fn say_hello(req: tonic::Request<String>) -> Result<tonic::Response<String>, tonic::Status> {
//!     let ctx = req.context();
//!     let work = tokio::time::sleep(Duration::from_millis(1));
//!     ctx.run(work).await.map_err(|_| status_from_context(&ctx))?;
//!     Ok(tonic::Response::new(format!("hello {}", req.get_ref())))
//! }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! # assert_eq!(say_hello(tonic::Request::new("you".into())).await.unwrap().into_inner(), "hello you");
//! # }
//! ```
//!
//! A tonic client over a `Channel` (with generated clients: `GreeterClient::new(channel)`):
//!
//! ```no_run
//! use context_tower::PropagateLayer;
//! # async fn run() -> Result<(), tonic::transport::Error> {
//! let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect().await?;
//! let channel = tower::ServiceBuilder::new().layer(PropagateLayer::grpc()).service(channel);
//! let client = tonic::client::Grpc::new(channel);
//! # let _ = client; Ok(()) }
//! ```
//!
//! [`ContextLayer`]: crate::ContextLayer

use go_context::{Cause, Context, Error};
use tonic::{Code, Status};

use crate::error::{self, ContextDone};
use crate::ext::RequestContextExt;

/// The `Status` of a context error: `DeadlineExceeded` = 4, `Canceled` = 1, the message
/// naming the cause and where it came from.
///
/// ```
/// use context_tower::tonic::status_from_error;
/// use go_context::{Context, Error};
///
/// let (ctx, cancel) = Context::background().with_cancel();
/// cancel.cancel_with_cause("shutting down");
/// let status = status_from_error(ctx.err().unwrap(), ctx.cause().as_ref());
/// assert_eq!(status.code(), tonic::Code::Cancelled);
/// assert!(status.message().starts_with("context canceled: shutting down [at "));
/// ```
pub fn status_from_error(err: Error, cause: Option<&Cause>) -> Status {
    let code = match err {
        Error::DeadlineExceeded => Code::DeadlineExceeded,
        _ => Code::Cancelled,
    };
    Status::new(code, error::message(err, cause))
}

/// The `Status` of a done context (`CANCELLED` if it is not done).
///
/// ```
/// use context_tower::tonic::status_from_context;
/// use go_context::Context;
/// use std::time::Instant;
///
/// let (ctx, _cancel) = Context::background().with_deadline(Instant::now());
/// assert_eq!(status_from_context(&ctx).code(), tonic::Code::DeadlineExceeded);
/// ```
pub fn status_from_context(ctx: &Context) -> Status {
    let done = ContextDone::of(ctx);
    let code = match done.error() {
        Error::DeadlineExceeded => Code::DeadlineExceeded,
        _ => Code::Cancelled,
    };
    Status::new(code, done.to_string())
}

/// The context error a `Status` stands for: 4 is `DeadlineExceeded`, 1 is `Canceled`.
///
/// ```
/// use context_tower::tonic::error_from_status;
/// use go_context::Error;
///
/// assert_eq!(error_from_status(&tonic::Status::deadline_exceeded("x")), Some(Error::DeadlineExceeded));
/// assert_eq!(error_from_status(&tonic::Status::cancelled("x")), Some(Error::Canceled));
/// assert_eq!(error_from_status(&tonic::Status::internal("x")), None);
/// ```
pub fn error_from_status(status: &Status) -> Option<Error> {
    match status.code() {
        Code::DeadlineExceeded => Some(Error::DeadlineExceeded),
        Code::Cancelled => Some(Error::Canceled),
        _ => None,
    }
}

impl<T> RequestContextExt for tonic::Request<T> {
    /// ```
    /// use context_tower::RequestContextExt;
    /// use go_context::Context;
    /// let mut req = tonic::Request::new(());
    /// req.set_context(Context::background().with_value(1u8));
    /// assert_eq!(req.context().value::<u8>(), Some(&1));
    /// ```
    fn context(&self) -> Context {
        self.extensions()
            .get::<Context>()
            .cloned()
            .unwrap_or_else(Context::current)
    }

    fn set_context(&mut self, ctx: Context) {
        self.extensions_mut().insert(ctx);
    }
}
