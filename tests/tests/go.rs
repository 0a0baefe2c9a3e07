//! `go!` and `GoHandle`: where work runs, which context it sees, cancellation, joins, panics.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread::{self, ThreadId};
use std::time::Duration;

use go_context::{go, Context, Error, GoHandle, JoinError};

#[path = "support/spawn.rs"]
mod support;
use support::{bounded, current_thread, multi_thread, panic_message, PATIENCE};
#[path = "support/wakers.rs"]
mod wakers;
use wakers::CountingWaker;

fn current_chain() -> String {
    format!("{:?}", Context::current())
}

/// Blocks until the current context is done.
fn wait_current() -> Error {
    Context::current().wait()
}

fn wait_param(ctx: Context) -> Error {
    ctx.wait()
}

async fn wait_current_async() -> Error {
    Context::current().done().await
}

async fn wait_param_async(ctx: Context) -> Error {
    ctx.done().await
}

// ===== threads =====

#[test]
fn blocking_call_runs_on_another_thread_and_returns_its_value() {
    fn whoami(n: u32) -> (ThreadId, u32) {
        (thread::current().id(), n * 2)
    }
    let (id, n) = go!(whoami(21)).join().unwrap();
    assert_ne!(id, thread::current().id());
    assert_eq!(n, 42);
}

#[test]
fn arguments_and_receiver_are_evaluated_on_the_caller_in_order() {
    struct Probe(Vec<&'static str>);
    impl Probe {
        fn record(
            mut self,
            a: (ThreadId, &'static str),
            b: (ThreadId, &'static str),
        ) -> Vec<(ThreadId, &'static str)> {
            self.0.push("body");
            vec![a, b, (thread::current().id(), "body")]
        }
    }
    let order = std::sync::Mutex::new(Vec::new());
    let eval = |name: &'static str| {
        order.lock().unwrap().push(name);
        (thread::current().id(), name)
    };
    let me = thread::current().id();
    let handle = go!(Probe({
        order.lock().unwrap().push("receiver");
        Vec::new()
    })
    .record(eval("a"), eval("b")));
    // Evaluated before go! returned, on this thread, in order.
    assert_eq!(*order.lock().unwrap(), ["receiver", "a", "b"]);
    let seen = handle.join().unwrap();
    assert_eq!(seen[0], (me, "a"));
    assert_eq!(seen[1], (me, "b"));
    assert_ne!(seen[2].0, me, "the body runs on the spawned thread");
}

#[test]
fn blocking_work_runs_under_a_child_of_the_current_context() {
    let (parent, _cancel) = Context::background().with_cancel();
    let _guard = parent.enter();
    let chain = go!(current_chain()).join().unwrap();
    assert_eq!(chain, "background.with_cancel.with_cancel");
    // The explicit form hands over the same child it installs.
    let same = go!(|ctx| format!("{ctx:?}") == current_chain())
        .join()
        .unwrap();
    assert!(same);
}

#[test]
fn parent_cancel_reaches_blocking_work_in_every_form() {
    let (parent, cancel) = Context::background().with_cancel();
    let ambient = {
        let _guard = parent.enter();
        go!(wait_current())
    };
    let named = go!(in parent, wait_current());
    let explicit = go!(in &parent, |ctx| wait_param(ctx));
    cancel.cancel_with_cause("shutting down");
    for handle in [ambient, named, explicit] {
        let child = handle.context().clone();
        assert_eq!(handle.join().unwrap(), Error::Canceled);
        assert_eq!(child.cause().unwrap().to_string(), "shutting down");
    }
}

#[test]
fn handle_cancel_reaches_ambient_and_explicit_blocking_work() {
    let (parent, _cancel) = Context::background().with_cancel();
    let ambient = go!(in parent, wait_current());
    let explicit = go!(|ctx| wait_param(ctx));
    ambient.cancel();
    explicit.cancel();
    assert_eq!(ambient.join().unwrap(), Error::Canceled);
    assert_eq!(explicit.join().unwrap(), Error::Canceled);
    assert!(
        !parent.is_done(),
        "cancelling a handle does not reach the parent"
    );
}

#[test]
fn join_gives_back_a_panic_payload_that_can_be_re_raised() {
    #[derive(Debug, PartialEq)]
    struct Oops(u32);
    fn fails(n: u32) -> u32 {
        panic::panic_any(Oops(n))
    }
    let err: JoinError = go!(fails(3)).join().unwrap_err();
    assert!(err.is_panic());
    assert!(!err.is_cancelled());
    let payload = err.into_panic();
    let again =
        panic::catch_unwind(AssertUnwindSafe(|| panic::resume_unwind(payload))).unwrap_err();
    assert_eq!(again.downcast_ref::<Oops>(), Some(&Oops(3)));
}

#[test]
fn diverging_work_is_spawned_once_given_a_type() {
    let err = go!(|_ctx| -> () { panic!("never returns") })
        .join()
        .unwrap_err();
    assert_eq!(err.panic_message().as_deref(), Some("never returns"));
}

#[test]
fn panic_message_and_display() {
    fn fails() -> u8 {
        panic!("disk {} is gone", 2)
    }
    let err = go!(fails()).join().unwrap_err();
    assert_eq!(err.panic_message().as_deref(), Some("disk 2 is gone"));
    assert_eq!(err.to_string(), "spawned work panicked: disk 2 is gone");
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(err);
    assert!(boxed.to_string().contains("disk 2"));
}

#[test]
fn dropping_the_handle_detaches_the_work_under_a_live_context() {
    let (go_on, wait_for_go) = mpsc::channel::<()>();
    let (report, reports) = mpsc::channel::<bool>();
    let handle = go!(|ctx| {
        wait_for_go.recv().unwrap();
        report.send(ctx.is_done()).unwrap();
    });
    let child = handle.context().clone();
    drop(handle);
    go_on.send(()).unwrap();
    assert!(
        !reports.recv_timeout(PATIENCE).unwrap(),
        "detached work still has a live context"
    );
    // Once the work has returned and nobody holds the handle, the context is released.
    assert_eq!(child.wait_timeout(PATIENCE), Some(Error::Canceled));
}

#[test]
fn join_waits_for_the_thread_to_exit() {
    struct OnExit(mpsc::Sender<()>);
    impl Drop for OnExit {
        fn drop(&mut self) {
            let _ = self.0.send(());
        }
    }
    thread_local! {
        static ON_EXIT: std::cell::RefCell<Option<OnExit>> = const { std::cell::RefCell::new(None) };
    }
    let (tx, rx) = mpsc::channel();
    let handle = go!(|_ctx| ON_EXIT.with(|f| *f.borrow_mut() = Some(OnExit(tx))));
    handle.join().unwrap();
    // Thread-local destructors run as the thread exits: join returned after them.
    assert_eq!(rx.try_recv(), Ok(()));
}

#[test]
fn outside_a_runtime_spawning_a_future_is_a_clear_panic_or_error() {
    async fn work() -> u8 {
        1
    }
    let caught = panic::catch_unwind(|| go!(work())).unwrap_err();
    let msg = panic_message(&*caught);
    assert!(msg.contains("needs a tokio runtime"), "{msg}");
    assert!(msg.contains("#[tokio::main]"), "{msg}");
    let err = GoHandle::try_spawn(&Context::background(), |_| work()).unwrap_err();
    assert_eq!(err.to_string(), msg);
}

#[test]
fn blocks_and_macro_calls_run_whole_in_the_work() {
    let me = thread::current().id();
    let there = go!({ thread::current().id() }).join().unwrap();
    assert_ne!(there, me);
    let text = go!(format!("{:?}", thread::current().id())).join().unwrap();
    assert_ne!(text, format!("{me:?}"));
}

// ===== tokio tasks =====

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_becomes_a_task_with_the_child_current_across_awaits() {
    async fn chain_after_yield() -> String {
        tokio::task::yield_now().await;
        current_chain()
    }
    let (parent, _cancel) = Context::background().with_cancel();
    let handle = {
        let _current = parent.enter(); // not held across an .await
        go!(chain_after_yield())
    };
    assert_eq!(handle.await.unwrap(), "background.with_cancel.with_cancel");
    let id = go!(async { tokio::task::try_id() }).await.unwrap();
    assert!(id.is_some(), "ran as a tokio task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_cancel_reaches_tasks_in_every_form() {
    let (parent, cancel) = Context::background().with_cancel();
    let ambient = {
        let _current = parent.enter();
        go!(wait_current_async())
    };
    let named = go!(in parent, wait_current_async());
    let explicit = go!(in parent, |ctx| wait_param_async(ctx));
    let closure_async = go!(in parent, async move |ctx| ctx.done().await);
    cancel.cancel();
    for handle in [ambient, named, explicit, closure_async] {
        assert_eq!(handle.await.unwrap(), Error::Canceled);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_cancel_reaches_ambient_and_explicit_tasks() {
    let ambient = go!(wait_current_async());
    let explicit = go!(|ctx| wait_param_async(ctx));
    ambient.cancel();
    explicit.cancel_with_cause("stop");
    assert_eq!(ambient.await.unwrap(), Error::Canceled);
    assert_eq!(explicit.context().cause().unwrap().to_string(), "stop");
    assert_eq!(explicit.await.unwrap(), Error::Canceled);
}

#[tokio::test(flavor = "current_thread")]
async fn task_panic_comes_back_from_await() {
    async fn fails() -> u8 {
        tokio::task::yield_now().await;
        panic!("task failed")
    }
    let err = go!(fails()).await.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(panic_message(&*err.into_panic()), "task failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_value_is_spawned_and_awaiting_a_thread_handle_works() {
    async fn seven() -> u8 {
        7
    }
    let fut = seven();
    assert_eq!(go!(fut).await.unwrap(), 7);
    fn blocking(n: u8) -> u8 {
        n + 1
    }
    // A blocking call inside a runtime still runs on its own OS thread; the handle awaits.
    assert_eq!(go!(blocking(1)).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_work_inside_a_runtime_can_spawn_tasks_on_it() {
    async fn double(n: u32) -> u32 {
        n * 2
    }
    fn fan_out(n: u32) -> u32 {
        assert!(tokio::task::try_id().is_none(), "runs on a plain thread");
        // The thread entered the caller's runtime: go! on a future works, and join may block.
        go!(double(n)).join().unwrap()
    }
    assert_eq!(go!(fan_out(21)).await.unwrap(), 42);
}

#[tokio::test(flavor = "current_thread")]
async fn blocking_join_in_a_current_thread_task_panics_instead_of_hanging() {
    let inner = tokio::spawn(async {
        let handle = go!(async { 1 });
        panic::catch_unwind(AssertUnwindSafe(move || handle.join())).unwrap_err()
    });
    let payload = inner.await.unwrap();
    assert!(panic_message(&*payload).contains("handle.await"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_join_in_block_in_place_is_allowed_on_a_multi_thread_runtime() {
    async fn one() -> u8 {
        1
    }
    let handle = go!(one());
    let value = tokio::task::block_in_place(move || handle.join()).unwrap();
    assert_eq!(value, 1);
}

#[test]
fn a_task_dropped_by_its_runtime_joins_as_cancelled() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let handle = {
        let _runtime = rt.enter();
        go!(tokio::time::sleep(Duration::from_secs(3600)))
    };
    drop(rt);
    let err = handle.join().unwrap_err();
    assert!(err.is_cancelled());
    assert!(err.to_string().contains("runtime shut down"));
}

// ===== issue 11: no hang, no crash =====

async fn seven() -> u8 {
    7
}

#[test]
fn join_in_a_multi_thread_runtime_task_returns_instead_of_hanging() {
    // Regression (issue 11, 2): the joined task sat in the blocked worker's LIFO slot.
    let value = bounded(|| {
        let rt = multi_thread(2);
        rt.block_on(async { tokio::spawn(async { go!(seven()).join().unwrap() }).await })
            .unwrap()
    });
    assert_eq!(value, 7);
}

#[test]
fn join_in_a_multi_thread_root_future_returns() {
    let value = bounded(|| {
        let rt = multi_thread(1);
        rt.block_on(async { go!(seven()).join().unwrap() })
    });
    assert_eq!(value, 7);
}

#[test]
fn join_in_a_current_thread_root_future_panics_with_the_message_instead_of_hanging() {
    // Regression (issue 11, 3): `#[tokio::test]`'s root future is not a task, and hung.
    let msg = bounded(|| {
        let rt = current_thread();
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async { go!(seven()).join() })
        }));
        panic_message(&*caught.unwrap_err())
    });
    assert!(msg.contains("current-thread tokio runtime"), "{msg}");
    assert!(msg.contains("handle.await"), "{msg}");
}

#[tokio::test(flavor = "current_thread")]
async fn join_of_finished_work_never_blocks_so_it_is_allowed_anywhere() {
    let handle = go!(seven());
    while !handle.is_finished() {
        tokio::task::yield_now().await;
    }
    assert_eq!(handle.join().unwrap(), 7);
}

#[test]
fn a_thread_that_entered_a_current_thread_runtime_may_still_join() {
    // Entering a runtime (as go!'s threads do) does not make a thread its driver.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _entered = rt.enter();
    assert_eq!(go!(|_ctx| 5).join().unwrap(), 5);
}

#[test]
fn join_error_kinds_are_exclusive_and_displayed() {
    fn boom() -> u8 {
        panic!("boom")
    }
    let err = go!(boom()).join().unwrap_err();
    assert!(err.is_panic() && !err.is_cancelled() && !err.is_refused() && !err.is_failed());
    assert!(format!("{err:?}").contains("boom"));
}

// ===== issue 12: go! keeps what the code means =====

#[go_context::cancellable]
fn worker(ctx: Context) -> Result<u32, Error> {
    loop {
        ctx.sleep(Duration::from_millis(1))?;
    }
}

#[test]
fn cancel_stops_work_that_was_handed_a_context_argument() {
    // Regression (issue 12, 1): the work ran under its own argument, not under go!'s child.
    let (parent, _cancel) = Context::background().with_cancel();
    let handle = go!(worker(parent.clone()));
    handle.cancel();
    let outcome = bounded(move || handle.join().unwrap());
    assert_eq!(outcome, Err(Error::Canceled));
    assert!(!parent.is_done(), "only the child is cancelled");
}

#[test]
fn the_child_replaces_the_first_context_argument_and_derives_from_it() {
    fn chains(first: Context, second: Context, n: u8) -> (String, String, u8) {
        (format!("{first:?}"), format!("{second:?}"), n)
    }
    let (a, _ca) = Context::background().with_cancel();
    let b = Context::background().with_value(7u8);
    let (first, second, n) = go!(chains(a.clone(), b.clone(), 3)).join().unwrap();
    assert_eq!(first, "background.with_cancel.with_cancel"); // the child of `a`
    assert_eq!(second, "background.with_value(u8)"); // unchanged
    assert_eq!(n, 3);
}

#[test]
fn a_method_call_with_a_context_argument_runs_under_the_child() {
    struct Service;
    impl Service {
        fn serve(&self, ctx: Context) -> Error {
            ctx.wait()
        }
    }
    let handle = go!(Service.serve(Context::background()));
    handle.cancel();
    assert_eq!(bounded(move || handle.join().unwrap()), Error::Canceled);
}

#[test]
fn arguments_whose_type_comes_from_the_callee_still_compile() {
    fn takes(s: String, n: u64, v: Vec<u8>) -> usize {
        s.len() + n as usize + v.len()
    }
    let handle = go!(takes("ab".into(), Default::default(), vec![]));
    assert_eq!(handle.join().unwrap(), 2);
}

#[test]
fn a_closure_argument_whose_return_type_fills_the_callees_generics_compiles() {
    // Pinned: an attempt to give closure arguments the callee's expected type (by writing them
    // in the work's call) left `T` and `E` here unresolved ("type annotations needed").
    fn retry<T, E: std::fmt::Display, F: Fn() -> Result<T, E>>(n: u32, f: F) -> Result<T, E> {
        let mut last = f();
        for _ in 1..n {
            if last.is_ok() {
                break;
            }
            last = f();
        }
        last
    }
    fn fetch(id: u32) -> Result<u32, String> {
        Ok(id)
    }
    let id = 5;
    assert_eq!(go!(retry(3, move || fetch(id))).join().unwrap(), Ok(5));
}

#[test]
fn a_context_argument_of_a_group_member_is_the_member_context() {
    fn member(ctx: Context) -> Result<String, go_context::BoxError> {
        Ok(format!("{ctx:?}"))
    }
    let group: go_context::Group = go_context::Group::new(&Context::background());
    let handle = go!(group => member(Context::background()));
    group.wait().unwrap();
    assert_eq!(handle.join().unwrap(), "background.with_cancel.with_cancel");
}

#[test]
fn the_parent_or_group_is_evaluated_first_as_written() {
    let order = std::sync::Mutex::new(Vec::new());
    let step = |name: &'static str| order.lock().unwrap().push(name);
    fn id(n: u8) -> u8 {
        n
    }
    let parent = Context::background();
    let handle = go!(in { step("parent"); &parent }, id({ step("argument"); 1 }));
    assert_eq!(handle.join().unwrap(), 1);
    let group: go_context::Group = go_context::Group::new(&Context::background());
    fn ok(n: u8) -> Result<u8, go_context::BoxError> {
        Ok(n)
    }
    let member = go!(*{ step("group"); &group } => ok({ step("member argument"); 2 }));
    group.wait().unwrap();
    assert_eq!(member.join().unwrap(), 2);
    assert_eq!(
        *order.lock().unwrap(),
        ["parent", "argument", "group", "member argument"]
    );
}

#[test]
fn the_parent_may_be_read_from_a_value_the_work_moves() {
    struct Request {
        ctx: Context,
        id: u32,
    }
    fn handle(req: Request) -> (u32, bool) {
        (req.id, req.ctx.is_done())
    }
    let (ctx, cancel) = Context::background().with_cancel();
    let req = Request { ctx, id: 7 };
    // Go's `go handle(req)` under `req.ctx`: the parent is read before `req` moves.
    let work = go!(in req.ctx, handle(req));
    assert_eq!(work.join().unwrap(), (7, false));
    drop(cancel);
}

/// `go!(async move |ctx| { .. })` must not make `unused_braces` fire on the user's braces
/// (this module fails to compile if it does).
#[deny(unused_braces)]
mod no_lint_on_user_tokens {
    use go_context::{go, Context};

    #[tokio::test(flavor = "current_thread")]
    async fn async_closure_with_a_block_body() {
        let handle = go!(async move |ctx: Context| {
            tokio::task::yield_now().await;
            ctx.is_done()
        });
        assert!(!handle.await.unwrap());
    }
}

#[test]
fn join_in_tokio_spawn_blocking_on_a_current_thread_runtime_is_allowed() {
    // tokio's blocking pool is not the runtime's driver, though its closures have a task id.
    let value = bounded(|| {
        let rt = current_thread();
        rt.block_on(async {
            tokio::task::spawn_blocking(|| go!(|_ctx| 3).join().unwrap())
                .await
                .unwrap()
        })
    });
    assert_eq!(value, 3);
}

#[test]
fn awaiting_yields_once_then_waits_on_the_finished_signal_with_exact_wake_ups() {
    use std::future::{Future, IntoFuture};
    use std::sync::Arc;
    use std::task::{Poll, Waker};

    let count = Arc::new(CountingWaker::default());
    let waker = Waker::from(Arc::clone(&count));
    let mut cx = std::task::Context::from_waker(&waker);

    let (release, released) = mpsc::channel::<()>();
    let mut join = go!(|_ctx| released.recv().is_ok()).into_future();
    let mut join = std::pin::Pin::new(&mut join);
    assert!(join.as_mut().poll(&mut cx).is_pending());
    assert_eq!(count.count(), 1, "the first poll yields: one self-wake");
    assert!(join.as_mut().poll(&mut cx).is_pending());
    assert_eq!(count.count(), 1, "then it waits, without waking");
    release.send(()).unwrap();
    let start = std::time::Instant::now();
    while count.count() < 2 {
        assert!(
            start.elapsed() < PATIENCE,
            "the finish must wake the joiner"
        );
        thread::yield_now();
    }
    assert!(matches!(join.as_mut().poll(&mut cx), Poll::Ready(Ok(true))));
    assert_eq!(count.count(), 2, "woken exactly once by the finish");
}

// ===== tasks join through tokio's JoinHandle =====

/// A future that is ready at once and whose own `Drop` panics: dropped after the poll that
/// completed it (unlike an `async fn`'s locals, which go inside that poll).
struct PanicsOnDrop<T>(Option<T>);
impl<T: Unpin> std::future::Future for PanicsOnDrop<T> {
    type Output = T;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<T> {
        std::task::Poll::Ready(self.0.take().expect("polled once"))
    }
}
impl<T> Drop for PanicsOnDrop<T> {
    fn drop(&mut self) {
        panic!("deliberate: the work's future panics as it is dropped");
    }
}

fn panics_on_drop<T>(value: T) -> PanicsOnDrop<T> {
    PanicsOnDrop(Some(value))
}

#[tokio::test(flavor = "current_thread")]
async fn a_panic_in_the_drop_of_a_tasks_future_is_its_panic_not_a_shutdown() {
    // Before: the future was dropped after the task's last catch, so tokio dropped the task
    // and the handle joined to "cancelled: its runtime dropped the task (the runtime shut
    // down)".
    let err = go!(panics_on_drop(7u8)).await.unwrap_err();
    assert!(err.is_panic(), "{err:?}");
    assert!(!err.is_cancelled());
    assert!(
        panic_message(&*err.into_panic()).contains("panics as it is dropped"),
        "the payload is the Drop's"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_panic_in_the_drop_of_a_group_members_future_reaches_wait_as_that_panic() {
    let group: go_context::Group = go_context::Group::new(&Context::background());
    let member = go!(group => panics_on_drop(Ok::<(), go_context::BoxError>(())));
    let waited = AssertUnwindSafe(group.wait_async());
    let payload = futures_catch(waited).await.unwrap_err();
    assert!(
        panic_message(&*payload).contains("panics as it is dropped"),
        "{}",
        panic_message(&*payload)
    );
    assert!(member.await.unwrap_err().is_failed());
}

/// `catch_unwind` for a future (the group re-raises a member's panic from `wait_async`).
async fn futures_catch<F: std::future::Future + std::panic::UnwindSafe>(
    fut: F,
) -> std::thread::Result<F::Output> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        match panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(payload) => std::task::Poll::Ready(Err(payload)),
        }
    })
    .await
}

#[test]
fn joining_a_finished_task_from_a_task_with_no_budget_left_returns() {
    // The blocking join polls tokio's JoinHandle, which spends the cooperative budget; a task
    // that has spent it would be refused forever while its thread blocks, unless the join
    // polls unconstrained.
    let value = bounded(|| {
        current_thread().block_on(async {
            tokio::spawn(async {
                let handle = go!(seven());
                while !handle.is_finished() {
                    tokio::task::yield_now().await;
                }
                let waker = std::task::Waker::noop();
                let mut cx = std::task::Context::from_waker(waker);
                while let std::task::Poll::Ready(spent) = tokio::task::coop::poll_proceed(&mut cx) {
                    spent.made_progress();
                }
                handle.join().unwrap()
            })
            .await
            .unwrap()
        })
    });
    assert_eq!(value, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joined_tasks_context_is_released_before_its_outcome_is_seen() {
    // The work's clone of its cancel handle goes before the output is stored: once the join
    // returns and the handle is gone, the work's context is done (nothing keeps it alive).
    let (tx, rx) = mpsc::channel();
    let handle = go!(async move {
        tx.send(Context::current()).unwrap();
        1u8
    });
    assert_eq!(handle.await.unwrap(), 1);
    let child = rx.recv().unwrap();
    assert_eq!(child.err(), Some(Error::Canceled));
}

/// A `go!` task whose runtime shuts down, joined from a task of another runtime (blocking and
/// awaiting) and from a plain thread: each gets `is_cancelled`, and the work's context is done
/// once its handle is gone (nothing holds it).
#[test]
fn a_task_of_a_runtime_shut_down_joins_as_cancelled_from_anywhere() {
    bounded(|| {
        let doomed = multi_thread(1);
        let other = multi_thread(2);
        let spawn = || {
            let _in = doomed.enter();
            go!(std::future::pending::<()>())
        };
        let (a, b, c) = (spawn(), spawn(), spawn());
        let ctx = a.context().clone();
        doomed.shutdown_timeout(PATIENCE);
        let blocking = other.block_on(async move { other_join(a) });
        assert!(blocking.unwrap_err().is_cancelled());
        let awaited = other.block_on(async move { b.await });
        assert!(awaited.unwrap_err().is_cancelled());
        assert!(c.join().unwrap_err().is_cancelled());
        assert_eq!(ctx.err(), Some(Error::Canceled), "its handle is gone");
    });
}

fn other_join<T: Send + 'static>(handle: GoHandle<T>) -> Result<T, JoinError> {
    handle.join()
}

/// `join` of a handle inside its own work (handed to it) waits for that work: it panics with
/// a message instead of hanging forever, on the work's thread and in the work's task (through
/// `block_in_place`).
#[test]
fn join_inside_its_own_work_panics_instead_of_hanging() {
    bounded(|| {
        let rt = multi_thread(1);
        for in_a_task in [false, true] {
            let (give, mine) = mpsc::channel::<GoHandle<()>>();
            let (tell, told) = mpsc::channel::<String>();
            let joins = move || {
                let me = mine.recv().unwrap();
                let payload = panic::catch_unwind(AssertUnwindSafe(|| me.join()))
                    .expect_err("join inside its own work returned");
                tell.send(panic_message(&*payload)).unwrap();
            };
            let handle = if in_a_task {
                let _in = rt.enter();
                GoHandle::spawn(&Context::background(), move |_| async move {
                    tokio::task::block_in_place(joins)
                })
            } else {
                GoHandle::spawn_blocking(&Context::background(), move |_| joins())
            };
            give.send(handle).unwrap();
            let message = told.recv().unwrap();
            assert!(message.contains("inside the work it joins"), "{message}");
        }
    });
}

/// Records the current context's `u8` value when dropped.
struct SeesOnDrop(mpsc::Sender<Option<u8>>);

impl Drop for SeesOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(Context::current().value::<u8>().copied());
    }
}

#[test]
fn a_task_dropped_by_its_runtime_drops_its_work_under_the_works_context() {
    let rt = current_thread();
    let (tx, rx) = mpsc::channel();
    let parent = Context::background().with_value(1u8);
    let (started, is_started) = mpsc::channel();
    let (handle, member, unpolled) = rt.block_on(async {
        let seen = SeesOnDrop(tx.clone());
        let handle = go!(in parent, async move {
            let _seen = seen;
            started.send(()).unwrap();
            std::future::pending::<()>().await;
        });
        let group: go_context::Group = go_context::Group::new(&parent);
        let seen = SeesOnDrop(tx.clone());
        let member = go!(group => async move {
            let _seen = seen;
            std::future::pending::<()>().await;
            Ok(())
        });
        tokio::task::yield_now().await;
        is_started.try_recv().expect("the task ran");
        drop(group);
        // Never polled: the runtime drops it with the work unmade.
        let seen = SeesOnDrop(tx);
        let unpolled = GoHandle::spawn(&parent, move |_| async move {
            let _seen = seen;
        });
        (handle, member, unpolled)
    });
    // The runtime is dropped on a thread with another context current.
    let other = Context::background().with_value(9u8);
    let entered = other.enter();
    drop(rt);
    drop(entered);
    assert_eq!(rx.try_recv(), Ok(Some(1)), "the go! task's work");
    assert_eq!(rx.try_recv(), Ok(Some(1)), "the group member's work");
    assert_eq!(
        rx.try_recv(),
        Ok(Some(1)),
        "the unpolled task's unmade work"
    );
    assert!(handle.join().unwrap_err().is_cancelled());
    assert!(unpolled.join().unwrap_err().is_cancelled());
    assert!(member.join().is_err());
}

/// Pins the README's "What can still panic": a `GoJoin` polled again after it completed.
#[test]
fn a_go_join_polled_again_after_it_completed_panics() {
    use std::future::{Future, IntoFuture};
    use std::task::{Context as TaskContext, Waker};

    fn poll_twice<T>(handle: GoHandle<T>) -> bool {
        let mut join = std::pin::pin!(handle.into_future());
        let mut cx = TaskContext::from_waker(Waker::noop());
        let deadline = std::time::Instant::now() + PATIENCE;
        while join.as_mut().poll(&mut cx).is_pending() {
            assert!(std::time::Instant::now() < deadline, "never completed");
            thread::yield_now();
        }
        panic::catch_unwind(AssertUnwindSafe(|| join.as_mut().poll(&mut cx))).is_err()
    }
    assert!(poll_twice(go!(|_ctx| 1u8)), "a thread's GoJoin");
    let rt = multi_thread(1);
    let task = rt.block_on(async { go!(async { 2u8 }) });
    assert!(poll_twice(task), "a task's GoJoin");
}
