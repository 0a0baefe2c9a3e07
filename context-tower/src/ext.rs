//! [`RequestContextExt`]: `req.context()` on requests.

use go_context::Context;

/// The request's context: `req.context()` and `req.set_context(ctx)` on `http::Request`,
/// `http::request::Parts` (and `tonic::Request` with feature `tonic`).
///
/// On a server behind [`ContextLayer`](crate::ContextLayer) it is the request's context; on a
/// client it is the context [`PropagateLayer`](crate::PropagateLayer) sends and races. With
/// none set, it is `Context::current()`.
///
/// ```
/// use context_tower::RequestContextExt;
/// use go_context::Context;
///
/// let mut req = http::Request::new(());
/// assert_eq!(format!("{:?}", req.context()), "background");
/// req.set_context(Context::background().with_value(7u32));
/// assert_eq!(req.context().value::<u32>(), Some(&7));
/// let (parts, ()) = req.into_parts();
/// assert_eq!(parts.context().value::<u32>(), Some(&7));
/// ```
pub trait RequestContextExt {
    /// The request's context, else `Context::current()`.
    ///
    /// ```
    /// # use context_tower::RequestContextExt;
    /// let req = http::Request::new(());
    /// assert!(!req.context().is_done());
    /// ```
    fn context(&self) -> Context;

    /// Sets the request's context (for a client call: the one whose deadline is sent).
    ///
    /// ```
    /// # use context_tower::RequestContextExt;
    /// # use go_context::Context;
    /// let mut req = http::Request::new(());
    /// let (ctx, _cancel) = Context::background().with_cancel();
    /// req.set_context(ctx);
    /// assert_eq!(format!("{:?}", req.context()), "background.with_cancel");
    /// ```
    fn set_context(&mut self, ctx: Context);
}

pub(crate) fn from_extensions(ext: &http::Extensions) -> Context {
    ext.get::<Context>()
        .cloned()
        .unwrap_or_else(Context::current)
}

impl<B> RequestContextExt for http::Request<B> {
    fn context(&self) -> Context {
        from_extensions(self.extensions())
    }

    fn set_context(&mut self, ctx: Context) {
        self.extensions_mut().insert(ctx);
    }
}

impl RequestContextExt for http::request::Parts {
    fn context(&self) -> Context {
        from_extensions(&self.extensions)
    }

    fn set_context(&mut self, ctx: Context) {
        self.extensions.insert(ctx);
    }
}
