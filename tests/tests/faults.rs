//! Faults: user code that panics (callbacks, wakers, causes' `Display`, code run while a
//! context is entered, `#[cancellable]` bodies, `go!` work). After each, the tree must still
//! work: derive, cancel, wait, `after_func` and deadlines, checked by [`healthy`] on a fresh
//! thread with a bound, so a lock left held shows as a failure instead of a hang.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, Once};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use go_context::{cancellable, go, Context, Error};

#[path = "support/wakers.rs"]
mod wakers;
use wakers::CountingWaker;

/// Generous bound for "this must happen" on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// Panics deliberately raised by these tests carry this text; the panic hook keeps them quiet.
const DELIBERATE: &str = "deliberate panic";

fn quiet_deliberate_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if !msg.contains(DELIBERATE) {
                default(info);
            }
        }));
    });
}

/// Runs `f` on a new thread and fails if it does not finish within [`PATIENCE`] (a deadlock,
/// such as a lock left held, shows as this failure, an abort of the test binary, rather than a
/// hung test).
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(panic::catch_unwind(AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(PATIENCE) {
        Ok(Ok(v)) => v,
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(_) => {
            // Unwinding from here would drop the test's contexts, which may need the very lock
            // that is stuck: end the process instead of hanging.
            eprintln!("{what}: did not finish within {PATIENCE:?} (deadlock?)");
            std::process::abort();
        }
    }
}

/// The tree under `ctx` still works, from another thread: derive, cancel, wait (blocking and
/// async), `after_func`, a deadline firing, and the state of `ctx` itself is self-consistent.
fn healthy(ctx: &Context) {
    let ctx = ctx.clone();
    within("health check", move || {
        let err = ctx.err();
        assert_eq!(ctx.is_done(), err.is_some());
        assert_eq!(ctx.wait_timeout(Duration::ZERO), err);
        assert_eq!(ctx.cause().is_some(), err.is_some());
        let _ = format!("{ctx:?}");

        let (child, cancel) = ctx.with_cancel();
        assert_eq!(
            child.err().is_some(),
            err.is_some(),
            "born done iff the parent is"
        );
        let (tx, rx) = mpsc::channel();
        let _reg = child.after_func(move || tx.send(()).unwrap());
        let waiter = {
            let child = child.clone();
            thread::spawn(move || (child.wait(), futures_executor::block_on(child.done())))
        };
        cancel.cancel_with_cause("health check");
        let (a, b) = waiter.join().unwrap();
        assert_eq!(a, b);
        assert!(child.is_done());
        rx.recv_timeout(PATIENCE).expect("after_func ran");

        // Deadlines still fire (the timer thread is alive).
        let (timed, _cancel) = Context::background().with_timeout(Duration::from_millis(5));
        assert_eq!(timed.wait_timeout(PATIENCE), Some(Error::DeadlineExceeded));
    });
}

struct PanickingWaker;

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("{DELIBERATE}: waker");
    }
}

fn poll_once(done: &mut Pin<Box<go_context::Done>>, waker: &Waker) -> Poll<Error> {
    std::future::Future::poll(done.as_mut(), &mut TaskContext::from_waker(waker))
}

// ===== after_func =====

#[test]
fn panicking_callbacks_do_not_stop_the_others_nor_poison_the_pool() {
    quiet_deliberate_panics();
    let (ctx, cancel) = Context::background().with_cancel();
    let (tx, rx) = mpsc::channel();
    let mut regs = Vec::new();
    for i in 0..20 {
        let tx = tx.clone();
        regs.push(ctx.after_func(move || {
            if i % 2 == 0 {
                panic!("{DELIBERATE}: callback {i}");
            }
            tx.send(i).unwrap();
        }));
    }
    cancel.cancel();
    let mut ran: Vec<i32> = (0..10)
        .map(|_| rx.recv_timeout(PATIENCE).unwrap())
        .collect();
    ran.sort();
    assert_eq!(ran, (1..20).step_by(2).collect::<Vec<_>>());
    // On an already-done context a callback runs at once (on the pool): a panic there too.
    let _late = ctx.after_func(|| panic!("{DELIBERATE}: late callback"));
    let _later = ctx.after_func(move || tx.send(100).unwrap());
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), 100);
    healthy(&ctx);
    healthy(&Context::background());
}

#[test]
fn a_callback_that_panics_halfway_through_cancelling_leaves_a_consistent_tree() {
    quiet_deliberate_panics();
    let (root, _cancel_root) = Context::background().with_cancel();
    let (a, cancel_a) = root.with_cancel();
    let (b, cancel_b) = root.with_cancel();
    let (tx, rx) = mpsc::channel();
    let _reg = a.after_func(move || {
        cancel_b.cancel_with_cause("from the callback");
        tx.send(()).unwrap();
        panic!("{DELIBERATE}: after cancelling b");
    });
    cancel_a.cancel();
    rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(b.cause().unwrap().to_string(), "from the callback");
    healthy(&root);
    healthy(&b);
}

// ===== wakers =====

#[test]
fn a_panicking_waker_on_cancel_wakes_the_others_and_leaves_no_lock_held() {
    quiet_deliberate_panics();
    let (root, _cancel_root) = Context::background().with_cancel();
    let (ctx, cancel) = root.with_cancel();
    let (child, _child_cancel) = ctx.with_cancel();
    let bad = Waker::from(Arc::new(PanickingWaker));
    let good = Arc::new(CountingWaker::default());
    let good_waker = Waker::from(Arc::clone(&good));
    let (mut d1, mut d2, mut d3) = (
        Box::pin(ctx.done()),
        Box::pin(child.done()),
        Box::pin(ctx.done()),
    );
    assert!(poll_once(&mut d1, &bad).is_pending());
    assert!(poll_once(&mut d2, &bad).is_pending());
    assert!(poll_once(&mut d3, &good_waker).is_pending());
    let blocked = {
        let child = child.clone();
        thread::spawn(move || child.wait())
    };
    let (tx, rx) = mpsc::channel();
    let _reg = child.after_func(move || tx.send(()).unwrap());

    let result = panic::catch_unwind(AssertUnwindSafe(|| cancel.cancel()));
    assert!(result.is_err(), "the waker's panic reaches the canceller");
    // The cancellation completed anyway.
    assert_eq!(good.wakes.load(Ordering::SeqCst), 1);
    assert_eq!(blocked.join().unwrap(), Error::Canceled);
    rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(
        poll_once(&mut d1, &good_waker),
        Poll::Ready(Error::Canceled)
    );
    assert_eq!(
        poll_once(&mut d2, &good_waker),
        Poll::Ready(Error::Canceled)
    );
    assert!(child.is_done());
    assert!(!root.is_done());
    healthy(&ctx);
    healthy(&root);
}

/// The drop of the last handle never unwinds from a waker's panic (a `Drop` that unwinds cuts
/// its caller's cleanup short, and aborts the process if it is already unwinding).
#[test]
fn a_panicking_waker_on_the_drop_of_the_last_handle() {
    quiet_deliberate_panics();
    let (ctx, cancel) = Context::background().with_cancel();
    let bad = Waker::from(Arc::new(PanickingWaker));
    let mut d = Box::pin(ctx.done());
    assert!(poll_once(&mut d, &bad).is_pending());
    let result = panic::catch_unwind(AssertUnwindSafe(move || drop(cancel)));
    assert!(result.is_ok(), "the drop of the last handle unwound");
    assert_eq!(ctx.err(), Some(Error::Canceled));
    healthy(&ctx);
}

/// Regression test (found by an audit): the drop of the last handle used to re-raise a
/// waker's panic from its cancellation and so skip unlinking the node from its parent. The
/// freed node's address stayed in the parent's children list, and the parent's cancellation
/// then walked a dangling pointer: it cancelled whatever context had taken that memory.
#[test]
fn a_panicking_waker_on_the_last_handle_drop_still_unlinks_the_child() {
    quiet_deliberate_panics();
    let (parent, parent_cancel) = Context::background().with_cancel();
    let (child, child_cancel) = parent.with_cancel();
    let bad = Waker::from(Arc::new(PanickingWaker));
    let mut d = Box::pin(child.done());
    assert!(poll_once(&mut d, &bad).is_pending());
    drop(bad);
    drop(child);
    let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(child_cancel)));
    // The node goes with its last `Context`, the one the `Done` holds.
    drop(d);
    // Contexts made after the free: some take the freed node's memory.
    let unrelated: Vec<_> = (0..64)
        .map(|_| Context::background().with_cancel())
        .collect();
    parent_cancel.cancel();
    let hit = unrelated.iter().filter(|(c, _)| c.is_done()).count();
    assert_eq!(
        hit, 0,
        "the parent's cancellation reached {hit} unrelated context(s) through a freed child"
    );
    healthy(&parent);
}

/// Regression test (found by an audit): a failing member's cancellation of its group used to
/// re-raise a waker's panic before the failure was recorded: `wait` returned `Ok(())` and
/// the member's handle said it had never started.
#[test]
fn a_panicking_waker_on_a_group_context_loses_no_failure() {
    quiet_deliberate_panics();
    let mut d = a_failing_member_with_a_waker_on_the_group_loses_nothing(Waker::from(Arc::new(
        PanickingWaker,
    )));
    let good = Waker::from(Arc::new(CountingWaker::default()));
    assert_eq!(poll_once(&mut d, &good), Poll::Ready(Error::Canceled));
}

/// A member fails while `bad` waits on the group's context: `wait` and the member's handle
/// both still get the failure. Returns the `done()` future `bad` waited through.
fn a_failing_member_with_a_waker_on_the_group_loses_nothing(
    bad: Waker,
) -> Pin<Box<go_context::Done>> {
    let group: go_context::Group = go_context::Group::new(&Context::background());
    let mut d = Box::pin(group.context().done());
    assert!(poll_once(&mut d, &bad).is_pending());
    let member = group.spawn_blocking(|_| Err::<(), go_context::BoxError>("member failed".into()));
    let waited = within("group wait", move || {
        group.wait().map_err(|e| e.to_string())
    });
    assert_eq!(waited, Err("member failed".to_owned()));
    let joined = within("member join", move || {
        member.join().map_err(|e| e.to_string())
    });
    assert!(
        matches!(&joined, Err(e) if e.contains("member failed")),
        "the member's handle lost its failure: {joined:?}"
    );
    d
}

/// Regression test: a waker that panics when a *deadline* fires used to unwind through the
/// timer thread and kill it, so no deadline of the process ever fired again (and the rest of
/// that batch of due contexts was never cancelled).
#[test]
fn a_panicking_waker_woken_by_a_deadline_does_not_kill_the_timer() {
    quiet_deliberate_panics();
    let bad = Waker::from(Arc::new(PanickingWaker));
    // The wakers must be registered before the deadline: on a slow machine (or under Miri)
    // try again with a longer timeout.
    let mut timeout = Duration::from_millis(10);
    let (ctx, same_batch, _cancels, _futures) = loop {
        let (ctx, cancel) = Context::background().with_timeout(timeout);
        // A second context due at the same moment: in the same batch of the timer.
        let (same_batch, cancel2) = Context::background().with_deadline(ctx.deadline().unwrap());
        let mut d = Box::pin(ctx.done());
        let mut d2 = Box::pin(same_batch.done());
        if poll_once(&mut d, &bad).is_pending() && poll_once(&mut d2, &bad).is_pending() {
            break (ctx, same_batch, (cancel, cancel2), (d, d2));
        }
        assert!(timeout < PATIENCE, "could not register before the deadline");
        timeout *= 10;
    };
    assert_eq!(ctx.wait_timeout(PATIENCE), Some(Error::DeadlineExceeded));
    assert_eq!(
        same_batch.wait_timeout(PATIENCE),
        Some(Error::DeadlineExceeded)
    );
    // Later deadlines still fire.
    for _ in 0..3 {
        let (next, _c) = Context::background().with_timeout(Duration::from_millis(5));
        assert_eq!(next.wait_timeout(PATIENCE), Some(Error::DeadlineExceeded));
    }
    healthy(&ctx);
}

/// A value whose `Drop` panics, released by whichever of the timer thread and the test drops
/// the deadline context last: the timer survives either way.
#[test]
fn a_panicking_drop_released_on_the_timer_thread_does_not_kill_it() {
    quiet_deliberate_panics();
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            if !thread::panicking() {
                panic!("{DELIBERATE}: value drop");
            }
        }
    }
    for _ in 0..200 {
        let base = Context::background().with_value(PanicOnDrop);
        let (ctx, cancel) = base.with_timeout(Duration::from_millis(2));
        drop(base);
        // Dropped as soon as the wait returns: this races the timer thread, which still holds
        // its reference until its `cancel` has returned, so either side may release the value.
        assert_eq!(ctx.wait_timeout(PATIENCE), Some(Error::DeadlineExceeded));
        let _ = panic::catch_unwind(AssertUnwindSafe(move || drop((ctx, cancel))));
    }
    let (next, _c) = Context::background().with_timeout(Duration::from_millis(5));
    assert_eq!(next.wait_timeout(PATIENCE), Some(Error::DeadlineExceeded));
}

// ===== ambient context =====

#[test]
fn a_panic_while_entered_restores_the_ambient_context() {
    quiet_deliberate_panics();
    let outer = Context::background().with_value("outer");
    let inner = Context::background().with_value("inner");
    let _g = outer.enter();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let _g2 = inner.enter();
        assert_eq!(Context::current().value::<&str>(), Some(&"inner"));
        panic!("{DELIBERATE}: while entered");
    }));
    assert!(result.is_err());
    assert_eq!(Context::current().value::<&str>(), Some(&"outer"));
    drop(_g);
    assert_eq!(Context::current().value::<&str>(), None);
    // Also inside `scope` across a panicking poll.
    let scoped = Context::background().with_value(7u32);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        futures_executor::block_on(scoped.scope(async {
            assert_eq!(Context::current().value::<u32>(), Some(&7));
            panic!("{DELIBERATE}: in scope");
        }))
    }));
    assert!(result.is_err());
    assert_eq!(Context::current().value::<u32>(), None);
}

// ===== causes =====

#[derive(Debug)]
struct PanickingDisplay;

impl fmt::Display for PanickingDisplay {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("{DELIBERATE}: Display of a cause")
    }
}

impl std::error::Error for PanickingDisplay {}

#[test]
fn a_cause_whose_display_panics_breaks_only_its_display() {
    quiet_deliberate_panics();
    let (root, _cancel_root) = Context::background().with_cancel();
    let (ctx, cancel) = root.with_cancel();
    let (child, _c) = ctx.with_value(1u8).with_cancel();
    cancel.cancel_with_cause(PanickingDisplay);
    let cause = child.cause().unwrap();
    assert!(cause.downcast_ref::<PanickingDisplay>().is_some());
    let shown = panic::catch_unwind(AssertUnwindSafe(|| cause.to_string()));
    assert!(shown.is_err());
    // Nothing of ours formats a cause under a lock: everything still works.
    assert_eq!(child.err(), Some(Error::Canceled));
    let _ = format!("{child:?}, {cause:?}");
    let (grandchild, _g) = child.with_cancel();
    assert!(grandchild
        .cause()
        .unwrap()
        .downcast_ref::<PanickingDisplay>()
        .is_some());
    // The same with a deadline cause, fired by the timer thread.
    let (timed, _t) = root.with_timeout_cause(Duration::from_millis(5), PanickingDisplay);
    assert_eq!(timed.wait_timeout(PATIENCE), Some(Error::DeadlineExceeded));
    assert!(timed
        .cause()
        .unwrap()
        .downcast_ref::<PanickingDisplay>()
        .is_some());
    healthy(&ctx);
    healthy(&root);
}

// ===== #[cancellable] and go! =====

#[cancellable(timeout = "1h")]
fn panics_inside(ctx: &Context, seen: &Mutex<Option<Context>>) -> Option<()> {
    *seen.lock().unwrap() = Some(ctx.clone());
    panic!("{DELIBERATE}: in a #[cancellable] body");
}

#[test]
fn a_panic_in_a_cancellable_body_cancels_its_child_and_restores_the_ambient_context() {
    quiet_deliberate_panics();
    let (parent, _cancel) = Context::background().with_cancel();
    let seen = Mutex::new(None);
    let _g = parent.with_value("caller").enter();
    let result = panic::catch_unwind(AssertUnwindSafe(|| panics_inside(&parent, &seen)));
    assert!(result.is_err());
    assert_eq!(Context::current().value::<&str>(), Some(&"caller"));
    let child = seen.lock().unwrap().take().unwrap();
    assert!(
        child.is_done(),
        "the body's child context is released (cancelled) by the unwinding"
    );
    assert!(!parent.is_done(), "the caller's context is untouched");
    drop(_g);
    healthy(&parent);
}

fn panicking_work(ctx: Context) -> u32 {
    assert!(!ctx.is_done());
    panic!("{DELIBERATE}: in go! work")
}

#[test]
fn a_panic_in_go_work_reaches_join_and_the_parent_stays_usable() {
    quiet_deliberate_panics();
    let (parent, _cancel) = Context::background().with_cancel();
    let handle = go!(in parent, |ctx| panicking_work(ctx));
    let child = handle.context().clone();
    let err = handle.join().unwrap_err();
    assert!(err.is_panic());
    assert!(err.panic_message().unwrap().contains(DELIBERATE));
    assert!(
        child.is_done(),
        "the work's context is released once it ended"
    );
    assert!(!parent.is_done());
    // Many panicking spawns in a row: nothing accumulates, nothing is poisoned.
    let start = Instant::now();
    for _ in 0..50 {
        let err = go!(in parent, |ctx| panicking_work(ctx))
            .join()
            .unwrap_err();
        assert!(err.is_panic());
    }
    assert!(start.elapsed() < PATIENCE);
    healthy(&parent);
}

/// A waker whose `Drop` (or `clone`) uses the very context it waits on. When a `done()` future
/// is polled again with a different waker, the old waker is dropped and the new one cloned:
/// that user code must run outside the context's lock (tree invariant 6), or it deadlocks.
#[test]
fn a_waker_replaced_on_re_poll_may_use_the_context_in_its_drop() {
    struct Reentrant {
        ctx: Context,
        dropped: Arc<AtomicUsize>,
    }
    impl Wake for Reentrant {
        fn wake(self: Arc<Self>) {}
    }
    impl Drop for Reentrant {
        fn drop(&mut self) {
            // Takes the context's lock: derive a child and register (then drop) a waiter.
            let (child, _cancel) = self.ctx.with_cancel();
            let mut done = Box::pin(self.ctx.done());
            let _ = poll_once(&mut done, Waker::noop());
            drop(child);
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
    let (ctx, cancel) = Context::background().with_cancel();
    let dropped = Arc::new(AtomicUsize::new(0));
    let c = ctx.clone();
    let d = Arc::clone(&dropped);
    within("re-poll with another waker", move || {
        let first = Waker::from(Arc::new(Reentrant {
            ctx: c.clone(),
            dropped: d,
        }));
        let mut done = Box::pin(c.done());
        assert!(poll_once(&mut done, &first).is_pending());
        // The registration now holds the only other reference to the first waker.
        drop(first);
        let second = Arc::new(CountingWaker::default());
        assert!(poll_once(&mut done, &Waker::from(Arc::clone(&second))).is_pending());
        drop(done);
    });
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    cancel.cancel();
    healthy(&ctx);
}

// ===== panic payloads whose own drop panics =====

/// A panic payload whose `Drop` panics (once: the second payload is a plain string). Whoever
/// catches a user's panic and discards it runs this `Drop`: on a thread of ours, that second
/// panic must be contained too.
struct PayloadPanicsOnDrop;

impl Drop for PayloadPanicsOnDrop {
    fn drop(&mut self) {
        if !thread::panicking() {
            panic!("{DELIBERATE}: payload drop");
        }
    }
}

/// The panic hook keeps payloads of this type quiet too.
fn quiet_payload_panics() {
    static ONCE: Once = Once::new();
    quiet_deliberate_panics();
    ONCE.call_once(|| {
        let inner = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<PayloadPanicsOnDrop>() {
                inner(info);
            }
        }));
    });
}

struct WakerPanicsWithBadPayload;

impl Wake for WakerPanicsWithBadPayload {
    fn wake(self: Arc<Self>) {
        panic::panic_any(PayloadPanicsOnDrop);
    }
}

/// The timer survives a waker whose panic payload panics when dropped (the drop happens in
/// the cancellation, on the timer thread; a second panic there is contained).
#[test]
fn a_waker_panic_payload_that_panics_on_drop_does_not_kill_the_timer() {
    quiet_payload_panics();
    let bad = Waker::from(Arc::new(WakerPanicsWithBadPayload));
    let mut timeout = Duration::from_millis(10);
    let (ctx, _cancel, _done) = loop {
        let (ctx, cancel) = Context::background().with_timeout(timeout);
        let mut d = Box::pin(ctx.done());
        if poll_once(&mut d, &bad).is_pending() {
            break (ctx, cancel, d);
        }
        assert!(timeout < PATIENCE, "could not register before the deadline");
        timeout *= 10;
    };
    assert_eq!(ctx.wait_timeout(PATIENCE), Some(Error::DeadlineExceeded));
    for _ in 0..3 {
        let (next, _c) = Context::background().with_timeout(Duration::from_millis(5));
        assert_eq!(next.wait_timeout(PATIENCE), Some(Error::DeadlineExceeded));
    }
    healthy(&ctx);
}

/// Regression test: a failed member cancels the group's context; a waker's panic there is
/// dropped, and a payload whose `Drop` panicked unwound out of the member's failure path.
#[test]
fn a_waker_panic_payload_that_panics_on_drop_loses_no_group_failure() {
    quiet_payload_panics();
    let done = a_failing_member_with_a_waker_on_the_group_loses_nothing(Waker::from(Arc::new(
        WakerPanicsWithBadPayload,
    )));
    drop(done);
}

/// Regression test: a second panicking waker's payload was dropped in the middle of the
/// wake-ups (only the first is kept for the canceller); a payload whose `Drop` panicked cut
/// them short, so the wakers after it were never woken.
#[test]
fn a_second_waker_panic_payload_that_panics_on_drop_wakes_the_rest() {
    quiet_payload_panics();
    let (ctx, cancel) = Context::background().with_cancel();
    // Both panic with such a payload: whichever is woken second has its payload dropped.
    let first = Waker::from(Arc::new(WakerPanicsWithBadPayload));
    let second = Waker::from(Arc::new(WakerPanicsWithBadPayload));
    let good = Arc::new(CountingWaker::default());
    let good_waker = Waker::from(Arc::clone(&good));
    let (mut d1, mut d2, mut d3) = (
        Box::pin(ctx.done()),
        Box::pin(ctx.done()),
        Box::pin(ctx.done()),
    );
    assert!(poll_once(&mut d1, &first).is_pending());
    assert!(poll_once(&mut d2, &second).is_pending());
    assert!(poll_once(&mut d3, &good_waker).is_pending());
    let result = panic::catch_unwind(AssertUnwindSafe(|| cancel.cancel()));
    let payload = result.expect_err("the first waker's panic reaches the canceller");
    assert!(
        payload.is::<PayloadPanicsOnDrop>(),
        "the canceller got the first waker's own panic, not the drop of the second's"
    );
    // The test's own drop of it would panic.
    std::mem::forget(payload);
    assert_eq!(
        good.wakes.load(Ordering::SeqCst),
        1,
        "the other waker was woken"
    );
    healthy(&ctx);
}

/// Regression test: a group keeps the first failure of each kind and drops the others in the
/// member's failure path; a panic payload whose `Drop` panicked unwound out of it before the
/// member's handle was given its result.
#[test]
fn a_second_member_panic_payload_that_panics_on_drop_still_reaches_its_handle() {
    quiet_payload_panics();
    let group: go_context::Group = go_context::Group::new(&Context::background());
    let (first_tx, first_rx) = mpsc::channel::<()>();
    let first = group.spawn_blocking(move |_| -> Result<(), go_context::BoxError> {
        panic::panic_any(PayloadPanicsOnDrop);
    });
    // The second fails after the first has failed (the group's context is done then).
    let second = group.spawn_blocking(move |ctx: Context| -> Result<(), go_context::BoxError> {
        ctx.wait();
        let _ = first_rx;
        panic::panic_any(PayloadPanicsOnDrop);
    });
    drop(first_tx);
    let joined = within("second member join", move || {
        let j = second.join();
        let failed = j.as_ref().is_err_and(|e| e.is_failed());
        // Its payload (if any) is not ours to drop in this test.
        std::mem::forget(j);
        failed
    });
    assert!(joined, "the second member's handle got its failure");
    let first_failed = within("first member join", move || {
        let j = first.join();
        let failed = j.as_ref().is_err_and(|e| e.is_failed());
        std::mem::forget(j);
        failed
    });
    assert!(first_failed);
    let waited = within("group wait", move || {
        panic::catch_unwind(AssertUnwindSafe(|| group.wait()))
            .map(|_| ())
            .map_err(|payload| {
                let ours = payload.is::<PayloadPanicsOnDrop>();
                std::mem::forget(payload);
                ours
            })
    });
    assert_eq!(waited, Err(true), "wait re-raises the first member's panic");
}
