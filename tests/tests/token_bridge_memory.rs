//! Feature `tokio-util`: dropping either side of a token bridge keeps nothing. One test
//! (the counting allocator sees the whole process), many rounds of each way of ending a
//! bridge, then the live heap must be back where it started.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use go_context::Context;
use tokio_util::sync::CancellationToken;

const ROUNDS: usize = 2000;

/// Each way a bridge can end; after it, nothing of the round may be left.
fn round(i: usize, long_lived: &Context) {
    match i % 8 {
        // with_token: the context side goes first, the token lives on.
        0 => {
            let token = CancellationToken::new();
            let (ctx, cancel) = long_lived.with_token(&token);
            drop(ctx);
            drop(cancel);
            assert!(!token.is_cancelled());
            drop(token);
        }
        // with_token: the token's clones go first, then the context side.
        1 => {
            let token = CancellationToken::new();
            let (ctx, cancel) = long_lived.with_token(&token);
            drop(token);
            assert!(!ctx.is_done());
            drop(cancel);
            drop(ctx);
        }
        // with_token: the token fires.
        2 => {
            let token = CancellationToken::new();
            let (ctx, _cancel) = long_lived.with_token(&token);
            token.cancel();
            assert!(ctx.is_done());
        }
        // with_token on a token that outlives every round: only the context side ends.
        3 => {
            let (ctx, cancel) = long_lived.with_token(&SHARED.with(Clone::clone));
            cancel.cancel();
            drop(ctx);
        }
        // to_token: the context is cancelled.
        4 => {
            let (ctx, cancel) = long_lived.with_cancel();
            let token = ctx.to_token();
            cancel.cancel();
            assert!(token.is_cancelled());
        }
        // to_token: the token goes first, then the context.
        5 => {
            let (ctx, cancel) = long_lived.with_cancel();
            drop(ctx.to_token());
            drop(cancel);
        }
        // to_token on the long-lived context, the token dropped: the context stays live, so
        // only the token can go, and it must.
        6 => {
            let token = long_lived.to_token();
            assert!(!token.is_cancelled());
            drop(token);
        }
        // to_token: the context side goes first, the token lives on (cancelled).
        _ => {
            let (ctx, cancel) = long_lived.with_cancel();
            let token = ctx.to_token();
            drop(ctx);
            drop(cancel);
            assert!(token.is_cancelled());
            drop(token);
        }
    }
}

thread_local! {
    static SHARED: CancellationToken = CancellationToken::new();
}

#[test]
fn dropping_either_side_of_a_bridge_keeps_nothing() {
    let (long_lived, cancel) = Context::background().with_cancel();
    // Warm up: thread-locals, the first child vectors, lazily made statics.
    for i in 0..70 {
        round(i, &long_lived);
    }
    let before = counting_alloc::live();
    for i in 0..ROUNDS {
        round(i, &long_lived);
    }
    let after = counting_alloc::live();
    // A leak of even one small allocation per round would be ROUNDS * 16+ bytes.
    let grown = after - before;
    assert!(
        grown < 1024,
        "{grown} bytes kept after {ROUNDS} bridges ended ({} per round)",
        grown / ROUNDS as isize
    );
    drop(cancel);
}
