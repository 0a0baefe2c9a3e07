//! [`Group`]: Go's `errgroup`, for threads and tokio tasks, with limits, causes and no lost
//! panics.

use std::collections::VecDeque;
use std::error::Error as StdError;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::panic::{self, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{self, Poll, Waker};

use crate::go::{assert_may_block, panic_message, Payload};
use crate::sync::Arc;
use crate::{BoxError, CancelHandle, Context};

/// A set of members (threads or tokio tasks) working on one job under one context: Go's
/// `errgroup.WithContext`, made stricter.
///
/// - [`Group::new(&parent)`](Group::new) makes the group's [`context`](Group::context), a child
///   of `parent`. Members run with it as their current context and also get it as an argument.
/// - [`go`](Group::go) starts a blocking member on an OS thread, `go_async` (feature `tokio`) a
///   future as a task on the caller's tokio runtime; `go!(group => f(args))` picks by type.
/// - **The first failure cancels the group's context**, with a [`MemberFailed`] cause naming
///   the error and where that member was started, so the other members stop and can tell why
///   (`ctx.cause()`).
/// - [`wait`](Group::wait) (blocking) or [`wait_async`](Group::wait_async) / `group.await`
///   joins every member, then cancels the group's context (it is always done afterwards) and
///   returns the first error.
/// - **A panic is never dropped** (Go drops them): it cancels the group like an error, and
///   `wait` re-raises it (the first one) with [`std::panic::resume_unwind`] once every member
///   has finished, as [`std::thread::scope`] does.
/// - [`set_limit(n)`](Group::set_limit): never more than `n` members in flight. Members
///   started beyond the limit wait in a queue (the call does not block, so it is safe in async
///   code) and start as others finish; [`try_go`](Group::try_go) starts only if a slot is free.
///   After a member has failed, members not yet started are dropped unstarted (`wait`
///   returns that failure anyway); a plain cancellation of the parent does not drop them, so
///   `Ok` from `wait` always means that every member ran and returned `Ok`.
///
/// # Errors
///
/// Members return `Result<(), E>`, and `wait` returns the first `Err` **by value, untouched**,
/// so `?` and `match` on your own error type work. `E` defaults to [`BoxError`]; any
/// `E: Display + Send + 'static` works (`io::Error`, `anyhow::Error`, your enum). Because Rust
/// has one owner per value, the group's context cannot hold that same `E`: its cause is a
/// [`MemberFailed`] carrying the error's message and the member's location.
///
/// # Dropping
///
/// Dropping a group without waiting cancels its context (members see it) and **does not
/// wait**: a drop never blocks, which matters in async code. Members keep running until they
/// notice; a panic in one of them is then reported only by the panic hook. Call `wait` to join.
///
/// # Examples
///
/// ```
/// use go_context::{Context, Group, MemberFailed};
///
/// let group: Group = Group::new(&Context::background());
/// for id in 0..4 {
///     group.go(move |ctx| {
///         if id == 2 {
///             return Err(format!("worker {id} failed").into());
///         }
///         ctx.wait(); // the others wait until the failure cancels them
///         Ok(())
///     });
/// }
/// let ctx = group.context().clone();
/// let err = group.wait().unwrap_err();
/// assert_eq!(err.to_string(), "worker 2 failed");
/// let cause = ctx.cause().unwrap();
/// assert_eq!(cause.to_string(), "worker 2 failed");
/// assert_eq!(cause.downcast_ref::<MemberFailed>().unwrap().location().file(), file!());
/// ```
pub struct Group<E = BoxError> {
    shared: Arc<Shared<E>>,
}

struct Shared<E> {
    ctx: Context,
    /// The group's only `CancelHandle`. Taken out (and dropped, cancelling the context) when
    /// the group is waited or dropped; cloned for a moment by a failing member.
    cancel: Mutex<Option<CancelHandle>>,
    state: Mutex<State<E>>,
    /// Signalled when the last member finishes.
    idle: Condvar,
}

/// What starting a member gave.
enum Started {
    Thread(std::thread::JoinHandle<()>),
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    Task,
    /// The OS refused a thread: the member counts as having panicked with this payload.
    Failed(Payload),
}

/// Starts a member (spawns its thread or task). Never called under the state lock: spawning
/// may drop the member at once (a runtime shutting down), which re-enters the group.
type Starter = Box<dyn FnOnce() -> Started + Send>;

/// A member that has not started yet.
struct Pending {
    start: Starter,
    site: &'static Location<'static>,
}

struct State<E> {
    limit: Option<usize>,
    /// Members admitted (holding a slot) and not finished.
    running: usize,
    /// Of those, members whose thread or task is being spawned: `wait` waits for these too,
    /// so every member thread handle is recorded before it can return.
    starting: usize,
    /// Members waiting for a slot, oldest first.
    queued: VecDeque<Pending>,
    /// Whether a member failed (error or panic) and cancelled the context with its cause.
    failed: bool,
    first_error: Option<E>,
    first_panic: Option<Payload>,
    /// The async waiter.
    waker: Option<Waker>,
    /// Member threads, joined by the blocking `wait` so none outlives it.
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// How a member ended.
enum Outcome<E> {
    Returned(Result<(), E>),
    Panicked(Payload),
}

impl<E> Shared<E> {
    fn lock(&self) -> MutexGuard<'_, State<E>> {
        // User code never runs under this lock (closures of skipped members are dropped
        // after it is released), so poison would mean a bug here; the data is consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_idle(st: &State<E>) -> bool {
        st.running == 0 && st.starting == 0 && st.queued.is_empty()
    }

    /// If the group just became idle: wakes the blocking waiter, returns the async one's waker.
    fn idle_waker(&self, st: &mut State<E>) -> Option<Waker> {
        if Self::is_idle(st) {
            self.idle.notify_all();
            st.waker.take()
        } else {
            None
        }
    }

    /// Spawns an admitted member (`running` and `starting` already count it), outside the
    /// lock, then records its thread.
    fn launch(&self, pending: Pending)
    where
        E: fmt::Display,
    {
        let started = (pending.start)();
        let (failed, waker) = {
            let mut st = self.lock();
            st.starting -= 1;
            let failed = match started {
                Started::Thread(thread) => {
                    st.threads.push(thread);
                    None
                }
                Started::Task => None,
                Started::Failed(payload) => Some(payload),
            };
            (failed, self.idle_waker(&mut st))
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        if let Some(payload) = failed {
            self.finish(Outcome::Panicked(payload), pending.site);
        }
    }

    /// Starts `starter` now if a slot is free, and says whether it did. Otherwise queues it if
    /// `queue` (it starts later), or drops it. After a failure, drops it: `wait` returns that
    /// failure, and the member would only see a cancelled context.
    fn admit(&self, pending: Pending, queue: bool) -> bool
    where
        E: fmt::Display,
    {
        let mut st = self.lock();
        let full = st.limit.is_some_and(|n| st.running >= n);
        if st.failed || (full && !queue) {
            drop(st);
            drop(pending); // user code (the closure's drop) runs outside the lock
            return false;
        }
        if full {
            st.queued.push_back(pending);
            return false;
        }
        st.running += 1;
        st.starting += 1;
        drop(st);
        self.launch(pending);
        true
    }

    /// Records how a member ended. The cause is set before the member stops counting as
    /// running, so `wait` never closes the context ahead of a member's error.
    fn finish(&self, outcome: Outcome<E>, site: &'static Location<'static>)
    where
        E: fmt::Display,
    {
        let cause = {
            let mut st = self.lock();
            let first = !st.failed;
            match outcome {
                Outcome::Returned(Ok(())) => None,
                Outcome::Returned(Err(e)) => {
                    st.failed = true;
                    let cause = first.then(|| MemberFailed::error(&e, site));
                    if st.first_error.is_none() && st.first_panic.is_none() {
                        st.first_error = Some(e);
                    }
                    cause
                }
                Outcome::Panicked(payload) => {
                    st.failed = true;
                    let cause = first.then(|| MemberFailed::panic(&*payload, site));
                    if st.first_panic.is_none() {
                        st.first_panic = Some(payload);
                    }
                    cause
                }
            }
        };
        if let Some(cause) = cause {
            let handle = self
                .cancel
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if let Some(handle) = handle {
                handle.cancel_with_cause_at(cause, site);
            }
        }

        let mut skipped = Vec::new();
        let mut next = Vec::new();
        let waker = {
            let mut st = self.lock();
            st.running -= 1;
            if st.failed {
                skipped.extend(st.queued.drain(..));
            } else {
                while st.limit.is_none_or(|n| st.running < n) {
                    let Some(pending) = st.queued.pop_front() else {
                        break;
                    };
                    st.running += 1;
                    st.starting += 1;
                    next.push(pending);
                }
            }
            self.idle_waker(&mut st)
        };
        // User closures of members that never started are dropped outside the lock.
        drop(skipped);
        if let Some(waker) = waker {
            waker.wake();
        }
        for pending in next {
            self.launch(pending);
        }
    }

    /// Takes and drops the group's handle: its context is cancelled (unless already done)
    /// with the location of the `Group::new` call.
    fn close(&self) {
        let handle = self
            .cancel
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(handle);
    }
}

/// Runs a member when dropped unfinished (its task was dropped by a shutting-down runtime), so
/// the group's count stays right and `wait` cannot hang.
struct Finisher<E: fmt::Display> {
    shared: Option<Arc<Shared<E>>>,
    site: &'static Location<'static>,
}

impl<E: fmt::Display> Finisher<E> {
    fn finish(mut self, outcome: Outcome<E>) {
        if let Some(shared) = self.shared.take() {
            shared.finish(outcome, self.site);
        }
    }
}

impl<E: fmt::Display> Drop for Finisher<E> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            let payload: Payload = Box::new(format!(
                "group member started at {} was dropped before it finished (its runtime shut down)",
                self.site
            ));
            shared.finish(Outcome::Panicked(payload), self.site);
        }
    }
}

impl<E> Group<E>
where
    E: fmt::Display + Send + 'static,
{
    /// A group whose context is a new child of `parent`.
    ///
    /// ```
    /// use go_context::{Context, Group};
    ///
    /// let (parent, cancel) = Context::background().with_cancel();
    /// let group: Group = Group::new(&parent);
    /// cancel.cancel();
    /// assert!(group.context().is_done());
    /// ```
    #[track_caller]
    pub fn new(parent: &Context) -> Group<E> {
        let (ctx, cancel) = parent.with_cancel();
        Group {
            shared: Arc::new(Shared {
                ctx,
                cancel: Mutex::new(Some(cancel)),
                state: Mutex::new(State {
                    limit: None,
                    running: 0,
                    starting: 0,
                    queued: VecDeque::new(),
                    failed: false,
                    first_error: None,
                    first_panic: None,
                    waker: None,
                    threads: Vec::new(),
                }),
                idle: Condvar::new(),
            }),
        }
    }

    /// The group's context: members run under it, and it is done after the first failure,
    /// after [`wait`](Group::wait), or when the parent is done.
    ///
    /// ```
    /// use go_context::{Context, Group};
    ///
    /// let group: Group = Group::new(&Context::background());
    /// let ctx = group.context().clone();
    /// assert!(!ctx.is_done());
    /// group.wait().unwrap();
    /// assert!(ctx.is_done());
    /// ```
    pub fn context(&self) -> &Context {
        &self.shared.ctx
    }

    /// Never more than `n` members in flight from now on. Go's `SetLimit`, except that going
    /// over the limit queues instead of blocking; see [`try_go`](Group::try_go).
    ///
    /// # Errors
    ///
    /// [`LimitError::Zero`] if `n` is 0 (nothing could ever start), and
    /// [`LimitError::MembersActive`] if members are running or queued: set the limit before
    /// starting any, as Go requires (Go panics; we return an error). The limit is then unchanged.
    ///
    /// ```
    /// use go_context::{Context, Group};
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let group: Group = Group::new(&Context::background());
    /// group.set_limit(2).unwrap();
    /// let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    /// for _ in 0..8 {
    ///     let (now, max) = (now.clone(), max.clone());
    ///     group.go(move |_| {
    ///         let n = now.fetch_add(1, Ordering::SeqCst) + 1;
    ///         max.fetch_max(n, Ordering::SeqCst);
    ///         std::thread::yield_now();
    ///         now.fetch_sub(1, Ordering::SeqCst);
    ///         Ok(())
    ///     });
    /// }
    /// group.wait().unwrap();
    /// assert!(max.load(Ordering::SeqCst) <= 2);
    /// ```
    pub fn set_limit(&self, n: usize) -> Result<(), LimitError> {
        if n == 0 {
            return Err(LimitError::Zero);
        }
        let mut st = self.shared.lock();
        if !Shared::is_idle(&st) {
            return Err(LimitError::MembersActive);
        }
        st.limit = Some(n);
        Ok(())
    }

    /// Starts `f` on a new OS thread as a member: Go's `g.Go(f)` for blocking code. `f` gets
    /// the group's context, which is also its current context. If the limit is reached, `f` is
    /// queued and starts when a slot frees; this call never blocks.
    ///
    /// ```
    /// use go_context::{Context, Group};
    /// use std::sync::mpsc;
    ///
    /// let group: Group = Group::new(&Context::background());
    /// let (tx, rx) = mpsc::channel();
    /// for i in 0..3 {
    ///     let tx = tx.clone();
    ///     group.go(move |_ctx| {
    ///         tx.send(i * 10)?;
    ///         Ok(())
    ///     });
    /// }
    /// group.wait().unwrap();
    /// drop(tx);
    /// let mut got: Vec<i32> = rx.iter().collect();
    /// got.sort();
    /// assert_eq!(got, [0, 10, 20]);
    /// ```
    #[track_caller]
    pub fn go<F>(&self, f: F)
    where
        F: FnOnce(Context) -> Result<(), E> + Send + 'static,
    {
        let pending = self.thread_member(f, Location::caller());
        self.shared.admit(pending, true);
    }

    /// Like [`go`](Group::go), but starts `f` only if a slot is free under the limit (and no
    /// member has failed), and reports whether it did (Go's `TryGo`). If not, `f` is dropped
    /// without running.
    ///
    /// ```
    /// use go_context::{Context, Group};
    ///
    /// let group: Group = Group::new(&Context::background());
    /// group.set_limit(1).unwrap();
    /// assert!(group.try_go(|ctx| { ctx.wait(); Ok(()) }));
    /// assert!(!group.try_go(|_| Ok(()))); // the slot is taken
    /// drop(group); // cancels the context, so the first member returns
    /// ```
    #[track_caller]
    pub fn try_go<F>(&self, f: F) -> bool
    where
        F: FnOnce(Context) -> Result<(), E> + Send + 'static,
    {
        let pending = self.thread_member(f, Location::caller());
        self.shared.admit(pending, false)
    }

    fn thread_member<F>(&self, f: F, site: &'static Location<'static>) -> Pending
    where
        F: FnOnce(Context) -> Result<(), E> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        #[cfg(feature = "tokio")]
        let runtime = tokio::runtime::Handle::try_current().ok();
        let start = Box::new(move || {
            let body = move || {
                #[cfg(feature = "tokio")]
                let _runtime = runtime.as_ref().map(tokio::runtime::Handle::enter);
                let ctx = shared.ctx.clone();
                let finisher = Finisher {
                    shared: Some(Arc::clone(&shared)),
                    site,
                };
                drop(shared);
                let outcome = {
                    let _current = ctx.enter();
                    match panic::catch_unwind(AssertUnwindSafe(move || f(ctx))) {
                        Ok(result) => Outcome::Returned(result),
                        Err(payload) => Outcome::Panicked(payload),
                    }
                };
                finisher.finish(outcome);
            };
            match std::thread::Builder::new().spawn(body) {
                Ok(thread) => Started::Thread(thread),
                Err(e) => Started::Failed(Box::new(format!(
                    "could not spawn a thread for the group member started at {site}: {e}"
                ))),
            }
        });
        Pending { start, site }
    }

    /// Blocks until every member has finished, then cancels the group's context and returns
    /// the first error (Go's `Wait`). If a member panicked, re-raises the first panic instead,
    /// after every member has finished. Member threads have exited when this returns.
    ///
    /// # Panics
    ///
    /// With a member's panic, as above; and in a task on a current-thread tokio runtime, where
    /// blocking would stop the runtime for good: use [`wait_async`](Group::wait_async) there.
    ///
    /// ```
    /// use go_context::{Context, Group};
    ///
    /// let group = Group::new(&Context::background());
    /// group.go(|_| Err(std::io::Error::other("disk on fire")));
    /// group.go(|_| Ok(()));
    /// let err: std::io::Error = group.wait().unwrap_err();
    /// assert_eq!(err.to_string(), "disk on fire");
    /// ```
    #[track_caller]
    pub fn wait(self) -> Result<(), E> {
        assert_may_block("Group::wait", "group.wait_async().await");
        let threads = {
            let mut st = self.shared.lock();
            while !Shared::is_idle(&st) {
                st = self
                    .shared
                    .idle
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            std::mem::take(&mut st.threads)
        };
        for thread in threads {
            // The member's own panic was caught; its thread has only to exit.
            let _ = thread.join();
        }
        self.into_result()
    }

    /// Waits asynchronously until every member has finished, then as [`wait`](Group::wait).
    /// `group.await` does the same. The future is `Send` and needs no particular executor.
    ///
    /// ```
    /// use go_context::{go, Context, Error, Group};
    ///
    /// async fn fetch(ctx: Context, id: u32) -> Result<(), Error> {
    ///     ctx.check()?;
    ///     Ok(())
    /// }
    ///
    /// # #[cfg(not(feature = "tokio"))] fn main() {}
    /// # #[cfg(feature = "tokio")]
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let group = Group::new(&Context::background());
    /// for id in 0..3 {
    ///     group.go_async(move |ctx| fetch(ctx, id));
    /// }
    /// assert_eq!(group.wait_async().await, Ok(()));
    /// # }
    /// ```
    pub fn wait_async(self) -> GroupWait<E> {
        GroupWait { group: Some(self) }
    }

    /// Closes the group (its context is cancelled) and gives the first panic or error.
    fn into_result(self) -> Result<(), E> {
        self.shared.close();
        let (error, panic) = {
            let mut st = self.shared.lock();
            (st.first_error.take(), st.first_panic.take())
        };
        if let Some(payload) = panic {
            panic::resume_unwind(payload);
        }
        match error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(feature = "tokio")]
impl<E> Group<E>
where
    E: fmt::Display + Send + 'static,
{
    /// Starts the future that `f` makes as a member task on the caller's tokio runtime (Go's
    /// `g.Go(f)` for async code). `f` gets the group's context, which is also current while
    /// the task runs. If the limit is reached, the member is queued; this call never blocks.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, with a message saying what to do.
    ///
    /// ```
    /// use go_context::{Context, Error, Group};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let group = Group::new(&Context::background());
    /// group.go_async(|ctx| async move { ctx.done().await; Ok(()) });
    /// group.go_async(|_| async { Err(Error::DeadlineExceeded) });
    /// assert_eq!(group.await, Err(Error::DeadlineExceeded));
    /// # }
    /// ```
    #[track_caller]
    pub fn go_async<F, Fut>(&self, f: F)
    where
        F: FnOnce(Context) -> Fut + Send + 'static,
        Fut: IntoFuture<Output = Result<(), E>>,
        Fut::IntoFuture: Send + 'static,
    {
        let pending = self.task_member(f, Location::caller());
        self.shared.admit(pending, true);
    }

    /// Like [`go_async`](Group::go_async), but starts only if a slot is free, and reports
    /// whether it did (Go's `TryGo`).
    ///
    /// ```
    /// use go_context::{Context, Group};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let group: Group = Group::new(&Context::background());
    /// group.set_limit(1).unwrap();
    /// assert!(group.try_go_async(|_| async { Ok(()) }));
    /// assert!(!group.try_go_async(|_| async { Ok(()) }));
    /// group.await.unwrap();
    /// # }
    /// ```
    #[track_caller]
    pub fn try_go_async<F, Fut>(&self, f: F) -> bool
    where
        F: FnOnce(Context) -> Fut + Send + 'static,
        Fut: IntoFuture<Output = Result<(), E>>,
        Fut::IntoFuture: Send + 'static,
    {
        let pending = self.task_member(f, Location::caller());
        self.shared.admit(pending, false)
    }

    #[track_caller]
    fn task_member<F, Fut>(&self, f: F, site: &'static Location<'static>) -> Pending
    where
        F: FnOnce(Context) -> Fut + Send + 'static,
        Fut: IntoFuture<Output = Result<(), E>>,
        Fut::IntoFuture: Send + 'static,
    {
        let runtime = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime,
            Err(_) => panic!("{}", crate::go::NO_RUNTIME),
        };
        let shared = Arc::clone(&self.shared);
        let start = Box::new(move || {
            // Made only once the member starts: a starter dropped unstarted counts nothing.
            let ctx = shared.ctx.clone();
            let finisher = Finisher {
                shared: Some(shared),
                site,
            };
            let member = async move {
                let outcome = ctx.clone().scope(caught(move || f(ctx))).await;
                finisher.finish(outcome);
            };
            drop(runtime.spawn(member));
            Started::Task
        });
        Pending { start, site }
    }
}

/// Calls `make` and polls the future it returns, catching a panic in either. Everything the
/// member owned is dropped when this returns.
#[cfg(feature = "tokio")]
async fn caught<E, F, Fut>(make: F) -> Outcome<E>
where
    F: FnOnce() -> Fut,
    Fut: IntoFuture<Output = Result<(), E>>,
{
    let fut = match panic::catch_unwind(AssertUnwindSafe(move || make().into_future())) {
        Ok(fut) => fut,
        Err(payload) => return Outcome::Panicked(payload),
    };
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(move |cx| {
        match panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Ready(result)) => Poll::Ready(Outcome::Returned(result)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Outcome::Panicked(payload)),
        }
    })
    .await
}

impl<E> Drop for Group<E> {
    /// Cancels the group's context; does not wait for the members.
    fn drop(&mut self) {
        self.shared.close();
    }
}

impl<E> fmt::Debug for Group<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("Group")
            .field("context", &self.shared.ctx)
            .field("limit", &st.limit)
            .field("running", &st.running)
            .field("queued", &st.queued.len())
            .field("failed", &st.failed)
            .finish()
    }
}

impl<E> IntoFuture for Group<E>
where
    E: fmt::Display + Send + 'static,
{
    type Output = Result<(), E>;
    type IntoFuture = GroupWait<E>;

    /// [`Group::wait_async`].
    fn into_future(self) -> GroupWait<E> {
        self.wait_async()
    }
}

// ===== GroupWait =====

/// The future of [`Group::wait_async`] (and of `group.await`).
///
/// ```
/// use go_context::{Context, Group};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let group: Group = Group::new(&Context::background());
/// group.go(|_| Ok(()));
/// let wait = group.wait_async();
/// assert!(wait.await.is_ok());
/// # }
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct GroupWait<E> {
    group: Option<Group<E>>,
}

impl<E> Future for GroupWait<E>
where
    E: fmt::Display + Send + 'static,
{
    type Output = Result<(), E>;

    fn poll(self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let group = this
            .group
            .as_ref()
            .expect("GroupWait polled after it completed");
        {
            let mut st = group.shared.lock();
            if !Shared::is_idle(&st) {
                match &st.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => st.waker = Some(cx.waker().clone()),
                }
                return Poll::Pending;
            }
            // Member threads are at their exit; they are not joined here, which would block.
            st.threads.clear();
        }
        let group = this.group.take().expect("checked above");
        Poll::Ready(group.into_result())
    }
}

impl<E> fmt::Debug for GroupWait<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupWait")
            .field("group", &self.group)
            .finish()
    }
}

// ===== MemberFailed =====

/// The cause a [`Group`]'s context is cancelled with when a member fails: the error's message
/// (or the panic's) and where that member was started. Read it with
/// `ctx.cause()?.downcast_ref::<MemberFailed>()`.
///
/// ```
/// use go_context::{Context, Group, MemberFailed};
///
/// let group: Group = Group::new(&Context::background());
/// let ctx = group.context().clone();
/// let line = line!() + 1;
/// group.go(|_| Err("no route to host".into()));
/// assert!(group.wait().is_err());
///
/// let cause = ctx.cause().unwrap();
/// let failed = cause.downcast_ref::<MemberFailed>().unwrap();
/// assert_eq!(failed.message(), "no route to host");
/// assert!(!failed.is_panic());
/// assert_eq!(failed.location().line(), line);
/// ```
#[derive(Clone)]
pub struct MemberFailed {
    message: String,
    panicked: bool,
    location: &'static Location<'static>,
}

impl MemberFailed {
    fn error(e: &dyn fmt::Display, location: &'static Location<'static>) -> MemberFailed {
        MemberFailed {
            message: e.to_string(),
            panicked: false,
            location,
        }
    }

    fn panic(payload: &(dyn std::any::Any + Send), location: &'static Location<'static>) -> Self {
        MemberFailed {
            message: panic_message(payload).unwrap_or("..").to_owned(),
            panicked: true,
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
    /// group.go(|_| Err("bad input".into()));
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
    /// group.go(|_| panic!("oops"));
    /// let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| group.wait()));
    /// assert!(caught.is_err()); // wait re-raised the panic
    /// let cause = ctx.cause().unwrap();
    /// assert!(cause.downcast_ref::<MemberFailed>().unwrap().is_panic());
    /// assert_eq!(cause.to_string(), "group member panicked: oops");
    /// ```
    pub fn is_panic(&self) -> bool {
        self.panicked
    }

    /// Where the failing member was started (the `go`, `go_async` or `go!` call).
    ///
    /// ```
    /// use go_context::{Context, Group, MemberFailed};
    ///
    /// let group: Group = Group::new(&Context::background());
    /// let ctx = group.context().clone();
    /// group.go(|_| Err("x".into()));
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
            .field("location", &format_args!("{}", self.location))
            .finish()
    }
}

impl StdError for MemberFailed {}

/// Why [`Group::set_limit`] refused a limit.
///
/// ```
/// use go_context::{Context, Group, LimitError};
///
/// let group: Group = Group::new(&Context::background());
/// assert_eq!(group.set_limit(0), Err(LimitError::Zero));
/// group.go(|ctx| {
///     ctx.wait();
///     Ok(())
/// });
/// assert_eq!(group.set_limit(4), Err(LimitError::MembersActive));
/// drop(group); // cancels the member's context
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitError {
    /// A limit of 0 would never start a member: use at least 1.
    Zero,
    /// Members are running or queued: set the limit before the first `go`.
    MembersActive,
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitError::Zero => "a group limit of 0 would never start a member; use at least 1",
            LimitError::MembersActive => {
                "the group limit can only be set before the first member starts"
            }
        })
    }
}

impl std::error::Error for LimitError {}
