//! The Go seed program with a deadline and tokio tasks.
//!
//! Run: `cargo run -p context-examples --example deadline_async`

use std::time::{Duration, Instant};

use go_context::{Context, Error};

async fn do_some_operation(ctx: Context) -> Error {
    loop {
        println!("Performing work...");
        if let Err(err) = ctx
            .run(tokio::time::sleep(Duration::from_millis(500)))
            .await
        {
            println!("Operation cancelled: {err}");
            return err;
        }
    }
}

#[tokio::main]
async fn main() {
    let start = Instant::now();
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(2));
    let err = tokio::spawn(do_some_operation(ctx))
        .await
        .expect("the worker panicked");
    println!(
        "main: worker stopped after {:.1?}; deadline passed: {}",
        start.elapsed(),
        err.is_timeout()
    );
}
