//! Why a context is done: the two-valued [`Error`] that code matches on, and the richer
//! [`Cause`] that says why and where.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::panic::Location;
use std::sync::Arc;

/// The error a done context reports: Go's `context.Canceled` and `context.DeadlineExceeded`.
///
/// It is returned by [`Context::err`](crate::Context::err), [`Context::check`](crate::Context::check),
/// the [`done`](crate::Context::done) future and the blocking waits. It is `Copy`, so it can be
/// matched and compared freely; the richer "why and where" lives in [`Cause`].
///
/// # Examples
///
/// ```
/// use go_context::{Context, Error};
///
/// let (ctx, cancel) = Context::background().with_cancel();
/// cancel.cancel();
/// assert_eq!(ctx.err(), Some(Error::Canceled));
/// assert_eq!(Error::Canceled.to_string(), "context canceled");
/// assert!(Error::DeadlineExceeded.is_timeout());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// The context was cancelled: a [`CancelHandle`](crate::CancelHandle) was used or dropped,
    /// or an ancestor was cancelled.
    Canceled,
    /// The context's deadline (or an ancestor's) passed.
    DeadlineExceeded,
}

impl Error {
    /// Whether this is [`Error::DeadlineExceeded`], like Go's `net.Error.Timeout()`.
    ///
    /// ```
    /// use go_context::Error;
    /// assert!(Error::DeadlineExceeded.is_timeout());
    /// assert!(!Error::Canceled.is_timeout());
    /// ```
    pub const fn is_timeout(self) -> bool {
        matches!(self, Error::DeadlineExceeded)
    }

    /// Go's message for this error: `context canceled` or `context deadline exceeded`.
    ///
    /// ```
    /// use go_context::Error;
    /// assert_eq!(Error::DeadlineExceeded.as_str(), "context deadline exceeded");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Error::Canceled => "context canceled",
            Error::DeadlineExceeded => "context deadline exceeded",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl StdError for Error {}

/// `DeadlineExceeded` becomes [`io::ErrorKind::TimedOut`]; `Canceled` becomes
/// [`io::ErrorKind::Other`], never `Interrupted`, which std retries and would swallow.
///
/// ```
/// use go_context::Error;
/// use std::io;
///
/// let e: io::Error = Error::DeadlineExceeded.into();
/// assert_eq!(e.kind(), io::ErrorKind::TimedOut);
/// let e: io::Error = Error::Canceled.into();
/// assert_eq!(e.kind(), io::ErrorKind::Other);
/// assert_eq!(e.get_ref().unwrap().downcast_ref::<Error>(), Some(&Error::Canceled));
/// ```
impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match e {
            Error::DeadlineExceeded => io::ErrorKind::TimedOut,
            Error::Canceled => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// A boxed error: what a custom cause is made from. Anything that converts into it works as a
/// cause: `&str`, `String`, or any `std::error::Error + Send + Sync`.
///
/// ```
/// use go_context::{BoxError, Context};
///
/// let cause: BoxError = "quota exceeded".into();
/// let (ctx, cancel) = Context::background().with_cancel();
/// cancel.cancel_with_cause(cause);
/// assert_eq!(ctx.cause().unwrap().to_string(), "quota exceeded");
/// ```
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What a node stores of a cause (16 bytes): the [`Error`] comes from the node's own state,
/// which every node a cancellation reaches shares with the cancelled one.
#[derive(Clone)]
pub(crate) struct CauseData {
    location: &'static Location<'static>,
    custom: Option<Arc<BoxError>>,
}

/// Why a context is done, and who did it: Go's `context.Cause`, plus the source location.
///
/// A cause is the error given to [`CancelHandle::cancel_with_cause`](crate::CancelHandle::cancel_with_cause)
/// or to [`Context::with_deadline_cause`](crate::Context::with_deadline_cause), or else the plain
/// [`Error`]. It also records the source location of the `cancel` call (or, for a deadline or a
/// dropped [`CancelHandle`](crate::CancelHandle), of the call that created the context), so "why
/// was this cancelled, and by whom" always has an answer. Cloning is cheap (a reference count).
///
/// # Examples
///
/// ```
/// use go_context::{Context, Error};
///
/// let (ctx, cancel) = Context::background().with_cancel();
/// let (child, _child_cancel) = ctx.with_cancel();
/// cancel.cancel_with_cause("shutting down");
///
/// let cause = child.cause().unwrap();
/// assert_eq!(cause.to_string(), "shutting down");
/// assert_eq!(cause.err(), Error::Canceled);
/// assert_eq!(cause.location().file(), file!());
/// ```
#[derive(Clone)]
pub struct Cause {
    err: Error,
    data: CauseData,
}

impl CauseData {
    pub(crate) fn plain(location: &'static Location<'static>) -> CauseData {
        CauseData {
            location,
            custom: None,
        }
    }

    pub(crate) fn custom(error: BoxError, location: &'static Location<'static>) -> CauseData {
        CauseData {
            location,
            custom: Some(Arc::new(error)),
        }
    }
}

impl Cause {
    pub(crate) fn from_parts(err: Error, data: CauseData) -> Cause {
        Cause { err, data }
    }

    /// The error this cause holds: the custom error, or the plain [`Error`].
    ///
    /// ```
    /// use go_context::Context;
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// cancel.cancel();
    /// let cause = ctx.cause().unwrap();
    /// assert_eq!(cause.error().to_string(), "context canceled");
    /// ```
    pub fn error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        match &self.data.custom {
            None => &self.err,
            Some(e) => &***e,
        }
    }

    /// The [`Error`] the context reported with this cause: what [`Context::err`](crate::Context::err) says.
    ///
    /// ```
    /// use go_context::{Context, Error};
    /// use std::time::Instant;
    ///
    /// let (ctx, _cancel) = Context::background().with_deadline_cause(Instant::now(), "slow");
    /// assert_eq!(ctx.cause().unwrap().err(), Error::DeadlineExceeded);
    /// ```
    pub fn err(&self) -> Error {
        self.err
    }

    /// The custom error as type `E`, if the cause holds one of that type (or is the plain
    /// [`Error`] and `E` is [`Error`]).
    ///
    /// ```
    /// use go_context::{Context, Error};
    /// use std::io;
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// cancel.cancel_with_cause(io::Error::new(io::ErrorKind::BrokenPipe, "peer left"));
    /// let cause = ctx.cause().unwrap();
    /// assert_eq!(cause.downcast_ref::<io::Error>().unwrap().kind(), io::ErrorKind::BrokenPipe);
    /// assert!(cause.downcast_ref::<Error>().is_none());
    /// ```
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        self.error().downcast_ref::<E>()
    }

    /// Whether this cause is just the plain error, with no custom error given.
    ///
    /// ```
    /// use go_context::Context;
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// cancel.cancel();
    /// assert!(ctx.cause().unwrap().is_plain());
    /// ```
    pub fn is_plain(&self) -> bool {
        self.data.custom.is_none()
    }

    /// Where the cancellation came from: the `cancel` call, or for a deadline or a dropped
    /// handle, the call that created the context.
    ///
    /// ```
    /// use go_context::Context;
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let line = line!() + 1;
    /// cancel.cancel();
    /// assert_eq!(ctx.cause().unwrap().location().line(), line);
    /// ```
    pub fn location(&self) -> &'static Location<'static> {
        self.data.location
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.error(), f)
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Cause");
        d.field("err", &self.err);
        if let Some(custom) = &self.data.custom {
            d.field("error", custom);
        }
        d.field("location", &format_args!("{}", self.data.location))
            .finish()
    }
}

/// A `Cause` is transparent in an error chain: its `Display` is the message of the error it
/// holds, so `source()` skips that error and returns *its* source. This is std's convention (an
/// error shows its source's message or returns it from `source()`, never both), so a chain
/// printer shows each message once. The held error itself is [`Cause::error`] (or
/// [`Cause::downcast_ref`]).
///
/// ```
/// use go_context::Context;
/// use std::error::Error as _;
/// use std::{fmt, io};
///
/// #[derive(Debug)]
/// struct Shutdown(io::Error);
/// impl fmt::Display for Shutdown {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
///         f.write_str("shutting down")
///     }
/// }
/// impl std::error::Error for Shutdown {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
///
/// let (ctx, cancel) = Context::background().with_cancel();
/// cancel.cancel_with_cause(Shutdown(io::Error::other("disk full")));
/// let cause = ctx.cause().unwrap();
///
/// let mut chain = vec![cause.to_string()];
/// let mut next = cause.source();
/// while let Some(e) = next {
///     chain.push(e.to_string());
///     next = e.source();
/// }
/// assert_eq!(chain, ["shutting down", "disk full"]);
/// ```
impl StdError for Cause {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.data.custom {
            None => None,
            Some(e) => e.source(),
        }
    }
}
