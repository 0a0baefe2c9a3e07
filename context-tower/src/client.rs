//! The client side: [`PropagateLayer`] sends the call's deadline and ends the call with its
//! context.
//!
//! A call whose context is already done never reaches the network: it fails at once with the
//! context's error (invariant 1).
//!
//! ```
//! use context_tower::{ContextDone, PropagateLayer, RequestContextExt};
//! use go_context::{Context, Error};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut client = ServiceBuilder::new()
//!     .layer(PropagateLayer::http())
//!     .service_fn(|_: http::Request<String>| async {
//!         unreachable!("a done call is never sent");
//!         #[allow(unreachable_code)]
//!         Ok::<http::Response<String>, std::convert::Infallible>(http::Response::default())
//!     });
//! let (ctx, cancel) = Context::background().with_cancel();
//! cancel.cancel();
//! let mut req = http::Request::new(String::new());
//! req.set_context(ctx);
//! let err = client.ready().await.unwrap().call(req).await.unwrap_err();
//! assert_eq!(err.downcast_ref::<ContextDone>().unwrap().error(), Error::Canceled);
//! # }
//! ```
//!
//! # Invariants
//! 1. A call whose context is done (or whose remaining time, less the margin, is zero) is
//!    never handed to the inner service: it fails locally, nothing is sent.
//! 2. The header written never exceeds the time left (rounded up only by the wire's last
//!    unit) nor any deadline value already present, and goes as the one value of its name
//!    (a callee may read the first of several or the last). A `0n` among them fails the call
//!    as invariant 1 does.
//! 3. Once the context is done, the inner future (or the response body) is not polled again:
//!    it is dropped, which resets an HTTP/2 stream.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use go_context::{BoxError, Context, Done};
use http::header::Entry;
use http::{HeaderName, HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::{Complete, ContextBody, End, Watch};
use crate::error::ContextDone;
use crate::ext::RequestContextExt;
use crate::policy::Format;
use crate::protocol;

#[derive(Debug)]
struct Config {
    header: HeaderName,
    format: Format,
    margin: Duration,
}

/// Sends each outgoing call's remaining time as a deadline header and ends the call when its
/// context is done.
///
/// The call's context is the request extension `Context` (set it with
/// [`RequestContextExt::set_context`]), else
/// `Context::current()`, so inside a handler served by [`ContextLayer`](crate::ContextLayer)
/// the caller's deadline propagates with no code at all. `Context::current()` is read in
/// `call`: put this layer outside (above) any layer that calls its inner service from
/// another task, such as `tower::buffer::Buffer`'s worker (tonic's `Channel` buffers inside
/// itself, below us), or set the request's context. Put it inside (below) a retry layer: the
/// header is written once per call, so a retry below it would send a later attempt the
/// budget of the first, longer than what is left.
///
/// Readiness is the inner service's: `poll_ready` sees no request, so no context, and a
/// service at capacity below this layer (`tower::limit`, a full `Buffer`) keeps its caller
/// waiting past the end of the call's context. Where that can happen, race the wait:
/// `ctx.run(client.ready()).await`. (Failing `poll_ready` on `Context::current()` instead
/// would tell a balancer or a `Buffer` above that the service itself failed.)
///
/// - Context already done (or no time left after the margin): the call fails at once with
///   that error, nothing is sent. The error is a boxed [`ContextDone`]
///   (a `tonic::Status` for gRPC calls with feature `tonic`).
/// - Else the remaining time, less the margin, is written (rounded up, never `0n`, at most 8
///   digits, saturating), or kept if a header already present is shorter (of several values,
///   the shortest is kept, alone; a `0n` among them fails the call locally). The value is
///   marked sensitive, so HTTP/2 sends it "never indexed": a value that changes with every
///   call would otherwise churn the connection's HPACK table (measured: S13 in the README).
/// - The call and its response body are raced against the context and dropped on
///   cancellation (HTTP/2 sends `RST_STREAM`). The request body is not wrapped (the inner
///   service's request type is kept): a cancellation before the response's headers drops the
///   call, and hyper's HTTP/2 client resets the stream, upload included; after them, an
///   upload still streaming holds the stream open (hyper sends it to its end and the server
///   hears nothing) until that body ends, so a long upload should end with its context
///   itself (a body that ends at `ctx.done()`).
/// - Once the deadline sent has passed (ours, or the shortest already on the request, as
///   tonic's `Request::set_timeout` writes it, with or without a deadline of ours), a gRPC
///   `CANCELLED` (in the headers or the trailers) is reported as `DEADLINE_EXCEEDED`, and so
///   is a failure of the call or of its response body (the callee, or tonic's `Channel`,
///   ending the call at that deadline, which comes before ours by the margin): a
///   [`ContextDone`], for gRPC status 4 (trailers for a body).
///
/// ```
/// use context_tower::{PropagateLayer, RequestContextExt};
/// use go_context::Context;
/// use std::time::Duration;
/// use tower::{Service, ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut client = ServiceBuilder::new()
///     .layer(PropagateLayer::grpc())
///     .service_fn(|req: http::Request<String>| async move {
///         // Echo what the server would receive.
///         let mut resp = http::Response::new(String::new());
///         resp.headers_mut().insert("sent", req.headers()["grpc-timeout"].clone());
///         Ok::<_, std::convert::Infallible>(resp)
///     });
/// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(300));
/// let mut req = http::Request::new(String::new());
/// req.set_context(ctx);
/// let resp = client.ready().await.unwrap().call(req).await.unwrap();
/// let sent = resp.headers()["sent"].to_str().unwrap();
/// assert!(sent.ends_with('u') && sent.len() <= 9, "{sent}");
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct PropagateLayer {
    config: Arc<Config>,
}

impl PropagateLayer {
    fn with(header: HeaderName, format: Format) -> PropagateLayer {
        PropagateLayer {
            config: Arc::new(Config {
                header,
                format,
                margin: Duration::ZERO,
            }),
        }
    }

    /// Writes `grpc-timeout` (what gRPC servers, and ours with either policy, read).
    ///
    /// ```
    /// # use context_tower::PropagateLayer;
    /// let layer = PropagateLayer::grpc();
    /// # let _ = layer;
    /// ```
    pub fn grpc() -> PropagateLayer {
        PropagateLayer::with(HeaderName::from_static("grpc-timeout"), Format::Grpc)
    }

    /// Writes `connect-timeout-ms` (milliseconds, rounded up).
    ///
    /// ```
    /// # use context_tower::PropagateLayer;
    /// let layer = PropagateLayer::http();
    /// # let _ = layer;
    /// ```
    pub fn http() -> PropagateLayer {
        PropagateLayer::with(
            HeaderName::from_static("connect-timeout-ms"),
            Format::Millis,
        )
    }

    /// Writes `header` in the `grpc-timeout` form.
    ///
    /// ```
    /// # use context_tower::PropagateLayer;
    /// let layer = PropagateLayer::header_grpc(http::HeaderName::from_static("x-grpc-timeout"));
    /// # let _ = layer;
    /// ```
    pub fn header_grpc(header: HeaderName) -> PropagateLayer {
        PropagateLayer::with(header, Format::Grpc)
    }

    /// Writes `header` in the milliseconds form.
    ///
    /// ```
    /// # use context_tower::PropagateLayer;
    /// let layer = PropagateLayer::header_ms(http::HeaderName::from_static("x-timeout-ms"));
    /// # let _ = layer;
    /// ```
    pub fn header_ms(header: HeaderName) -> PropagateLayer {
        PropagateLayer::with(header, Format::Millis)
    }

    /// Sends `margin` less than the time left, so the callee gives up (and answers) before we
    /// do. A call with no more than `margin` left fails locally with `DeadlineExceeded`.
    ///
    /// ```
    /// # use context_tower::PropagateLayer;
    /// # use std::time::Duration;
    /// let layer = PropagateLayer::grpc().margin(Duration::from_millis(5));
    /// # let _ = layer;
    /// ```
    pub fn margin(self, margin: Duration) -> PropagateLayer {
        PropagateLayer {
            config: Arc::new(Config {
                header: self.config.header.clone(),
                format: self.config.format,
                margin,
            }),
        }
    }
}

impl Default for PropagateLayer {
    /// [`PropagateLayer::grpc`].
    ///
    /// ```
    /// # use context_tower::PropagateLayer;
    /// let layer = PropagateLayer::default();
    /// # let _ = layer;
    /// ```
    fn default() -> PropagateLayer {
        PropagateLayer::grpc()
    }
}

impl<S> Layer<S> for PropagateLayer {
    type Service = PropagateService<S>;

    fn layer(&self, inner: S) -> PropagateService<S> {
        PropagateService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service [`PropagateLayer`] makes.
///
/// ```
/// use context_tower::{PropagateLayer, PropagateService};
/// use tower::Layer;
/// let svc: PropagateService<_> = PropagateLayer::grpc().layer(tower::service_fn(|_: http::Request<()>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
/// }));
/// # let _ = svc;
/// ```
#[derive(Clone, Debug)]
pub struct PropagateService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for PropagateService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
    ResB: http_body::Body,
{
    type Response = Response<ContextBody<ResB>>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let ctx = req.context();
        let grpc = protocol::is_grpc(req.headers());
        if ctx.is_done() {
            return ResponseFuture::failed(call_error(grpc, ContextDone::of(&ctx)));
        }
        let mut sent = None;
        if let Some(deadline) = ctx.deadline() {
            let config = &*self.config;
            let now = Instant::now();
            let left = deadline
                .saturating_duration_since(now)
                .saturating_sub(config.margin);
            if left.is_zero() {
                // Invariant 1: nothing is sent; within the margin the call has no time either.
                return ResponseFuture::failed(call_error(grpc, ContextDone::no_time_left()));
            }
            // One lookup of the header name, whether it is present or not.
            let budget = match req.headers_mut().entry(&config.header) {
                Entry::Occupied(mut e) => match shortest(config.format, e.iter()) {
                    // A budget already spent (`0n` from upstream) is never sent (invariant 1).
                    Some((p, _)) if p.is_zero() => {
                        return ResponseFuture::failed(call_error(
                            grpc,
                            ContextDone::no_time_left(),
                        ));
                    }
                    Some((p, others)) if p <= left => {
                        if let Some(value) = others {
                            // Servers differ on which of several values they read (tonic
                            // the first, grpc-go the last): the shortest goes alone.
                            e.insert(value);
                        }
                        p
                    }
                    _ => {
                        e.insert(config.format.format(left));
                        left
                    }
                },
                Entry::Vacant(e) => {
                    e.insert(config.format.format(left));
                    left
                }
            };
            sent = now.checked_add(budget);
        } else {
            // No deadline of ours, but a spent one already on the request: never sent either.
            // (Read without `entry`, which would allocate an empty map's table.)
            let present = protocol::header_values(req.headers(), &self.config.header);
            match shortest(self.config.format, present) {
                Some((p, _)) if p.is_zero() => {
                    return ResponseFuture::failed(call_error(grpc, ContextDone::no_time_left()));
                }
                // The values go as they are; the shortest is the deadline the callee (and
                // tonic's `Channel`, which enforces it) may end the call at.
                Some((p, _)) => sent = Instant::now().checked_add(p),
                None => {}
            }
        }
        let fut = self.inner.call(req);
        ResponseFuture {
            state: State::Calling {
                fut,
                ctx,
                done: None,
                grpc,
                sent,
            },
        }
    }
}

/// The shortest of the deadline `values` that parse and, if there are other values, that
/// value to send alone (invariant 2 holds for every value: a later `0n` or a shorter one
/// counts, whichever of them the callee reads).
fn shortest<'a>(
    format: Format,
    values: impl Iterator<Item = &'a HeaderValue>,
) -> Option<(Duration, Option<HeaderValue>)> {
    let mut best: Option<(Duration, &HeaderValue)> = None;
    let mut count = 0;
    for value in values {
        count += 1;
        if let Ok(p) = format.parse(value.as_bytes()) {
            if best.is_none_or(|(b, _)| p < b) {
                best = Some((p, value));
            }
        }
    }
    best.map(|(p, value)| (p, (count > 1).then(|| value.clone())))
}

pin_project! {
    /// The future of a [`PropagateService`] call.
    ///
    /// ```
    /// use context_tower::client::ResponseFuture;
    /// fn is_future<F: std::future::Future>() {}
    /// is_future::<ResponseFuture<std::future::Ready<Result<http::Response<String>, std::io::Error>>>>();
    /// ```
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    #[project_replace = StateReplace]
    #[derive(Debug)]
    enum State<F> {
        Calling {
            #[pin]
            fut: F,
            ctx: Context,
            // Registered on the first pending poll only, in place (no allocation).
            #[pin]
            done: Option<Done>,
            grpc: bool,
            // The deadline the callee was sent, if any.
            sent: Option<Instant>,
        },
        Failed { err: Option<BoxError> },
        Finished,
    }
}

/// Polls `ctx.done()`, registering it in `done` in place on the first call: a call's future
/// is pending until the answer arrives, so every call registers once, and an inline waiter
/// saves that allocation (a boxed one costs more than the copies of the larger future).
fn poll_done(
    mut done: Pin<&mut Option<Done>>,
    ctx: &Context,
    cx: &mut TaskContext<'_>,
) -> Poll<()> {
    if done.is_none() {
        done.set(Some(ctx.done()));
    }
    match done.as_pin_mut() {
        Some(d) => d.poll(cx).map(drop),
        None => unreachable!("set above"),
    }
}

impl<F> ResponseFuture<F> {
    fn failed(err: BoxError) -> ResponseFuture<F> {
        ResponseFuture {
            state: State::Failed { err: Some(err) },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
    B: http_body::Body,
{
    type Output = Result<Response<ContextBody<B>>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.as_mut().project();
        match this.state.project() {
            StateProj::Failed { err } => match err.take() {
                Some(e) => Poll::Ready(Err(e)),
                None => panic!("ResponseFuture polled after completion"),
            },
            StateProj::Finished => panic!("ResponseFuture polled after completion"),
            StateProj::Calling {
                fut,
                ctx,
                done,
                grpc,
                sent,
            } => {
                if !ctx.is_done() {
                    match fut.poll(cx) {
                        Poll::Ready(Err(e)) => {
                            // An inner timeout layer (tonic's `Channel` enforces the header we
                            // wrote) failing after the deadline we sent is that deadline.
                            let e = if ctx.is_done() {
                                call_error(*grpc, ContextDone::of(ctx))
                            } else if sent.is_some_and(|d| Instant::now() >= d) {
                                call_error(*grpc, ContextDone::no_time_left())
                            } else {
                                e.into()
                            };
                            self.project().state.project_replace(State::Finished);
                            return Poll::Ready(Err(e));
                        }
                        Poll::Ready(Ok(mut resp)) => {
                            let grpc = *grpc || protocol::is_grpc(resp.headers());
                            let sent = *sent;
                            if let (true, Some(deadline)) = (grpc, sent) {
                                protocol::fix_late_cancelled(resp.headers_mut(), deadline);
                            }
                            // The context moves on into the body (no clone).
                            let StateReplace::Calling { ctx, .. } =
                                self.project().state.project_replace(State::Finished)
                            else {
                                unreachable!("the state was Calling")
                            };
                            let watch = Watch {
                                ctx,
                                cut: true,
                                enter: false,
                                sent,
                                end: if grpc { End::Trailers } else { End::Error },
                                // The call's context bounds what the caller reads, however
                                // the answer was framed.
                                finish_known: false,
                            };
                            return Poll::Ready(Ok(
                                resp.map(|b| ContextBody::wrap(b, watch, None, Complete::AtEnd))
                            ));
                        }
                        Poll::Pending => {
                            if poll_done(done, ctx, cx).is_pending() {
                                return Poll::Pending;
                            }
                        }
                    }
                }
                // Invariant 3: the call is dropped here.
                let err = call_error(*grpc, ContextDone::of(ctx));
                self.project().state.project_replace(State::Finished);
                Poll::Ready(Err(err))
            }
        }
    }
}

/// The boxed error a client call fails with: for gRPC with feature `tonic`, a `Status`, so
/// tonic's client reports the code.
pub(crate) fn call_error(grpc: bool, done: ContextDone) -> BoxError {
    #[cfg(feature = "tonic")]
    if grpc {
        return Box::new(crate::tonic::status_from_error(done.error(), done.cause()));
    }
    let _ = grpc;
    Box::new(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::ServiceExt;

    /// The `grpc-timeout` values a call with `left` (none: no deadline) and the headers
    /// `present` hands to the inner service, or the error it fails with locally.
    async fn sent(
        left: Option<Duration>,
        present: &[&'static str],
    ) -> Result<Vec<Duration>, BoxError> {
        let svc = PropagateLayer::grpc().layer(tower::service_fn(|req: Request<()>| async move {
            let mut resp = Response::new(String::new());
            for v in req.headers().get_all("grpc-timeout") {
                resp.headers_mut().append("sent", v.clone());
            }
            Ok::<_, Infallible>(resp)
        }));
        let mut req = Request::new(());
        for v in present {
            req.headers_mut()
                .append("grpc-timeout", http::HeaderValue::from_static(v));
        }
        let _cancel = left.map(|left| {
            let (ctx, cancel) = Context::background().with_timeout(left);
            req.set_context(ctx);
            cancel
        });
        let resp = svc.oneshot(req).await?;
        Ok(resp
            .headers()
            .get_all("sent")
            .iter()
            .map(|v| crate::wire::parse_grpc_timeout(v.as_bytes()).unwrap())
            .collect())
    }

    fn spent(r: Result<Vec<Duration>, BoxError>) -> bool {
        r.is_err_and(|e| {
            e.downcast_ref::<ContextDone>()
                .is_some_and(|d| d.error() == go_context::Error::DeadlineExceeded)
        })
    }

    /// Regression test (found by an audit): only the first of several deadline values was
    /// read. A shorter later one was sent along with ours (a server that reads the last
    /// value, as grpc-go does, got the longer budget, or ours replaced it with the longer
    /// time left), a later `0n` was sent instead of failing locally, and a malformed first
    /// value had a valid shorter one replaced by the time left.
    #[tokio::test(flavor = "current_thread")]
    async fn every_deadline_value_already_present_counts() {
        let ten = Some(Duration::from_secs(10));
        let one = Duration::from_secs(1);
        for present in [
            &["1S", "100S"][..],
            &["100S", "1S"],
            &["bogus", "1S"],
            &["1S", "1S"],
        ] {
            assert_eq!(sent(ten, present).await.unwrap(), [one], "{present:?}");
        }
        // Ours is shorter than every value present: it alone is sent.
        let sent_ours = sent(Some(one), &["10S", "100S"]).await.unwrap();
        assert!(sent_ours.len() == 1 && sent_ours[0] <= one, "{sent_ours:?}");
        // A spent budget anywhere is never sent, with a deadline of ours or without one.
        assert!(spent(sent(ten, &["1S", "0n"]).await));
        assert!(spent(sent(None, &["1S", "0n"]).await));
        // Without a deadline of ours the values are left as they are.
        assert_eq!(
            sent(None, &["1S", "100S"]).await.unwrap(),
            [one, Duration::from_secs(100)]
        );
    }

    /// Regression test (found by an audit): a gRPC response body that failed after the
    /// deadline we sent (the callee reset its stream at expiry, as grpc-go's server does;
    /// tonic reads a `CANCEL` reset as `CANCELLED`) passed the transport's error on, where the
    /// same failure before the headers is `DEADLINE_EXCEEDED`.
    #[tokio::test(flavor = "current_thread")]
    async fn a_grpc_body_failing_after_the_deadline_sent_ends_with_status_4() {
        use http_body_util::BodyExt;
        let svc = PropagateLayer::grpc()
            .margin(Duration::from_secs(10))
            .layer(tower::service_fn(|req: Request<()>| async move {
                // The callee: its stream is reset when the deadline it was sent passes.
                let sent =
                    crate::wire::parse_grpc_timeout(req.headers()["grpc-timeout"].as_bytes());
                let at = tokio::time::Instant::now() + sent.unwrap();
                let reset = futures_util::stream::once(async move {
                    tokio::time::sleep_until(at).await;
                    Err::<http_body::Frame<bytes::Bytes>, BoxError>("stream reset: CANCEL".into())
                });
                let mut resp = Response::new(http_body_util::StreamBody::new(reset));
                resp.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/grpc"),
                );
                Ok::<_, Infallible>(resp)
            }));
        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(10_200));
        let mut req = Request::new(());
        req.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        req.set_context(ctx.clone());
        let mut body = Box::pin(svc.oneshot(req).await.unwrap().into_body());
        let last = body.frame().await.unwrap();
        assert!(!ctx.is_done(), "our own deadline passed: the test is moot");
        let trailers = match last {
            Ok(frame) => frame.into_trailers().unwrap(),
            Err(e) => panic!("the transport's error: {e}"),
        };
        assert_eq!(trailers["grpc-status"], "4");
        assert!(body.frame().await.is_none());
    }
}
