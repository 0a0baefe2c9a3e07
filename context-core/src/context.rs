//! [`Context`]: the handle users hold, and every operation of Go's `context` package on it.

use std::any::Any;
use std::fmt;
use std::future::IntoFuture;
use std::panic::Location;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::after_func::AfterFunc;
use crate::ambient::{self, EnterGuard, Scope};
use crate::clock::{self, Ticks};
use crate::error::{BoxError, Cause, CauseData, Error};
use crate::handle::CancelHandle;
use crate::sync::Arc;
use crate::timer;
use crate::tree::{self, Body, CancelNode, Node};
use crate::values;
use crate::waiters::{self, Done, Run};

/// A cancellation signal, an optional deadline and request-scoped values, passed down a call
/// tree: Go's `context.Context`, for threads and for async.
///
/// A `Context` is a cheap handle (one pointer; `Clone` is a reference-count increment) that is
/// `Send + Sync + 'static`. Contexts form a tree: each `with_*` method derives a child, and
/// cancelling a context cancels every context derived from it, synchronously.
///
/// | Go | Rust |
/// |---|---|
/// | `context.Background()`, `TODO()` | [`Context::background`], [`Context::todo`] |
/// | `WithCancel(p)` | [`p.with_cancel()`](Context::with_cancel) |
/// | `WithDeadline(p, t)`, `WithTimeout(p, d)` | [`with_deadline`](Context::with_deadline), [`with_timeout`](Context::with_timeout) |
/// | `WithDeadlineCause`, `WithTimeoutCause` | [`with_deadline_cause`](Context::with_deadline_cause), [`with_timeout_cause`](Context::with_timeout_cause) |
/// | `WithValue(p, k, v)`, `ctx.Value(k)` | [`with_value`](Context::with_value), [`value::<T>()`](Context::value) |
/// | `WithoutCancel(p)` | [`without_cancel`](Context::without_cancel) |
/// | `AfterFunc(ctx, f)` | [`after_func`](Context::after_func) |
/// | `<-ctx.Done()` | [`done().await`](Context::done), [`wait()`](Context::wait) |
/// | `ctx.Err()`, `Cause(ctx)`, `ctx.Deadline()` | [`err`](Context::err), [`cause`](Context::cause), [`deadline`](Context::deadline) |
///
/// # Examples
///
/// ```
/// use go_context::{Context, Error};
/// use std::time::Duration;
///
/// let (ctx, cancel) = Context::background().with_timeout(Duration::from_secs(5));
/// let worker = std::thread::spawn({
///     let ctx = ctx.clone();
///     move || loop {
///         // ... a unit of work ...
///         if let Err(e) = ctx.sleep(Duration::from_millis(10)) {
///             return e;
///         }
///     }
/// });
/// cancel.cancel();
/// assert_eq!(worker.join().unwrap(), Error::Canceled);
/// ```
#[derive(Clone)]
pub struct Context {
    pub(crate) node: Arc<Node>,
}

fn root(which: &'static OnceLock<Arc<Node>>, body: fn() -> Body) -> Context {
    Context {
        node: Arc::clone(which.get_or_init(|| Arc::new(Node::root(body())))),
    }
}

impl Context {
    /// The root context: never done, no deadline, no values (Go's `context.Background()`).
    /// Allocates nothing (it is a shared static).
    ///
    /// ```
    /// use go_context::Context;
    /// let ctx = Context::background();
    /// assert!(!ctx.is_done());
    /// assert_eq!(ctx.deadline(), None);
    /// assert_eq!(format!("{ctx:?}"), "background");
    /// ```
    pub fn background() -> Context {
        static BACKGROUND: OnceLock<Arc<Node>> = OnceLock::new();
        root(&BACKGROUND, || Body::Background)
    }

    /// Like [`background`](Context::background), marking code that has not decided which
    /// context to use yet (Go's `context.TODO()`).
    ///
    /// ```
    /// use go_context::Context;
    /// assert_eq!(format!("{:?}", Context::todo()), "todo");
    /// ```
    pub fn todo() -> Context {
        static TODO: OnceLock<Arc<Node>> = OnceLock::new();
        root(&TODO, || Body::Todo)
    }

    /// A child that is cancelled when the returned [`CancelHandle`] is used or its last clone is
    /// dropped, or when `self` is cancelled (Go's `WithCancel`). A child of a done context is
    /// born done, with the parent's error and cause.
    ///
    /// ```
    /// use go_context::{Context, Error};
    ///
    /// let (parent, cancel_parent) = Context::background().with_cancel();
    /// let (child, _cancel_child) = parent.with_cancel();
    /// cancel_parent.cancel();
    /// assert_eq!(child.err(), Some(Error::Canceled));
    /// ```
    #[track_caller]
    pub fn with_cancel(&self) -> (Context, CancelHandle) {
        self.derive(None, Location::caller(), None)
    }

    /// A child that is also cancelled, with [`Error::DeadlineExceeded`], at `deadline` (Go's
    /// `WithDeadline`). Its effective deadline is the earlier of `deadline` and the parent's;
    /// if the parent's is strictly earlier, no timer is armed (as in Go). A deadline already
    /// past gives a child born done with `DeadlineExceeded`.
    ///
    /// ```
    /// use go_context::{Context, Error};
    /// use std::time::{Duration, Instant};
    ///
    /// let (ctx, _cancel) = Context::background().with_deadline(Instant::now());
    /// assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    ///
    /// let soon = Instant::now() + Duration::from_secs(60);
    /// let (parent, _c1) = Context::background().with_deadline(soon);
    /// let (child, _c2) = parent.with_deadline(soon + Duration::from_secs(60));
    /// assert_eq!(child.deadline(), Some(soon)); // a child never outlives its parent
    /// ```
    #[track_caller]
    pub fn with_deadline(&self, deadline: Instant) -> (Context, CancelHandle) {
        self.derive(
            timer::ticks(deadline).map(|at| (at, None)),
            Location::caller(),
            None,
        )
    }

    /// Like [`with_deadline`](Context::with_deadline), and when the deadline fires, the
    /// context's [`cause`](Context::cause) is `cause` (Go's `WithDeadlineCause`). Cancelling it
    /// through the handle reports a plain cause instead.
    ///
    /// ```
    /// use go_context::{Context, Error};
    /// use std::time::Instant;
    ///
    /// let (ctx, _cancel) = Context::background().with_deadline_cause(Instant::now(), "too slow");
    /// assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    /// assert_eq!(ctx.cause().unwrap().to_string(), "too slow");
    /// ```
    #[track_caller]
    pub fn with_deadline_cause(
        &self,
        deadline: Instant,
        cause: impl Into<BoxError>,
    ) -> (Context, CancelHandle) {
        let deadline = timer::ticks(deadline).map(|at| (at, Some(cause.into())));
        self.derive(deadline, Location::caller(), None)
    }

    /// A child with a deadline `timeout` from now (Go's `WithTimeout`). A timeout too large for
    /// [`Instant`] (such as [`Duration::MAX`]) means no deadline, never a panic.
    ///
    /// ```
    /// use go_context::{Context, Error};
    /// use std::time::Duration;
    ///
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(20));
    /// assert_eq!(ctx.wait(), Error::DeadlineExceeded);
    ///
    /// let (forever, _cancel) = Context::background().with_timeout(Duration::MAX);
    /// assert_eq!(forever.deadline(), None);
    /// ```
    #[track_caller]
    pub fn with_timeout(&self, timeout: Duration) -> (Context, CancelHandle) {
        self.derive_timeout(timeout, None, Location::caller())
    }

    /// [`with_timeout`](Context::with_timeout) with a cause reported when the deadline fires
    /// (Go's `WithTimeoutCause`).
    ///
    /// ```
    /// use go_context::Context;
    /// use std::time::Duration;
    ///
    /// let (ctx, _cancel) = Context::background()
    ///     .with_timeout_cause(Duration::from_millis(10), "backend took too long");
    /// ctx.wait();
    /// assert_eq!(ctx.cause().unwrap().to_string(), "backend took too long");
    /// ```
    #[track_caller]
    pub fn with_timeout_cause(
        &self,
        timeout: Duration,
        cause: impl Into<BoxError>,
    ) -> (Context, CancelHandle) {
        self.derive_timeout(timeout, Some(cause.into()), Location::caller())
    }

    /// `with_timeout` and `with_timeout_cause`: a deadline `timeout` from now, or none if that
    /// is past what [`Instant`] can hold.
    fn derive_timeout(
        &self,
        timeout: Duration,
        cause: Option<BoxError>,
        location: &'static Location<'static>,
    ) -> (Context, CancelHandle) {
        // One clock reading, converted once: the deadline is `now` plus the timeout in ticks.
        // Past the clock's range (about 292 years, `Duration::MAX` included) is no deadline.
        let now = timer::now();
        let deadline = clock::checked_span(timeout)
            .and_then(|span| now.checked_add(span))
            .map(|at| (at, cause));
        self.derive(deadline, location, Some(now))
    }

    fn derive(
        &self,
        // As ticks; the caller maps a deadline too far in the future to represent (about 292
        // years) to none.
        deadline: Option<(Ticks, Option<BoxError>)>,
        location: &'static Location<'static>,
        // The clock as the caller already read it (`with_timeout`), saving a second read.
        now: Option<Ticks>,
    ) -> (Context, CancelHandle) {
        // As in Go, a parent deadline strictly earlier than ours makes ours moot: the tree
        // decides that in O(1), from the effective deadline each cancel node stores.
        let deadline = deadline.map(|(at, cause)| {
            let cause = match cause {
                Some(e) => CauseData::custom(e, location),
                None => CauseData::plain(location),
            };
            (at, cause)
        });
        let node = tree::new_cancel_node(&self.node, deadline, now);
        let handle = CancelHandle::new(Arc::clone(&node), location);
        (Context { node }, handle)
    }

    /// A child carrying `value`, found by [`value::<T>()`](Context::value) here and in every
    /// descendant, until a nearer `with_value` of the same type shadows it (Go's `WithValue`,
    /// keyed by the type instead of a key value: use a newtype per meaning).
    ///
    /// ```
    /// use go_context::Context;
    ///
    /// #[derive(Debug, PartialEq)]
    /// struct RequestId(u64);
    ///
    /// let ctx = Context::background().with_value(RequestId(7));
    /// let (child, _cancel) = ctx.with_cancel();
    /// assert_eq!(child.value::<RequestId>(), Some(&RequestId(7)));
    /// assert_eq!(child.value::<String>(), None);
    /// ```
    pub fn with_value<T: Any + Send + Sync>(&self, value: T) -> Context {
        Context {
            node: Arc::new(values::new_value_node(&self.node, value)),
        }
    }

    /// The nearest value of type `T` set with [`with_value`](Context::with_value) on this
    /// context or an ancestor. Walks up the chain; allocates nothing.
    ///
    /// ```
    /// use go_context::Context;
    ///
    /// let outer = Context::background().with_value(1u32);
    /// let inner = outer.with_value(2u32);
    /// assert_eq!(inner.value::<u32>(), Some(&2)); // the nearest wins
    /// assert_eq!(outer.value::<u32>(), Some(&1));
    /// ```
    pub fn value<T: Any>(&self) -> Option<&T> {
        values::lookup::<T>(&self.node)
    }

    /// A child that keeps `self`'s values but is never done and has no deadline, whatever
    /// happens to `self` (Go's `WithoutCancel`): for work that must outlive the request, such
    /// as an audit log write.
    ///
    /// ```
    /// use go_context::Context;
    ///
    /// let (req, cancel) = Context::background().with_value("user-1").with_cancel();
    /// let detached = req.without_cancel();
    /// cancel.cancel();
    /// assert!(req.is_done());
    /// assert!(!detached.is_done());
    /// assert_eq!(detached.value::<&str>(), Some(&"user-1"));
    /// ```
    pub fn without_cancel(&self) -> Context {
        Context {
            node: Arc::new(Node {
                parent: Some(Arc::clone(&self.node)),
                body: Body::WithoutCancel,
            }),
        }
    }

    /// Runs `f` once, on a thread of the crate's callback pool (never the canceller's), after
    /// this context is done (at once if it already is): Go's `AfterFunc`. `cancel` never waits
    /// for `f`, and `f` never runs under an internal lock, so it may cancel or derive contexts
    /// itself. On a context that can never be done, `f` never runs. See [`AfterFunc::stop`].
    ///
    /// ```
    /// use go_context::Context;
    /// use std::sync::mpsc;
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let (tx, rx) = mpsc::channel();
    /// let _stop = ctx.after_func(move || tx.send(()).unwrap());
    /// cancel.cancel();
    /// rx.recv().unwrap(); // f ran
    /// ```
    pub fn after_func<F>(&self, f: F) -> AfterFunc
    where
        F: FnOnce() + Send + 'static,
    {
        AfterFunc::register(self, f)
    }

    /// A future that resolves with the context's error once it is done (Go's `<-ctx.Done()`).
    /// Works on any executor, and allocates nothing: its waiter entry lives inside it, so
    /// [`Done`] is `!Unpin`. `.await` and `tokio::select!` take it by value as usual; to poll
    /// it by hand or keep it across loop iterations, pin it with [`std::pin::pin!`] or
    /// [`Box::pin`] (see [`Done`]).
    ///
    /// ```
    /// use go_context::{Context, Error};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// tokio::spawn(async move { cancel.cancel() });
    /// assert_eq!(ctx.done().await, Error::Canceled);
    /// # }
    /// ```
    pub fn done(&self) -> Done {
        Done::new(self.clone())
    }

    /// Blocks the current thread until the context is done and returns its error. On a
    /// context that can never be done, blocks forever (like receiving from Go's nil channel).
    ///
    /// In async code, prefer `ctx.done().await`. Called from a task, `wait` blocks the runtime's
    /// worker thread: on a current-thread runtime (or in its root future) nothing else of that
    /// runtime runs until the context is done, so a cancellation that only one of its tasks
    /// would make never comes. A deadline, or a cancel from another thread, still ends the wait
    /// (deadlines fire on this crate's own timer thread, not the runtime's), which is why this
    /// is not refused the way `GoHandle::join` on such a thread is: there the deadlock is
    /// certain, here it is not.
    ///
    /// ```
    /// use go_context::{Context, Error};
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// std::thread::spawn(move || cancel.cancel());
    /// assert_eq!(ctx.wait(), Error::Canceled);
    /// ```
    pub fn wait(&self) -> Error {
        match waiters::block_until(self, None) {
            Some(err) => err,
            None => unreachable!("an unbounded wait returns only once the context is done"),
        }
    }

    /// Blocks until the context is done (`Some(error)`) or `timeout` passes (`None`).
    ///
    /// ```
    /// use go_context::Context;
    /// use std::time::Duration;
    ///
    /// let (ctx, _cancel) = Context::background().with_cancel();
    /// assert_eq!(ctx.wait_timeout(Duration::from_millis(5)), None);
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Error> {
        waiters::block_until(self, Instant::now().checked_add(timeout))
    }

    /// Blocks until the context is done (`Some(error)`) or `deadline` passes (`None`).
    ///
    /// ```
    /// use go_context::{Context, Error};
    /// use std::time::{Duration, Instant};
    ///
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(5));
    /// let later = Instant::now() + Duration::from_secs(30);
    /// assert_eq!(ctx.wait_deadline(later), Some(Error::DeadlineExceeded));
    /// ```
    pub fn wait_deadline(&self, deadline: Instant) -> Option<Error> {
        waiters::block_until(self, Some(deadline))
    }

    /// `None` while the context is live, then its error forever (Go's `ctx.Err()`). One atomic
    /// load: no lock, no clock read.
    ///
    /// ```
    /// use go_context::{Context, Error};
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// assert_eq!(ctx.err(), None);
    /// cancel.cancel();
    /// assert_eq!(ctx.err(), Some(Error::Canceled));
    /// ```
    #[inline]
    pub fn err(&self) -> Option<Error> {
        self.node.err()
    }

    /// Whether the context is done: the hot-loop check, one atomic load. A deadline turns it
    /// `true` on time even if nobody waits: the shared timer marks the context done.
    ///
    /// ```
    /// use go_context::Context;
    /// use std::time::Duration;
    ///
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(10));
    /// while !ctx.is_done() {
    ///     std::hint::spin_loop();
    /// }
    /// ```
    #[inline]
    pub fn is_done(&self) -> bool {
        self.node.cancel_node().is_some_and(CancelNode::is_done)
    }

    /// `Err(error)` if the context is done, else `Ok(())`: the checkpoint for `?`, and what
    /// `#[cancellable]` emits at every loop head.
    ///
    /// ```
    /// use go_context::{Context, Error};
    ///
    /// fn work(ctx: &Context) -> Result<u32, Error> {
    ///     let mut n = 0;
    ///     for _ in 0..1000 {
    ///         ctx.check()?;
    ///         n += 1;
    ///     }
    ///     Ok(n)
    /// }
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// assert_eq!(work(&ctx), Ok(1000));
    /// cancel.cancel();
    /// assert_eq!(work(&ctx), Err(Error::Canceled));
    /// ```
    #[inline]
    pub fn check(&self) -> Result<(), Error> {
        match self.err() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Why the context is done, and where that came from (Go's `context.Cause`); `None` while
    /// live. The first cancellation of the context or an ancestor fixes it.
    ///
    /// ```
    /// use go_context::Context;
    ///
    /// let (parent, cancel) = Context::background().with_cancel();
    /// let (child, _c) = parent.with_cancel();
    /// assert!(child.cause().is_none());
    /// cancel.cancel_with_cause("shutdown");
    /// assert_eq!(child.cause().unwrap().to_string(), "shutdown");
    /// ```
    pub fn cause(&self) -> Option<Cause> {
        self.node.cause()
    }

    /// The effective deadline: the earliest of this context's and its ancestors', up to a
    /// [`without_cancel`](Context::without_cancel) or the root (Go's `ctx.Deadline()`).
    ///
    /// ```
    /// use go_context::Context;
    /// use std::time::{Duration, Instant};
    ///
    /// let at = Instant::now() + Duration::from_secs(10);
    /// let (ctx, _cancel) = Context::background().with_deadline(at);
    /// assert_eq!(ctx.with_value(1u8).deadline(), Some(at));
    /// assert_eq!(Context::background().deadline(), None);
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.node.deadline()
    }

    /// Sleeps for `duration`, returning early with `Err` as soon as the context is done (at
    /// once if it already is).
    /// It blocks the thread, as [`wait`](Context::wait) does, with the same caveat in async code
    /// (there, race `tokio::time::sleep` with [`run`](Context::run)).
    ///
    /// ```
    /// use go_context::{Context, Error};
    /// use std::time::{Duration, Instant};
    ///
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(20));
    /// let start = Instant::now();
    /// assert_eq!(ctx.sleep(Duration::from_secs(60)), Err(Error::DeadlineExceeded));
    /// assert!(start.elapsed() < Duration::from_secs(30));
    /// ```
    pub fn sleep(&self, duration: Duration) -> Result<(), Error> {
        match waiters::block_until(self, Instant::now().checked_add(duration)) {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Runs `fut` until it completes or the context is done, whichever is first. On
    /// cancellation `fut` is dropped at its current `.await` and the result is `Err`. If the
    /// context is already done, `fut` is never polled. When both are ready, done wins.
    /// Works on any executor (no tokio runtime needed: the deadline fires from this crate's
    /// timer).
    ///
    /// ```
    /// use go_context::{Context, Error};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(10));
    /// let slow = tokio::time::sleep(Duration::from_secs(3600));
    /// assert_eq!(ctx.run(slow).await, Err(Error::DeadlineExceeded));
    /// assert_eq!(ctx.run(async { 1 }).await, Err(Error::DeadlineExceeded));
    /// # }
    /// ```
    pub fn run<F: IntoFuture>(&self, fut: F) -> Run<F::IntoFuture> {
        Run::new(self.done(), fut.into_future())
    }

    /// The ambient context of this thread (or task, inside [`scope`](Context::scope)):
    /// the innermost [`enter`](Context::enter)ed context, else [`background`](Context::background).
    ///
    /// ```
    /// use go_context::Context;
    ///
    /// assert_eq!(format!("{:?}", Context::current()), "background");
    /// let (ctx, _cancel) = Context::background().with_cancel();
    /// let _guard = ctx.enter();
    /// assert_eq!(format!("{:?}", Context::current()), "background.with_cancel");
    /// ```
    pub fn current() -> Context {
        ambient::current().unwrap_or_else(Context::background)
    }

    /// Makes this context the current one on this thread until the guard is dropped.
    ///
    /// ```
    /// use go_context::Context;
    ///
    /// let ctx = Context::background().with_value(5i32);
    /// let guard = ctx.enter();
    /// assert_eq!(Context::current().value::<i32>(), Some(&5));
    /// drop(guard);
    /// assert_eq!(Context::current().value::<i32>(), None);
    /// ```
    pub fn enter(&self) -> EnterGuard {
        ambient::enter(self)
    }

    /// Runs `fut` with this context current during every poll, so the ambient context follows
    /// the task across `.await` points and threads. Works on any executor.
    ///
    /// ```
    /// use go_context::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let ctx = Context::background().with_value("req-9");
    /// let seen = ctx
    ///     .scope(async {
    ///         tokio::task::yield_now().await;
    ///         Context::current().value::<&str>().copied()
    ///     })
    ///     .await;
    /// assert_eq!(seen, Some("req-9"));
    /// # }
    /// ```
    pub fn scope<F: IntoFuture>(&self, fut: F) -> Scope<F::IntoFuture> {
        Scope::new(self.clone(), fut.into_future())
    }
}

impl Default for Context {
    /// [`Context::background`].
    fn default() -> Self {
        Context::background()
    }
}

/// The chain from the root, like Go's `String()`:
/// `background.with_cancel.with_deadline(in 1.2s).with_value(RequestId)`.
impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&tree::Chain(&self.node), f)
    }
}
