//! The Go seed program, with threads: a worker prints `Performing work...` every 500 ms until
//! main cancels it after 2 s; it then prints `Operation cancelled` and main waits for it.
//!
//! ```go
//! func doSomeOperation(ctx context.Context) {
//!     for {
//!         select {
//!         case <-ctx.Done():
//!             fmt.Println("Operation cancelled")
//!             return
//!         default:
//!             fmt.Println("Performing work...")
//!             time.Sleep(500 * time.Millisecond)
//!         }
//!     }
//! }
//! ```
//!
//! Run: `cargo run -p context-examples --example cancel`

use std::thread;
use std::time::{Duration, Instant};

use go_context::Context;

fn do_some_operation(ctx: &Context) {
    loop {
        println!("Performing work...");
        // Unlike Go's time.Sleep, this returns at once when the context is cancelled.
        if ctx.sleep(Duration::from_millis(500)).is_err() {
            println!("Operation cancelled");
            return;
        }
    }
}

fn main() {
    let start = Instant::now();
    let (ctx, cancel) = Context::background().with_cancel();
    let worker = thread::spawn(move || do_some_operation(&ctx));

    thread::sleep(Duration::from_secs(2));
    cancel.cancel();

    worker.join().expect("the worker panicked");
    println!("main: worker stopped after {:.1?}", start.elapsed());
}
