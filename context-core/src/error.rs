//! Why a context is done: the two-valued [`Error`] that code matches on, and the richer
//! [`Cause`] that says why and where.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::panic::Location;
use std::ptr::NonNull;
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

/// What a node (and a timer entry) stores of a cause: one word. The [`Error`] comes from the
/// node's own state, which every node a cancellation reaches shares with the cancelled one.
///
/// The word is a tagged pointer: a plain cause is its `&'static Location` (low bit clear); a
/// custom one is an `Arc<Custom>` (from `Arc::into_raw`, low bit set) holding the location and
/// the error, and the `CauseData` owns one strong count of it. Both pointees are aligned to at
/// least 8 bytes, so the low bit is free.
pub(crate) struct CauseData {
    ptr: NonNull<()>,
    /// Owns an `Arc<Custom>` count when tagged (for drop check and auto traits' sake).
    _custom: PhantomData<Arc<Custom>>,
}

/// A custom cause: where it came from and the error given.
struct Custom {
    location: &'static Location<'static>,
    error: BoxError,
}

/// The tag of a custom cause's pointer.
const CUSTOM: usize = 1;

// The tag needs the low bit of both pointees' addresses clear.
const _: () = assert!(
    std::mem::align_of::<Location<'static>>() > CUSTOM && std::mem::align_of::<Custom>() > CUSTOM
);

// SAFETY: a `CauseData` is a `&'static Location` (`Sync`) or an `Arc<Custom>` (`Custom` is
// `Send + Sync`: a `BoxError` is), both of which may be sent and shared across threads.
unsafe impl Send for CauseData {}
// SAFETY: as for `Send`; `&CauseData` gives only shared access to either.
unsafe impl Sync for CauseData {}

impl Clone for CauseData {
    fn clone(&self) -> CauseData {
        if let Some(custom) = self.custom_ptr() {
            // SAFETY: `custom` is `Arc::into_raw` of an `Arc<Custom>` of which `self` owns a
            // count, so it is alive; the new count is owned by the clone.
            unsafe { Arc::increment_strong_count(custom) };
        }
        CauseData {
            ptr: self.ptr,
            _custom: PhantomData,
        }
    }
}

impl Drop for CauseData {
    fn drop(&mut self) {
        if let Some(custom) = self.custom_ptr() {
            // SAFETY: `self` owns one count of this `Arc<Custom>` (from `into_raw` or `clone`)
            // and gives it back here, once.
            drop(unsafe { Arc::from_raw(custom) });
        }
    }
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
        let ptr = NonNull::from(location).cast::<()>();
        debug_assert_eq!(ptr.addr().get() & CUSTOM, 0, "a `Location` is aligned");
        CauseData {
            ptr,
            _custom: PhantomData,
        }
    }

    pub(crate) fn custom(error: BoxError, location: &'static Location<'static>) -> CauseData {
        let raw = Arc::into_raw(Arc::new(Custom { location, error }));
        let ptr = NonNull::new(raw.cast_mut())
            .expect("an `Arc` is never null")
            .cast::<()>();
        debug_assert_eq!(ptr.addr().get() & CUSTOM, 0, "a `Custom` is aligned");
        CauseData {
            ptr: ptr.map_addr(|a| a | CUSTOM),
            _custom: PhantomData,
        }
    }

    /// The `Arc<Custom>` pointer, untagged, if the cause is custom.
    #[inline]
    fn custom_ptr(&self) -> Option<*const Custom> {
        (self.ptr.addr().get() & CUSTOM != 0).then(|| {
            // Clearing the low bit of a non-null, 8-aligned address keeps it non-null.
            self.ptr
                .as_ptr()
                .map_addr(|a| a & !CUSTOM)
                .cast::<Custom>()
                .cast_const()
        })
    }

    #[inline]
    fn custom_ref(&self) -> Option<&Custom> {
        // SAFETY: `self` owns a count of the `Arc<Custom>`: alive at least as long as `self`.
        self.custom_ptr().map(|custom| unsafe { &*custom })
    }

    /// The custom error, if any.
    #[inline]
    fn error(&self) -> Option<&BoxError> {
        self.custom_ref().map(|c| &c.error)
    }

    #[inline]
    fn location(&self) -> &'static Location<'static> {
        match self.custom_ref() {
            Some(c) => c.location,
            // SAFETY: untagged, the word is a `&'static Location` (`plain`).
            None => unsafe { self.ptr.cast::<Location<'static>>().as_ref() },
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
        match self.data.error() {
            None => &self.err,
            Some(e) => &**e,
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
    /// [`Error`] and `E` is [`Error`]), also through a cause passed on from another context.
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
    ///
    /// // A cause passed on to another context is looked through, as Go's `errors.As` does.
    /// let (other, cancel_other) = Context::background().with_cancel();
    /// cancel_other.cancel_with_cause(ctx.cause().unwrap());
    /// assert!(other.cause().unwrap().downcast_ref::<io::Error>().is_some());
    /// ```
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        let error = self.error();
        match error.downcast_ref::<E>() {
            Some(e) => Some(e),
            // Passed on from another context (`cancel_with_cause(other.cause()..)`): the
            // error it holds, however many times it was passed on.
            None => error.downcast_ref::<Cause>()?.downcast_ref::<E>(),
        }
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
        self.data.error().is_none()
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
        self.data.location()
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
        if let Some(custom) = self.data.error() {
            d.field("error", custom);
        }
        d.field("location", &format_args!("{}", self.data.location()))
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
        match self.data.error() {
            None => None,
            Some(e) => e.source(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The tagged word of `CauseData` (Miri runs these: `.ci/steps/40-miri.sh`).

    use std::panic::Location;
    use std::sync::{Arc, Weak};

    use super::{BoxError, Cause, CauseData, Error};

    #[derive(Debug)]
    struct Tracked(#[allow(dead_code)] Arc<()>);

    impl std::fmt::Display for Tracked {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("tracked")
        }
    }

    impl std::error::Error for Tracked {}

    fn tracked() -> (BoxError, Weak<()>) {
        let token = Arc::new(());
        let weak = Arc::downgrade(&token);
        (Box::new(Tracked(token)), weak)
    }

    #[test]
    fn a_plain_cause_is_its_location() {
        let here = Location::caller();
        let cause = Cause::from_parts(Error::Canceled, CauseData::plain(here));
        assert!(cause.is_plain());
        assert_eq!(cause.location(), here);
        assert_eq!(cause.to_string(), Error::Canceled.to_string());
        let copy = cause.clone();
        drop(cause);
        assert_eq!(copy.location(), here);
    }

    #[test]
    fn a_custom_cause_is_shared_by_its_clones_and_freed_with_the_last() {
        let here = Location::caller();
        let (error, alive) = tracked();
        let data = CauseData::custom(error, here);
        let clones: Vec<CauseData> = (0..4).map(|_| data.clone()).collect();
        drop(data);
        let threads: Vec<_> = clones
            .into_iter()
            .map(|data| {
                std::thread::spawn(move || {
                    let cause = Cause::from_parts(Error::DeadlineExceeded, data);
                    assert!(!cause.is_plain());
                    assert_eq!(cause.location(), here);
                    assert_eq!(cause.to_string(), "tracked");
                    assert!(cause.downcast_ref::<Tracked>().is_some());
                    assert!(format!("{cause:?}").contains("Tracked"));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(alive.upgrade().is_none(), "freed with the last clone");
    }
}
