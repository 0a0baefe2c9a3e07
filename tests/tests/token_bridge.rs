//! Feature `tokio-util`: `ctx.to_token()` and `ctx.with_token(&token)`. Cancellation crosses
//! each way synchronously (no task, no thread, no executor), with the cause saying so.
//! That nothing is kept afterwards is `token_bridge_memory.rs`'s job.

use std::time::Duration;

use go_context::{Context, Error, TokenCancelled};
use tokio_util::sync::CancellationToken;

#[test]
fn a_cancelled_context_cancels_its_token_at_once() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (child, _child_cancel) = ctx.with_cancel();
    let token = child.to_token();
    let clone = token.clone();
    assert!(!token.is_cancelled());
    cancel.cancel();
    assert!(
        token.is_cancelled(),
        "synchronously, before cancel() returned"
    );
    assert!(clone.is_cancelled());
}

#[test]
fn a_deadline_and_a_dropped_handle_cancel_the_token() {
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(20));
    let token = ctx.to_token();
    // The timer thread cancels the context, and with it the token: await the token alone.
    futures_executor::block_on(token.cancelled());
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));

    let (ctx, cancel) = Context::background().with_cancel();
    let token = ctx.to_token();
    drop(cancel);
    assert!(token.is_cancelled());
}

#[test]
fn a_done_context_gives_a_cancelled_token_and_background_a_live_one() {
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    assert!(ctx.to_token().is_cancelled());

    let token = Context::background().with_value(3u8).to_token();
    assert!(!token.is_cancelled());
    // Cancelling the token does not reach back into a context.
    let (ctx, _cancel) = Context::background().with_cancel();
    let token = ctx.to_token();
    token.cancel();
    assert!(!ctx.is_done());
}

#[test]
fn a_cancelled_token_cancels_its_child_context_at_once() {
    let token = CancellationToken::new();
    let (parent, _parent_cancel) = Context::background().with_cancel();
    let line = line!() + 1;
    let (ctx, _cancel) = parent.with_token(&token);
    let (grandchild, _c) = ctx.with_timeout(Duration::from_secs(3600));
    assert!(!ctx.is_done());
    token.cancel();
    assert_eq!(ctx.err(), Some(Error::Canceled), "synchronously");
    assert_eq!(grandchild.err(), Some(Error::Canceled));
    assert!(!parent.is_done(), "only the child is bridged");
    let cause = grandchild.cause().unwrap();
    assert_eq!(
        cause.downcast_ref::<TokenCancelled>(),
        Some(&TokenCancelled)
    );
    assert_eq!(cause.to_string(), "the CancellationToken was cancelled");
    assert_eq!(cause.location().file(), file!());
    assert_eq!(cause.location().line(), line, "the with_token call");
}

#[test]
fn a_parent_token_reaches_a_context_bridged_to_its_child_token() {
    let root = CancellationToken::new();
    let child_token = root.child_token();
    let (ctx, _cancel) = Context::background().with_token(&child_token);
    drop(child_token);
    root.cancel();
    assert!(ctx.is_done());
}

#[test]
fn an_already_cancelled_token_gives_a_child_born_done() {
    let token = CancellationToken::new();
    token.cancel();
    let (ctx, _cancel) = Context::background().with_token(&token);
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(ctx
        .cause()
        .unwrap()
        .downcast_ref::<TokenCancelled>()
        .is_some());
}

#[test]
fn the_child_keeps_the_first_cause_and_does_not_cancel_the_token() {
    let token = CancellationToken::new();
    let (ctx, cancel) = Context::background().with_token(&token);
    cancel.cancel_with_cause("finished early");
    assert!(!token.is_cancelled(), "the bridge is one way");
    token.cancel();
    assert_eq!(ctx.cause().unwrap().to_string(), "finished early");

    // A done parent: the child is born done with the parent's cause, whatever the token does.
    let (parent, cancel) = Context::background().with_cancel();
    cancel.cancel_with_cause("parent gone");
    let token = CancellationToken::new();
    let (ctx, _c) = parent.with_token(&token);
    assert_eq!(ctx.cause().unwrap().to_string(), "parent gone");
}

#[test]
fn both_ways_chain_through_a_token() {
    // ctx -> token -> ctx2: one cancel() crosses both bridges before it returns.
    let (ctx, cancel) = Context::background().with_cancel();
    let token = ctx.to_token();
    let (ctx2, _cancel2) = Context::background().with_token(&token);
    let token2 = ctx2.to_token();
    cancel.cancel();
    assert!(token.is_cancelled());
    assert!(ctx2.is_done());
    assert!(token2.is_cancelled());
}

#[test]
fn cancellation_crosses_while_another_thread_cancels() {
    // Token and child handle cancelled at once from two threads, many times: the child always
    // ends done, with one of the two causes, and nothing hangs.
    for _ in 0..200 {
        let token = CancellationToken::new();
        let (ctx, cancel) = Context::background().with_token(&token);
        let t = std::thread::spawn({
            let token = token.clone();
            move || token.cancel()
        });
        cancel.cancel_with_cause("handle");
        t.join().unwrap();
        assert!(ctx.is_done());
        let cause = ctx.cause().unwrap();
        assert!(
            cause.downcast_ref::<TokenCancelled>().is_some() || cause.to_string() == "handle",
            "{cause:?}"
        );
    }
}

#[test]
fn a_tokio_task_waiting_on_the_token_is_woken_by_a_context() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let (ctx, cancel) = Context::background().with_cancel();
        let token = ctx.to_token();
        let waiter = tokio::spawn(async move {
            token.cancelled().await;
            "woken"
        });
        tokio::task::yield_now().await;
        cancel.cancel();
        assert_eq!(waiter.await.unwrap(), "woken");
    });
}

#[test]
fn every_token_of_a_context_is_cancelled_and_value_children_share_them() {
    let (ctx, cancel) = Context::background().with_cancel();
    let tokens: Vec<_> = (0..5).map(|_| ctx.to_token()).collect();
    let via_value = ctx.with_value(1u32).to_token();
    drop(ctx.to_token()); // a dropped one changes nothing for the others
    assert!(tokens.iter().all(|t| !t.is_cancelled()));
    cancel.cancel();
    assert!(tokens.iter().all(CancellationToken::is_cancelled));
    assert!(via_value.is_cancelled());
    // Asked again once done: cancelled at once.
    assert!(ctx.to_token().is_cancelled());
}

/// A waker that holds up the cancellation waking it until told to go on (a slow task's).
struct Slow {
    entered: std::sync::Mutex<std::sync::mpsc::Sender<()>>,
    go_on: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl std::task::Wake for Slow {
    fn wake(self: std::sync::Arc<Self>) {
        self.entered.lock().unwrap().send(()).unwrap();
        let _ = self
            .go_on
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(30));
    }
}

/// Regression test (found by an audit): the shared tokens are kept by the node's address, and
/// an entry used to outlive its node. A descendant reached by an ancestor's cancellation is
/// done before that cancellation wakes its waiters (the token's guard among them), so another
/// thread could free it meanwhile; a new context at the same address then got a child of the
/// old token from `to_token`, which the old cancellation went on to cancel.
#[test]
fn a_new_context_never_gets_the_token_of_a_freed_one() {
    use std::future::Future;
    use std::sync::{mpsc, Arc, Mutex};
    use std::task::{Context as TaskContext, Waker};

    let (parent, parent_cancel) = Context::background().with_cancel();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (go_on_tx, go_on_rx) = mpsc::channel();
    let slow = Waker::from(Arc::new(Slow {
        entered: Mutex::new(entered_tx),
        go_on: Mutex::new(go_on_rx),
    }));
    // The origin's waiters are woken first: the slow one holds the cancellation up before it
    // reaches the child's token guard.
    let mut done = Box::pin(parent.done());
    assert!(done
        .as_mut()
        .poll(&mut TaskContext::from_waker(&slow))
        .is_pending());
    drop(slow);
    let (child, child_cancel) = parent.with_cancel();
    let old_token = child.to_token();
    let canceller = std::thread::spawn(move || parent_cancel.cancel());
    entered_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the slow waker is woken");
    assert!(child.is_done(), "the child is done before the wake-ups");
    drop(old_token);
    drop((child, child_cancel)); // the child goes: its parent has settled it
                                 // Contexts made meanwhile: without the fix, one takes the freed child's address.
    let fresh: Vec<_> = (0..64)
        .map(|_| {
            let (ctx, cancel) = Context::background().with_cancel();
            let token = ctx.to_token();
            (ctx, cancel, token)
        })
        .collect();
    go_on_tx.send(()).unwrap();
    canceller.join().unwrap();
    drop(done);
    let wrong = fresh
        .iter()
        .filter(|(ctx, _, token)| !ctx.is_done() && token.is_cancelled())
        .count();
    assert_eq!(wrong, 0, "{wrong} live context(s) got a cancelled token");
}
