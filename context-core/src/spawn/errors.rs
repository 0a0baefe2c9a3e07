//! Every error of the spawning wing: [`JoinError`] (joining gave no value), [`MemberFailed`]
//! (the cause a failing group member leaves), [`LimitError`] (a bad group limit) and
//! [`SpawnError`] (the work could not be admitted), plus the panic-payload helpers.

use std::any::Any;
use std::error::Error as StdError;
use std::fmt;
use std::panic::Location;
// Not a synchronisation point (it is never locked while shared), so std's, not `crate::sync`'s:
// it only makes a panic payload `Sync`.
use std::sync::{Mutex, PoisonError};

pub(crate) use crate::unwind::Payload;

/// The best-effort message of a panic payload (`&str` and `String` payloads, as `panic!` makes).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        Some(s)
    } else {
        payload.downcast_ref::<String>().map(String::as_str)
    }
}

/// The message shown when spawning a future finds no tokio runtime.
pub(crate) const NO_RUNTIME: &str = "go!: spawning a future needs a tokio runtime, and this \
     thread is not inside one. Call it from async code running on tokio (`#[tokio::main]`, \
     `Runtime::block_on`) or after `Handle::enter()`; or, for blocking work, spawn a call that \
     is not a future, which runs on an OS thread";

// ===== JoinError =====

/// Why joining spawned work gave no value: it panicked, it never ran (the OS refused a thread,
/// or a failed [`Group`](crate::Group) dropped it unstarted), its runtime dropped it before it
/// finished, or (a group member) it failed and its error went to the group.
///
/// A panic is never lost: [`into_panic`](JoinError::into_panic) gives the payload back, so
/// [`std::panic::resume_unwind`] can re-raise it on the joining side.
///
/// Cancelling the work's context does **not** make a `JoinError`: cancellation is cooperative,
/// as in Go, and the work returns whatever it returns when it sees its context is done (for
/// example `Err(Error::Canceled)`).
///
/// # Examples
///
/// ```
/// use go_context::go;
///
/// fn check(n: u32) -> u32 {
///     if n > 5 {
///         std::panic::panic_any(n);
///     }
///     n
/// }
/// let handle = go!(check(7));
/// let err = handle.join().unwrap_err();
/// assert!(err.is_panic());
/// assert_eq!(*err.into_panic().downcast::<u32>().unwrap(), 7);
/// ```
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    /// The payload sits in a `Mutex` only to make `JoinError` `Sync` (so it fits in a
    /// `Box<dyn Error + Send + Sync>`) without `unsafe`; it is never locked while shared.
    Panic(Mutex<Payload>),
    /// Dropped before it finished; the text says by whom.
    Cancelled(&'static str),
    /// The OS refused a thread: the work never ran. The OS error is kept as its kind and text,
    /// so `JoinError` stays `UnwindSafe` (`io::Error` is not).
    Refused(std::io::ErrorKind, String),
    /// A group member that returned `Err` or panicked: that went to the group's `wait`.
    Failed,
}

impl JoinError {
    pub(crate) fn panic(payload: Payload) -> JoinError {
        JoinError {
            repr: Repr::Panic(Mutex::new(payload)),
        }
    }

    pub(crate) fn cancelled(why: &'static str) -> JoinError {
        JoinError {
            repr: Repr::Cancelled(why),
        }
    }

    pub(crate) fn refused(e: std::io::Error) -> JoinError {
        JoinError {
            repr: Repr::Refused(e.kind(), e.to_string()),
        }
    }

    pub(crate) fn failed() -> JoinError {
        JoinError { repr: Repr::Failed }
    }

    /// Whether the work panicked.
    ///
    /// ```
    /// use go_context::go;
    ///
    /// fn boom() -> u32 {
    ///     panic!("boom")
    /// }
    /// let err = go!(boom()).join().unwrap_err();
    /// assert!(err.is_panic());
    /// assert!(!err.is_cancelled());
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// Whether the work was dropped before it finished: a task whose runtime shut down, or a
    /// group member dropped unstarted because another member had failed or its group was
    /// dropped without waiting.
    ///
    /// ```
    /// # #[cfg(feature = "tokio")] {
    /// use go_context::go;
    /// use std::time::Duration;
    ///
    /// let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    /// let handle = rt.block_on(async {
    ///     go!(tokio::time::sleep(Duration::from_secs(3600)))
    /// });
    /// drop(rt); // drops the task unfinished
    /// assert!(handle.join().unwrap_err().is_cancelled());
    /// # }
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled(_))
    }

    /// Whether the work never ran because the OS refused to start a thread for it (see
    /// [`os_error`](JoinError::os_error)).
    ///
    /// ```
    /// use go_context::go;
    ///
    /// // Threads are normally granted:
    /// assert!(go!(|_ctx| 1).join().is_ok());
    /// ```
    pub fn is_refused(&self) -> bool {
        matches!(self.repr, Repr::Refused(..))
    }

    /// The OS error that refused the thread (its kind and message), if
    /// [`is_refused`](JoinError::is_refused).
    ///
    /// ```
    /// use go_context::go;
    ///
    /// assert!(go!(|_ctx| -> () { panic!("no") }).join().unwrap_err().os_error().is_none());
    /// ```
    pub fn os_error(&self) -> Option<std::io::Error> {
        match &self.repr {
            Repr::Refused(kind, message) => Some(std::io::Error::new(*kind, message.clone())),
            _ => None,
        }
    }

    /// Whether this was a [`Group`](crate::Group) member that returned `Err` or panicked: the
    /// error (or panic) went to the group, and [`Group::wait`](crate::Group::wait) reports it.
    ///
    /// ```
    /// use go_context::{Context, Group};
    ///
    /// let group: Group = Group::new(&Context::background());
    /// let member = group.spawn_blocking(|_| Err::<(), _>("no".into()));
    /// assert!(member.join().unwrap_err().is_failed());
    /// assert_eq!(group.wait().unwrap_err().to_string(), "no");
    /// ```
    pub fn is_failed(&self) -> bool {
        matches!(self.repr, Repr::Failed)
    }

    /// The panic's message, if the payload is a string (as `panic!("...")` makes).
    ///
    /// ```
    /// use go_context::go;
    ///
    /// fn fail(disk: u32) -> bool {
    ///     panic!("disk {disk} failed")
    /// }
    /// let err = go!(fail(3)).join().unwrap_err();
    /// assert_eq!(err.panic_message(), Some("disk 3 failed".to_string()));
    /// ```
    pub fn panic_message(&self) -> Option<String> {
        match &self.repr {
            Repr::Panic(p) => {
                let p = p.lock().unwrap_or_else(PoisonError::into_inner);
                panic_message(&**p).map(str::to_owned)
            }
            _ => None,
        }
    }

    /// The panic payload, to re-raise with [`std::panic::resume_unwind`].
    ///
    /// # Panics
    ///
    /// If the error is not a panic ([`is_panic`](JoinError::is_panic) is `false`); see
    /// [`try_into_panic`](JoinError::try_into_panic).
    ///
    /// ```
    /// use go_context::go;
    ///
    /// fn boom() -> u32 {
    ///     panic!("boom")
    /// }
    /// let err = go!(boom()).join().unwrap_err();
    /// let caught = std::panic::catch_unwind(|| std::panic::resume_unwind(err.into_panic()));
    /// assert_eq!(*caught.unwrap_err().downcast::<&str>().unwrap(), "boom");
    /// ```
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self.try_into_panic() {
            Ok(payload) => payload,
            Err(_) => panic!("JoinError::into_panic on an error that is not a panic"),
        }
    }

    /// The panic payload, or the error itself if it is not a panic.
    ///
    /// ```
    /// use go_context::go;
    ///
    /// fn boom() -> u32 {
    ///     panic!("boom")
    /// }
    /// let err = go!(boom()).join().unwrap_err();
    /// assert!(err.try_into_panic().is_ok());
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(p) => Ok(p.into_inner().unwrap_or_else(PoisonError::into_inner)),
            repr => Err(JoinError { repr }),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Panic(_) => match self.panic_message() {
                Some(msg) => write!(f, "spawned work panicked: {msg}"),
                None => f.write_str("spawned work panicked"),
            },
            Repr::Cancelled(why) => write!(f, "spawned work was dropped before it finished: {why}"),
            Repr::Refused(_, e) => {
                write!(f, "the OS refused a thread for the spawned work: {e}")
            }
            Repr::Failed => f.write_str("the group member failed; its error is the group's"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Panic(_) => f
                .debug_tuple("JoinError::Panic")
                .field(&self.panic_message().unwrap_or_else(|| "..".into()))
                .finish(),
            Repr::Cancelled(why) => f.debug_tuple("JoinError::Cancelled").field(why).finish(),
            Repr::Refused(kind, e) => f
                .debug_tuple("JoinError::Refused")
                .field(kind)
                .field(e)
                .finish(),
            Repr::Failed => f.write_str("JoinError::Failed"),
        }
    }
}

impl StdError for JoinError {}

// ===== SpawnError =====

/// Why a `try_spawn` did not start the work: `GoHandle::try_spawn`
/// found no tokio runtime, or a [`Group`](crate::Group)'s `try_spawn`/`try_spawn_blocking`
/// found the limit reached or the group failed. The work was dropped unstarted.
///
/// ```
/// use go_context::{Context, GoHandle};
///
/// # #[cfg(feature = "tokio")] {
/// let err = GoHandle::try_spawn(&Context::background(), |_| async {}).unwrap_err();
/// assert!(err.is_no_runtime());
/// assert!(err.to_string().contains("tokio runtime"));
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpawnError {
    kind: SpawnKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SpawnKind {
    NoRuntime,
    Full,
    Failed,
}

impl SpawnError {
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) const NO_RUNTIME: SpawnError = SpawnError {
        kind: SpawnKind::NoRuntime,
    };
    pub(crate) const FULL: SpawnError = SpawnError {
        kind: SpawnKind::Full,
    };
    pub(crate) const FAILED: SpawnError = SpawnError {
        kind: SpawnKind::Failed,
    };

    /// A future was spawned outside a tokio runtime.
    ///
    /// ```
    /// # #[cfg(feature = "tokio")] {
    /// use go_context::{Context, GoHandle};
    /// assert!(GoHandle::try_spawn(&Context::background(), |_| async {}).unwrap_err().is_no_runtime());
    /// # }
    /// ```
    pub fn is_no_runtime(&self) -> bool {
        self.kind == SpawnKind::NoRuntime
    }

    /// The group's limit was reached (Go's `TryGo` returning false).
    ///
    /// ```
    /// use go_context::{Context, Group};
    ///
    /// let group: Group = Group::new(&Context::background());
    /// group.set_limit(1).unwrap();
    /// let first = group.try_spawn_blocking(|ctx| { ctx.wait(); Ok(()) }).unwrap();
    /// assert!(group.try_spawn_blocking(|_| Ok(())).unwrap_err().is_full());
    /// first.cancel();
    /// group.wait().unwrap();
    /// ```
    pub fn is_full(&self) -> bool {
        self.kind == SpawnKind::Full
    }

    /// A member of the (fail-fast) group has already failed, so new members are not started.
    ///
    /// ```
    /// use go_context::{Context, Group};
    ///
    /// let group: Group = Group::new(&Context::background());
    /// group.spawn_blocking(|_| Err::<(), _>("down".into())).join().unwrap_err();
    /// assert!(group.try_spawn_blocking(|_| Ok(())).unwrap_err().is_failed());
    /// assert!(group.wait().is_err());
    /// ```
    pub fn is_failed(&self) -> bool {
        self.kind == SpawnKind::Failed
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            SpawnKind::NoRuntime => NO_RUNTIME,
            SpawnKind::Full => "the group's limit is reached; the member was not started",
            SpawnKind::Failed => "a member of the group has failed; the member was not started",
        })
    }
}

impl StdError for SpawnError {}

// ===== MemberFailed =====

/// The cause a [`Group`](crate::Group)'s context is cancelled with when a member fails: the
/// error's message (or the panic's), which member it was (its sequence number: 0 for the first
/// member spawned into the group) and where that member was started. Read it with
/// `ctx.cause()?.downcast_ref::<MemberFailed>()`.
///
/// ```
/// use go_context::{Context, Group, MemberFailed};
///
/// let group: Group = Group::new(&Context::background());
/// let ctx = group.context().clone();
/// let line = line!() + 2;
/// for host in ["a", "b", "c"] {
///     group.spawn_blocking(move |_| if host == "b" { Err("no route to host".into()) } else { Ok(()) });
/// }
/// assert!(group.wait().is_err());
///
/// let cause = ctx.cause().unwrap();
/// let failed = cause.downcast_ref::<MemberFailed>().unwrap();
/// assert_eq!(failed.message(), "no route to host");
/// assert_eq!(failed.member(), 1); // the second member, "b"
/// assert!(!failed.is_panic());
/// assert_eq!(failed.location().line(), line);
/// ```
#[derive(Clone)]
pub struct MemberFailed {
    message: String,
    panicked: bool,
    member: u64,
    location: &'static Location<'static>,
}

impl MemberFailed {
    pub(crate) fn new(
        message: String,
        panicked: bool,
        member: u64,
        location: &'static Location<'static>,
    ) -> MemberFailed {
        MemberFailed {
            message,
            panicked,
            member,
            location,
        }
    }

    /// The member's error message, or its panic message.
    ///
    /// ```
    /// use go_context::{Context, Group, MemberFailed};
    ///
    /// let group: Group = Group::new(&Context::background());
    /// let ctx = group.context().clone();
    /// group.spawn_blocking(|_| Err::<(), _>("bad input".into()));
    /// let _ = group.wait();
    /// let cause = ctx.cause().unwrap();
    /// assert_eq!(cause.downcast_ref::<MemberFailed>().unwrap().message(), "bad input");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the member panicked (rather than returning `Err`).
    ///
    /// ```
    /// use go_context::{Context, Group, MemberFailed};
    ///
    /// let group: Group = Group::new(&Context::background());
    /// let ctx = group.context().clone();
    /// group.spawn_blocking(|_| -> Result<(), _> { panic!("oops") });
    /// let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| group.wait()));
    /// assert!(caught.is_err()); // wait re-raised the panic
    /// let cause = ctx.cause().unwrap();
    /// assert!(cause.downcast_ref::<MemberFailed>().unwrap().is_panic());
    /// assert_eq!(cause.to_string(), "group member panicked: oops");
    /// ```
    pub fn is_panic(&self) -> bool {
        self.panicked
    }

    /// Which member failed: its sequence number in the group, counting every `spawn`,
    /// `spawn_blocking` and `go!(group => ..)` call from 0, in call order (also the members
    /// that were queued or refused).
    ///
    /// ```
    /// use go_context::{Context, Group, MemberFailed};
    ///
    /// let group: Group = Group::new(&Context::background());
    /// let ctx = group.context().clone();
    /// for i in 0..3 {
    ///     group.spawn_blocking(move |_| if i == 2 { Err("third".into()) } else { Ok(()) });
    /// }
    /// let _ = group.wait();
    /// assert_eq!(ctx.cause().unwrap().downcast_ref::<MemberFailed>().unwrap().member(), 2);
    /// ```
    pub fn member(&self) -> u64 {
        self.member
    }

    /// Where the failing member was started (the `spawn`, `spawn_blocking` or `go!` call).
    ///
    /// ```
    /// use go_context::{Context, Group, MemberFailed};
    ///
    /// let group: Group = Group::new(&Context::background());
    /// let ctx = group.context().clone();
    /// group.spawn_blocking(|_| Err::<(), _>("x".into()));
    /// let _ = group.wait();
    /// let cause = ctx.cause().unwrap();
    /// assert_eq!(cause.downcast_ref::<MemberFailed>().unwrap().location().file(), file!());
    /// ```
    pub fn location(&self) -> &'static Location<'static> {
        self.location
    }
}

impl fmt::Display for MemberFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.panicked {
            write!(f, "group member panicked: {}", self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl fmt::Debug for MemberFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberFailed")
            .field("message", &self.message)
            .field("panicked", &self.panicked)
            .field("member", &self.member)
            .field("location", &format_args!("{}", self.location))
            .finish()
    }
}

impl StdError for MemberFailed {}

// ===== LimitError =====

/// Why [`Group::set_limit`](crate::Group::set_limit) (or
/// [`set_fail_fast`](crate::Group::set_fail_fast)) refused a setting.
///
/// ```
/// use go_context::{Context, Group, LimitError};
///
/// let group: Group = Group::new(&Context::background());
/// assert_eq!(group.set_limit(0), Err(LimitError::Zero));
/// let member = group.spawn_blocking(|ctx| {
///     ctx.wait();
///     Ok(())
/// });
/// assert_eq!(group.set_limit(4), Err(LimitError::MembersActive));
/// member.cancel();
/// group.wait().unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitError {
    /// A limit of 0 would never start a member: use at least 1.
    Zero,
    /// Members are running or queued: set it before the first member.
    MembersActive,
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitError::Zero => "a group limit of 0 would never start a member; use at least 1",
            LimitError::MembersActive => {
                "group settings can only be changed while no member is running or queued"
            }
        })
    }
}

impl StdError for LimitError {}
