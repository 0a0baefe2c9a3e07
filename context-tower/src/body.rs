//! [`ContextBody`]: a response body that ends with its request's context.
//!
//! Used on both sides: the server wraps the handler's body (the deadline covers the stream,
//! the handler's context is current while the stream is polled, and a body dropped before its
//! end cancels the context with [`RequestDropped`]); the client wraps the response body (the
//! stream ends when the call's context does, and a late `CANCELLED`, or an error of the
//! stream once the deadline sent has passed, becomes `DEADLINE_EXCEEDED`). When the context
//! ends the stream, gRPC gets trailers with the status (`4` or `1`) and HTTP an error frame,
//! [`ContextDone`], so the peer sees an aborted stream; gRPC-Web gets its trailer frame in
//! the body (browsers cannot read HTTP trailers), or the error frame if the cut falls in the
//! middle of a message, or nothing more if the stream's own trailer frame is already out; a
//! server's gRPC stream over HTTP/1.1 gets trailers only if the request accepts them
//! (`te: trailers`; the server then declares them, as hyper's HTTP/1 server requires), else
//! the error frame (hyper would drop the trailers and end the body as if complete).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes};
use go_context::{AfterFunc, BoxError, CancelHandle, Context, Done};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::cause::RequestDropped;
use crate::error::ContextDone;
use crate::protocol;

/// Cancels a request's context with [`RequestDropped`] when dropped while armed, else (on
/// drop) plainly, as the end of a Go handler does.
#[derive(Debug)]
pub(crate) struct DropGuard {
    handle: Option<CancelHandle>,
    /// `None` once the response is complete (all of it handed to the server), though the
    /// stream may not have been polled to its end.
    cause: Option<RequestDropped>,
    /// A second parent joined to the context (a nested layer's own `parent`): its callback
    /// holds a clone of the handle, so it is stopped before the handle goes, or the drop of
    /// ours would not be the last. Boxed: the guard moves with every response future and
    /// body, and a nested layer with a parent of its own is rare.
    join: Option<Box<AfterFunc>>,
}

impl DropGuard {
    pub(crate) fn armed(handle: CancelHandle) -> DropGuard {
        DropGuard {
            handle: Some(handle),
            cause: Some(RequestDropped::while_handling()),
            join: None,
        }
    }

    /// The context also ends when `parent` does, with its cause: at once if `parent` is done
    /// already (so the request is answered without its handler, as under a done parent),
    /// else by a callback on `parent` that holds a clone of the handle, stopped when the
    /// request ends.
    pub(crate) fn join(&mut self, parent: &Context) {
        let Some(handle) = self.handle.as_ref() else {
            return;
        };
        if let Some(cause) = parent.cause() {
            cancel_contained(handle, cause);
            return;
        }
        let handle = handle.clone();
        let from = parent.clone();
        self.join = Some(Box::new(parent.after_func(move || match from.cause() {
            Some(cause) => handle.cancel_with_cause(cause),
            None => handle.cancel(),
        })));
    }

    /// Stops the joined parent's callback (dropping its clone of the handle), unless it has
    /// already started: then it is cancelling the context itself.
    fn leave(&mut self) {
        if let Some(join) = self.join.take() {
            join.stop();
        }
    }

    /// The request is over: the context ends now, without a cause.
    pub(crate) fn disarm(&mut self) {
        self.leave();
        drop(self.handle.take());
    }

    /// The response is complete, but the context lives on until the body goes: dropping the
    /// guard then ends it without a cause.
    fn complete(&mut self) {
        self.cause = None;
    }

    /// The handler answered; the guard now covers the body.
    pub(crate) fn streaming(mut self) -> DropGuard {
        if self.cause.is_some() {
            self.cause = Some(RequestDropped::during_body());
        }
        self
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.leave();
        let Some(handle) = self.handle.take() else {
            return;
        };
        if let Some(cause) = self.cause {
            // In this `Drop`, run by hyper's or tonic's own drop of the request, a re-raised
            // panic would unwind through their cleanup.
            cancel_contained(&handle, cause);
        }
    }
}

/// Cancels with `cause`, containing the panic `cancel_with_cause` re-raises (a waker's or a
/// tracing subscriber's, once every waiter is woken): the panic hook has reported it, and it
/// goes no further.
fn cancel_contained(handle: &CancelHandle, cause: impl Into<BoxError>) {
    let cancelled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        handle.cancel_with_cause(cause);
    }));
    if let Err(payload) = cancelled {
        // The payload is a user value: a panic in its drop is contained too, and that panic's
        // own payload is forgotten rather than dropped (no end to the regress).
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(payload)));
        if let Err(again) = dropped {
            std::mem::forget(again);
        }
    }
}

/// When a server's response is complete, as the server sends it: hyper stops polling a body
/// once it has written its `content-length` bytes, and never polls the body of an answer to
/// `HEAD` (or a 204 or 304), so the end of the stream alone would take those for a client
/// that went away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Complete {
    /// At the end of the stream.
    AtEnd,
    /// Once this many more bytes of data have gone out.
    After(u64),
    /// At once: the response has no body on the wire.
    NoBody,
}

/// What a server's body follows in the data it sends.
#[derive(Debug)]
enum Track {
    Nothing,
    /// Bytes of data still to go before the response is complete (`Complete::After`).
    Left(u64),
    /// A gRPC-Web stream's frames (a cut between them ends with the trailer frame; one in
    /// the middle of a message aborts the stream, so nobody reads the trailer frame as the
    /// rest of that message). Boxed: rare, and the body moves with every response.
    Web(Box<protocol::WebFrames>),
}

impl Track {
    /// How a cut ends the stream now, `end` unless that would split a message or follow
    /// the status a gRPC-Web stream already sent.
    fn end(&self, end: End) -> End {
        match self {
            Track::Web(frames) if frames.after_trailers() => End::Over,
            Track::Web(frames) if !frames.between() => End::Error,
            _ => end,
        }
    }
}

/// The last frame of a stream its context ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// gRPC trailers carrying the status.
    Trailers,
    /// An error frame, [`ContextDone`]: the peer sees an aborted stream.
    Error,
    /// gRPC-Web: a trailer frame carrying the status, in the body (base64 for `-text`).
    WebTrailers { text: bool },
    /// Nothing more: the stream's own status is out (a gRPC-Web trailer frame, or the
    /// headers of a trailers-only answer), and a second one would contradict it.
    Over,
}

/// How a [`ContextBody`] treats the context it carries.
#[derive(Debug)]
pub(crate) struct Watch {
    pub(crate) ctx: Context,
    /// End the stream when `ctx` is done.
    pub(crate) cut: bool,
    /// Make `ctx` current while the inner body is polled (server: the handler's stream).
    pub(crate) enter: bool,
    /// Client: the deadline the callee was sent. Past it, a `CANCELLED` in gRPC trailers is
    /// rewritten `DEADLINE_EXCEEDED`, and an error of the inner body (the callee cut or reset
    /// the stream at that deadline) ends the stream as that deadline does.
    pub(crate) sent: Option<Instant>,
    /// How a cut stream ends.
    pub(crate) end: End,
    /// Server, HTTP: a body of known length (`size_hint().exact()`: an in-memory answer such
    /// as `Full`, `Empty`, a `String`) goes out whole while its frames are ready, even once
    /// `ctx` is done; it is cut only at its first `Pending` after that. The handler answered
    /// in time, and the cut would otherwise reset the stream before hyper had flushed the
    /// headers, turning an answer into a failed call. [`ContextBody::wrap`] clears it for
    /// a body of unknown length.
    pub(crate) finish_known: bool,
}

pin_project! {
    /// A response body tied to its request's context; see the [module docs](self).
    ///
    /// It appears in the response types of [`ContextService`](crate::ContextService) and
    /// [`PropagateService`](crate::PropagateService); nothing else builds one.
    ///
    /// ```
    /// use context_tower::ContextBody;
    /// fn is_body<B: http_body::Body>() {}
    /// is_body::<ContextBody<http_body_util::Full<bytes::Bytes>>>();
    /// ```
    #[derive(Debug)]
    pub struct ContextBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Inner {
            #[pin]
            body: B,
            watch: Watch,
            // Registered on the first pending poll only, and boxed: a response body is moved
            // several times on its way through hyper, so an inline waiter would cost more in
            // copies than the allocation of the bodies that do wait (measured: S13).
            done: Option<Pin<Box<Done>>>,
            guard: Option<DropGuard>,
            track: Track,
        },
        Text { text: Option<&'static str> },
        // The stream is over: the inner body (on a client, the HTTP/2 stream, which its drop
        // resets if the peer has not ended it) and the guard are gone.
        Ended,
    }
}

impl<B> ContextBody<B> {
    pub(crate) fn text(text: &'static str) -> ContextBody<B> {
        ContextBody {
            kind: Kind::Text {
                text: (!text.is_empty()).then_some(text),
            },
        }
    }
}

impl<B: Body> ContextBody<B> {
    /// `complete` matters only with a `guard` (the server's).
    pub(crate) fn wrap(
        body: B,
        mut watch: Watch,
        guard: Option<DropGuard>,
        complete: Complete,
    ) -> ContextBody<B> {
        watch.finish_known &= body.size_hint().exact().is_some();
        if body.is_end_stream() {
            if let Some(mut g) = guard {
                g.disarm();
            }
            return ContextBody { kind: Kind::Ended };
        }
        let mut guard = guard.map(DropGuard::streaming);
        let track = match (complete, watch.end) {
            // The server's gRPC-Web stream that may be cut (a client's cut is its own: it
            // ends what its caller reads).
            (_, End::WebTrailers { text }) if guard.is_some() && watch.cut => {
                Track::Web(Box::new(protocol::WebFrames::new(text)))
            }
            (Complete::AtEnd, _) => Track::Nothing,
            (Complete::After(n), _) if n > 0 => Track::Left(n),
            (Complete::After(_) | Complete::NoBody, _) => {
                if let Some(g) = guard.as_mut() {
                    g.complete();
                }
                Track::Nothing
            }
        };
        ContextBody {
            kind: Kind::Inner {
                body,
                watch,
                done: None,
                guard,
                track,
            },
        }
    }
}

/// The end of the stream: the guard ends the context (plainly), and the caller replaces the
/// body with [`Kind::Ended`], dropping the inner body.
fn finish(guard: &mut Option<DropGuard>) {
    if let Some(g) = guard.as_mut() {
        g.disarm();
    }
}

/// The last frame of a stream its context ended, if any.
fn cut<D: From<Bytes>>(watch: &Watch, track: &Track) -> Option<Result<Frame<D>, BoxError>> {
    last_frame(track.end(watch.end), ContextDone::of(&watch.ctx))
}

/// The last frame, spelled as `end`, of a stream that `done` ended (none for `End::Over`).
fn last_frame<D: From<Bytes>>(end: End, done: ContextDone) -> Option<Result<Frame<D>, BoxError>> {
    let status = || (protocol::grpc_code(done.error()), done.to_string());
    Some(match end {
        End::Over => return None,
        End::Error => Err(Box::new(done)),
        End::Trailers => {
            let (code, msg) = status();
            Ok(Frame::trailers(protocol::grpc_status_headers(code, &msg)))
        }
        End::WebTrailers { text } => {
            let (code, msg) = status();
            let frame = protocol::grpc_web_trailer_frame(code, &msg, text);
            Ok(Frame::data(frame.into()))
        }
    })
}

impl<B> Body for ContextBody<B>
where
    B: Body,
    B::Data: From<Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let (polled, ended) = match self.as_mut().project().kind.project() {
            KindProj::Text { text } => {
                return Poll::Ready(
                    text.take()
                        .map(|t| Ok(Frame::data(Bytes::from_static(t.as_bytes()).into()))),
                )
            }
            KindProj::Ended => return Poll::Ready(None),
            KindProj::Inner {
                mut body,
                watch,
                done,
                guard,
                track,
            } => {
                if watch.cut && !watch.finish_known && watch.ctx.is_done() {
                    finish(guard);
                    (Poll::Ready(cut(watch, track)), true)
                } else {
                    let polled = {
                        let _current = watch.enter.then(|| watch.ctx.enter());
                        body.as_mut().poll_frame(cx)
                    };
                    match polled {
                        Poll::Ready(Some(Ok(mut frame))) => {
                            let ended = if let Some(trailers) = frame.trailers_mut() {
                                if let (End::Trailers, Some(deadline)) = (watch.end, watch.sent) {
                                    protocol::fix_late_cancelled(trailers, deadline);
                                }
                                true
                            } else {
                                body.is_end_stream()
                            };
                            if ended {
                                finish(guard);
                            } else if let Some(data) = frame.data_ref() {
                                match track {
                                    Track::Nothing => {}
                                    Track::Left(n) => {
                                        *n = n.saturating_sub(data.remaining() as u64);
                                        if *n == 0 {
                                            // All the bytes the server will send are out: no
                                            // longer a dropped request, and nothing may
                                            // follow them.
                                            *track = Track::Nothing;
                                            watch.cut = false;
                                            if let Some(g) = guard.as_mut() {
                                                g.complete();
                                            }
                                        }
                                    }
                                    // A frame of data in one piece (as `Bytes` is) is followed;
                                    // one in several is not seen whole, so no cut may follow.
                                    Track::Web(frames)
                                        if data.chunk().len() == data.remaining() =>
                                    {
                                        frames.feed(data.chunk());
                                    }
                                    Track::Web(frames) => frames.lose(),
                                }
                            }
                            (Poll::Ready(Some(Ok(frame))), ended)
                        }
                        Poll::Ready(Some(Err(e))) => {
                            finish(guard);
                            // As the client's call future does with an error after the
                            // deadline it sent: that deadline, not the transport's reset.
                            let last = if watch.sent.is_some_and(|d| Instant::now() >= d) {
                                last_frame(track.end(watch.end), ContextDone::no_time_left())
                            } else {
                                Some(Err(e.into()))
                            };
                            (Poll::Ready(last), true)
                        }
                        Poll::Ready(None) => {
                            finish(guard);
                            (Poll::Ready(None), true)
                        }
                        Poll::Pending => {
                            let cut_now = watch.cut && {
                                let done = done.get_or_insert_with(|| Box::pin(watch.ctx.done()));
                                done.as_mut().poll(cx).is_ready()
                            };
                            if cut_now {
                                finish(guard);
                                (Poll::Ready(cut(watch, track)), true)
                            } else {
                                (Poll::Pending, false)
                            }
                        }
                    }
                }
            }
        };
        if ended {
            // The inner body goes now, not when the user drops this one: on a client that
            // resets an HTTP/2 stream the peer has not ended, so the server hears at once.
            self.project().kind.set(Kind::Ended);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Text { text } => text.is_none(),
            Kind::Inner { .. } => false,
            Kind::Ended => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Text { text } => SizeHint::with_exact(text.map_or(0, |t| t.len() as u64)),
            // A cut with an error only shortens an aborted stream, so the inner hint stays
            // true for every byte of a stream that ends well. One with a status does not:
            // gRPC's trailers may come before the bytes the hint counts, and gRPC-Web's frame
            // after them, so such a stream claims no length (from an exact hint, hyper would
            // write a `content-length` that the status breaks).
            Kind::Inner { body, watch, .. } => {
                if watch.cut && watch.end != End::Error {
                    SizeHint::default()
                } else {
                    body.size_hint()
                }
            }
            Kind::Ended => SizeHint::with_exact(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    type Pending =
        http_body_util::StreamBody<tokio_stream::Pending<Result<Frame<Bytes>, BoxError>>>;

    /// A server-side body that never yields, watching `ctx` and holding its handle.
    fn pending_body(
        ctx: &Context,
        handle: CancelHandle,
        grpc: bool,
    ) -> Pin<Box<ContextBody<Pending>>> {
        let inner = http_body_util::StreamBody::new(tokio_stream::pending());
        let watch = Watch {
            ctx: ctx.clone(),
            cut: true,
            enter: true,
            sent: None,
            end: if grpc { End::Trailers } else { End::Error },
            finish_known: !grpc,
        };
        Box::pin(ContextBody::wrap(
            inner,
            watch,
            Some(DropGuard::armed(handle)),
            Complete::AtEnd,
        ))
    }

    /// A body that yields `data` (if any), then waits forever; it flags its drop.
    struct Flagged {
        data: Option<Bytes>,
        dropped: std::sync::Arc<std::sync::atomic::AtomicBool>,
    }

    impl Drop for Flagged {
        fn drop(&mut self) {
            self.dropped
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    impl Body for Flagged {
        type Data = Bytes;
        type Error = BoxError;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut TaskContext<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            match self.data.take() {
                Some(d) => Poll::Ready(Some(Ok(Frame::data(d)))),
                None => Poll::Pending,
            }
        }
    }

    fn flagged(
        ctx: &Context,
        guard: Option<DropGuard>,
        data: Option<&'static str>,
        complete: Complete,
    ) -> (
        Pin<Box<ContextBody<Flagged>>>,
        std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) {
        let dropped = std::sync::Arc::default();
        let inner = Flagged {
            data: data.map(|d| Bytes::from_static(d.as_bytes())),
            dropped: std::sync::Arc::clone(&dropped),
        };
        let watch = Watch {
            ctx: ctx.clone(),
            cut: true,
            enter: guard.is_some(),
            sent: None,
            end: End::Error,
            finish_known: false,
        };
        (
            Box::pin(ContextBody::wrap(inner, watch, guard, complete)),
            dropped,
        )
    }

    type Polled<B> = Poll<Option<Result<Frame<<B as Body>::Data>, <B as Body>::Error>>>;

    fn poll_once<B: Body + Unpin>(body: &mut B) -> Polled<B> {
        let waker = std::task::Waker::noop();
        Pin::new(body).poll_frame(&mut TaskContext::from_waker(waker))
    }

    /// Regression test (found by an audit): a cut client body kept the inner body (the
    /// HTTP/2 stream) until the user dropped ours, so the server went on working.
    #[test]
    fn a_cut_drops_the_inner_body_at_once() {
        let (ctx, cancel) = Context::background().with_cancel();
        let (mut body, dropped) = flagged(&ctx, None, None, Complete::AtEnd);
        assert!(poll_once(&mut body).is_pending());
        cancel.cancel();
        assert!(matches!(poll_once(&mut body), Poll::Ready(Some(Err(_)))));
        assert!(body.is_end_stream());
        assert!(
            dropped.load(std::sync::atomic::Ordering::SeqCst),
            "the inner body outlived the cut"
        );
        assert!(matches!(poll_once(&mut body), Poll::Ready(None)));
    }

    /// Regression test (found by an audit): hyper stops polling an HTTP/1.1 body once its
    /// `content-length` bytes are out, and the drop that follows was taken for a client gone.
    #[test]
    fn a_body_dropped_after_its_known_length_is_not_request_dropped() {
        let (ctx, handle) = Context::background().with_cancel();
        let guard = Some(DropGuard::armed(handle));
        let (mut body, _) = flagged(&ctx, guard, Some("hello"), Complete::After(5));
        assert!(matches!(poll_once(&mut body), Poll::Ready(Some(Ok(_)))));
        assert!(!ctx.is_done(), "the context lives until the body goes");
        drop(body);
        let cause = ctx.cause().unwrap();
        assert!(cause.downcast_ref::<RequestDropped>().is_none(), "{cause}");
        // One byte short of the length: that is a dropped request.
        let (ctx, handle) = Context::background().with_cancel();
        let guard = Some(DropGuard::armed(handle));
        let (mut body, _) = flagged(&ctx, guard, Some("hell"), Complete::After(5));
        assert!(matches!(poll_once(&mut body), Poll::Ready(Some(Ok(_)))));
        drop(body);
        assert!(ctx
            .cause()
            .unwrap()
            .downcast_ref::<RequestDropped>()
            .is_some_and(|d| d.while_streaming()));
    }

    /// Regression test (found by an audit): an answer to `HEAD` (or a 204, 304) is never
    /// polled by hyper, and its drop was taken for a client gone.
    #[test]
    fn a_body_with_nothing_on_the_wire_dropped_unpolled_is_not_request_dropped() {
        let (ctx, handle) = Context::background().with_cancel();
        let guard = Some(DropGuard::armed(handle));
        let (body, _) = flagged(&ctx, guard, Some("hello"), Complete::NoBody);
        drop(body);
        let cause = ctx.cause().unwrap();
        assert!(cause.downcast_ref::<RequestDropped>().is_none(), "{cause}");
    }

    /// After the last byte of a known length the body is no longer cut: nothing may follow
    /// the bytes the server promised.
    #[test]
    fn no_cut_after_the_last_byte_of_a_known_length() {
        let (ctx, handle) = Context::background().with_cancel();
        let (ctx2, cancel) = ctx.with_cancel();
        drop(ctx);
        let guard = Some(DropGuard::armed(handle));
        let (mut body, _) = flagged(&ctx2, guard, Some("hello"), Complete::After(5));
        assert!(matches!(poll_once(&mut body), Poll::Ready(Some(Ok(_)))));
        cancel.cancel();
        assert!(poll_once(&mut body).is_pending(), "cut after the last byte");
    }

    /// A server's HTTP watch on `ctx`, which delivers a body of known length whole.
    fn finishing(ctx: &Context) -> Watch {
        Watch {
            ctx: ctx.clone(),
            cut: true,
            enter: true,
            sent: None,
            end: End::Error,
            finish_known: true,
        }
    }

    /// An answer in memory given before the cut goes out whole: its ready frames are not
    /// replaced by the cut (which would reset the stream before its headers went out).
    #[test]
    fn a_known_length_body_goes_out_whole_after_the_cut() {
        let (ctx, cancel) = Context::background().with_cancel();
        cancel.cancel();
        let full = http_body_util::Full::new(Bytes::from_static(b"hello"));
        let mut body = Box::pin(ContextBody::wrap(
            full,
            finishing(&ctx),
            None,
            Complete::AtEnd,
        ));
        match poll_once(&mut body) {
            Poll::Ready(Some(Ok(frame))) => assert_eq!(frame.into_data().unwrap(), "hello"),
            other => panic!("{other:?}"),
        }
        assert!(body.is_end_stream());
        assert!(matches!(poll_once(&mut body), Poll::Ready(None)));
    }

    /// A body of known length whose next frame is not ready is cut at that `Pending`: the
    /// rule covers what is ready, not a stream that would outlive its context.
    #[test]
    fn a_known_length_body_that_waits_is_cut_at_its_first_pending() {
        struct Waits;
        impl Body for Waits {
            type Data = Bytes;
            type Error = BoxError;
            fn poll_frame(
                self: Pin<&mut Self>,
                _: &mut TaskContext<'_>,
            ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
                Poll::Pending
            }
            fn size_hint(&self) -> SizeHint {
                SizeHint::with_exact(5)
            }
        }
        let (ctx, cancel) = Context::background().with_cancel();
        let mut body = Box::pin(ContextBody::wrap(
            Waits,
            finishing(&ctx),
            None,
            Complete::AtEnd,
        ));
        assert!(poll_once(&mut body).is_pending());
        cancel.cancel();
        assert!(matches!(poll_once(&mut body), Poll::Ready(Some(Err(_)))));
        assert!(body.is_end_stream());
    }

    /// A body of unknown length is cut before its next frame, ready or not.
    #[test]
    fn a_body_of_unknown_length_is_cut_before_a_ready_frame() {
        let (ctx, cancel) = Context::background().with_cancel();
        cancel.cancel();
        let dropped = std::sync::Arc::default();
        let inner = Flagged {
            data: Some(Bytes::from_static(b"hello")),
            dropped: std::sync::Arc::clone(&dropped),
        };
        let mut body = Box::pin(ContextBody::wrap(
            inner,
            finishing(&ctx),
            None,
            Complete::AtEnd,
        ));
        assert!(matches!(poll_once(&mut body), Poll::Ready(Some(Err(_)))));
        assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
    }

    struct PanickingWaker;

    impl std::task::Wake for PanickingWaker {
        fn wake(self: std::sync::Arc<Self>) {
            panic!("deliberate panic: a waker on a request's context");
        }
    }

    /// The guard's drop runs inside hyper's and tonic's drops of a request: a waker's panic
    /// re-raised by `cancel_with_cause` must not unwind out of it.
    #[test]
    fn a_panicking_waker_does_not_unwind_out_of_the_guard() {
        let ctx = drop_an_armed_guard_woken_by(std::sync::Arc::new(PanickingWaker));
        assert!(ctx
            .cause()
            .unwrap()
            .downcast_ref::<RequestDropped>()
            .is_some());
    }

    /// Drops an armed guard whose context `waker` waits on, and checks the drop did not
    /// unwind; returns the context, done.
    fn drop_an_armed_guard_woken_by(
        waker: std::sync::Arc<impl std::task::Wake + Send + Sync + 'static>,
    ) -> Context {
        let (ctx, handle) = Context::background().with_cancel();
        let waker = std::task::Waker::from(waker);
        let mut done = Box::pin(ctx.done());
        assert!(done
            .as_mut()
            .poll(&mut TaskContext::from_waker(&waker))
            .is_pending());
        let guard = DropGuard::armed(handle);
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(guard)));
        assert!(dropped.is_ok(), "the guard's drop unwound");
        assert!(ctx.is_done());
        ctx
    }

    /// Regression test: the guard dropped the re-raised panic's payload itself, and a payload
    /// whose `Drop` panics unwound out of the guard's drop after all.
    #[test]
    fn a_waker_panic_payload_that_panics_on_drop_does_not_unwind_out_of_the_guard() {
        struct PanicsOnDrop;
        impl Drop for PanicsOnDrop {
            fn drop(&mut self) {
                if !std::thread::panicking() {
                    panic!("payload drop");
                }
            }
        }
        struct BadPayloadWaker;
        impl std::task::Wake for BadPayloadWaker {
            fn wake(self: std::sync::Arc<Self>) {
                std::panic::panic_any(PanicsOnDrop);
            }
        }
        drop_an_armed_guard_woken_by(std::sync::Arc::new(BadPayloadWaker));
    }

    /// Regression test (found by an audit): a gRPC-Web stream whose trailer frame (its
    /// status) was out, but whose body had not said it was over (a proxy relaying bytes, a
    /// body that does not report `is_end_stream`), got a second trailer frame, status 4, from
    /// a cut before its end: the browser read two statuses. Its status is out, so a cut just
    /// ends it.
    #[test]
    fn a_grpc_web_stream_whose_trailer_frame_is_out_gets_no_second_one() {
        use futures_util::StreamExt;
        for text in [false, true] {
            let (ctx, handle) = Context::background().with_cancel();
            let (ctx2, cancel) = ctx.with_cancel();
            let encode = |b: &'static [u8]| {
                Bytes::from(if text {
                    protocol::base64(b).into_bytes()
                } else {
                    b.to_vec()
                })
            };
            let frames = [
                encode(b"\0\0\0\0\x02hi"),
                encode(b"\x80\0\0\0\x0fgrpc-status:0\r\n"),
            ];
            let inner = http_body_util::StreamBody::new(
                futures_util::stream::iter(frames.map(|f| Ok::<_, BoxError>(Frame::data(f))))
                    .chain(futures_util::stream::pending()),
            );
            let watch = Watch {
                ctx: ctx2.clone(),
                cut: true,
                enter: true,
                sent: None,
                end: End::WebTrailers { text },
                finish_known: false,
            };
            let guard = Some(DropGuard::armed(handle));
            let mut body = Box::pin(ContextBody::wrap(inner, watch, guard, Complete::AtEnd));
            for _ in 0..2 {
                assert!(matches!(poll_once(&mut body), Poll::Ready(Some(Ok(f))) if f.is_data()));
            }
            cancel.cancel();
            match poll_once(&mut body) {
                Poll::Ready(None) => {}
                Poll::Ready(Some(Ok(f))) => panic!("text {text}: a second trailer frame {f:?}"),
                other => panic!("text {text}: {other:?}"),
            }
            assert!(body.is_end_stream());
            drop(body);
            let cause = ctx.cause().unwrap();
            assert!(cause.downcast_ref::<RequestDropped>().is_none(), "{cause}");
        }
    }

    #[test]
    fn grpc_stream_cut_with_status_4_and_guard_disarmed() {
        let (ctx, handle) = Context::background().with_timeout(std::time::Duration::ZERO);
        let mut body = pending_body(&ctx, handle, true);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let frame = rt.block_on(poll_fn(|cx| body.as_mut().poll_frame(cx)));
        let trailers = frame.unwrap().unwrap().into_trailers().unwrap();
        assert_eq!(protocol::grpc_status_of(&trailers), Some(4));
        assert!(body.is_end_stream());
        drop(body);
        let cause = ctx.cause().unwrap();
        assert!(cause.downcast_ref::<RequestDropped>().is_none());
    }

    #[test]
    fn body_dropped_before_its_end_cancels_with_request_dropped() {
        let (ctx, handle) = Context::background().with_cancel();
        let body = pending_body(&ctx, handle, false);
        assert!(!ctx.is_done());
        drop(body);
        let cause = ctx.cause().unwrap();
        assert!(cause
            .downcast_ref::<RequestDropped>()
            .unwrap()
            .while_streaming());
    }
}
