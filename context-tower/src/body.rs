//! [`ContextBody`]: a response body that ends with its request's context.
//!
//! Used on both sides: the server wraps the handler's body (the deadline covers the stream,
//! the handler's context is current while the stream is polled, and a body dropped before its
//! end cancels the context with [`RequestDropped`]); the client wraps the response body (the
//! stream ends when the call's context does, and a late `CANCELLED` becomes
//! `DEADLINE_EXCEEDED`). When the context ends the stream, gRPC gets trailers with the status
//! (`4` or `1`) and HTTP an error frame, [`ContextDone`], so the peer sees an aborted stream.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use bytes::Bytes;
use go_context::{BoxError, CancelHandle, Context, Done};
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
    cause: RequestDropped,
}

impl DropGuard {
    pub(crate) fn armed(handle: CancelHandle) -> DropGuard {
        DropGuard {
            handle: Some(handle),
            cause: RequestDropped::while_handling(),
        }
    }

    /// The request is complete: dropping the guard now cancels without a cause.
    pub(crate) fn disarm(&mut self) {
        drop(self.handle.take());
    }

    /// The handler answered; the guard now covers the body.
    pub(crate) fn streaming(mut self) -> DropGuard {
        self.cause = RequestDropped::during_body();
        self
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.cancel_with_cause(self.cause);
        }
    }
}

/// How a [`ContextBody`] treats the context it carries.
#[derive(Debug)]
pub(crate) struct Watch {
    pub(crate) ctx: Context,
    /// End the stream when `ctx` is done.
    pub(crate) cut: bool,
    /// Make `ctx` current while the inner body is polled (server: the handler's stream).
    pub(crate) enter: bool,
    /// Rewrite a `CANCELLED` in the trailers that arrives after this deadline (client: the
    /// deadline it sent).
    pub(crate) fix_cancelled: Option<Instant>,
    pub(crate) grpc: bool,
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
            finished: bool,
        },
        Text { text: Option<&'static str> },
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
    pub(crate) fn wrap(body: B, watch: Watch, guard: Option<DropGuard>) -> ContextBody<B> {
        let mut guard = guard.map(DropGuard::streaming);
        let finished = body.is_end_stream();
        if finished {
            if let Some(g) = guard.as_mut() {
                g.disarm();
            }
        }
        ContextBody {
            kind: Kind::Inner {
                body,
                watch,
                done: None,
                guard,
                finished,
            },
        }
    }
}

fn finish(finished: &mut bool, guard: &mut Option<DropGuard>) {
    *finished = true;
    if let Some(g) = guard.as_mut() {
        g.disarm();
    }
}

/// The last frame of a stream its context ended.
fn cut<D>(watch: &Watch) -> Result<Frame<D>, BoxError> {
    if watch.grpc {
        let (err, msg) = protocol::done_error(&watch.ctx);
        Ok(Frame::trailers(protocol::grpc_status_headers(
            protocol::grpc_code(err),
            &msg,
        )))
    } else {
        Err(Box::new(ContextDone::of(&watch.ctx)))
    }
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
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Text { text } => Poll::Ready(
                text.take()
                    .map(|t| Ok(Frame::data(Bytes::from_static(t.as_bytes()).into()))),
            ),
            KindProj::Inner {
                mut body,
                watch,
                done,
                guard,
                finished,
            } => {
                if *finished {
                    return Poll::Ready(None);
                }
                if watch.cut && watch.ctx.is_done() {
                    finish(finished, guard);
                    return Poll::Ready(Some(cut(watch)));
                }
                let polled = {
                    let _current = watch.enter.then(|| watch.ctx.enter());
                    body.as_mut().poll_frame(cx)
                };
                match polled {
                    Poll::Ready(Some(Ok(mut frame))) => {
                        if let Some(trailers) = frame.trailers_mut() {
                            if let Some(deadline) = &watch.fix_cancelled {
                                protocol::fix_late_cancelled(trailers, *deadline);
                            }
                            finish(finished, guard);
                        } else if body.is_end_stream() {
                            finish(finished, guard);
                        }
                        Poll::Ready(Some(Ok(frame)))
                    }
                    Poll::Ready(Some(Err(e))) => {
                        finish(finished, guard);
                        Poll::Ready(Some(Err(e.into())))
                    }
                    Poll::Ready(None) => {
                        finish(finished, guard);
                        Poll::Ready(None)
                    }
                    Poll::Pending => {
                        if watch.cut {
                            let done = done.get_or_insert_with(|| Box::pin(watch.ctx.done()));
                            if done.as_mut().poll(cx).is_ready() {
                                finish(finished, guard);
                                return Poll::Ready(Some(cut(watch)));
                            }
                        }
                        Poll::Pending
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Text { text } => text.is_none(),
            Kind::Inner { finished, .. } => *finished,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Text { text } => SizeHint::with_exact(text.map_or(0, |t| t.len() as u64)),
            // A cut only shortens the stream (gRPC adds trailers, which no length counts; HTTP
            // ends it with an error), so the inner hint stays true for every byte we send.
            Kind::Inner { body, .. } => body.size_hint(),
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
            fix_cancelled: None,
            grpc,
        };
        Box::pin(ContextBody::wrap(
            inner,
            watch,
            Some(DropGuard::armed(handle)),
        ))
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
