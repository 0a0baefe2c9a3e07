//! [`GoHandle`]: the handle of spawned work (by `go!`, `GoHandle::spawn` (feature `tokio`),
//! [`GoHandle::spawn_blocking`], or a [`Group`](crate::Group)'s `spawn`/`spawn_blocking`):
//! cancel it, look at its context, join it.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{self, Poll};
use std::thread::JoinHandle;

use super::errors::JoinError;
#[cfg(feature = "tokio")]
use super::errors::{Payload, SpawnError, NO_RUNTIME};
use super::runtime;
use super::slot::Slot;
use crate::sync::Arc;
use crate::{CancelHandle, Context, Done};

/// Where the work runs (for `Debug`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Thread,
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    Task,
}

/// The spawned side of a [`GoHandle`] whose outcome goes through a [`Slot`] (a thread, a
/// group member): the work's clone of its cancel handle (released when the work ends) and the
/// slot it leaves its outcome in. Dropped without [`deliver`](Work::deliver) (a group dropped
/// the member unstarted), it delivers [`JoinError::cancelled`].
pub(crate) struct Work<T> {
    cancel: Option<CancelHandle>,
    slot: Arc<Slot<T>>,
}

impl<T> Work<T> {
    /// Ends the work: its context is released first (so a joiner finds nothing of the work
    /// left), then the outcome is left for the joiner.
    pub(crate) fn deliver(mut self, outcome: Result<T, JoinError>) {
        drop(self.cancel.take());
        self.slot.put(outcome);
    }
}

impl<T> Work<T> {
    /// The work's key while it runs (see `group::InMember`): the address of its slot, which
    /// its handle shares.
    pub(crate) fn key(&self) -> usize {
        slot_key(&self.slot)
    }
}

fn slot_key<T>(slot: &Arc<Slot<T>>) -> usize {
    &**slot as *const Slot<T> as usize
}

impl<T> Drop for Work<T> {
    fn drop(&mut self) {
        if let Some(cancel) = self.cancel.take() {
            drop(cancel);
            self.slot.put(Err(JoinError::cancelled(
                "it was never started (its group had failed, or was dropped)",
            )));
        }
    }
}

/// The handle of spawned work: cancel it, look at its context, join it.
///
/// - [`cancel`](GoHandle::cancel) cancels the work's context (a child of the context it was
///   spawned under). Cancellation is cooperative, as in Go: the work sees it through the
///   context (its current context, or the `ctx` it was handed) and returns.
/// - [`join`](GoHandle::join) blocks the thread; `.await` (the handle is [`IntoFuture`]) waits
///   asynchronously. Both consume the handle and give `Ok(value)`, or a [`JoinError`]
///   carrying the panic. (Consuming it makes "join after await" impossible; to `select!` on a
///   handle, `let join = handle.into_future();` and poll `&mut join`.)
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
    outcome: Outcome<T>,
    kind: Kind,
}

/// Where the work's outcome comes back.
enum Outcome<T> {
    /// Our [`Slot`] (threads, and group members, which may be queued before they have a task).
    Slot {
        slot: Arc<Slot<T>>,
        /// The work's thread, if this handle owns it: joined by [`GoHandle::join`], so the
        /// thread has exited when it returns. (A group owns its members' threads.)
        thread: Option<JoinHandle<()>>,
    },
    /// The task's own output, through tokio's `JoinHandle` (a task spawned at once, by `go!`
    /// or [`GoHandle::spawn`]): no slot to allocate, no second "finished" signal. The task
    /// catches its panics and releases its context before it returns, so what the runtime
    /// adds is only its drop of the task (as cancelled) or a panic in its `Drop`.
    #[cfg(feature = "tokio")]
    Task(tokio::task::JoinHandle<Result<T, Payload>>),
}

impl<T> GoHandle<T> {
    /// A handle and its work, under a new child of `parent`, and the child for the work to
    /// run under; nothing runs yet.
    #[track_caller]
    pub(crate) fn prepare(parent: &Context, kind: Kind) -> (GoHandle<T>, Work<T>, Context) {
        let (ctx, cancel) = parent.with_cancel();
        let slot = Arc::new(Slot::new());
        let work = Work {
            cancel: Some(cancel.clone()),
            slot: Arc::clone(&slot),
        };
        let child = ctx.clone();
        let handle = GoHandle {
            ctx,
            cancel,
            outcome: Outcome::Slot { slot, thread: None },
            kind,
        };
        (handle, work, child)
    }

    /// Runs `f` on a new OS thread under a new child of `parent`, which is current on that
    /// thread and also passed to `f`: the blocking half of `go!` (tokio's `spawn_blocking`,
    /// except that the thread is a new one, never taken from a pool whose size or shutdown
    /// you do not control). When the caller is inside a tokio runtime, the thread enters it,
    /// so futures that `f` spawns land on the same runtime.
    ///
    /// If the OS refuses a thread, nothing panics: `f` is dropped unrun and the handle joins
    /// to a [`JoinError`] whose [`is_refused`](JoinError::is_refused) is true.
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
        let (mut handle, work, child) = GoHandle::prepare(parent, Kind::Thread);
        let spawned = runtime::spawn_thread(child, f, move |r| work.deliver(r));
        match &mut handle.outcome {
            Outcome::Slot { thread, .. } => *thread = spawned,
            #[cfg(feature = "tokio")]
            Outcome::Task(_) => unreachable!("prepared with a slot"),
        }
        handle
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

    /// Whether the work has finished (returned, panicked or was dropped); joining will not
    /// block.
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
        match &self.outcome {
            Outcome::Slot { slot, .. } => slot.is_finished(),
            #[cfg(feature = "tokio")]
            Outcome::Task(task) => task.is_finished(),
        }
    }

    /// Blocks this thread until the work finishes, and returns its value, or a [`JoinError`]
    /// with its panic. For a thread, the thread has exited when this returns.
    ///
    /// On a multi-thread tokio runtime this is allowed (it runs through
    /// `tokio::task::block_in_place`, so the runtime keeps running the other tasks, the joined
    /// one included).
    ///
    /// # Panics
    ///
    /// On the thread that drives a current-thread tokio runtime (in one of its tasks, or in
    /// its root future: `#[tokio::test]`, `#[tokio::main(flavor = "current_thread")]`,
    /// `Runtime::block_on`), unless the work has already finished: nothing else can run there
    /// while this thread blocks, so it would hang forever. Use `handle.await` there.
    ///
    /// Inside the work itself (on its own thread, or in its own task), which would wait for
    /// itself forever. (Awaiting the handle there never completes.)
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
    pub fn join(self) -> Result<T, JoinError> {
        let finished = self.is_finished();
        if !finished && self.is_current() {
            panic!(
                "GoHandle::join inside the work it joins (its own thread or task): it waits for \
                 that work to finish, so it would hang forever"
            );
        }
        let outcome = self.outcome;
        let finish = move || match outcome {
            Outcome::Slot { slot, thread } => {
                let outcome = slot.take_blocking();
                if let Some(thread) = thread {
                    // The thread has delivered: only its exit is left, and it cannot panic any
                    // more (the work's panic was caught).
                    let _ = thread.join();
                }
                outcome
            }
            #[cfg(feature = "tokio")]
            Outcome::Task(task) => task_outcome(runtime::wait_blocking(task)),
        };
        if finished {
            return finish();
        }
        runtime::block("GoHandle::join", "handle.await", finish)
    }
}

impl<T> GoHandle<T> {
    /// Whether this thread is the work's own thread, or this task the work's own task, or
    /// this thread runs the group member whose handle this is.
    fn is_current(&self) -> bool {
        match &self.outcome {
            Outcome::Slot {
                thread: Some(thread),
                ..
            } => thread.thread().id() == std::thread::current().id(),
            Outcome::Slot { slot, thread: None } => super::group::InMember::is_work(slot_key(slot)),
            #[cfg(feature = "tokio")]
            Outcome::Task(task) => tokio::task::try_id() == Some(task.id()),
        }
    }
}

/// What a `go!` task's `JoinHandle` gave, as the handle's outcome: the task's own, or how the
/// runtime ended it.
#[cfg(feature = "tokio")]
fn task_outcome<T>(
    joined: Result<Result<T, Payload>, tokio::task::JoinError>,
) -> Result<T, JoinError> {
    match joined {
        Ok(Ok(value)) => Ok(value),
        // A panic of the work's, caught in the task.
        Ok(Err(payload)) => Err(JoinError::panic(payload)),
        // Only a `Drop` of the work's can panic out of the task (its polls are caught).
        Err(e) if e.is_panic() => Err(JoinError::panic(e.into_panic())),
        Err(_) => Err(JoinError::cancelled(
            "its runtime dropped the task (the runtime shut down)",
        )),
    }
}

#[cfg(feature = "tokio")]
impl<T> GoHandle<T> {
    /// Spawns the future that `f` makes onto the caller's tokio runtime, under a new child of
    /// `parent`, which is current while the task runs (through [`Context::scope`]) and also
    /// passed to `f`: the async half of `go!` (tokio's `spawn`). `f` is called inside the task.
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
    /// use std::future::IntoFuture;
    ///
    /// assert!(GoHandle::try_spawn(&Context::background(), |_| async { 1 }).is_err());
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let handle = rt.block_on(async {
    ///     GoHandle::try_spawn(&Context::background(), |_| async { 1 }).unwrap()
    /// });
    /// assert_eq!(rt.block_on(handle.into_future()).unwrap(), 1);
    /// ```
    #[track_caller]
    pub fn try_spawn<F, Fut>(parent: &Context, f: F) -> Result<GoHandle<T>, SpawnError>
    where
        F: FnOnce(Context) -> Fut + Send + 'static,
        Fut: IntoFuture<Output = T>,
        Fut::IntoFuture: Send + 'static,
        T: Send + 'static,
    {
        let spawner = runtime::Spawner::here()?;
        let (ctx, cancel) = parent.with_cancel();
        // The work's context is released (its handle clone dropped) before the outcome is
        // there for the joiner, as `Work::deliver` does.
        let task = spawner.spawn_joined(ctx.clone(), f, cancel.clone());
        Ok(GoHandle {
            ctx,
            cancel,
            outcome: Outcome::Task(task),
            kind: Kind::Task,
        })
    }
}

impl<T> IntoFuture for GoHandle<T> {
    type Output = Result<T, JoinError>;
    type IntoFuture = GoJoin<T>;

    /// Waits asynchronously, on any executor, for the work to finish.
    fn into_future(self) -> GoJoin<T> {
        GoJoin {
            handle: self,
            done: None,
            yielded: false,
        }
    }
}

impl<T> fmt::Debug for GoHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Thread => "thread",
            Kind::Task => "task",
        };
        f.debug_struct("GoHandle")
            .field("kind", &kind)
            .field("context", &self.ctx)
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// The future of `handle.await` (from [`GoHandle`]'s [`IntoFuture`]): the work's value, or a
/// [`JoinError`]. Dropping it detaches the work, as dropping the handle does. It needs no
/// particular executor. Polled again after it completed, it panics (the `Future` contract;
/// `.await` and `select!` never do): the outcome was handed over once.
///
/// ```
/// use go_context::{Context, GoHandle};
///
/// let handle = GoHandle::spawn_blocking(&Context::background(), |_| 7);
/// let join = std::future::IntoFuture::into_future(handle);
/// assert_eq!(futures_executor::block_on(join).unwrap(), 7);
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct GoJoin<T> {
    handle: GoHandle<T>,
    /// Boxed, so that `GoJoin` stays `Unpin` (`Done` is not).
    done: Option<Pin<Box<Done>>>,
    /// Whether the first pending poll has yielded (see `poll`).
    yielded: bool,
}

impl<T> GoJoin<T> {
    /// The handle being awaited: cancel the work through it.
    ///
    /// ```
    /// use go_context::{go, Error};
    ///
    /// let join = std::future::IntoFuture::into_future(go!(|ctx| ctx.wait()));
    /// join.handle().cancel();
    /// assert_eq!(futures_executor::block_on(join).unwrap(), Error::Canceled);
    /// ```
    pub fn handle(&self) -> &GoHandle<T> {
        &self.handle
    }
}

impl<T> Future for GoJoin<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let slot = match &mut this.handle.outcome {
            Outcome::Slot { slot, .. } => slot,
            // tokio's own join: the peer's cost, on any executor.
            #[cfg(feature = "tokio")]
            Outcome::Task(task) => return Pin::new(task).poll(cx).map(task_outcome),
        };
        // Work awaited at once (spawn, then `.await`) has usually not run yet: yield once
        // (wake ourselves, as `yield_now` does) so that it can, before paying for the finished
        // signal's node. On a current-thread runtime a group member's task was queued first,
        // so it is done when we are polled again (when `go!` tasks still joined through the
        // slot, this took S10 from 5,379 to 4,097 instructions per spawn + await).
        if !this.yielded && this.done.is_none() && !slot.is_finished() {
            this.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        // A thread that has delivered is at its exit; it is not joined here, which would block.
        slot.poll_take(&mut this.done, cx)
    }
}

impl<T> fmt::Debug for GoJoin<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoJoin")
            .field("handle", &self.handle)
            .finish()
    }
}
