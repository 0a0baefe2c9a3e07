//! The Go seed program with a deadline: the worker runs under `with_timeout(2 s)` and stops by
//! itself when the deadline passes, saying that it was the deadline.
//!
//! ```go
//! ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
//! defer cancel()
//! go doSomeOperation(ctx)
//! ```
//!
//! Run: `cargo run -p context-examples --example deadline`

use std::thread;
use std::time::{Duration, Instant};

use go_context::{Context, Error};

fn do_some_operation(ctx: &Context) -> Error {
    loop {
        println!("Performing work...");
        if let Err(err) = ctx.sleep(Duration::from_millis(500)) {
            println!("Operation cancelled: {err}");
            return err;
        }
    }
}

fn main() {
    let start = Instant::now();
    // `_cancel` keeps the context alive: dropping the handle would cancel it (Go's `defer cancel()`).
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(2));
    let worker = thread::spawn(move || do_some_operation(&ctx));

    let err = worker.join().expect("the worker panicked");
    println!(
        "main: worker stopped after {:.1?}; deadline passed: {}",
        start.elapsed(),
        err.is_timeout()
    );
}
