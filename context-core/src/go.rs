//! The runtime side of `go!`: Go's `go` statement, with a child context, a join handle and no
//! lost panics.
//!
//! Work is spawned in one of two ways, chosen by `go!` from the *type* of the work:
//! - **a future** (anything [`IntoFuture`]) becomes a task on the caller's tokio runtime (feature
//!   `tokio`), with the child context made current through [`Context::scope`];
//! - **anything else** is a blocking call and runs on a new OS thread, with the child context
//!   made current through [`Context::enter`]. The rule is the same inside and outside a runtime:
//!   an OS thread is never taken from a pool whose size or shutdown you do not control. When the
//!   caller is inside a tokio runtime, the thread enters that runtime, so futures that the
//!   blocking code spawns (with `go!` or `tokio::spawn`) land on the same runtime.
//!
//! [`GoHandle::spawn_blocking`], [`GoHandle::spawn`] and [`GoHandle::try_spawn`] are the same
//! operations without the macro.

use std::any::Any;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
#[cfg(feature = "tokio")]
use std::future::IntoFuture;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Condvar, Mutex, PoisonError};
use std::task::{self, Poll, Waker};

use crate::sync::Arc;
use crate::{CancelHandle, Context};

/// A panic payload, as [`std::panic::catch_unwind`] returns it.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// The best-effort message of a panic payload (`&str` and `String` payloads, as `panic!` makes).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        Some(s)
    } else {
        payload.downcast_ref::<String>().map(String::as_str)
    }
}

// ===== JoinError =====

/// Why joining spawned work gave no value: it panicked, or (a task only) its runtime dropped
/// it before it finished.
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
/// use go_context::{go, Context};
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
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    Cancelled,
}

impl JoinError {
    pub(crate) fn panic(payload: Payload) -> JoinError {
        JoinError {
            repr: Repr::Panic(Mutex::new(payload)),
        }
    }

    #[cfg(feature = "tokio")]
    pub(crate) fn cancelled() -> JoinError {
        JoinError {
            repr: Repr::Cancelled,
        }
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

    /// Whether the work was a task that its runtime dropped before it finished (the runtime
    /// shut down). Threads are never dropped, so this is `false` for them.
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
        matches!(self.repr, Repr::Cancelled)
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
            Repr::Cancelled => None,
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
            Repr::Cancelled => Err(self),
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
            Repr::Cancelled => {
                f.write_str("spawned task was dropped before it finished (its runtime shut down)")
            }
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
            Repr::Cancelled => f.write_str("JoinError::Cancelled"),
        }
    }
}

impl StdError for JoinError {}

// ===== SpawnError =====

/// Spawning a future failed because the caller is not inside a tokio runtime; returned by
/// [`GoHandle::try_spawn`]. (`go!` and [`GoHandle::spawn`] panic with the same message.)
///
/// ```
/// use go_context::{Context, GoHandle};
///
/// let err = GoHandle::try_spawn(&Context::background(), |_| async {}).unwrap_err();
/// assert!(err.to_string().contains("tokio runtime"));
/// ```
#[cfg(feature = "tokio")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpawnError(());

#[cfg(feature = "tokio")]
pub(crate) const NO_RUNTIME: &str = "go!: spawning a future needs a tokio runtime, and this \
     thread is not inside one. Call it from async code running on tokio (`#[tokio::main]`, \
     `Runtime::block_on`) or after `Handle::enter()`; or, for blocking work, spawn a call that \
     is not a future, which runs on an OS thread";

#[cfg(feature = "tokio")]
impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(NO_RUNTIME)
    }
}

#[cfg(feature = "tokio")]
impl StdError for SpawnError {}

// ===== Slot: a thread's result, for blocking and async joins =====

enum SlotState<T> {
    Pending(Option<Waker>),
    Done(Result<T, JoinError>),
    Taken,
}

/// Where a thread leaves its result: a one-shot cell with a condvar (blocking join) and a
/// waker (async join).
struct Slot<T> {
    state: Mutex<SlotState<T>>,
    ready: Condvar,
}

impl<T> Slot<T> {
    fn new() -> Slot<T> {
        Slot {
            state: Mutex::new(SlotState::Pending(None)),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState<T>> {
        // No user code runs under this lock, so poison can only mean a bug here; the data
        // is consistent either way.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn put(&self, result: Result<T, JoinError>) {
        let waker = {
            let mut st = self.lock();
            match std::mem::replace(&mut *st, SlotState::Done(result)) {
                SlotState::Pending(waker) => waker,
                SlotState::Done(_) | SlotState::Taken => {
                    unreachable!("a spawned thread leaves exactly one result")
                }
            }
        };
        self.ready.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn is_done(&self) -> bool {
        !matches!(*self.lock(), SlotState::Pending(_))
    }

    fn take_blocking(&self) -> Result<T, JoinError> {
        let mut st = self.lock();
        loop {
            match std::mem::replace(&mut *st, SlotState::Taken) {
                SlotState::Done(result) => return result,
                SlotState::Pending(waker) => {
                    *st = SlotState::Pending(waker);
                    st = self.ready.wait(st).unwrap_or_else(PoisonError::into_inner);
                }
                SlotState::Taken => unreachable!("a GoHandle is joined once"),
            }
        }
    }

    fn poll_take(&self, cx: &mut task::Context<'_>) -> Poll<Result<T, JoinError>> {
        let mut st = self.lock();
        match std::mem::replace(&mut *st, SlotState::Taken) {
            SlotState::Done(result) => Poll::Ready(result),
            SlotState::Pending(mut waker) => {
                match &mut waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => waker = Some(cx.waker().clone()),
                }
                *st = SlotState::Pending(waker);
                Poll::Pending
            }
            SlotState::Taken => panic!("GoHandle polled after it completed"),
        }
    }
}

// ===== GoHandle =====

enum Work<T> {
    Thread {
        slot: Arc<Slot<T>>,
        /// Joined by the blocking [`GoHandle::join`], so the thread has exited when it returns.
        thread: Option<std::thread::JoinHandle<()>>,
    },
    #[cfg(feature = "tokio")]
    Task(tokio::task::JoinHandle<T>),
}

/// The handle of work spawned by `go!`: cancel it, look at its context, join it.
///
/// - [`cancel`](GoHandle::cancel) cancels the work's context (a child of the context it was
///   spawned under). Cancellation is cooperative, as in Go: the work sees it through the
///   context (its current context, or the `ctx` it was handed) and returns.
/// - [`join`](GoHandle::join) blocks the thread; `.await` (the handle is a [`Future`]) waits
///   asynchronously. Both give `Ok(value)`, or a [`JoinError`] carrying the panic.
/// - **Dropping the handle detaches the work**, as Go's `go` does: it keeps running, under a
///   live context, until its context is done (the parent is cancelled or a deadline passes) or
///   it returns. When the work has returned *and* the handle is gone, the context is cancelled,
///   so anything the work left running under it is told to stop. So `go!(f());` as a
///   statement is Go's fire-and-forget `go f()`, and the handle is not `#[must_use]` (as
///   tokio's `JoinHandle` is not). Unlike a [`CancelHandle`], dropping it cancels nothing.
///
/// # Examples
///
/// ```
/// use go_context::{go, Context, Error};
///
/// fn count(ctx: &Context) -> Result<u64, Error> {
///     let mut n = 0;
///     loop {
///         ctx.check()?;
///         n += 1;
///         std::thread::yield_now();
///     }
/// }
///
/// let worker = go!(|ctx| count(&ctx));
/// worker.cancel();
/// assert_eq!(worker.join().unwrap(), Err(Error::Canceled));
/// ```
pub struct GoHandle<T> {
    ctx: Context,
    cancel: CancelHandle,
    work: Work<T>,
}

impl<T> GoHandle<T> {
    /// Runs `f` on a new OS thread under a new child of `parent`, which is current on that
    /// thread and also passed to `f`: the blocking half of `go!`.
    ///
    /// ```
    /// use go_context::{Context, GoHandle};
    ///
    /// let (parent, _cancel) = Context::background().with_cancel();
    /// let handle = GoHandle::spawn_blocking(&parent, |ctx| {
    ///     assert_eq!(format!("{ctx:?}"), format!("{:?}", Context::current()));
    ///     6 * 7
    /// });
    /// assert_eq!(handle.join().unwrap(), 42);
    /// ```
    #[track_caller]
    pub fn spawn_blocking<F>(parent: &Context, f: F) -> GoHandle<T>
    where
        F: FnOnce(Context) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (ctx, cancel) = parent.with_cancel();
        let slot = Arc::new(Slot::new());
        let body = {
            let ctx = ctx.clone();
            let cancel = cancel.clone();
            let slot = Arc::clone(&slot);
            #[cfg(feature = "tokio")]
            let runtime = tokio::runtime::Handle::try_current().ok();
            move || {
                #[cfg(feature = "tokio")]
                let _runtime = runtime.as_ref().map(tokio::runtime::Handle::enter);
                let result = {
                    let _current = ctx.enter();
                    panic::catch_unwind(AssertUnwindSafe(move || f(ctx)))
                };
                // The work and everything it captured are gone; release the context before
                // the result is visible, so a joiner sees no trace of the work left.
                drop(cancel);
                slot.put(result.map_err(JoinError::panic));
            }
        };
        let thread = std::thread::spawn(body);
        GoHandle {
            ctx,
            cancel,
            work: Work::Thread {
                slot,
                thread: Some(thread),
            },
        }
    }

    /// The work's context: the child it runs under. It is done once the handle is cancelled or
    /// the parent is done.
    ///
    /// ```
    /// use go_context::{go, Context};
    ///
    /// let handle = go!(|ctx| ctx.wait());
    /// assert!(!handle.context().is_done());
    /// handle.cancel();
    /// assert!(handle.context().is_done());
    /// handle.join().unwrap();
    /// ```
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Cancels the work's context with [`Error::Canceled`](crate::Error::Canceled); the cause
    /// records the caller's location. The work stops when it next looks at its context.
    ///
    /// ```
    /// use go_context::{go, Error};
    ///
    /// let handle = go!(|ctx| ctx.wait());
    /// handle.cancel();
    /// assert_eq!(handle.join().unwrap(), Error::Canceled);
    /// ```
    #[track_caller]
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Cancels the work's context with `cause` (see
    /// [`CancelHandle::cancel_with_cause`]).
    ///
    /// ```
    /// use go_context::go;
    ///
    /// let handle = go!(|ctx| ctx.wait());
    /// handle.cancel_with_cause("user pressed stop");
    /// assert_eq!(handle.context().cause().unwrap().to_string(), "user pressed stop");
    /// handle.join().unwrap();
    /// ```
    #[track_caller]
    pub fn cancel_with_cause(&self, cause: impl Into<crate::BoxError>) {
        self.cancel.cancel_with_cause(cause);
    }

    /// Whether the work has finished (returned or panicked); joining will not block.
    ///
    /// ```
    /// use go_context::go;
    ///
    /// let handle = go!(|ctx| ctx.wait());
    /// assert!(!handle.is_finished());
    /// handle.cancel();
    /// handle.join().unwrap();
    /// ```
    pub fn is_finished(&self) -> bool {
        match &self.work {
            Work::Thread { slot, .. } => slot.is_done(),
            #[cfg(feature = "tokio")]
            Work::Task(task) => task.is_finished(),
        }
    }

    /// Blocks this thread until the work finishes, and returns its value, or a [`JoinError`]
    /// with its panic. For a thread, the thread has exited when this returns.
    ///
    /// # Panics
    ///
    /// In a task on a current-thread tokio runtime, where blocking would stop the runtime for
    /// good: use `handle.await` there. (Never block in async code anyway; on a multi-thread
    /// runtime this is allowed, e.g. inside `tokio::task::block_in_place`.)
    ///
    /// ```
    /// use go_context::go;
    ///
    /// fn sum(xs: Vec<u32>) -> u32 {
    ///     xs.iter().sum()
    /// }
    /// let xs = vec![1, 2, 3];
    /// let handle = go!(sum(xs)); // `xs` is moved into the work
    /// assert_eq!(handle.join().unwrap(), 6);
    /// ```
    #[track_caller]
    pub fn join(mut self) -> Result<T, JoinError> {
        assert_may_block("GoHandle::join", "handle.await");
        match &mut self.work {
            Work::Thread { slot, thread } => {
                let result = slot.take_blocking();
                if let Some(thread) = thread.take() {
                    // The thread has put its result: only its exit is left, and it cannot
                    // panic any more (the work's panic was caught).
                    let _ = thread.join();
                }
                result
            }
            #[cfg(feature = "tokio")]
            Work::Task(task) => block_on(task).map_err(from_tokio),
        }
    }
}

#[cfg(feature = "tokio")]
impl<T> GoHandle<T> {
    /// Spawns the future that `f` makes onto the caller's tokio runtime, under a new child of
    /// `parent`, which is current while the task runs (through [`Context::scope`]) and also
    /// passed to `f`: the async half of `go!`. `f` is called inside the task.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, with a message saying what to do; see
    /// [`try_spawn`](GoHandle::try_spawn) for a `Result`.
    ///
    /// ```
    /// use go_context::{Context, GoHandle};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let handle = GoHandle::spawn(&Context::background(), |ctx| async move {
    ///     tokio::task::yield_now().await;
    ///     ctx.is_done()
    /// });
    /// assert_eq!(handle.await.unwrap(), false);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn<F, Fut>(parent: &Context, f: F) -> GoHandle<T>
    where
        F: FnOnce(Context) -> Fut + Send + 'static,
        Fut: IntoFuture<Output = T>,
        Fut::IntoFuture: Send + 'static,
        T: Send + 'static,
    {
        match GoHandle::try_spawn(parent, f) {
            Ok(handle) => handle,
            Err(_) => panic!("{NO_RUNTIME}"),
        }
    }

    /// Like [`spawn`](GoHandle::spawn), but outside a tokio runtime returns a [`SpawnError`]
    /// instead of panicking.
    ///
    /// ```
    /// use go_context::{Context, GoHandle};
    ///
    /// assert!(GoHandle::try_spawn(&Context::background(), |_| async { 1 }).is_err());
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let handle = rt.block_on(async {
    ///     GoHandle::try_spawn(&Context::background(), |_| async { 1 }).unwrap()
    /// });
    /// assert_eq!(rt.block_on(handle).unwrap(), 1);
    /// ```
    #[track_caller]
    pub fn try_spawn<F, Fut>(parent: &Context, f: F) -> Result<GoHandle<T>, SpawnError>
    where
        F: FnOnce(Context) -> Fut + Send + 'static,
        Fut: IntoFuture<Output = T>,
        Fut::IntoFuture: Send + 'static,
        T: Send + 'static,
    {
        // Inside a task we are inside a runtime, and `tokio::spawn` needs no handle clone.
        let runtime = match tokio::task::try_id() {
            Some(_) => None,
            None => Some(tokio::runtime::Handle::try_current().map_err(|_| SpawnError(()))?),
        };
        let (ctx, cancel) = parent.with_cancel();
        let task = ctx.scope({
            let ctx = ctx.clone();
            let cancel = cancel.clone();
            async move {
                let value = f(ctx).await;
                drop(cancel);
                value
            }
        });
        let task = match runtime {
            Some(runtime) => runtime.spawn(task),
            None => tokio::spawn(task),
        };
        Ok(GoHandle {
            ctx,
            cancel,
            work: Work::Task(task),
        })
    }
}

impl<T> Future for GoHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().work {
            Work::Thread { slot, .. } => slot.poll_take(cx),
            #[cfg(feature = "tokio")]
            Work::Task(task) => Pin::new(task).poll(cx).map_err(from_tokio),
        }
    }
}

impl<T> fmt::Debug for GoHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.work {
            Work::Thread { .. } => "thread",
            #[cfg(feature = "tokio")]
            Work::Task(_) => "task",
        };
        f.debug_struct("GoHandle")
            .field("kind", &kind)
            .field("context", &self.ctx)
            .field("finished", &self.is_finished())
            .finish()
    }
}

#[cfg(feature = "tokio")]
fn from_tokio(e: tokio::task::JoinError) -> JoinError {
    match e.try_into_panic() {
        Ok(payload) => JoinError::panic(payload),
        Err(_) => JoinError::cancelled(),
    }
}

/// Panics if the caller is a task on a current-thread tokio runtime: blocking there stalls
/// every task of the runtime, the awaited one included, so it would hang for good. (On a
/// multi-thread runtime blocking is allowed, as inside `block_in_place`.)
#[track_caller]
pub(crate) fn assert_may_block(what: &str, instead: &str) {
    #[cfg(feature = "tokio")]
    if tokio::task::try_id().is_some() {
        let flavor = tokio::runtime::Handle::try_current()
            .ok()
            .map(|h| h.runtime_flavor());
        if flavor == Some(tokio::runtime::RuntimeFlavor::CurrentThread) {
            panic!(
                "{what} blocks the thread, and this is a task on a current-thread tokio \
                 runtime, which would stop every task (it could never return); use \
                 `{instead}` instead"
            );
        }
    }
    let _ = (what, instead);
}

/// Polls `fut` on this thread, parking between wake-ups.
#[cfg(feature = "tokio")]
fn block_on<F: Future + Unpin>(mut fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = task::Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = Pin::new(&mut fut).poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

// ===== support for the generated code =====

/// What `go!` expands to. Not public API.
#[doc(hidden)]
pub mod __support {
    use std::future::IntoFuture;
    use std::marker::PhantomData;

    use std::fmt::Display;

    use crate::group::Group;
    use crate::{Context, GoHandle};

    /// Marks the type `R` that the work returns, to pick a spawner by type (autoref
    /// specialisation: `(&&marker).__go_kind()` finds [`GoFutureKind`], implemented for
    /// `&GoMarker<R>`, first when `R` is a future, else [`GoBlockingKind`] on `GoMarker<R>`
    /// one auto-deref later).
    #[derive(Debug)]
    pub struct GoMarker<R>(PhantomData<fn() -> R>);

    /// The marker for the return type of `work`; nothing is called.
    #[inline(always)]
    pub fn go_marker<F, R>(_work: &F) -> GoMarker<R>
    where
        F: FnOnce(Context) -> R,
    {
        GoMarker(PhantomData)
    }

    /// Chosen when the work returns a future.
    pub trait GoFutureKind {
        /// The spawner for futures.
        #[inline(always)]
        fn __go_kind(&self) -> GoFuture {
            GoFuture
        }
    }
    impl<R: IntoFuture> GoFutureKind for &GoMarker<R> {}

    /// Chosen otherwise.
    pub trait GoBlockingKind {
        /// The spawner for blocking calls.
        #[inline(always)]
        fn __go_kind(&self) -> GoBlocking {
            GoBlocking
        }
    }
    impl<R> GoBlockingKind for GoMarker<R> {}

    /// Spawns futures as tokio tasks.
    #[derive(Debug)]
    pub struct GoFuture;
    /// Spawns blocking calls on OS threads.
    #[derive(Debug)]
    pub struct GoBlocking;

    /// A compile-time gate: spawning a future needs the `tokio` feature.
    #[diagnostic::on_unimplemented(
        message = "`go!` on a future needs the `tokio` feature of `go-context`",
        label = "this work is a future, and futures are spawned as tokio tasks",
        note = "enable it: `go-context = {{ version = \"...\", features = [\"tokio\"] }}`"
    )]
    pub trait TokioEnabled {}
    #[cfg(feature = "tokio")]
    impl<T: ?Sized> TokioEnabled for T {}

    impl GoFuture {
        /// Spawns as a task under a child of `parent`.
        #[track_caller]
        #[inline]
        pub fn spawn<F, Fut>(self, parent: &Context, work: F) -> GoHandle<Fut::Output>
        where
            F: FnOnce(Context) -> Fut + Send + 'static,
            Fut: IntoFuture + TokioEnabled,
            Fut::IntoFuture: Send + 'static,
            Fut::Output: Send + 'static,
        {
            #[cfg(feature = "tokio")]
            {
                GoHandle::spawn(parent, work)
            }
            #[cfg(not(feature = "tokio"))]
            {
                let _ = (parent, work);
                unreachable!("`TokioEnabled` has no impl without the `tokio` feature")
            }
        }

        /// Spawns as a task member of `group`.
        #[track_caller]
        #[inline]
        pub fn spawn_in<F, Fut, E>(self, group: &Group<E>, work: F)
        where
            F: FnOnce(Context) -> Fut + Send + 'static,
            Fut: IntoFuture<Output = Result<(), E>> + TokioEnabled,
            Fut::IntoFuture: Send + 'static,
            E: Display + Send + 'static,
        {
            #[cfg(feature = "tokio")]
            {
                group.go_async(work)
            }
            #[cfg(not(feature = "tokio"))]
            {
                let _ = (group, work);
                unreachable!("`TokioEnabled` has no impl without the `tokio` feature")
            }
        }
    }

    impl GoBlocking {
        /// Spawns on a thread under a child of `parent`.
        #[track_caller]
        #[inline]
        pub fn spawn<F, T>(self, parent: &Context, work: F) -> GoHandle<T>
        where
            F: FnOnce(Context) -> T + Send + 'static,
            T: Send + 'static,
        {
            GoHandle::spawn_blocking(parent, work)
        }

        /// Spawns as a thread member of `group`.
        #[track_caller]
        #[inline]
        pub fn spawn_in<F, E>(self, group: &Group<E>, work: F)
        where
            F: FnOnce(Context) -> Result<(), E> + Send + 'static,
            E: Display + Send + 'static,
        {
            group.go(work)
        }
    }

    /// Anything `go!(in ctx, ...)` takes as the parent: `Context`, `&Context`, ...
    #[diagnostic::on_unimplemented(
        message = "`go!(in {Self}, ...)` needs a `go_context::Context` as the parent",
        label = "expected a `Context` or `&Context` here",
        note = "write `go!(in ctx, work())` with `ctx: Context` or `&Context`; to spawn into a group write `go!(group => work())`"
    )]
    pub trait GoParent {
        /// The parent context.
        fn go_parent(&self) -> &Context;
    }
    impl GoParent for Context {
        #[inline(always)]
        fn go_parent(&self) -> &Context {
            self
        }
    }
    impl<T: GoParent + ?Sized> GoParent for &T {
        #[inline(always)]
        fn go_parent(&self) -> &Context {
            (**self).go_parent()
        }
    }
    impl<T: GoParent + ?Sized> GoParent for &mut T {
        #[inline(always)]
        fn go_parent(&self) -> &Context {
            (**self).go_parent()
        }
    }

    /// The parent of `go!(in p, ...)`.
    #[inline(always)]
    pub fn go_parent<P: GoParent + ?Sized>(p: &P) -> &Context {
        p.go_parent()
    }

    /// The group of `go!(g => ...)`, by reference.
    #[inline(always)]
    pub fn go_group<E>(g: &Group<E>) -> &Group<E> {
        g
    }

    /// `go!(value)` with a value that is not a call: it must be a future.
    #[diagnostic::on_unimplemented(
        message = "`go!` got the value `{Self}`, which is not a future",
        label = "this is not a call, so it would not run anything",
        note = "write the call: `go!(f(args))` or `go!(obj.method(args))`; a value is spawned only if it is a future"
    )]
    pub trait GoValue {}
    impl<T: IntoFuture> GoValue for T {}

    /// Checks at compile time that a non-call `go!` operand is a future.
    #[inline(always)]
    pub fn go_value<T: GoValue>(value: T) -> T {
        value
    }
}
