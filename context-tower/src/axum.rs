//! The axum extractor [`Ctx`] (feature `axum`).
//!
//! A route behind [`ContextLayer`](crate::ContextLayer) sees the caller's deadline in its
//! handler's [`Ctx`]:
//!
//! ```
//! use axum::{body::Body, routing::get, Router};
//! use context_tower::{axum::Ctx, ContextLayer};
//! use std::time::{Duration, Instant};
//! use tower::ServiceExt;
//!
//! async fn budget(Ctx(ctx): Ctx) -> String {
//!     let left = ctx.deadline().unwrap() - Instant::now();
//!     format!("{}", left <= Duration::from_millis(800))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = Router::new().route("/", get(budget)).layer(ContextLayer::http());
//! let req = http::Request::builder()
//!     .uri("/")
//!     .header("connect-timeout-ms", "800")
//!     .body(Body::empty())
//!     .unwrap();
//! let resp = app.oneshot(req).await.unwrap();
//! assert_eq!(resp.status(), 200);
//! let body = axum::body::to_bytes(resp.into_body(), 64).await.unwrap();
//! assert_eq!(&body[..], b"true");
//! # }
//! ```

use std::convert::Infallible;
use std::ops::Deref;

use axum_core::extract::FromRequestParts;
use go_context::Context;
use http::request::Parts;

use crate::ext::RequestContextExt;

/// The request's context in an axum handler: `async fn h(Ctx(ctx): Ctx) { ... }`.
///
/// Behind [`ContextLayer`](crate::ContextLayer) it carries the caller's deadline; without the
/// layer it is `Context::current()`. It never rejects.
///
/// ```
/// use axum::{routing::get, Router};
/// use context_tower::{axum::Ctx, ContextLayer};
///
/// async fn handler(Ctx(ctx): Ctx) -> String {
///     format!("{:?}", ctx.deadline().is_some())
/// }
/// let app: Router = Router::new().route("/", get(handler)).layer(ContextLayer::http());
/// # let _ = app;
/// ```
#[derive(Clone, Debug)]
pub struct Ctx(pub Context);

impl Deref for Ctx {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Ctx, Infallible> {
        Ok(Ctx(parts.context()))
    }
}
