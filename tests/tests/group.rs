//! `Group`: Go's errgroup with threads and tokio tasks: first error wins and is the cause,
//! limits hold, panics come back, nothing outlives `wait`.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Duration;

use go_context::{go, Context, Error, Group, MemberFailed};

#[path = "support/spawn.rs"]
mod support;
use support::{bounded, current_thread, multi_thread, panic_message, PATIENCE};

#[derive(Debug, PartialEq)]
enum FetchError {
    NotFound(u32),
    Cancelled(Error),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::NotFound(id) => write!(f, "item {id} not found"),
            FetchError::Cancelled(e) => write!(f, "cancelled: {e}"),
        }
    }
}

impl From<Error> for FetchError {
    fn from(e: Error) -> Self {
        FetchError::Cancelled(e)
    }
}

/// A gate the test opens: members block on it, so overlap is forced, not hoped for.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cond: Condvar,
}

impl Gate {
    fn pass(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cond.wait(open).unwrap();
        }
    }
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cond.notify_all();
    }
}

/// Counts members in flight and the most ever seen at once.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
    started: AtomicUsize,
}

impl InFlight {
    fn enter(&self) {
        // `started` first: once `now` reads n, all n have counted themselves as started.
        self.started.fetch_add(1, Ordering::SeqCst);
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
    }
    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
    /// Spins (yielding) until `n` members are in flight.
    fn wait_for(&self, n: usize) {
        let start = std::time::Instant::now();
        while self.now.load(Ordering::SeqCst) < n {
            assert!(
                start.elapsed() < PATIENCE,
                "members never reached {n} in flight"
            );
            std::thread::yield_now();
        }
    }
}

// ===== first error wins, as the cause =====

#[test]
fn threads_first_error_wins_and_is_the_cause_siblings_see() {
    let group: Group<FetchError> = Group::new(&Context::background());
    let ctx = group.context().clone();
    let (seen_tx, seen_rx) = mpsc::channel();
    for id in 0..4u32 {
        let seen_tx = seen_tx.clone();
        // The failing member goes last: members added after a failure are not started.
        if id == 3 {
            group.spawn_blocking(move |_| Err::<(), _>(FetchError::NotFound(id)));
        } else {
            group.spawn_blocking(move |ctx| {
                let err = ctx.wait();
                let cause = ctx.cause().unwrap();
                let failed = cause.downcast_ref::<MemberFailed>().unwrap().clone();
                seen_tx.send(failed).unwrap();
                // A later error does not replace the first.
                Err::<(), _>(err.into())
            });
        }
    }
    drop(seen_tx);
    assert_eq!(group.wait(), Err(FetchError::NotFound(3)));
    let seen: Vec<MemberFailed> = seen_rx.iter().collect();
    assert_eq!(seen.len(), 3);
    for failed in seen {
        assert_eq!(failed.message(), "item 3 not found");
        assert!(!failed.is_panic());
        assert_eq!(failed.location().file(), file!());
    }
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert_eq!(ctx.cause().unwrap().to_string(), "item 3 not found");
    // The cause's own location is the failing member's start, not the group's internals.
    assert_eq!(ctx.cause().unwrap().location().file(), file!());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_first_error_wins_and_is_the_cause_siblings_see() {
    async fn member(ctx: Context, id: u32) -> Result<(), FetchError> {
        if id == 1 {
            return Err(FetchError::NotFound(id));
        }
        ctx.done().await;
        let cause = ctx.cause().unwrap();
        assert_eq!(cause.to_string(), "item 1 not found");
        Err(FetchError::NotFound(100 + id))
    }
    let group = Group::new(&Context::background());
    let ctx = group.context().clone();
    for id in 0..5 {
        go!(group => |ctx| member(ctx, id));
    }
    assert_eq!(group.await, Err(FetchError::NotFound(1)));
    assert!(ctx.is_done());
}

#[test]
fn wait_without_errors_returns_ok_and_the_context_is_done_afterwards() {
    let group: Group = Group::new(&Context::background());
    let ctx = group.context().clone();
    for _ in 0..3 {
        group.spawn_blocking(|ctx| {
            assert!(!ctx.is_done());
            Ok(())
        });
    }
    assert!(group.wait().is_ok());
    assert_eq!(ctx.err(), Some(Error::Canceled));
}

#[test]
fn parent_cancel_reaches_every_member() {
    let (parent, cancel) = Context::background().with_cancel();
    let group: Group<Error> = Group::new(&parent);
    let started = Arc::new(InFlight::default());
    for _ in 0..3 {
        let started = Arc::clone(&started);
        group.spawn_blocking(move |ctx| {
            started.enter();
            Err::<(), _>(ctx.wait())
        });
    }
    started.wait_for(3);
    cancel.cancel_with_cause("shutdown");
    assert_eq!(group.wait(), Err(Error::Canceled));
}

// ===== limits =====

#[test]
fn thread_limit_is_never_exceeded_and_is_reached() {
    const LIMIT: usize = 3;
    let group: Group = Group::new(&Context::background());
    group.set_limit(LIMIT).unwrap();
    let flight = Arc::new(InFlight::default());
    let gate = Arc::new(Gate::default());
    for _ in 0..12 {
        let (flight, gate) = (Arc::clone(&flight), Arc::clone(&gate));
        group.spawn_blocking(move |_| {
            flight.enter();
            gate.pass();
            flight.leave();
            Ok(())
        });
    }
    // Three run and hold the gate; the rest are queued, not started.
    flight.wait_for(LIMIT);
    assert_eq!(flight.started.load(Ordering::SeqCst), LIMIT);
    gate.open();
    group.wait().unwrap();
    assert_eq!(flight.started.load(Ordering::SeqCst), 12);
    assert_eq!(flight.max.load(Ordering::SeqCst), LIMIT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_limit_is_never_exceeded_and_is_reached() {
    const LIMIT: usize = 2;
    let group: Group = Group::new(&Context::background());
    group.set_limit(LIMIT).unwrap();
    let flight = Arc::new(InFlight::default());
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    for _ in 0..10 {
        let (flight, gate) = (Arc::clone(&flight), Arc::clone(&gate));
        group.spawn(move |_| async move {
            flight.enter();
            gate.acquire().await.unwrap().forget();
            flight.leave();
            Ok(())
        });
    }
    while flight.now.load(Ordering::SeqCst) < LIMIT {
        tokio::task::yield_now().await;
    }
    assert_eq!(flight.started.load(Ordering::SeqCst), LIMIT);
    gate.add_permits(10);
    group.await.unwrap();
    assert_eq!(flight.started.load(Ordering::SeqCst), 10);
    assert_eq!(flight.max.load(Ordering::SeqCst), LIMIT);
}

#[test]
fn try_go_starts_only_under_the_limit() {
    let group: Group = Group::new(&Context::background());
    group.set_limit(2).unwrap();
    let gate = Arc::new(Gate::default());
    let mut started = 0;
    for _ in 0..5 {
        let gate = Arc::clone(&gate);
        if group
            .try_spawn_blocking(move |_| {
                gate.pass();
                Ok(())
            })
            .is_ok()
        {
            started += 1;
        }
    }
    assert_eq!(started, 2);
    gate.open();
    group.wait().unwrap();
}

/// Regression test (found by an audit): a member's handle got its value before the member
/// freed its slot, so "join one, then start the next" found the limit still reached
/// (`is_full`) and the settings locked (`MembersActive`) nearly every time. Here the joiner's
/// waker holds the member's thread inside the delivery, which made it certain.
#[test]
fn a_joined_members_slot_is_free_for_the_next() {
    use std::future::{Future, IntoFuture};
    use std::task::{Context as TaskContext, Poll, Wake, Waker};

    /// Woken on the member's thread: reports it, then holds that thread until released.
    struct HoldingWaker {
        test: std::thread::ThreadId,
        woken: Mutex<mpsc::Sender<()>>,
        release: Mutex<mpsc::Receiver<()>>,
    }
    impl Wake for HoldingWaker {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            if std::thread::current().id() != self.test {
                let _ = self.woken.lock().unwrap().send(());
                let _ = self.release.lock().unwrap().recv_timeout(PATIENCE);
            }
        }
    }

    let group: Group = Group::new(&Context::background());
    group.set_limit(1).unwrap();
    let gate = Arc::new(Gate::default());
    let first = {
        let gate = Arc::clone(&gate);
        group
            .try_spawn_blocking(move |_| {
                gate.pass();
                Ok(7)
            })
            .unwrap()
    };
    let (woken_tx, woken) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let waker = Waker::from(Arc::new(HoldingWaker {
        test: std::thread::current().id(),
        woken: Mutex::new(woken_tx),
        release: Mutex::new(release_rx),
    }));
    let mut cx = TaskContext::from_waker(&waker);
    let mut join = first.into_future();
    // The first poll yields, the second waits on the member's finished signal.
    assert!(Pin::new(&mut join).poll(&mut cx).is_pending());
    assert!(Pin::new(&mut join).poll(&mut cx).is_pending());
    gate.open();
    woken
        .recv_timeout(PATIENCE)
        .expect("the member's delivery wakes the joiner");
    // The member has delivered its value: it is finished, and so is its hold on the limit.
    assert_eq!(
        group.set_limit(1),
        Ok(()),
        "settings after the member finished"
    );
    let next = group.try_spawn_blocking(|_| Ok(8));
    release.send(()).unwrap();
    assert_eq!(
        next.as_ref().err().map(ToString::to_string),
        None,
        "the joined member's slot is free"
    );
    match Pin::new(&mut join).poll(&mut cx) {
        Poll::Ready(value) => assert_eq!(value.unwrap(), 7),
        Poll::Pending => panic!("delivered: ready"),
    }
    assert_eq!(next.unwrap().join().unwrap(), 8);
    group.wait().unwrap();
}

#[test]
fn queued_members_do_not_start_after_a_failure() {
    let group: Group<FetchError> = Group::new(&Context::background());
    group.set_limit(1).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    group.spawn_blocking(|_| Err::<(), _>(FetchError::NotFound(0)));
    for _ in 0..5 {
        let ran = Arc::clone(&ran);
        group.spawn_blocking(move |_| {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
    }
    assert_eq!(group.wait(), Err(FetchError::NotFound(0)));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn after_a_parent_cancel_queued_members_still_run_and_report() {
    // Only a member's failure drops unstarted members (`wait` returns that failure). A parent
    // cancel does not: every member runs and sees the done context, so an `Ok` from `wait`
    // always means that every member ran and returned `Ok`.
    let (parent, cancel) = Context::background().with_cancel();
    let group: Group<Error> = Group::new(&parent);
    group.set_limit(1).unwrap();
    cancel.cancel();
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..4 {
        let ran = Arc::clone(&ran);
        group.spawn_blocking(move |ctx| {
            assert_eq!(ctx.err(), Some(Error::Canceled));
            ran.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
    }
    assert_eq!(group.wait(), Ok(()));
    assert_eq!(ran.load(Ordering::SeqCst), 4);
}

#[test]
fn a_bad_limit_is_a_typed_error_and_changes_nothing() {
    let group: Group = Group::new(&Context::background());
    assert_eq!(group.set_limit(0), Err(go_context::LimitError::Zero));
    group.spawn_blocking(|ctx| {
        ctx.wait();
        Ok(())
    });
    assert_eq!(
        group.set_limit(4),
        Err(go_context::LimitError::MembersActive)
    );
    assert!(!group.context().is_done());
    drop(group); // cancels the waiting member's context
}

// ===== panics =====

#[test]
fn a_thread_panic_cancels_the_group_and_wait_re_raises_it() {
    #[derive(Debug, PartialEq)]
    struct Boom(u8);
    let group: Group = Group::new(&Context::background());
    let ctx = group.context().clone();
    let (saw, saw_rx) = mpsc::channel();
    group.spawn_blocking(move |ctx| {
        saw.send(ctx.wait()).unwrap();
        Ok(())
    });
    group.spawn_blocking(|_| -> Result<(), _> { panic::panic_any(Boom(9)) });
    let payload = panic::catch_unwind(AssertUnwindSafe(|| group.wait())).unwrap_err();
    assert_eq!(payload.downcast_ref::<Boom>(), Some(&Boom(9)));
    assert_eq!(saw_rx.recv_timeout(PATIENCE), Ok(Error::Canceled));
    let cause = ctx.cause().unwrap();
    let failed = cause.downcast_ref::<MemberFailed>().unwrap();
    assert!(failed.is_panic());
}

/// An error whose `Drop` panics (once: not while unwinding).
#[derive(Debug)]
struct ErrorPanicsOnDrop;

impl fmt::Display for ErrorPanicsOnDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an error whose drop panics")
    }
}

impl Drop for ErrorPanicsOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("deliberate: the error panics as it is dropped");
        }
    }
}

#[test]
fn wait_re_raises_the_members_panic_even_if_the_kept_error_panics_when_dropped() {
    #[derive(Debug, PartialEq)]
    struct Boom(u8);
    let group: Group<ErrorPanicsOnDrop> = Group::new(&Context::background());
    let (go_on, wait_for_go) = mpsc::channel::<()>();
    group.spawn_blocking(move |_| -> Result<(), _> {
        wait_for_go.recv().unwrap();
        panic::panic_any(Boom(9))
    });
    let failing = group.spawn_blocking(|_| Err::<(), _>(ErrorPanicsOnDrop));
    assert!(failing.join().unwrap_err().is_failed(), "the error is kept");
    go_on.send(()).unwrap();
    let payload = panic::catch_unwind(AssertUnwindSafe(|| group.wait())).unwrap_err();
    assert_eq!(
        payload.downcast_ref::<Boom>(),
        Some(&Boom(9)),
        "wait re-raised another panic: {:?}",
        panic_message(&*payload)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_panic_cancels_the_group_and_wait_re_raises_it() {
    async fn member(ctx: Context, id: u32) -> Result<(), Error> {
        if id == 0 {
            tokio::task::yield_now().await;
            panic!("member {id} broke");
        }
        Err(ctx.done().await)
    }
    let group: Group<Error> = Group::new(&Context::background());
    let ctx = group.context().clone();
    for id in 0..3 {
        go!(group => |ctx| member(ctx, id));
    }
    // Re-raised by the wait future: catch it where a task would.
    let joined = tokio::spawn(group.wait_async()).await;
    let payload = joined.unwrap_err().into_panic();
    assert_eq!(payload.downcast_ref::<String>().unwrap(), "member 0 broke");
    assert_eq!(
        ctx.cause().unwrap().to_string(),
        "group member panicked: member 0 broke"
    );
}

// ===== nothing outlives wait; drop =====

#[test]
fn no_member_thread_outlives_a_waited_group() {
    struct OnExit(Arc<AtomicUsize>);
    impl Drop for OnExit {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    thread_local! {
        static ON_EXIT: std::cell::RefCell<Option<OnExit>> = const { std::cell::RefCell::new(None) };
    }
    let exited = Arc::new(AtomicUsize::new(0));
    let held = Arc::new(());
    let group: Group = Group::new(&Context::background());
    group.set_limit(3).unwrap();
    for _ in 0..8 {
        let (exited, held) = (Arc::clone(&exited), Arc::clone(&held));
        group.spawn_blocking(move |_| {
            let _held = held;
            ON_EXIT.with(|f| *f.borrow_mut() = Some(OnExit(exited)));
            Ok(())
        });
    }
    group.wait().unwrap();
    assert_eq!(
        Arc::strong_count(&held),
        1,
        "every member's captures are gone"
    );
    assert_eq!(
        exited.load(Ordering::SeqCst),
        8,
        "every member thread has exited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_member_task_outlives_a_waited_group() {
    let held = Arc::new(());
    let group: Group = Group::new(&Context::background());
    for i in 0..16 {
        let held = Arc::clone(&held);
        group.spawn(move |_| async move {
            for _ in 0..i % 4 {
                tokio::task::yield_now().await;
            }
            drop(held);
            Ok(())
        });
    }
    let held_late = Arc::clone(&held);
    group.spawn(move |_| async move {
        let _keep = held_late; // dropped inside the task, at its end
        tokio::task::yield_now().await;
        Ok(())
    });
    group.await.unwrap();
    assert_eq!(Arc::strong_count(&held), 1);
}

#[test]
fn dropping_a_group_cancels_its_context_without_waiting() {
    let (release, released) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel();
    let group: Group = Group::new(&Context::background());
    let ctx = group.context().clone();
    let line = line!() - 2;
    group.spawn_blocking(move |ctx| {
        let err = ctx.wait();
        released.recv().unwrap(); // still running after the drop returned
        done_tx.send(err).unwrap();
        Ok(())
    });
    drop(group); // returns at once: the member is blocked on `released`
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert_eq!(ctx.cause().unwrap().location().line(), line);
    release.send(()).unwrap();
    assert_eq!(done_rx.recv_timeout(PATIENCE), Ok(Error::Canceled));
}

#[test]
fn members_run_with_their_own_child_of_the_group_context_current() {
    let group: Group = Group::new(&Context::background());
    let expected = format!("{:?}.with_cancel", group.context());
    let (tx, rx) = mpsc::channel();
    let member = group.spawn_blocking(move |ctx| {
        tx.send(format!("{:?}", Context::current())).unwrap();
        Ok(format!("{ctx:?}"))
    });
    group.wait().unwrap();
    assert_eq!(rx.recv().unwrap(), expected);
    assert_eq!(member.join().unwrap(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_macro_sends_blocking_calls_to_threads_and_futures_to_tasks() {
    fn blocking(kind: Arc<Mutex<Vec<&'static str>>>) -> Result<(), Error> {
        let on_task = tokio::task::try_id().is_some();
        kind.lock()
            .unwrap()
            .push(if on_task { "task" } else { "thread" });
        Ok(())
    }
    async fn non_blocking(kind: Arc<Mutex<Vec<&'static str>>>) -> Result<(), Error> {
        let on_task = tokio::task::try_id().is_some();
        kind.lock()
            .unwrap()
            .push(if on_task { "task" } else { "thread" });
        Ok(())
    }
    let kinds = Arc::new(Mutex::new(Vec::new()));
    let group: Group<Error> = Group::new(&Context::background());
    go!(group => blocking(kinds.clone()));
    group.wait_async().await.unwrap();
    let group: Group<Error> = Group::new(&Context::background());
    go!(&group => non_blocking(kinds.clone()));
    group.await.unwrap();
    assert_eq!(*kinds.lock().unwrap(), ["thread", "task"]);
}

#[test]
fn go_async_outside_a_runtime_panics_with_a_clear_message() {
    let group: Group = Group::new(&Context::background());
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        group.spawn(|_| async { Ok(()) });
    }))
    .unwrap_err();
    let msg = caught.downcast_ref::<String>().unwrap();
    assert!(msg.contains("needs a tokio runtime"), "{msg}");
    group.wait().unwrap();
}

#[test]
fn members_dropped_by_a_runtime_shutdown_come_back_from_wait_instead_of_hanging() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let group: Group = Group::new(&Context::background());
    {
        let _runtime = rt.enter();
        group.spawn(|_| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        });
    }
    drop(rt); // drops the member task unfinished
    {
        // Spawning onto a runtime that has shut down drops the member at once.
        let _runtime = handle.enter();
        group.spawn(|_| async { Ok(()) });
    }
    let payload = panic::catch_unwind(AssertUnwindSafe(|| group.wait())).unwrap_err();
    let msg = payload.downcast_ref::<String>().unwrap();
    assert!(msg.contains("runtime shut down"), "{msg}");
}

#[test]
fn handles_groups_and_errors_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Group>();
    send_sync::<Group<std::io::Error>>();
    send::<go_context::GroupWait<std::io::Error>>();
    send_sync::<go_context::GoHandle<u32>>();
    send_sync::<go_context::JoinError>();
    send_sync::<MemberFailed>();
    // A JoinError fits in the usual boxed error.
    let _: fn(go_context::JoinError) -> go_context::BoxError = |e| e.into();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_mixed_members_under_a_limit_finish_with_the_first_error() {
    const LIMIT: usize = 5;
    let group: Group<FetchError> = Group::new(&Context::background());
    group.set_limit(LIMIT).unwrap();
    let flight = Arc::new(InFlight::default());
    for id in 0..300u32 {
        let flight = Arc::clone(&flight);
        let work = move |ctx: Context| {
            flight.enter();
            let result = if id == 150 {
                Err(FetchError::NotFound(id))
            } else {
                ctx.check().map_err(FetchError::from)
            };
            flight.leave();
            result
        };
        if id % 3 == 0 {
            group.spawn_blocking(work);
        } else {
            group.spawn(move |ctx| async move {
                tokio::task::yield_now().await;
                work(ctx)
            });
        }
    }
    let result = group.await;
    // Members cancelled by item 150 fail too, but only after its failure was recorded (the
    // group records the error before it cancels the context), so 150 is the one returned.
    assert_eq!(result, Err(FetchError::NotFound(150)));
    assert!(flight.max.load(Ordering::SeqCst) <= LIMIT);
    assert_eq!(flight.now.load(Ordering::SeqCst), 0);
}

// ===== issue 11 =====

#[test]
fn wait_in_a_multi_thread_runtime_task_returns_instead_of_hanging() {
    // Regression (issue 11, 2): the member task sat in the blocked worker's LIFO slot.
    let result = bounded(|| {
        let rt = multi_thread(2);
        rt.block_on(async {
            tokio::spawn(async {
                let group: Group = Group::new(&Context::background());
                group.spawn(|_| async { Ok(()) });
                group.wait().is_ok()
            })
            .await
            .unwrap()
        })
    });
    assert!(result);
}

#[test]
fn wait_in_a_current_thread_root_future_panics_with_the_message_instead_of_hanging() {
    // Regression (issue 11, 3).
    let msg = bounded(|| {
        let rt = current_thread();
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async {
                let group: Group = Group::new(&Context::background());
                group.spawn(|_| async { Ok(()) });
                group.wait()
            })
        }));
        panic_message(&*caught.unwrap_err())
    });
    assert!(msg.contains("current-thread tokio runtime"), "{msg}");
    assert!(msg.contains("wait_async"), "{msg}");
}

/// An error whose `Display` panics.
#[derive(Debug)]
struct Unprintable;

impl fmt::Display for Unprintable {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("Display of the error panicked")
    }
}

#[test]
fn an_error_whose_display_panics_does_not_hang_wait() {
    // Regression (issue 11, 4): the error was formatted under the group lock, and the unwind
    // skipped the running count, so `wait` never returned.
    let (err, cause) = bounded(|| {
        let group: Group<Unprintable> = Group::new(&Context::background());
        let ctx = group.context().clone();
        group.spawn_blocking(|_| Err::<(), _>(Unprintable));
        let err = group.wait().unwrap_err();
        (err, ctx.cause().unwrap().to_string())
    });
    assert!(matches!(err, Unprintable));
    assert_eq!(cause, "(the error's Display panicked)");
}

#[test]
fn an_error_whose_display_panics_does_not_hang_wait_async() {
    let err = bounded(|| {
        let group: Group<Unprintable> = Group::new(&Context::background());
        group.spawn_blocking(|_| Err::<(), _>(Unprintable));
        futures_executor::block_on(group.wait_async()).unwrap_err()
    });
    assert!(matches!(err, Unprintable));
}

/// An error whose `Drop` uses the group (through its `Debug`), which would deadlock if the
/// group dropped it under its lock.
struct DropsUsingTheGroup(Arc<Mutex<Option<Arc<Group<DropsUsingTheGroup>>>>>);

impl fmt::Display for DropsUsingTheGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("loser")
    }
}

impl Drop for DropsUsingTheGroup {
    fn drop(&mut self) {
        let group = self.0.lock().unwrap().clone();
        if let Some(group) = group {
            let _ = format!("{group:?}"); // takes the group's locks
        }
    }
}

#[test]
fn losing_errors_are_dropped_outside_the_group_lock() {
    let done = bounded(|| {
        let slot = Arc::new(Mutex::new(None));
        let group = Arc::new(Group::new(&Context::background()));
        *slot.lock().unwrap() = Some(Arc::clone(&group));
        // All three start before any fails: two of the errors lose.
        let barrier = Arc::new(std::sync::Barrier::new(3));
        let members: Vec<_> = (0..3)
            .map(|_| {
                let (slot, barrier) = (Arc::clone(&slot), Arc::clone(&barrier));
                group.spawn_blocking(move |_| {
                    barrier.wait();
                    Err::<(), _>(DropsUsingTheGroup(slot))
                })
            })
            .collect();
        // A member's handle is delivered after its error was kept or dropped.
        for member in members {
            assert!(member.join().unwrap_err().is_failed());
        }
        let group = {
            slot.lock().unwrap().take();
            Arc::into_inner(group).expect("the only owner left")
        };
        group.wait().is_err()
    });
    assert!(done);
}

// ===== spawning as one design: results, drain, which member =====

#[test]
fn members_give_their_values_back_through_their_handles() {
    let group: Group = Group::new(&Context::background());
    group.set_limit(3).unwrap();
    let handles: Vec<_> = (0..10u64)
        .map(|i| group.spawn_blocking(move |_| Ok(i * i)))
        .collect();
    group.wait().unwrap();
    let values: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(values, (0..10u64).map(|i| i * i).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_members_give_their_values_back_through_their_handles() {
    let group: Group = Group::new(&Context::background());
    let handles: Vec<_> = (0..10u64)
        .map(|i| group.spawn(move |_| async move { Ok(i + 1) }))
        .collect();
    group.wait_async().await.unwrap();
    let mut sum = 0;
    for h in handles {
        sum += h.await.unwrap();
    }
    assert_eq!(sum, 55);
}

#[test]
fn graceful_drain_runs_every_member_and_returns_the_first_error() {
    let group: Group<FetchError> = Group::new(&Context::background());
    group.set_fail_fast(false).unwrap();
    group.set_limit(1).unwrap();
    let ctx = group.context().clone();
    let first = group.spawn_blocking(|_| Err::<(), _>(FetchError::NotFound(1)));
    let later: Vec<_> = (0..4)
        .map(|_| group.spawn_blocking(|ctx| Ok(ctx.is_done())))
        .collect();
    group.spawn_blocking(|_| Err::<(), _>(FetchError::NotFound(2)));
    assert_eq!(group.wait(), Err(FetchError::NotFound(1)));
    assert!(first.join().unwrap_err().is_failed());
    for h in later {
        assert!(
            !h.join().unwrap(),
            "never cancelled, and queued members still ran"
        );
    }
    assert!(ctx.is_done(), "done after wait");
    assert!(ctx
        .cause()
        .unwrap()
        .downcast_ref::<MemberFailed>()
        .is_none());
}

#[test]
fn member_failed_names_the_member_by_sequence_number() {
    let group: Group = Group::new(&Context::background());
    let ctx = group.context().clone();
    for i in 0..5u32 {
        group.spawn_blocking(move |ctx| {
            if i == 3 {
                return Err(format!("member {i}").into());
            }
            ctx.wait();
            Ok(())
        });
    }
    assert_eq!(group.wait().unwrap_err().to_string(), "member 3");
    let cause = ctx.cause().unwrap();
    let failed = cause.downcast_ref::<MemberFailed>().unwrap();
    assert_eq!(failed.member(), 3);
    assert!(format!("{failed:?}").contains("member: 3"));
}

#[test]
fn members_dropped_unstarted_after_a_failure_join_as_cancelled() {
    let group: Group<FetchError> = Group::new(&Context::background());
    group.set_limit(1).unwrap();
    group.spawn_blocking(|_| Err::<(), _>(FetchError::NotFound(0)));
    let queued = group.spawn_blocking(|_| Ok(1));
    assert_eq!(group.wait(), Err(FetchError::NotFound(0)));
    let err = queued.join().unwrap_err();
    assert!(err.is_cancelled(), "{err}");
}

#[test]
fn cancelling_one_member_stops_only_that_member() {
    let group: Group = Group::new(&Context::background());
    let a = group.spawn_blocking(|ctx| Ok(ctx.wait()));
    let b = group.spawn_blocking(|ctx| Ok(ctx.is_done()));
    a.cancel();
    assert_eq!(a.join().unwrap(), Error::Canceled);
    assert!(!b.join().unwrap());
    assert!(!group.context().is_done());
    group.wait().unwrap();
}

/// Regression test (found by an audit): in a graceful drain (`set_fail_fast(false)`) with a
/// limit, a runtime that shuts down drops a running member, whose end starts the next queued
/// one, whose spawn onto the closed runtime is dropped at once, and so on: by recursion, one
/// level of stack per queued member, so a queue of a few thousand aborted the process with a
/// stack overflow. Every member must end as cancelled, and `wait` must report it, on a
/// thread with an ordinary 2 MiB stack.
#[test]
fn a_runtime_shutdown_under_a_long_queue_ends_every_member_without_recursion() {
    const QUEUED: usize = 20_000;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let group: Group = Group::new(&Context::background());
            group.set_fail_fast(false).unwrap();
            group.set_limit(1).unwrap();
            let handles: Vec<_> = {
                let _in = rt.enter();
                (0..=QUEUED)
                    .map(|_| {
                        group.spawn(|_| async {
                            std::future::pending::<()>().await;
                            Ok(())
                        })
                    })
                    .collect()
            };
            drop(rt);
            let cancelled = handles.into_iter().filter(|h| h.is_finished()).count();
            let waited = panic::catch_unwind(AssertUnwindSafe(|| group.wait()));
            tx.send((cancelled, waited.is_err())).unwrap();
        })
        .unwrap();
    let (finished, failed) = rx.recv_timeout(PATIENCE).expect("no hang, no overflow");
    assert_eq!(finished, QUEUED + 1, "every member ended");
    assert!(failed, "the shutdown is reported by wait");
}

/// A blocking member queued under the limit enters the runtime of the caller that started it,
/// as one started at once does: it was launched later by whichever member finished first, and
/// captured *that* thread's runtime (none, for a member thread, whose outcome is delivered
/// outside the runtime it entered; another runtime, for a task member of another runtime).
#[test]
fn a_queued_blocking_member_enters_the_runtime_of_its_caller_not_of_its_launcher() {
    bounded(|| {
        let ours = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ours")
            .build()
            .unwrap();
        let other = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("other")
            .build()
            .unwrap();
        // The runtime a member's blocking code spawns onto, by the name of its thread.
        fn spawns_onto() -> Option<String> {
            let runtime = tokio::runtime::Handle::try_current().ok()?;
            let name = runtime.spawn(async { std::thread::current().name().map(String::from) });
            futures_executor::block_on(name).unwrap()
        }
        for first_is_a_task in [false, true] {
            let group: Group = Group::new(&Context::background());
            group.set_limit(1).unwrap();
            let gate = Arc::new(Gate::default());
            let first = {
                let gate = gate.clone();
                if first_is_a_task {
                    let _in = other.enter();
                    group.spawn(move |_| async move {
                        tokio::task::block_in_place(|| gate.pass());
                        Ok(None::<String>)
                    })
                } else {
                    group.spawn_blocking(move |_| {
                        gate.pass();
                        Ok(None::<String>)
                    })
                }
            };
            let queued = {
                let _in = ours.enter();
                group.spawn_blocking(|_| Ok(spawns_onto()))
            };
            gate.open();
            group.wait().unwrap();
            assert_eq!(first.join().unwrap(), None);
            assert_eq!(
                queued.join().unwrap().as_deref(),
                Some("ours"),
                "first member a task of another runtime: {first_is_a_task}"
            );
        }
    });
}

/// A value that reports its drop through a `Weak`: nothing of the group, its members or
/// their contexts may be kept after everything is gone.
struct Tracked(#[allow(dead_code)] Arc<()>);

/// A group with a member on each of two runtimes: one runtime shuts down under its member
/// (`shutdown_timeout`, so that its threads are gone when the leaks are counted); its end cancels the
/// group, so the other runtime's member stops, `wait` (from a plain thread) reports the
/// shutdown, the dropped member's handle says cancelled, and nothing is leaked.
#[test]
fn a_group_over_two_runtimes_one_shut_down_reports_it_and_frees_everything() {
    bounded(|| {
        let doomed = multi_thread(1);
        let kept = multi_thread(1);
        let token = Arc::new(());
        let weak = Arc::downgrade(&token);
        let parent = Context::background().with_value(Tracked(token));
        let group: Group = Group::new(&parent);
        drop(parent);
        let held = Arc::new(());
        let held_weak = Arc::downgrade(&held);
        let (gone, stopped) = {
            let _in = doomed.enter();
            let gone = group.spawn(move |_| async move {
                let _held = held;
                std::future::pending::<()>().await;
                Ok(())
            });
            let _in = kept.enter();
            let stopped = group.spawn(|ctx| async move { Ok(ctx.done().await) });
            (gone, stopped)
        };
        doomed.shutdown_timeout(PATIENCE);
        let ctx = group.context().clone();
        let payload = panic::catch_unwind(AssertUnwindSafe(|| group.wait())).unwrap_err();
        let msg = panic_message(&*payload);
        assert!(msg.contains("runtime shut down"), "{msg}");
        assert!(ctx
            .cause()
            .unwrap()
            .to_string()
            .contains("runtime shut down"));
        assert_eq!(stopped.join().unwrap(), Error::Canceled);
        assert!(gone.join().unwrap_err().is_cancelled());
        assert!(
            held_weak.upgrade().is_none(),
            "the dropped member's future is freed"
        );
        drop(ctx);
        drop(kept);
        assert!(weak.upgrade().is_none(), "no context of the group is left");
    });
}

/// `wait` inside one of the group's own members (the group handed to it) waits for every
/// member, that one included: it panics with a message instead of hanging forever, from a
/// member thread and from a member task (through `block_in_place`), and dropping the group
/// as it unwinds cancels the group's context.
#[test]
fn wait_inside_one_of_its_own_members_panics_instead_of_hanging() {
    bounded(|| {
        let rt = multi_thread(1);
        for in_a_task in [false, true] {
            let (tx, rx) = mpsc::channel::<Group>();
            let group: Group = Group::new(&Context::background());
            let ctx = group.context().clone();
            let waits = move || {
                let group = rx.recv().unwrap();
                let payload = panic::catch_unwind(AssertUnwindSafe(|| group.wait()))
                    .expect_err("wait inside its own member returned");
                panic_message(&*payload)
            };
            let member = if in_a_task {
                let _in = rt.enter();
                group.spawn(move |_| async move { Ok(tokio::task::block_in_place(waits)) })
            } else {
                group.spawn_blocking(move |_| Ok(waits()))
            };
            tx.send(group).unwrap();
            let message = member.join().unwrap();
            assert!(
                message.contains("one of the group's own members"),
                "{message}"
            );
            assert!(ctx.is_done(), "the dropped group cancelled its context");
        }
    });
}

/// Regression test: `wait_async` polled inside one of the group's own members (the group
/// handed to it) returned `Pending` forever, a silent hang where `wait` panics; it panics
/// with the same message now, and dropping the group as it unwinds cancels its context.
#[test]
fn wait_async_inside_one_of_its_own_members_panics_instead_of_hanging() {
    bounded(|| {
        let rt = multi_thread(1);
        let (tx, rx) = mpsc::channel::<Group>();
        let group: Group = Group::new(&Context::background());
        let ctx = group.context().clone();
        let member = {
            let _in = rt.enter();
            group.spawn(move |_| async move {
                let mut wait = rx.recv().unwrap().wait_async();
                let payload = panic::catch_unwind(AssertUnwindSafe(|| {
                    let waker = std::task::Waker::noop();
                    let mut cx = std::task::Context::from_waker(waker);
                    std::future::Future::poll(std::pin::Pin::new(&mut wait), &mut cx).is_ready()
                }))
                .expect_err("wait_async inside its own member did not panic");
                drop(wait);
                Ok(panic_message(&*payload))
            })
        };
        tx.send(group).unwrap();
        let message = member.join().unwrap();
        assert!(
            message.contains("Group::wait_async inside one of the group's own members"),
            "{message}"
        );
        assert!(ctx.is_done(), "the dropped group cancelled its context");
    });
}

/// A group dropped without waiting cancels its context, and the members still queued behind
/// its limit never start: their handles join as cancelled, as after a failure (they started
/// one by one as the running member finished, under a done context nobody waited on).
#[test]
fn dropping_a_group_drops_its_queued_members_unstarted() {
    bounded(|| {
        let group: Group = Group::new(&Context::background());
        group.set_limit(1).unwrap();
        let gate = Arc::new(Gate::default());
        let running = {
            let gate = gate.clone();
            group.spawn_blocking(move |ctx| {
                gate.pass();
                Ok(ctx.is_done())
            })
        };
        let ran = Arc::new(AtomicUsize::new(0));
        let queued: Vec<_> = (0..3)
            .map(|_| {
                let ran = ran.clone();
                group.spawn_blocking(move |_| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
            })
            .collect();
        drop(group);
        gate.open();
        assert!(
            running.join().unwrap(),
            "the running member saw the cancellation"
        );
        for handle in queued {
            assert!(handle.join().unwrap_err().is_cancelled());
        }
        assert_eq!(ran.load(Ordering::SeqCst), 0, "no queued member started");
    });
}

/// `join` of a member's own handle inside that member (handed to it) waits for the member
/// itself: it panics with a message instead of hanging forever (and hanging `wait`), in a
/// member thread and in a member task (through `block_in_place`).
#[test]
fn a_member_joining_its_own_handle_panics_instead_of_hanging() {
    bounded(|| {
        let rt = multi_thread(1);
        for in_a_task in [false, true] {
            let (give, mine) = mpsc::channel::<go_context::GoHandle<String>>();
            let joins = move || {
                let me = mine.recv().unwrap();
                let payload = panic::catch_unwind(AssertUnwindSafe(|| me.join()))
                    .expect_err("join inside its own member returned");
                panic_message(&*payload)
            };
            let group: Group = Group::new(&Context::background());
            let handle = if in_a_task {
                let _in = rt.enter();
                group.spawn(move |_| async move { Err(tokio::task::block_in_place(joins).into()) })
            } else {
                group.spawn_blocking(move |_| Err(joins().into()))
            };
            give.send(handle).unwrap();
            let message = group.wait().unwrap_err().to_string();
            assert!(message.contains("inside the work it joins"), "{message}");
        }
    });
}

/// A runtime kept in a thread-local of the caller's, dropped as that thread exits, drops its
/// member tasks there; a member's end then starts the next queued one, after this crate's
/// own thread-locals may already be gone. It must end every member (the shutdown reported
/// by `wait`), not panic in a thread-local destructor (which aborts the process).
#[test]
fn a_runtime_dropped_in_a_thread_local_destructor_ends_its_queued_members() {
    thread_local! {
        static RUNTIME: std::cell::RefCell<Option<tokio::runtime::Runtime>> =
            const { std::cell::RefCell::new(None) };
    }
    bounded(|| {
        for fail_fast in [false, true] {
            ends_its_members(fail_fast);
        }
    });
    fn ends_its_members(fail_fast: bool) {
        let group: Group = Group::new(&Context::background());
        group.set_fail_fast(fail_fast).unwrap();
        group.set_limit(1).unwrap();
        let group = Arc::new(group);
        let handles = {
            let group = Arc::clone(&group);
            std::thread::spawn(move || {
                // The runtime's thread-local is made first, so it is destroyed last.
                RUNTIME.with(|rt| *rt.borrow_mut() = Some(current_thread()));
                RUNTIME.with(|rt| {
                    let rt = rt.borrow();
                    let _in = rt.as_ref().unwrap().enter();
                    (0..3)
                        .map(|_| {
                            group.spawn(|_| async {
                                std::future::pending::<()>().await;
                                Ok(())
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .join()
            .expect("the thread exited cleanly")
        };
        for handle in handles {
            assert!(handle.join().unwrap_err().is_cancelled());
        }
        let group = Arc::into_inner(group).unwrap();
        let payload = panic::catch_unwind(AssertUnwindSafe(|| group.wait())).unwrap_err();
        assert!(panic_message(&*payload).contains("runtime shut down"));
    }
}

/// A group dropped inside one of its own members (handed to it): the drop cancels the
/// group's context, which that member sees at once, and drops the queued members, without
/// waiting for anything (the member is still running).
#[test]
fn a_group_dropped_inside_its_own_member_cancels_and_drops_its_queue() {
    bounded(|| {
        let (give, mine) = mpsc::channel::<Group>();
        let group: Group = Group::new(&Context::background());
        group.set_limit(1).unwrap();
        let member = group.spawn_blocking(move |ctx| {
            drop(mine.recv().unwrap());
            Ok(ctx.is_done())
        });
        let queued = group.spawn_blocking(|_| Ok(false));
        give.send(group).unwrap();
        assert!(member.join().unwrap(), "the member saw its group's drop");
        assert!(queued.join().unwrap_err().is_cancelled());
    });
}
