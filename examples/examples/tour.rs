//! A short walk through Go's `context` → `go_context`, for a newcomer's first run.
//!
//! Run: `cargo run -p context-examples --example tour`

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use go_context::{Context, Error};

#[derive(Debug)]
struct RequestId(u64);

fn section(title: &str) {
    println!("\n== {title}");
}

fn main() {
    section("context.Background()  →  Context::background()");
    let root = Context::background();
    println!(
        "{root:?}: done={}, deadline={:?}",
        root.is_done(),
        root.deadline()
    );

    section("WithCancel  →  with_cancel(): cancelling reaches every descendant at once");
    let (parent, cancel) = root.with_cancel();
    let (child, _cancel_child) = parent.with_cancel();
    cancel.cancel();
    println!("child.err() = {:?}", child.err());
    println!("child.err() displays as Go's: {}", child.err().unwrap());

    section("CancelFunc  →  CancelHandle: dropping the last one cancels (Go's `defer cancel()`)");
    let ctx = {
        let (ctx, _cancel) = root.with_cancel();
        ctx
    };
    println!("after the handle's scope: done={}", ctx.is_done());

    section("WithCancelCause / Cause  →  cancel_with_cause / cause(): why, and where");
    let (ctx, cancel) = root.with_cancel();
    cancel.cancel_with_cause("client went away");
    let cause = ctx.cause().unwrap();
    println!("cause: {cause} (cancelled at {})", cause.location());

    section("WithTimeout  →  with_timeout(): one shared timer, no thread per context");
    let (ctx, _cancel) = root.with_timeout(Duration::from_millis(100));
    let start = Instant::now();
    let err = ctx.wait();
    println!("{err} after {:.0?}", start.elapsed());

    section("a child never outlives its parent's deadline");
    let (outer, _c1) = root.with_timeout(Duration::from_secs(1));
    let (inner, _c2) = outer.with_timeout(Duration::from_secs(60));
    println!(
        "inner deadline is the outer one: {}",
        inner.deadline() == outer.deadline()
    );
    println!("{inner:?}");

    section("WithValue / Value  →  with_value(T) / value::<T>(), keyed by type");
    let ctx = root.with_value(RequestId(42));
    let (below, _c) = ctx.with_cancel();
    let id = below.value::<RequestId>().map(|RequestId(n)| *n);
    println!("value seen below: {id:?}");

    section("WithoutCancel  →  without_cancel(): keeps values, ignores cancellation");
    let (req, cancel) = root.with_value(RequestId(7)).with_cancel();
    let audit = req.without_cancel();
    cancel.cancel();
    println!(
        "req done={}, audit done={}, audit sees {:?}",
        req.is_done(),
        audit.is_done(),
        audit.value::<RequestId>()
    );

    section("AfterFunc  →  after_func(): runs on a pool thread once the context is done");
    let (ctx, cancel) = root.with_cancel();
    let (tx, rx) = mpsc::channel();
    let _registration = ctx.after_func(move || tx.send("cleanup ran").unwrap());
    cancel.cancel();
    println!("{}", rx.recv().unwrap());

    section("<-ctx.Done() in a goroutine  →  wait() on a thread, done().await in a task");
    let (ctx, cancel) = root.with_cancel();
    let waiter = thread::spawn({
        let ctx = ctx.clone();
        move || ctx.wait()
    });
    cancel.cancel();
    println!("thread saw: {}", waiter.join().unwrap());

    section("a loop with a checkpoint: ctx.check()? (what #[cancellable] writes for you)");
    fn count(ctx: &Context) -> Result<u64, Error> {
        let mut n = 0;
        loop {
            ctx.check()?;
            n += 1;
            if n == 1_000_000 {
                return Ok(n);
            }
        }
    }
    let (ctx, cancel) = root.with_cancel();
    println!("live: {:?}", count(&ctx));
    cancel.cancel();
    println!("cancelled: {:?}", count(&ctx));

    section("the ambient context: enter() for threads, scope() for tasks");
    let ctx = root.with_value(RequestId(9));
    let _guard = ctx.enter();
    println!("Context::current() = {:?}", Context::current());
}
