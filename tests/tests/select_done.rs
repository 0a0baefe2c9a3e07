//! `select_done!`: the sync form under threads, the async form under tokio.

use std::future::{pending, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use go_context::{select_done, Context, Error};
use tokio::sync::oneshot;

const PROMPT: Duration = Duration::from_secs(10);

#[test]
fn sync_form_runs_default_while_live_and_done_once_cancelled() {
    let (ctx, cancel) = Context::background().with_cancel();
    let pick = |ctx: &Context| {
        select_done! {
            done(ctx) => "done",
            default => "default",
        }
    };
    assert_eq!(pick(&ctx), "default");
    cancel.cancel();
    assert_eq!(pick(&ctx), "done");
}

#[test]
fn sync_form_binds_the_error_and_takes_owned_contexts() {
    let (ctx, _cancel) = Context::background().with_timeout(Duration::ZERO);
    let got: Result<(), Error> = select_done! {
        err = done(ctx.clone()) => Err(err),
        default => Ok(()),
    };
    assert_eq!(got, Err(Error::DeadlineExceeded));
}

/// Regression test (found by the session 16 macros audit): `done(ctx)` rejected an
/// `Arc<Context>` ("`Arc<Context>` is not a `go_context::Context`"), which
/// `#[cancellable]` takes as a parent; a context shared through an `Arc`, `Box` or `Rc` is
/// taken as it is, by reference, in both forms.
#[tokio::test(flavor = "current_thread")]
async fn done_takes_a_context_behind_an_arc_box_or_rc() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (arc, boxed, rc) = (
        Arc::new(ctx.clone()),
        Box::new(ctx.clone()),
        std::rc::Rc::new(ctx.clone()),
    );
    let sync = |live: bool| {
        let want = if live { "default" } else { "done" };
        assert_eq!(
            select_done! { done(arc) => "done", default => "default" },
            want
        );
        assert_eq!(
            select_done! { done(&boxed) => "done", default => "default" },
            want
        );
        assert_eq!(
            select_done! { done(rc) => "done", default => "default" },
            want
        );
    };
    sync(true);
    cancel.cancel();
    sync(false);
    let err = select_done! {
        err = done(arc) => err,
        () = pending::<()>() => unreachable!("never ready"),
    };
    assert_eq!(err, Error::Canceled);
    let err = select_done! {
        err = done(boxed) => err,
        () = pending::<()>() => unreachable!("never ready"),
    };
    assert_eq!(err, Error::Canceled);
}

#[test]
fn sync_form_defaults_to_the_current_context() {
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    let outside = select_done! { done => 1, default => 2 };
    let _current = ctx.enter();
    let inside = select_done! { done => 1, default => 2 };
    assert_eq!((outside, inside), (2, 1));
}

#[test]
fn the_seed_loop_in_a_thread_stops_on_cancel() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let mut rounds = 0u64;
        loop {
            select_done! {
                err = done(&ctx) => return (rounds, err),
                default => {
                    if rounds == 0 {
                        tx.send(()).unwrap();
                    }
                    rounds += 1;
                }
            }
        }
    });
    rx.recv().unwrap();
    let start = Instant::now();
    cancel.cancel();
    let (rounds, err) = worker.join().unwrap();
    assert!(rounds >= 1);
    assert_eq!(err, Error::Canceled);
    assert!(start.elapsed() < PROMPT);
}

/// A future that counts its polls and is ready on poll number `ready_at` (never if 0).
struct Counted {
    polls: Arc<AtomicUsize>,
    ready_at: usize,
}

impl Future for Counted {
    type Output = usize;
    fn poll(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<usize> {
        let n = self.polls.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.ready_at {
            Poll::Ready(n)
        } else {
            Poll::Pending
        }
    }
}

struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn async_form_takes_the_ready_future() {
    let bg = Context::background();
    let (tx, rx) = oneshot::channel::<u32>();
    tx.send(5).unwrap();
    let got = select_done! {
        done(&bg) => 0,
        v = rx => v.unwrap(),
        w = pending::<u32>() => w,
    };
    assert_eq!(got, 5);
}

#[tokio::test]
async fn the_done_branch_wins_when_several_are_ready() {
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    let polls = Arc::new(AtomicUsize::new(0));
    let got = select_done! {
        err = done(&ctx) => Err(err),
        v = async { 1 } => Ok(v),
        n = Counted { polls: polls.clone(), ready_at: 1 } => Ok(n as i32),
        default => Ok(-1),
    };
    assert_eq!(got, Err(Error::Canceled));
    assert_eq!(polls.load(Ordering::SeqCst), 0, "no future is polled");
}

#[tokio::test]
async fn with_default_every_future_is_polled_once_first() {
    let bg = Context::background();
    let first = Arc::new(AtomicUsize::new(0));
    let second = Arc::new(AtomicUsize::new(0));
    let got = select_done! {
        done(&bg) => "done",
        _ = Counted { polls: first.clone(), ready_at: 0 } => "first",
        _ = Counted { polls: second.clone(), ready_at: 0 } => "second",
        default => "default",
    };
    assert_eq!(got, "default");
    assert_eq!(first.load(Ordering::SeqCst), 1);
    assert_eq!(second.load(Ordering::SeqCst), 1);

    let ready_first_poll = select_done! {
        done(&bg) => "done",
        _ = Counted { polls: Arc::new(AtomicUsize::new(0)), ready_at: 1 } => "ready",
        default => "default",
    };
    assert_eq!(ready_first_poll, "ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_default_it_waits_for_the_first_ready_branch() {
    let (tx, rx) = oneshot::channel::<&str>();
    tokio::spawn(async move {
        tokio::task::yield_now().await;
        tx.send("late").unwrap();
    });
    let (ctx, _cancel) = Context::background().with_cancel();
    let got = tokio::time::timeout(PROMPT, async {
        select_done! {
            done(&ctx) => "done",
            v = rx => v.unwrap(),
        }
    })
    .await
    .unwrap();
    assert_eq!(got, "late");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_while_waiting_runs_done_after_dropping_the_losers() {
    let (ctx, cancel) = Context::background().with_cancel();
    let dropped = Arc::new(AtomicBool::new(false));
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let loser = {
        let guard = DropFlag(dropped.clone());
        async move {
            let _guard = guard;
            started_tx.send(()).unwrap();
            pending::<()>().await;
        }
    };
    let canceller = tokio::spawn(async move {
        started_rx.await.unwrap();
        cancel.cancel();
    });
    let got = tokio::time::timeout(PROMPT, async {
        select_done! {
            err = done(&ctx) => {
                assert!(dropped.load(Ordering::SeqCst), "losers drop before the body");
                Err(err)
            }
            () = loser => Ok(()),
        }
    })
    .await
    .unwrap();
    assert_eq!(got, Err(Error::Canceled));
    canceller.await.unwrap();
}

#[tokio::test]
async fn bodies_may_use_what_the_futures_borrowed_and_control_flow_works() {
    let bg = Context::background();
    let mut data = vec![1, 2, 3];
    let mut seen = Vec::new();
    for round in 0.. {
        let len = select_done! {
            done(&bg) => break,
            n = async { data.len() } => n,
        };
        data.push(len); // the future's borrow of `data` has ended
        seen.push(len);
        if round == 1 {
            break;
        }
    }
    assert_eq!(seen, vec![3, 4]);
}

#[tokio::test]
async fn async_form_defaults_to_the_current_context_in_scope() {
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    let got = ctx
        .scope(async {
            select_done! {
                done => "done",
                _ = pending::<()>() => "never",
            }
        })
        .await;
    assert_eq!(got, "done");
}

#[tokio::test]
async fn async_form_evaluates_its_operands_once_in_written_order() {
    // Go evaluates a select's cases in source order; a done branch written after a future
    // branch is evaluated after it.
    let order = std::cell::RefCell::new(Vec::new());
    let step = |name: &'static str| order.borrow_mut().push(name);
    let bg = Context::background();
    let got = select_done! {
        a = { step("first future"); async { 1 } } => a,
        done({ step("done context"); &bg }) => 0,
        b = { step("second future"); async { 2 } } => b,
    };
    assert_eq!(got, 1);
    assert_eq!(
        *order.borrow(),
        ["first future", "done context", "second future"]
    );
}

#[tokio::test]
async fn a_branch_pattern_may_be_an_irrefutable_or_pattern() {
    let settled: Result<u8, u8> = Err(4);
    let got = select_done! {
        done => 0,
        Ok(n) | Err(n) = async move { settled } => n,
    };
    assert_eq!(got, 4);
}
