//! The server side: [`ContextLayer`] gives every request a context with the caller's deadline.
//!
//! A request whose deadline has already passed on arrival is answered without calling the
//! handler: 504 over HTTP (`DEADLINE_EXCEEDED` over gRPC).
//!
//! ```
//! use context_tower::ContextLayer;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut svc = ServiceBuilder::new()
//!     .layer(ContextLayer::http())
//!     .service_fn(|_: http::Request<String>| async {
//!         unreachable!("an expired request never reaches the handler");
//!         #[allow(unreachable_code)]
//!         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//!     });
//! // A budget of 0 ms: spent before the request arrived.
//! let req = http::Request::builder().header("connect-timeout-ms", "0").body(String::new()).unwrap();
//! let resp = svc.ready().await.unwrap().call(req).await.unwrap();
//! assert_eq!(resp.status(), 504);
//! # }
//! ```
//!
//! # Invariants
//! 1. Each request owns exactly one [`CancelHandle`](go_context::CancelHandle), inside a
//!    `DropGuard`: in the [`ResponseFuture`] until the handler answers, then in the
//!    [`ContextBody`] until the stream ends. Whoever drops it first ends the context, so no
//!    context, timer entry or `go!` child outlives its request. The one other clone, held by
//!    a nested layer's join of its own parent, is let go of (the callback stopped) before the
//!    guard drops its handle.
//! 2. The guard is armed (drop = cancel with [`RequestDropped`](crate::RequestDropped)) exactly while the request is
//!    unfinished: from `call` until the body's last frame, an answer of ours, or a cut. Over
//!    HTTP/1, "the last frame" is also the last byte of a known length (`content-length`, or
//!    an exact size hint; no `transfer-encoding`), after which hyper stops polling, and an
//!    answer with no body on the wire (to `HEAD`, a 1xx, 204 or 304, or a 2xx to `CONNECT`,
//!    which has none over HTTP/2 either) is complete when the handler gives it; past that
//!    point the body is no longer cut, and its drop ends the context without a cause. HTTP/2
//!    responses are polled to their end, and so are gRPC ones that claim no length (those
//!    the deadline may cut with a status); a gRPC response that keeps a known length over
//!    HTTP/1 (with `cover_streaming(false)`, or one whose cut is an error) completes at its
//!    last byte, as an HTTP one does.
//! 3. The handler future is polled only while the context is live: a done context drops it
//!    (the answer is `DEADLINE_EXCEEDED`/504 or `CANCELLED`/503) before any further poll.
//!    A poll that finds the deadline passed answers `DEADLINE_EXCEEDED`/504 too, even if the
//!    timer has not marked the context yet (its thread may be descheduled): a layer outside
//!    ours on its own clock (tonic's `GrpcTimeout`, which polls us first and answers
//!    `CANCELLED`) never answers first. The handle is then kept until the timer has ended the
//!    context, so the context still ends with `DeadlineExceeded` and its cause. In `call`, a
//!    budget under 1 ms is read against the clock too, so one spent before the handler would
//!    be called (`1n`) never reaches it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use go_context::{Context, Done};
use http::{Method, Request, Response, StatusCode, Version};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::{Complete, ContextBody, DropGuard, End, Watch};
use crate::policy::{Budget, DeadlinePolicy};
use crate::protocol::{self, ErrorAnswer, Proto};

/// Budgets shorter than this are checked against the clock before the handler is called.
const TINY_BUDGET: std::time::Duration = std::time::Duration::from_millis(1);

#[derive(Debug)]
struct Config {
    policy: DeadlinePolicy,
    parent: Context,
    /// Set with [`ContextLayer::parent`]: joined to a request that already has a context.
    own_parent: bool,
}

/// Runs every request under a child of a parent context (a shutdown context, by default
/// `Context::background()`), with the deadline the caller sent, as the handler's
/// `Context::current()` and as the request extension `Context` (read it with
/// [`RequestContextExt::context`](crate::RequestContextExt::context)).
///
/// - Deadline passes: the handler future is dropped and the caller gets `DEADLINE_EXCEEDED`
///   (gRPC 4, trailers-only) or HTTP 504; a streaming body is cut with status 4 in its trailers.
///   Over HTTP/1.1, hyper sends only trailers the response declares, to a request with
///   `te: trailers`: a gRPC response to such a request declares `grpc-status, grpc-message`
///   (tonic-web in front of this layer sends `te: trailers`, and turns them into its trailer
///   frame); to any other, a gRPC stream is cut with an error instead (the message is
///   aborted, never ended as if whole). A gRPC or gRPC-Web response that may be cut claims
///   no length (its `content-length` is removed, its size hint is not exact), since a
///   status after fewer bytes, or gRPC-Web's trailer frame after them, would break one.
///   An HTTP answer of known length (`Full`, `Empty`, a `String`: `size_hint().exact()`)
///   that the handler gave before the cut goes out whole while its frames are ready; it is
///   cut only where it would wait. grpc-go too sends the answer a handler returned.
/// - gRPC-Web (`application/grpc-web...`: this layer in front of tonic-web's `GrpcWebLayer`):
///   a cut stream ends with the trailer frame a browser reads, in the body (base64 for
///   `-text`, as the response is), and answers of ours carry gRPC-Web's `content-type`. A
///   cut in the middle of a message (a body that splits messages across frames, as a proxy
///   relaying bytes does) aborts the stream instead: the browser would read the trailer
///   frame as the rest of that message. One after the stream's own trailer frame (its status
///   is out, the body had not yet said it was over) just ends it, as a cut of a trailers-only
///   answer (gRPC or gRPC-Web, `grpc-status` in its headers) does.
/// - Parent cancelled (shutdown): `CANCELLED` (1) or 503.
/// - A caller with no time left (`0n`, or a budget spent before the handler would be
///   called, as `1n` is) is answered without calling the handler.
/// - The request dropped early (client gone, `RST_STREAM`): the context is cancelled with
///   [`RequestDropped`](crate::RequestDropped), so `go!`/`Group` work under it stops too.
/// - Layers nest: a request that already carries a `Context` extension (an outer
///   `ContextLayer`, or middleware of yours that sets one) runs under a child of it, so the
///   outer layer's deadline, clamps, shutdown and values reach the handler, as grpc-go's
///   interceptors derive from the stream's context. This layer's own [`parent`](Self::parent),
///   if set, is joined: its cancellation ends the request too, with its cause.
///
/// gRPC or HTTP is told from the request's `content-type`.
///
/// ```
/// use context_tower::{ContextLayer, DeadlinePolicy, RequestContextExt};
/// use go_context::Context;
/// use std::time::Duration;
/// use tower::{Service, ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (shutdown, stop) = Context::background().with_cancel();
/// let mut svc = ServiceBuilder::new()
///     .layer(ContextLayer::new(DeadlinePolicy::http()).parent(&shutdown))
///     .service_fn(|req: http::Request<String>| async move {
///         // The caller's deadline, as the request's context and as the current one.
///         let budget = req.context().deadline().unwrap() - std::time::Instant::now();
///         assert!(Context::current().deadline().is_some());
///         Ok::<_, std::convert::Infallible>(http::Response::new(format!("{}", budget.as_millis() <= 250)))
///     });
/// let req = http::Request::builder().header("connect-timeout-ms", "250").body(String::new()).unwrap();
/// let resp = svc.ready().await.unwrap().call(req).await.unwrap();
/// assert_eq!(resp.status(), 200);
/// # drop(stop);
/// # }
/// ```
///
/// Nested, and in front of tonic-web for browsers: the route's layer runs under the
/// router's request context (its 100 ms clamp holds), and the stream the deadline cuts ends
/// with gRPC-Web's trailer frame (`0x80`, status 4) in the body, which a browser can read:
///
/// ```
/// use bytes::Bytes;
/// use context_tower::{ContextLayer, DeadlinePolicy};
/// use go_context::Context;
/// use http_body_util::BodyExt;
/// use std::time::{Duration, Instant};
/// use tower::{Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // A gRPC handler streaming one empty message, then nothing, for as long as it is polled.
/// let handler = tower::service_fn(|_req: http::Request<tonic::body::Body>| async {
///     let ctx = Context::current();
///     assert!(ctx.deadline().unwrap() <= Instant::now() + Duration::from_millis(100));
///     let message = futures_util::stream::iter([Ok::<_, tonic::Status>(
///         http_body::Frame::data(Bytes::from_static(&[0, 0, 0, 0, 0])),
///     )]);
///     let body = http_body_util::StreamBody::new(
///         futures_util::StreamExt::chain(message, futures_util::stream::pending()),
///     );
///     let mut resp = http::Response::new(tonic::body::Body::new(body));
///     resp.headers_mut().insert("content-type", "application/grpc".parse().unwrap());
///     Ok::<_, std::convert::Infallible>(resp)
/// });
/// let route = ContextLayer::grpc().layer(tonic_web::GrpcWebLayer::new().layer(handler));
/// let app = ContextLayer::new(DeadlinePolicy::grpc().max(Duration::from_millis(100))).layer(route);
///
/// let req = http::Request::post("/pkg.Svc/Watch")
///     .header("content-type", "application/grpc-web+proto")
///     .header("grpc-timeout", "1H") // clamped to 100 ms by the outer layer
///     .body(http_body_util::Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
///     .unwrap();
/// let body = app.oneshot(req).await.unwrap().into_body().collect().await.unwrap().to_bytes();
/// let trailers = &body[5..]; // after the message
/// assert_eq!(trailers[0], 0x80);
/// assert!(String::from_utf8_lossy(&trailers[5..]).starts_with("grpc-status:4\r\n"));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ContextLayer {
    config: Arc<Config>,
}

impl ContextLayer {
    /// A layer reading deadlines by `policy`, under `Context::background()`.
    ///
    /// ```
    /// # use context_tower::{ContextLayer, DeadlinePolicy};
    /// let layer = ContextLayer::new(DeadlinePolicy::grpc());
    /// # let _ = layer;
    /// ```
    pub fn new(policy: DeadlinePolicy) -> ContextLayer {
        ContextLayer {
            config: Arc::new(Config {
                policy,
                parent: Context::background(),
                own_parent: false,
            }),
        }
    }

    /// gRPC preset: [`DeadlinePolicy::grpc`].
    ///
    /// ```
    /// # use context_tower::ContextLayer;
    /// let layer = ContextLayer::grpc();
    /// # let _ = layer;
    /// ```
    pub fn grpc() -> ContextLayer {
        ContextLayer::new(DeadlinePolicy::grpc())
    }

    /// HTTP preset: [`DeadlinePolicy::http`].
    ///
    /// ```
    /// # use context_tower::ContextLayer;
    /// let layer = ContextLayer::http();
    /// # let _ = layer;
    /// ```
    pub fn http() -> ContextLayer {
        ContextLayer::new(DeadlinePolicy::http())
    }

    /// Requests run under children of `parent`: cancel it to shut down, and every in-flight
    /// request ends with `CANCELLED`/503 (its values and deadline reach every request too).
    /// A request that already has a context (this layer nested in another) runs under that
    /// one, and `parent` is joined to it: a callback on `parent`, stopped when the request
    /// ends, cancels the request with `parent`'s cause.
    ///
    /// ```
    /// # use context_tower::ContextLayer;
    /// use go_context::Context;
    /// let (shutdown, _stop) = Context::background().with_cancel();
    /// let layer = ContextLayer::grpc().parent(&shutdown);
    /// # let _ = layer;
    /// ```
    pub fn parent(self, parent: &Context) -> ContextLayer {
        ContextLayer {
            config: Arc::new(Config {
                policy: self.config.policy.clone(),
                parent: parent.clone(),
                own_parent: true,
            }),
        }
    }
}

impl<S> Layer<S> for ContextLayer {
    type Service = ContextService<S>;

    fn layer(&self, inner: S) -> ContextService<S> {
        ContextService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service [`ContextLayer`] makes.
///
/// ```
/// use context_tower::{ContextLayer, ContextService};
/// use tower::Layer;
/// let svc: ContextService<_> = ContextLayer::http().layer(tower::service_fn(|_: http::Request<()>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
/// }));
/// # let _ = svc;
/// ```
#[derive(Clone, Debug)]
pub struct ContextService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for ContextService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: http_body::Body,
{
    type Response = Response<ContextBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let proto = Proto::of(req.headers());
        let config = &*self.config;
        let budget = match config.policy.budget(req.headers()) {
            Budget::Malformed(header, e) => {
                let msg = format!("malformed {header}: {e}");
                return ResponseFuture::answer(protocol::error_answer(
                    proto,
                    protocol::GRPC_INTERNAL,
                    StatusCode::BAD_REQUEST,
                    &msg,
                ));
            }
            Budget::Some(budget, cause) => Some((budget, cause)),
            Budget::None => None,
        };
        // A budget this short may run out before the handler is called, before the timer
        // marks the context: the clock decides (invariant 3). A longer one only could if the
        // thread were descheduled right here, and costs no clock read.
        let tiny = budget.as_ref().is_some_and(|(b, _)| *b < TINY_BUDGET);
        // A request that already has a context (an outer `ContextLayer`, or middleware of
        // the user's) runs under it: its deadline, cancellation and values; this layer's own
        // parent, if it has one, is joined. The extension is replaced by the child below.
        let outer = req.extensions_mut().remove::<Context>();
        let base = outer.as_ref().unwrap_or(&config.parent);
        let (ctx, handle) = match budget {
            Some((budget, cause)) => base.with_timeout_cause(budget, cause),
            None => base.with_cancel(),
        };
        let mut guard = DropGuard::armed(handle);
        if outer.is_some() && config.own_parent {
            guard.join(&config.parent);
        }
        if ctx.is_done() {
            // No time left (`0n`) or the server is shutting down: the handler is not called.
            guard.disarm();
            return ResponseFuture::answer(protocol::context_answer(proto, &ctx));
        }
        if tiny && ctx.deadline().is_some_and(|d| d <= Instant::now()) {
            // Spent already (`1n`), though not yet marked: nobody has seen this context.
            guard.disarm();
            return ResponseFuture::answer(protocol::deadline_answer(proto));
        }
        // What hyper's HTTP/1 server does with a response's body (invariant 2); its HTTP/2
        // server polls every body to its end.
        let h1 = req.version() <= Version::HTTP_11;
        let head = req.method() == Method::HEAD;
        let connect = req.method() == Method::CONNECT;
        let te = h1 && proto == Proto::Grpc && protocol::accepts_trailers(req.headers());
        req.extensions_mut().insert(ctx.clone());
        // The handler's own code in `call` runs with the context current; the future is
        // built in place (no move of it after the call).
        let _current = ctx.enter();
        ResponseFuture {
            state: State::Running {
                fut: self.inner.call(req),
                ctx,
                guard: Some(guard),
                done: None,
                proto,
                h1,
                head,
                connect,
                te,
                cover: config.policy.cover_body,
            },
        }
    }
}

pin_project! {
    /// The future of a [`ContextService`] call.
    ///
    /// ```
    /// use context_tower::server::ResponseFuture;
    /// fn is_future<F: std::future::Future>() {}
    /// is_future::<ResponseFuture<std::future::Ready<Result<http::Response<String>, ()>>>>();
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
        Running {
            #[pin]
            fut: F,
            ctx: Context,
            guard: Option<DropGuard>,
            // Registered only once the handler waits, and boxed: a quick handler never
            // registers, and this future is moved into the connection's task (measured: S13).
            done: Option<Pin<Box<Done>>>,
            proto: Proto,
            // Over HTTP/1 (0.9 to 1.1), whose server may stop polling a body before its end.
            h1: bool,
            // An answer to `HEAD` has no body on the wire.
            head: bool,
            // Nor has a successful answer to `CONNECT`, over HTTP/1 or HTTP/2: the
            // connection or the stream becomes the tunnel.
            connect: bool,
            // gRPC over HTTP/1 with `te: trailers`: hyper sends the trailers a response
            // declares (tonic-web, outside us, turns them into its body frame).
            te: bool,
            cover: bool,
        },
        Answer { answer: Option<ErrorAnswer> },
        Finished,
    }
}

impl<F> ResponseFuture<F> {
    fn answer(answer: ErrorAnswer) -> ResponseFuture<F> {
        ResponseFuture {
            state: State::Answer {
                answer: Some(answer),
            },
        }
    }
}

/// When the server will have sent the whole of `resp` (invariant 2). At the end of its
/// stream, unless `to_end` is false (an HTTP/1 response: hyper's HTTP/1 server sends no body
/// for `HEAD`, a 1xx, 204 or 304, and stops polling a body with a known length, declared or
/// an exact size hint, once that many bytes are out, whatever its protocol; not with
/// `transfer-encoding`, which it streams to the end). Every HTTP/2 response, and a gRPC one
/// that claims no length (the deadline may cut it with a status), is polled to its end, but a
/// successful answer to `CONNECT` (`connect`), whose body hyper drops unpolled over HTTP/1
/// and HTTP/2 alike.
fn complete_at<B: http_body::Body>(
    resp: &Response<B>,
    to_end: bool,
    head: bool,
    connect: bool,
) -> Complete {
    let status = resp.status();
    if connect && status.is_success() {
        return Complete::NoBody;
    }
    if to_end {
        return Complete::AtEnd;
    }
    if head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Complete::NoBody;
    }
    if resp.headers().contains_key(http::header::TRANSFER_ENCODING) {
        return Complete::AtEnd;
    }
    let declared = resp
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    match declared.or_else(|| resp.body().size_hint().exact()) {
        Some(n) => Complete::After(n),
        None => Complete::AtEnd,
    }
}

/// How a cut ends a response's stream. gRPC-Web carries its status in a body frame; gRPC in
/// trailers, which hyper's HTTP/1 server sends only to a request with `te: trailers` (`te`)
/// and only as the response's `trailer` header declares them ([`declare_cut_trailers`]),
/// else drops before it ends the chunked body as if complete: a cut there is an error, which
/// aborts the message. HTTP gets an error frame. A trailers-only answer (`grpc-status` in its
/// headers) has its status out already: a cut just ends it.
fn cut_end(proto: Proto, h1: bool, te: bool, headers: &http::HeaderMap) -> End {
    match proto {
        Proto::Http => End::Error,
        _ if protocol::header(headers, &protocol::GRPC_STATUS).is_some() => End::Over,
        // The response's encoding decides (tonic-web answers `-text` as `accept` asks).
        Proto::Web { text } => match Proto::of(headers) {
            Proto::Web { text } => End::WebTrailers { text },
            _ => End::WebTrailers { text },
        },
        Proto::Grpc if !h1 || te => End::Trailers,
        Proto::Grpc => End::Error,
    }
}

/// Declares the cut's trailer fields on a gRPC response over HTTP/1 to a request with
/// `te: trailers` (for the handler's own status too), unless it declares `grpc-status`.
fn declare_cut_trailers(headers: &mut http::HeaderMap) {
    if !protocol::lists_token(headers, &http::header::TRAILER, b"grpc-status") {
        headers.append(http::header::TRAILER, protocol::CUT_TRAILER_FIELDS.clone());
    }
}

fn answer_response<B>(answer: ErrorAnswer) -> Response<ContextBody<B>> {
    let body = answer.body;
    answer.response.map(|()| ContextBody::text(body))
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
{
    type Output = Result<Response<ContextBody<B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.as_mut().project();
        match this.state.project() {
            StateProj::Answer { answer } => match answer.take() {
                Some(a) => Poll::Ready(Ok(answer_response(a))),
                None => panic!("ResponseFuture polled after completion"),
            },
            StateProj::Finished => panic!("ResponseFuture polled after completion"),
            StateProj::Running {
                fut,
                ctx,
                guard,
                done,
                proto,
                h1,
                head,
                connect,
                te,
                cover,
            } => {
                if !ctx.is_done() {
                    let polled = {
                        let _current = ctx.enter();
                        fut.poll(cx)
                    };
                    match polled {
                        Poll::Ready(Err(e)) => {
                            if let Some(g) = guard.as_mut() {
                                g.disarm();
                            }
                            self.project().state.project_replace(State::Finished);
                            return Poll::Ready(Err(e));
                        }
                        Poll::Ready(Ok(mut resp)) => {
                            let (cut, proto, h1) = (*cover, *proto, *h1);
                            let grpc = proto.is_grpc();
                            if *te {
                                declare_cut_trailers(resp.headers_mut());
                            }
                            if grpc && cut {
                                // A cut ends the stream with a status: trailers after fewer
                                // bytes, or gRPC-Web's frame after more; no length holds.
                                resp.headers_mut().remove(http::header::CONTENT_LENGTH);
                            }
                            let end = cut_end(proto, h1, *te, resp.headers());
                            // A stream whose cut ends with a status claims no length (its
                            // body's size hint is not exact either), so hyper polls it to its
                            // end; any other keeps the length it has, which hyper's HTTP/1
                            // server stops at, gRPC's too.
                            let no_length = cut && end != End::Error;
                            let complete = complete_at(&resp, no_length || !h1, *head, *connect);
                            // The context and the guard move on into the body (no clone).
                            let StateReplace::Running { ctx, guard, .. } =
                                self.project().state.project_replace(State::Finished)
                            else {
                                unreachable!("the state was Running")
                            };
                            let watch = Watch {
                                ctx,
                                cut,
                                enter: true,
                                sent: None,
                                end,
                                // An HTTP answer of known length given in time goes out
                                // whole (gRPC's status lives in trailers such a body lacks).
                                finish_known: !grpc,
                            };
                            return Poll::Ready(Ok(
                                resp.map(|b| ContextBody::wrap(b, watch, guard, complete))
                            ));
                        }
                        // Registered only for handlers that wait: a quick one pays nothing.
                        Poll::Pending => {
                            let done = done.get_or_insert_with(|| Box::pin(ctx.done()));
                            // Invariant 3: also answered once the deadline passed, even if
                            // the timer is late to mark the context done.
                            if done.as_mut().poll(cx).is_pending()
                                && ctx.deadline().is_none_or(|d| d > Instant::now())
                            {
                                return Poll::Pending;
                            }
                        }
                    }
                }
                // Invariant 3: the handler future is dropped here, before we answer.
                let late = !ctx.is_done();
                let answer = if late {
                    protocol::deadline_answer(*proto)
                } else {
                    protocol::context_answer(*proto, ctx)
                };
                if let Some(mut g) = guard.take() {
                    if late {
                        // Ended by the timer (now due), not by the handle's drop: the handle
                        // goes once the context is done.
                        let _registration = ctx.after_func(move || g.disarm());
                    } else {
                        g.disarm();
                    }
                }
                self.project().state.project_replace(State::Finished);
                Poll::Ready(Ok(answer_response(answer)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body::Frame;
    use std::task::Waker;

    type Pending = http_body_util::StreamBody<
        futures_util::stream::Pending<Result<Frame<Bytes>, std::convert::Infallible>>,
    >;

    /// Regression test (found by an audit): a budget too short to outlast its own setup
    /// (`1n`, what our client sends with a nanosecond left) had run out by the time the
    /// handler was called, but the timer had not marked the context yet, so the handler ran
    /// (998 of 1,000 calls) and a quick one answered `OK` after the caller's deadline.
    #[test]
    fn a_budget_spent_before_the_call_is_answered_without_the_handler() {
        let called = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&called);
        let mut svc = ContextLayer::grpc().layer(tower::service_fn(move |_: Request<()>| {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::future::ready(Ok::<_, std::convert::Infallible>(Response::new(
                String::new(),
            )))
        }));
        for i in 0..200 {
            let req = Request::post("/pkg.Svc/Get")
                .version(Version::HTTP_2)
                .header("content-type", "application/grpc")
                .header("grpc-timeout", "1n")
                .body(())
                .unwrap();
            let mut fut = std::pin::pin!(svc.call(req));
            let mut cx = TaskContext::from_waker(Waker::noop());
            let Poll::Ready(Ok(resp)) = fut.as_mut().poll(&mut cx) else {
                panic!("not answered at once")
            };
            assert_eq!(
                protocol::grpc_status_of(resp.headers()),
                Some(4),
                "call {i}"
            );
        }
        let called = called.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(called, 0, "the handler ran {called} times of 200");
    }

    /// Regression test (found by an audit): a trailers-only gRPC answer (its status in the
    /// headers) whose body had not said it was over (a proxy relaying one, a body that does
    /// not report `is_end_stream`) got trailers with a second status, 1 or 4, from a cut: the
    /// client saw two statuses. Its status is out, so a cut just ends the stream.
    #[test]
    fn a_trailers_only_answer_gets_no_second_status_from_a_cut() {
        for content_type in ["application/grpc", "application/grpc-web+proto"] {
            let (shutdown, stop) = Context::background().with_cancel();
            let mut svc = ContextLayer::grpc()
                .parent(&shutdown)
                .layer(tower::service_fn(move |_: Request<()>| async move {
                    let mut resp = Response::new(Pending::new(futures_util::stream::pending()));
                    let headers = resp.headers_mut();
                    headers.insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static(content_type),
                    );
                    headers.insert("grpc-status", http::HeaderValue::from_static("5"));
                    Ok::<_, std::convert::Infallible>(resp)
                }));
            let req = Request::post("/pkg.Svc/Get")
                .version(Version::HTTP_2)
                .header("content-type", content_type)
                .body(())
                .unwrap();
            let mut fut = std::pin::pin!(svc.call(req));
            let mut cx = TaskContext::from_waker(Waker::noop());
            let Poll::Ready(Ok(resp)) = fut.as_mut().poll(&mut cx) else {
                panic!("the handler answered at once")
            };
            let mut body = std::pin::pin!(resp.into_body());
            assert!(http_body::Body::poll_frame(body.as_mut(), &mut cx).is_pending());
            stop.cancel_with_cause("shutting down");
            match http_body::Body::poll_frame(body.as_mut(), &mut cx) {
                Poll::Ready(None) => {}
                other => panic!("{content_type}: a second status after the headers' 5: {other:?}"),
            }
        }
    }
}
