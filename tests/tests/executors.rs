//! Any executor: `done()`, `run()`, `scope()`, `Group::wait_async` and awaiting a `GoHandle`
//! work the same under futures' `block_on`, smol's `async-executor` (as a spawned task) and
//! tokio. None of these needs a tokio runtime: the first two run with none present. Only
//! spawning futures (`go!` of a future, `Group::spawn`, `GoHandle::spawn`) needs tokio;
//! that is the last test.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use go_context::{Context, Error, GoHandle, Group};

/// Runs the future that `make` builds to completion on each executor in turn.
fn on_each_executor<F, Fut>(make: F)
where
    F: Fn(&'static str) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    // futures' block_on: the calling thread, parked between wake-ups.
    futures_executor::block_on(async {
        assert!(
            tokio::runtime::Handle::try_current().is_err(),
            "no tokio here"
        );
    });
    futures_executor::block_on(make("block_on"));

    // smol's executor, with the future spawned as one of its tasks (so it is polled with
    // async-task's wakers), driven on this thread.
    let ex = async_executor::Executor::new();
    let task = ex.spawn(async {
        assert!(
            tokio::runtime::Handle::try_current().is_err(),
            "no tokio here"
        );
    });
    futures_executor::block_on(ex.run(task));
    let task = ex.spawn(make("async-executor"));
    futures_executor::block_on(ex.run(task));

    // tokio, multi-thread, spawned as a task.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async { tokio::spawn(make("tokio")).await.unwrap() });
}

/// Yields to the executor once: an executor-neutral `yield_now`.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn yield_now() -> YieldNow {
    YieldNow(false)
}

#[test]
fn done_resolves_on_cancel_and_on_deadline() {
    on_each_executor(|name| async move {
        let (ctx, cancel) = Context::background().with_cancel();
        let canceller = std::thread::spawn(move || cancel.cancel());
        assert_eq!(ctx.done().await, Error::Canceled, "{name}");
        canceller.join().unwrap();

        // The deadline comes from our own timer thread, not from the executor's.
        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(10));
        assert_eq!(ctx.done().await, Error::DeadlineExceeded, "{name}");

        // A dropped pending `done()` leaves nothing behind; a new one still resolves.
        let (ctx, cancel) = Context::background().with_cancel();
        let mut first = Box::pin(ctx.done());
        assert!(futures_poll_once(first.as_mut()).is_pending());
        drop(first);
        cancel.cancel();
        assert_eq!(ctx.done().await, Error::Canceled, "{name}");
    });
}

/// Polls `fut` once with a no-op waker.
fn futures_poll_once<F: Future>(fut: Pin<&mut F>) -> Poll<F::Output> {
    let waker = std::task::Waker::noop();
    fut.poll(&mut TaskContext::from_waker(waker))
}

#[test]
fn run_races_a_future_against_the_context() {
    on_each_executor(|name| async move {
        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(3600));
        assert_eq!(ctx.run(async { 5 }).await, Ok(5), "{name}");

        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(10));
        let never = std::future::pending::<()>();
        assert_eq!(ctx.run(never).await, Err(Error::DeadlineExceeded), "{name}");

        // Already done: the future is never polled.
        let polled = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&polled);
        let result = ctx
            .run(async move {
                flag.store(true, Ordering::SeqCst);
            })
            .await;
        assert_eq!(result, Err(Error::DeadlineExceeded));
        assert!(!polled.load(Ordering::SeqCst), "{name}");

        // Cancelled from another thread while the future is pending.
        let (ctx, cancel) = Context::background().with_cancel();
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            cancel.cancel();
        });
        let never = std::future::pending::<()>();
        assert_eq!(ctx.run(never).await, Err(Error::Canceled), "{name}");
        canceller.join().unwrap();
    });
}

#[derive(Debug, PartialEq)]
struct RequestId(u32);

#[test]
fn scope_carries_the_ambient_context_across_awaits() {
    on_each_executor(|name| async move {
        let ctx = Context::background().with_value(RequestId(7));
        let seen = ctx
            .scope(async {
                let before = Context::current().value::<RequestId>().map(|r| r.0);
                yield_now().await;
                let after = Context::current().value::<RequestId>().map(|r| r.0);
                (before, after)
            })
            .await;
        assert_eq!(seen, (Some(7), Some(7)), "{name}");
        // Outside the scope, the task's thread has its own ambient context again.
        assert_eq!(Context::current().value::<RequestId>(), None, "{name}");
    });
}

#[test]
fn group_wait_async_joins_members_and_reports_the_first_error() {
    on_each_executor(|name| async move {
        let group: Group<String> = Group::new(&Context::background());
        for _ in 0..4 {
            group.spawn_blocking(|ctx| {
                ctx.wait();
                Ok(())
            });
        }
        group.spawn_blocking(|_| Err::<(), _>("member failed".to_owned()));
        assert_eq!(
            group.wait_async().await,
            Err("member failed".to_owned()),
            "{name}"
        );

        let group: Group<String> = Group::new(&Context::background());
        group.spawn_blocking(|_| Ok(()));
        assert_eq!(group.await, Ok(()), "{name}: `group.await` as well");
    });
}

#[test]
fn a_go_handle_of_blocking_work_can_be_awaited() {
    on_each_executor(|name| async move {
        let parent = Context::background();
        let handle = GoHandle::spawn_blocking(&parent, |_ctx| 6 * 7);
        assert_eq!(handle.await.unwrap(), 42, "{name}");

        let handle = GoHandle::spawn_blocking(&parent, |ctx| ctx.wait());
        handle.cancel();
        assert_eq!(handle.await.unwrap(), Error::Canceled, "{name}");

        let handle = GoHandle::spawn_blocking(&parent, |_ctx| -> () { panic!("boom") });
        let err = handle.await.unwrap_err();
        assert!(err.is_panic(), "{name}");
    });
}

#[test]
fn spawning_futures_is_what_needs_tokio() {
    // Outside a runtime, spawning a future is a typed error, not a panic.
    let err = GoHandle::try_spawn(&Context::background(), |_ctx| async { 1 });
    assert!(err.is_err());

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let (parent, _cancel) = Context::background().with_cancel();
        let handle = GoHandle::spawn(&parent, |ctx| async move {
            ctx.done().await;
            "stopped"
        });
        handle.cancel();
        assert_eq!(handle.await.unwrap(), "stopped");

        let group: Group<Error> = Group::new(&parent);
        group.spawn(|ctx| async move { ctx.check() });
        assert_eq!(group.wait_async().await, Ok(()));
    });
}
