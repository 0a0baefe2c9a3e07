//! The Go seed program with tokio tasks: the worker awaits its work raced against the
//! context; main cancels after 2 s and awaits the task.
//!
//! Run: `cargo run -p context-examples --example cancel_async`

use std::time::{Duration, Instant};

use go_context::Context;

async fn do_some_operation(ctx: Context) {
    loop {
        println!("Performing work...");
        // `run` drops the sleep at its await as soon as the context is done.
        if ctx
            .run(tokio::time::sleep(Duration::from_millis(500)))
            .await
            .is_err()
        {
            println!("Operation cancelled");
            return;
        }
    }
}

#[tokio::main]
async fn main() {
    let start = Instant::now();
    let (ctx, cancel) = Context::background().with_cancel();
    let worker = tokio::spawn(do_some_operation(ctx));

    tokio::time::sleep(Duration::from_secs(2)).await;
    cancel.cancel();

    worker.await.expect("the worker panicked");
    println!("main: worker stopped after {:.1?}", start.elapsed());
}
