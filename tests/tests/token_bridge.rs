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
