//! The product in one screen: `#[cancellable(timeout = "2s")]` gives the worker a child context
//! with a deadline and a checkpoint at every loop head; `go!` runs it on a thread under a child
//! of `ctx` (the call's `Context` argument, which the work gets in its place); main cancels
//! after 1 s and joins.
//!
//! Run: `cargo run -p context-examples --example seed`

use std::thread;
use std::time::{Duration, Instant};

use go_context::{cancellable, go, Context, Error};

#[cancellable(timeout = "2s")] // a child context with a 2 s deadline
fn do_some_operation(ctx: Context) -> Result<(), Error> {
    loop {
        // checked for cancellation at every loop head
        println!("Performing work...");
        ctx.sleep(Duration::from_millis(500))?; // returns at once on cancellation
    }
}

fn main() {
    let start = Instant::now();
    let (ctx, cancel) = Context::background().with_cancel();
    let worker = go!(do_some_operation(ctx.clone())); // a thread, under a child context
    thread::sleep(Duration::from_secs(1));
    cancel.cancel();

    let result = worker.join().expect("the worker panicked");
    println!("worker returned {result:?} after {:.1?}", start.elapsed());
    assert_eq!(result, Err(Error::Canceled));
}
