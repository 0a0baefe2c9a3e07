//! Waiting: the `done()` future on several executors, blocking waits, `sleep`, `run`,
//! `after_func`, and the rule that no internal lock is held while user code runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use go_context::{Context, Error};

/// A waker that counts its wake-ups and runs an optional hook inside `wake`.
#[derive(Default)]
struct CountingWaker {
    wakes: AtomicUsize,
    hook: Mutex<Option<Box<dyn FnMut() + Send>>>,
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        if let Some(hook) = self.hook.lock().unwrap().as_mut() {
            hook();
        }
    }
}

fn poll_once<F: Future + Unpin>(fut: &mut F, waker: &Arc<CountingWaker>) -> Poll<F::Output> {
    let waker = Waker::from(Arc::clone(waker));
    Pin::new(fut).poll(&mut TaskContext::from_waker(&waker))
}

/// Runs `f` on a thread and fails (instead of hanging) if it does not finish in time: a
/// deadlock shows up as a failure.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(f()).unwrap());
    rx.recv_timeout(limit)
        .expect("deadlock: the scenario did not finish")
}

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn done_wakes_its_task_exactly_once() {
    let (ctx, cancel) = Context::background().with_cancel();
    let waker = Arc::new(CountingWaker::default());
    let mut done = Box::pin(ctx.done());
    assert!(poll_once(&mut done, &waker).is_pending());
    assert!(
        poll_once(&mut done, &waker).is_pending(),
        "re-poll keeps one registration"
    );
    assert_eq!(waker.wakes.load(Ordering::SeqCst), 0);
    cancel.cancel();
    assert_eq!(waker.wakes.load(Ordering::SeqCst), 1);
    assert_eq!(poll_once(&mut done, &waker), Poll::Ready(Error::Canceled));
}

#[test]
fn done_re_registers_a_new_waker() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (first, second) = (
        Arc::new(CountingWaker::default()),
        Arc::new(CountingWaker::default()),
    );
    let mut done = Box::pin(ctx.done());
    assert!(poll_once(&mut done, &first).is_pending());
    assert!(poll_once(&mut done, &second).is_pending());
    cancel.cancel();
    assert_eq!(first.wakes.load(Ordering::SeqCst), 0);
    assert_eq!(second.wakes.load(Ordering::SeqCst), 1);
}

#[test]
fn a_dropped_pending_done_is_never_woken() {
    let (ctx, cancel) = Context::background().with_cancel();
    let waker = Arc::new(CountingWaker::default());
    let mut done = Box::pin(ctx.done());
    assert!(poll_once(&mut done, &waker).is_pending());
    drop(done);
    cancel.cancel();
    assert_eq!(waker.wakes.load(Ordering::SeqCst), 0);
}

#[test]
fn done_is_ready_at_once_on_a_done_context_and_pending_forever_on_background() {
    let (ctx, cancel) = Context::background().with_timeout(Duration::ZERO);
    drop(cancel);
    let waker = Arc::new(CountingWaker::default());
    assert_eq!(
        poll_once(&mut Box::pin(ctx.done()), &waker),
        Poll::Ready(Error::DeadlineExceeded)
    );
    assert!(poll_once(&mut Box::pin(Context::background().done()), &waker).is_pending());
}

#[test]
fn done_works_under_futures_executor() {
    let (ctx, cancel) = Context::background().with_cancel();
    let t = thread::spawn(move || futures_executor::block_on(ctx.done()));
    cancel.cancel();
    assert_eq!(t.join().unwrap(), Error::Canceled);
}

#[test]
fn done_works_under_tokio_with_many_tasks() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let (ctx, cancel) = Context::background().with_timeout(Duration::from_secs(3600));
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let (child, cancel_child) = ctx.with_cancel();
                tokio::spawn(async move {
                    let _keep = cancel_child;
                    let err = child.done().await;
                    (i, err, child.err())
                })
            })
            .collect();
        tokio::task::yield_now().await;
        cancel.cancel();
        for t in tasks {
            let (_, err, observed) = t.await.unwrap();
            assert_eq!(err, Error::Canceled);
            assert_eq!(observed, Some(Error::Canceled));
        }
    });
}

#[test]
fn err_is_some_exactly_when_done_is_ready_and_wait_returns() {
    for _ in 0..300 {
        let (ctx, cancel) = Context::background().with_cancel();
        let barrier = Arc::new(Barrier::new(2));
        let observer = {
            let (ctx, barrier) = (ctx.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                let waker = Arc::new(CountingWaker::default());
                let mut done = Box::pin(ctx.done());
                barrier.wait();
                loop {
                    // Read err first: if it is Some, done must already be ready...
                    let err = ctx.err();
                    let polled = poll_once(&mut done, &waker);
                    if let Some(e) = err {
                        assert_eq!(polled, Poll::Ready(e));
                        assert!(ctx.cause().is_some());
                        assert_eq!(ctx.wait_timeout(Duration::ZERO), Some(e));
                        return;
                    }
                    // ...and if done is ready, err must be Some from then on.
                    if let Poll::Ready(e) = polled {
                        assert_eq!(ctx.err(), Some(e));
                        return;
                    }
                }
            })
        };
        barrier.wait();
        cancel.cancel();
        observer.join().unwrap();
    }
}

#[test]
fn wait_returns_on_cancel_from_another_thread() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (started_tx, started_rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        started_tx.send(()).unwrap();
        ctx.wait()
    });
    started_rx.recv().unwrap();
    cancel.cancel();
    assert_eq!(waiter.join().unwrap(), Error::Canceled);
}

#[test]
fn wait_timeout_times_out_and_leaves_no_waiter() {
    let (ctx, cancel) = Context::background().with_cancel();
    let start = Instant::now();
    assert_eq!(ctx.wait_timeout(Duration::from_millis(20)), None);
    assert!(start.elapsed() >= Duration::from_millis(20));
    cancel.cancel();
    assert_eq!(
        ctx.wait_timeout(Duration::from_secs(60)),
        Some(Error::Canceled)
    );
}

#[test]
fn sleep_sleeps_or_returns_early() {
    let (ctx, cancel) = Context::background().with_cancel();
    let start = Instant::now();
    assert_eq!(ctx.sleep(Duration::from_millis(20)), Ok(()));
    assert!(start.elapsed() >= Duration::from_millis(20));
    let sleeper = {
        let ctx = ctx.clone();
        thread::spawn(move || ctx.sleep(Duration::from_secs(3600)))
    };
    cancel.cancel();
    assert_eq!(sleeper.join().unwrap(), Err(Error::Canceled));
    let start = Instant::now();
    assert_eq!(ctx.sleep(Duration::from_secs(3600)), Err(Error::Canceled));
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(
        Context::background().sleep(Duration::from_millis(1)),
        Ok(())
    );
}

#[tokio::test]
async fn run_never_polls_the_future_of_a_done_context() {
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    let fut = std::future::poll_fn(|_| -> Poll<()> { panic!("polled a future of a done context") });
    assert_eq!(ctx.run(fut).await, Err(Error::Canceled));
}

#[tokio::test]
async fn run_returns_the_value_when_not_cancelled() {
    let (ctx, _cancel) = Context::background().with_cancel();
    assert_eq!(ctx.run(async { 42 }).await, Ok(42));
}

#[tokio::test]
async fn run_drops_the_future_at_its_await_on_cancel() {
    struct Flag(Arc<AtomicUsize>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let (ctx, cancel) = Context::background().with_cancel();
    let flag = Flag(Arc::clone(&dropped));
    let (reached_tx, reached_rx) = tokio::sync::oneshot::channel();
    let work = async move {
        let _flag = flag;
        reached_tx.send(()).unwrap();
        std::future::pending::<()>().await;
    };
    let task = tokio::spawn({
        let ctx = ctx.clone();
        async move { ctx.run(work).await }
    });
    reached_rx.await.unwrap();
    assert_eq!(dropped.load(Ordering::SeqCst), 0);
    cancel.cancel();
    assert_eq!(task.await.unwrap(), Err(Error::Canceled));
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn run_prefers_done_when_both_are_ready() {
    let (ctx, cancel) = Context::background().with_cancel();
    let ready = std::future::ready(7);
    let fut = ctx.run(async move {
        cancel.cancel();
        ready.await
    });
    // The future completes in the same poll that cancelled: its value wins as it finished
    // first; a later run on the done context does not poll at all.
    assert_eq!(fut.await, Ok(7));
    assert_eq!(ctx.run(async { 8 }).await, Err(Error::Canceled));
}

#[test]
fn after_func_runs_once_after_cancel_and_stop_is_exact() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (tx, rx) = mpsc::channel();
    let registration = ctx.after_func(move || tx.send(thread::current().id()).unwrap());
    let stopped = ctx.after_func(|| panic!("stopped callbacks never run"));
    assert!(stopped.stop());
    assert!(!stopped.stop());
    cancel.cancel();
    let ran_on = rx.recv_timeout(LIMIT).unwrap();
    assert_ne!(
        ran_on,
        thread::current().id(),
        "callbacks run on their own thread"
    );
    assert!(
        !registration.stop(),
        "stop after the callback started is false"
    );
    assert!(
        rx.recv_timeout(Duration::from_millis(50)).is_err(),
        "ran once"
    );
}

#[test]
fn after_func_on_a_done_context_runs_at_once() {
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    let (tx, rx) = mpsc::channel();
    let registration = ctx.after_func(move || tx.send(()).unwrap());
    rx.recv_timeout(LIMIT).unwrap();
    assert!(!registration.stop());
}

#[test]
fn after_func_on_a_context_that_is_never_done_never_runs() {
    let registration = Context::background()
        .with_value(1u8)
        .after_func(|| panic!("never"));
    assert!(registration.stop());
    assert!(!registration.stop());
}

#[test]
fn a_dropped_after_func_stays_registered() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (tx, rx) = mpsc::channel();
    drop(ctx.after_func(move || tx.send(()).unwrap()));
    cancel.cancel();
    rx.recv_timeout(LIMIT).unwrap();
}

#[test]
fn cancel_never_waits_for_a_blocked_callback() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel();
    let _a = ctx.after_func(move || {
        release_rx.recv().unwrap();
        done_tx.send("blocked one").unwrap();
    });
    let (second_tx, second_rx) = mpsc::channel();
    let _b = ctx.after_func(move || second_tx.send("second").unwrap());
    within(LIMIT, move || cancel.cancel());
    // The blocked callback delays neither the canceller nor the other callback.
    assert_eq!(second_rx.recv_timeout(LIMIT).unwrap(), "second");
    release_tx.send(()).unwrap();
    assert_eq!(done_rx.recv_timeout(LIMIT).unwrap(), "blocked one");
}

#[test]
fn a_panicking_callback_does_not_poison_anything() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (tx, rx) = mpsc::channel();
    let _a = ctx.after_func(|| panic!("callback panics (expected in this test)"));
    let _b = ctx.after_func(move || tx.send(()).unwrap());
    cancel.cancel();
    rx.recv_timeout(LIMIT).unwrap();
    // The context still works.
    assert_eq!(ctx.err(), Some(Error::Canceled));
    let (child, _c) = ctx.with_cancel();
    assert!(child.is_done());
    assert!(ctx.cause().is_some());
}

#[test]
fn callbacks_may_cancel_and_derive_contexts_without_deadlock() {
    within(LIMIT, || {
        let (root, cancel_root) = Context::background().with_cancel();
        let (ctx, cancel) = root.with_cancel();
        let (tx, rx) = mpsc::channel();
        let _reg = ctx.after_func({
            let ctx = ctx.clone();
            move || {
                let (child, cancel_child) = ctx.with_cancel();
                cancel_child.cancel();
                cancel_root.cancel_with_cause("from a callback");
                let _again = ctx.after_func(|| {});
                tx.send((child.err(), ctx.err())).unwrap();
            }
        });
        cancel.cancel();
        let (child_err, ctx_err) = rx.recv().unwrap();
        assert_eq!(child_err, Some(Error::Canceled));
        assert_eq!(ctx_err, Some(Error::Canceled));
        assert!(root.is_done());
    });
}

#[test]
fn a_waker_may_use_the_context_inside_wake_without_deadlock() {
    within(LIMIT, || {
        let (root, cancel_root) = Context::background().with_cancel();
        let (ctx, cancel) = root.with_cancel();
        let waker = Arc::new(CountingWaker::default());
        let seen = Arc::new(Mutex::new(None));
        *waker.hook.lock().unwrap() = Some(Box::new({
            let (ctx, seen) = (ctx.clone(), Arc::clone(&seen));
            let cancel_root = cancel_root.clone();
            move || {
                // Derive from, wait on and cancel contexts of the tree being cancelled.
                let (child, _c) = ctx.with_cancel();
                let mut done = Box::pin(ctx.done());
                let mut cx = TaskContext::from_waker(Waker::noop());
                let _ready = done.as_mut().poll(&mut cx);
                cancel_root.cancel();
                *seen.lock().unwrap() = Some((child.err(), ctx.cause().is_some()));
            }
        }));
        let mut done = Box::pin(ctx.done());
        assert!(poll_once(&mut done, &waker).is_pending());
        cancel.cancel();
        assert_eq!(waker.wakes.load(Ordering::SeqCst), 1);
        assert_eq!(*seen.lock().unwrap(), Some((Some(Error::Canceled), true)));
    });
}

#[test]
fn a_panicking_waker_does_not_stop_other_waiters() {
    let (ctx, cancel) = Context::background().with_cancel();
    let bad = Arc::new(CountingWaker::default());
    *bad.hook.lock().unwrap() = Some(Box::new(|| panic!("waker panics (expected in this test)")));
    let good = Arc::new(CountingWaker::default());
    let (mut d1, mut d2) = (Box::pin(ctx.done()), Box::pin(ctx.done()));
    assert!(poll_once(&mut d1, &bad).is_pending());
    assert!(poll_once(&mut d2, &good).is_pending());
    let (tx, rx) = mpsc::channel();
    let _cb = ctx.after_func(move || tx.send(()).unwrap());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cancel.cancel()));
    assert!(
        result.is_err(),
        "the waker's panic is re-raised to the canceller"
    );
    assert_eq!(good.wakes.load(Ordering::SeqCst), 1);
    rx.recv_timeout(LIMIT).unwrap();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    let (child, _c) = ctx.with_cancel();
    assert!(child.is_done(), "the tree is still usable");
}

#[test]
fn the_ambient_context_nests_restores_and_starts_fresh_on_new_threads() {
    assert!(format!("{:?}", Context::current()).starts_with("background"));
    let outer = Context::background().with_value(1u8);
    let inner = Context::background().with_value(2u8);
    let g1 = outer.enter();
    assert_eq!(Context::current().value::<u8>(), Some(&1));
    {
        let _g2 = inner.enter();
        assert_eq!(Context::current().value::<u8>(), Some(&2));
        let on_thread = thread::spawn(|| Context::current().value::<u8>().copied())
            .join()
            .unwrap();
        assert_eq!(on_thread, None, "a new thread starts at background");
    }
    assert_eq!(Context::current().value::<u8>(), Some(&1));
    drop(g1);
    assert_eq!(Context::current().value::<u8>(), None);
}

#[test]
fn scope_carries_the_context_across_awaits_and_threads() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let ctx = Context::background().with_value("req-1");
    let seen = rt.block_on(async move {
        let task = tokio::spawn(ctx.scope(async {
            let mut seen = Vec::new();
            for _ in 0..50 {
                tokio::task::yield_now().await;
                seen.push(Context::current().value::<&str>().copied());
            }
            seen
        }));
        task.await.unwrap()
    });
    assert!(seen.iter().all(|v| *v == Some("req-1")));
    assert_eq!(
        Context::current().value::<&str>(),
        None,
        "scope leaves no trace"
    );
}

#[test]
fn nested_scopes_and_enters_restore_each_other_poll_by_poll() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let outer = Context::background().with_value(1u8);
    let inner = Context::background().with_value(2u8);
    let entered = Context::background().with_value(3u8);
    let thread_ctx = Context::background().with_value(9u8);
    let _thread = thread_ctx.enter();
    let seen = rt.block_on(outer.scope(async move {
        let mut seen = vec![Context::current().value::<u8>().copied()];
        let nested = inner.scope(async {
            tokio::task::yield_now().await;
            let mut v = vec![Context::current().value::<u8>().copied()];
            {
                let _g = entered.enter();
                v.push(Context::current().value::<u8>().copied());
            }
            v.push(Context::current().value::<u8>().copied());
            v
        });
        seen.extend(nested.await);
        tokio::task::yield_now().await;
        seen.push(Context::current().value::<u8>().copied());
        seen
    }));
    assert_eq!(seen, [Some(1), Some(2), Some(3), Some(2), Some(1)]);
    // Between and after polls, the thread's own context is back.
    assert_eq!(Context::current().value::<u8>(), Some(&9));
}
