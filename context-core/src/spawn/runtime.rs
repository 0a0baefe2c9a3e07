//! The runtime glue that `GoHandle` and `Group` share: the thread body (runtime capture,
//! `enter`, `catch_unwind`), the policy when the OS refuses a thread, the task body (scope,
//! panics caught at creation and at every poll, a task dropped unfinished), and the check that
//! decides whether a blocking wait may block this thread.
//!
//! Every spawned piece of work ends in exactly one call of its `deliver` closure: with its
//! value, its panic, [`JoinError::refused`] (no thread) or [`JoinError::cancelled`] (its task
//! was dropped by the runtime). `deliver` runs on the work's thread, or where the runtime drops
//! the task; never under a lock of ours. The exception is a `GoHandle`'s task
//! (`Spawner::spawn_joined`, with the `tokio` feature): its outcome is the task's output, read
//! through tokio's `JoinHandle`, which also reports a task the runtime dropped, so it has no
//! `deliver`.

use std::panic::{self, AssertUnwindSafe};
use std::thread::JoinHandle;

use super::errors::JoinError;
#[cfg(feature = "tokio")]
use super::errors::Payload;
use crate::sync::{lock, Arc, Mutex};
use crate::Context;

/// The tokio runtime the spawning thread is in, if any: a thread started from inside a runtime
/// enters it, so futures that its blocking code spawns land on the same runtime. Captured
/// where the work is *started* by its caller (`go!`, `Group::spawn_blocking`), not where its
/// thread is launched: a group member queued under the limit is launched later, by whichever
/// member finished first, on that member's thread (which may be in no runtime, or another).
pub(crate) struct Runtime {
    #[cfg(feature = "tokio")]
    handle: Option<tokio::runtime::Handle>,
}

impl Runtime {
    pub(crate) fn capture() -> Runtime {
        Runtime {
            #[cfg(feature = "tokio")]
            handle: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// Runs `f` inside the captured runtime, if any.
    fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tokio")]
        let _entered = self.handle.as_ref().map(tokio::runtime::Handle::enter);
        f()
    }
}

/// Runs `f(ctx)` on a new OS thread, with `ctx` current and the caller's runtime entered, and
/// hands the outcome to `deliver`. Returns the thread, to be joined (or dropped: detached).
///
/// **Policy when the OS refuses a thread** (the same for `go!` and `Group`): nothing panics at
/// the spawn; `f` is dropped unrun, here, and `deliver` gets [`JoinError::refused`] with the
/// OS error, so the refusal comes back where the work's outcome would have.
pub(crate) fn spawn_thread<T, F, D>(ctx: Context, f: F, deliver: D) -> Option<JoinHandle<()>>
where
    F: FnOnce(Context) -> T + Send + 'static,
    T: Send + 'static,
    D: FnOnce(Result<T, JoinError>) + Send + 'static,
{
    spawn_thread_in(Runtime::capture(), ctx, f, deliver)
}

/// [`spawn_thread`] in the runtime `runtime` (captured when the work was started).
pub(crate) fn spawn_thread_in<T, F, D>(
    runtime: Runtime,
    ctx: Context,
    f: F,
    deliver: D,
) -> Option<JoinHandle<()>>
where
    F: FnOnce(Context) -> T + Send + 'static,
    T: Send + 'static,
    D: FnOnce(Result<T, JoinError>) + Send + 'static,
{
    spawn_thread_with(std::thread::Builder::new(), runtime, ctx, f, deliver)
}

/// [`spawn_thread_in`] with a given builder (the tests make the OS refuse through it).
fn spawn_thread_with<T, F, D>(
    builder: std::thread::Builder,
    runtime: Runtime,
    ctx: Context,
    f: F,
    deliver: D,
) -> Option<JoinHandle<()>>
where
    F: FnOnce(Context) -> T + Send + 'static,
    T: Send + 'static,
    D: FnOnce(Result<T, JoinError>) + Send + 'static,
{
    // Shared with the thread, so that a refused spawn (which drops the thread's closure) still
    // gives the job back to deliver the refusal.
    let job = Arc::new(Mutex::new(Some((ctx, f, deliver))));
    let body = {
        let job = Arc::clone(&job);
        move || {
            let taken = lock(&job).take();
            drop(job);
            let Some((ctx, f, deliver)) = taken else {
                return;
            };
            let result = runtime.run(|| {
                let _current = ctx.enter();
                panic::catch_unwind(AssertUnwindSafe(move || f(ctx)))
            });
            deliver(result.map_err(JoinError::panic));
        }
    };
    match builder.spawn(body) {
        Ok(thread) => Some(thread),
        Err(e) => {
            let taken = lock(&job).take();
            if let Some((ctx, f, deliver)) = taken {
                // User code (the closure's drop), outside every lock; its panic (reported by
                // the hook) must not skip the delivery, which ends a group member.
                crate::unwind::contain(move || drop((ctx, f)));
                deliver(Err(JoinError::refused(e)));
            }
            None
        }
    }
}

/// Where a task is spawned: the runtime of the caller's task (`tokio::spawn`, no handle clone),
/// or a captured runtime (for work started later, from anywhere).
#[cfg(feature = "tokio")]
pub(crate) enum Spawner {
    Task,
    Handle(tokio::runtime::Handle),
}

#[cfg(feature = "tokio")]
impl Spawner {
    /// Spawns onto the caller's runtime, now.
    pub(crate) fn here() -> Result<Spawner, super::errors::SpawnError> {
        if tokio::task::try_id().is_some() {
            return Ok(Spawner::Task);
        }
        Spawner::captured()
    }

    /// The caller's runtime, to spawn onto later.
    pub(crate) fn captured() -> Result<Spawner, super::errors::SpawnError> {
        tokio::runtime::Handle::try_current()
            .map(Spawner::Handle)
            .map_err(|_| super::errors::SpawnError::NO_RUNTIME)
    }

    /// Runs the future that `make(ctx)` gives as a task, with `ctx` current at every poll, and
    /// hands the outcome to `finish`: the value, a panic (in `make` or in any poll), or
    /// [`JoinError::cancelled`] if the runtime drops the task unfinished. What `finish` returns
    /// is the task's output, read through the returned `JoinHandle` (a `GoHandle` joins through
    /// it; a group member's `finish` delivers to its slot and the handle is dropped).
    ///
    /// The task is one `async` block that owns the context, `make`, the future (all three in
    /// one [`Caught`]) and `finish` once each (no nested futures holding copies of one
    /// another): S10's task went from 384 to 256 bytes, which tokio copies on each of its
    /// moves.
    pub(crate) fn spawn<T, R, F, Fut, D>(
        self,
        ctx: Context,
        make: F,
        finish: D,
    ) -> tokio::task::JoinHandle<R>
    where
        F: FnOnce(Context) -> Fut + Send + 'static,
        Fut: std::future::IntoFuture<Output = T>,
        Fut::IntoFuture: Send + 'static,
        T: Send + 'static,
        R: Send + 'static,
        D: FnOnce(Result<T, JoinError>) -> R + Send + 'static,
    {
        let mut delivery = Delivery(Some(finish), std::marker::PhantomData);
        let work = caught(ctx, make);
        let task = async move {
            let result = work.await;
            delivery.deliver(result.map_err(JoinError::panic))
        };
        self.launch(task)
    }

    /// [`spawn`](Spawner::spawn) for work joined through the returned `JoinHandle` (a
    /// `GoHandle`'s task): the task's output is the value or the panic payload, and `keep` (the
    /// work's cancel handle) is dropped when the work is done, before the output is there for
    /// the joiner. There is nothing to deliver if the runtime drops the task unfinished: the
    /// `JoinHandle` says so itself (and `keep` goes with the task). No `Delivery` and a smaller
    /// output than `Result<T, JoinError>`: S10 went from 3,724 to 3,657 instructions per
    /// spawn + join (tokio::spawn: 2,602 and 2,598 in the same builds).
    pub(crate) fn spawn_joined<T, F, Fut, K>(
        self,
        ctx: Context,
        make: F,
        keep: K,
    ) -> tokio::task::JoinHandle<Result<T, Payload>>
    where
        F: FnOnce(Context) -> Fut + Send + 'static,
        Fut: std::future::IntoFuture<Output = T>,
        Fut::IntoFuture: Send + 'static,
        T: Send + 'static,
        K: Send + 'static,
    {
        let work = caught(ctx, make);
        let task = async move {
            let result = work.await;
            drop(keep);
            result
        };
        self.launch(task)
    }

    fn launch<R: Send + 'static>(
        self,
        task: impl std::future::Future<Output = R> + Send + 'static,
    ) -> tokio::task::JoinHandle<R> {
        match self {
            Spawner::Task => tokio::spawn(task),
            Spawner::Handle(runtime) => runtime.spawn(task),
        }
    }
}

/// Calls `finish` exactly once: with the outcome, or with [`JoinError::cancelled`] if the task
/// is dropped before it delivered.
#[cfg(feature = "tokio")]
struct Delivery<T, R, D: FnOnce(Result<T, JoinError>) -> R>(
    Option<D>,
    std::marker::PhantomData<fn(T) -> R>,
);

#[cfg(feature = "tokio")]
impl<T, R, D: FnOnce(Result<T, JoinError>) -> R> Delivery<T, R, D> {
    fn deliver(&mut self, result: Result<T, JoinError>) -> R {
        let finish = self.0.take().expect("a task delivers once");
        finish(result)
    }
}

#[cfg(feature = "tokio")]
impl<T, R, D: FnOnce(Result<T, JoinError>) -> R> Drop for Delivery<T, R, D> {
    fn drop(&mut self) {
        // Only reachable unfinished: `deliver` took the closure otherwise.
        if let Some(finish) = self.0.take() {
            drop(finish(Err(JoinError::cancelled(
                "its runtime dropped the task (the runtime shut down)",
            ))));
        }
    }
}

/// Calls `make` and polls the future it returns, with `ctx` current (lent, see
/// `ambient::lend`) during both, catching a panic in either. The future is dropped (also
/// under the context) before the [`Caught`] completes; and if the task is dropped first (its
/// runtime shut down), before or after its first poll, `make` or the future still goes under
/// the context, in `Caught`'s `Drop`, as a [`Scope`](crate::Scope) drops its future.
///
/// One lend per poll: `make` runs in the first poll, and the future is dropped in the poll
/// that completes it, so a task that finishes in one poll writes the thread-local twice
/// (three lends, for `make`, the poll and the drop, took S10 from 3,786 to 3,924
/// instructions per spawn + join).
#[cfg(feature = "tokio")]
fn caught<F, Fut>(ctx: Context, make: F) -> Caught<F, Fut::IntoFuture>
where
    F: FnOnce(Context) -> Fut,
    Fut: std::future::IntoFuture,
{
    Caught {
        home: Some(ctx),
        make: Some(make),
        fut: None,
    }
}

#[cfg(feature = "tokio")]
pin_project_lite::pin_project! {
    /// The future of [`caught`]: the task's context (`Some` but during a lend), `make` until
    /// the first poll, then the work's future until it finished (pinned here, in one place).
    struct Caught<F, W> {
        home: Option<Context>,
        make: Option<F>,
        #[pin]
        fut: Option<W>,
    }

    impl<F, W> PinnedDrop for Caught<F, W> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if this.make.is_some() || this.fut.is_some() {
                // Dropped unfinished: what the work owns goes with its context current.
                let (make, mut fut) = (this.make, this.fut);
                crate::ambient::lend(this.home, || {
                    drop(make.take());
                    fut.set(None);
                });
            }
        }
    }
}

#[cfg(feature = "tokio")]
impl<T, F, Fut> std::future::Future for Caught<F, Fut::IntoFuture>
where
    F: FnOnce(Context) -> Fut,
    Fut: std::future::IntoFuture<Output = T>,
{
    type Output = Result<T, Payload>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<T, Payload>> {
        use std::task::Poll;
        let this = self.project();
        let first = this.make.take().map(|make| {
            let child = this
                .home
                .clone()
                .expect("the task's context is home between polls");
            (make, child)
        });
        let mut fut = this.fut;
        let polled = crate::ambient::lend(this.home, || {
            panic::catch_unwind(AssertUnwindSafe(|| {
                if let Some((make, child)) = first {
                    fut.set(Some(make(child).into_future()));
                }
                let Some(running) = fut.as_mut().as_pin_mut() else {
                    unreachable!("polled after it finished")
                };
                let poll = running.poll(cx);
                if poll.is_ready() {
                    // Everything the work owned goes now, with its context still current
                    // (as it ran); a panicking `Drop` there is the work's panic too.
                    fut.set(None);
                }
                poll
            }))
        });
        match polled {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => {
                // The panic came from `make`, a poll or the drop: whatever is left of the
                // future goes too (a second panic there is dropped: the first is reported).
                crate::ambient::lend(this.home, || crate::unwind::contain(|| fut.set(None)));
                Poll::Ready(Err(payload))
            }
        }
    }
}

/// Blocks this thread until `task` finishes, and gives its output: the blocking join of a
/// task (the caller checked that it may block, see [`block`]). The thread parks between
/// polls; tokio's join waker unparks it. Polled unconstrained: the caller may be a task whose
/// cooperative budget is spent, and nothing would ever refill it while this thread blocks.
#[cfg(feature = "tokio")]
pub(crate) fn wait_blocking<R>(
    task: tokio::task::JoinHandle<R>,
) -> Result<R, tokio::task::JoinError> {
    use std::future::Future;
    use std::task::{Poll, Wake, Waker};

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut task = tokio::task::unconstrained(task);
    loop {
        match std::pin::Pin::new(&mut task).poll(&mut cx) {
            Poll::Ready(output) => return output,
            // A spurious unpark only costs another poll.
            Poll::Pending => std::thread::park(),
        }
    }
}

/// Runs the blocking wait `f` of `what` (e.g. `GoHandle::join`) so that it cannot hang a tokio
/// runtime:
/// - on a multi-thread runtime's thread, through `block_in_place`, so the runtime moves this
///   worker's tasks (its LIFO slot included, where the awaited task often sits) elsewhere;
/// - on the thread that drives a current-thread runtime (one of its tasks, or its root future:
///   `#[tokio::test]`, `#[tokio::main(flavor = "current_thread")]`, `Runtime::block_on`),
///   nothing else can run while this thread blocks, so the deadlock is certain: panics with a
///   message that names `instead`;
/// - anywhere else (plain threads, threads that only entered a runtime), just runs `f`.
#[track_caller]
pub(crate) fn block<R>(what: &str, instead: &str, f: impl FnOnce() -> R) -> R {
    #[cfg(feature = "tokio")]
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        match runtime.runtime_flavor() {
            tokio::runtime::RuntimeFlavor::CurrentThread => {
                if drives_runtime() {
                    panic!(
                        "{what} blocks this thread, and this thread drives a current-thread \
                         tokio runtime (a task on it, or its `block_on`), so the work it waits \
                         for could never run: it would hang forever. Use `{instead}` instead"
                    );
                }
            }
            _ => return tokio::task::block_in_place(f),
        }
    }
    let _ = (what, instead);
    f()
}

/// Whether this thread is polling a tokio runtime right now: one of its tasks, or a
/// `block_on` root future. tokio has no public query for this; its cooperative budget is the
/// observable: only code polled by a runtime runs under a budget (a task, a `block_on` root
/// future), and it runs out within a few hundred steps, while elsewhere (plain threads, threads
/// that only entered a runtime, `spawn_blocking` and `block_in_place` sections, which tokio
/// runs unconstrained) it never does. (A task id is no test: `spawn_blocking` closures have
/// one too. Spending the budget is harmless here: the caller panics when it ran out.) Work
/// wrapped in `tokio::task::unconstrained` is not detected.
#[cfg(feature = "tokio")]
fn drives_runtime() -> bool {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..1024 {
        match tokio::task::coop::poll_proceed(&mut cx) {
            std::task::Poll::Ready(restore) => restore.made_progress(),
            std::task::Poll::Pending => return true,
        }
    }
    false
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_refused_thread_is_delivered_as_a_join_error_and_nothing_panics() {
        let (ctx, _cancel) = Context::background().with_cancel();
        let (tx, rx) = std::sync::mpsc::channel();
        // No OS maps a stack this large: the spawn fails with an OS error.
        let builder = std::thread::Builder::new().stack_size(usize::MAX / 2);
        let thread = spawn_thread_with(
            builder,
            Runtime::capture(),
            ctx,
            |_| 1u8,
            move |r| tx.send(r).unwrap(),
        );
        assert!(thread.is_none());
        let err = rx.try_recv().expect("delivered at once").unwrap_err();
        assert!(err.is_refused(), "{err:?}");
        assert!(err.os_error().is_some());
        assert!(err.to_string().contains("refused a thread"), "{err}");
    }

    /// Regression test: the refused work's closure was dropped before the refusal was
    /// delivered, so a panic in its `Drop` unwound past `deliver`: a group member was never
    /// ended, and `wait` hung.
    #[test]
    fn a_refused_thread_is_delivered_even_if_the_work_panics_as_it_is_dropped() {
        struct PanicsOnDrop;
        impl Drop for PanicsOnDrop {
            fn drop(&mut self) {
                panic!("deliberate: the work panics as it is dropped");
            }
        }
        let (ctx, _cancel) = Context::background().with_cancel();
        let (tx, rx) = std::sync::mpsc::channel();
        let owned = PanicsOnDrop;
        let builder = std::thread::Builder::new().stack_size(usize::MAX / 2);
        let spawned = panic::catch_unwind(AssertUnwindSafe(|| {
            spawn_thread_with(
                builder,
                Runtime::capture(),
                ctx,
                move |_| {
                    let _owned = &owned;
                    1u8
                },
                move |r| tx.send(r).unwrap(),
            )
        }));
        assert!(
            matches!(spawned, Ok(None)),
            "the spawn returns, refused, without unwinding"
        );
        let err = rx.try_recv().expect("delivered at once").unwrap_err();
        assert!(err.is_refused(), "{err:?}");
    }
}
