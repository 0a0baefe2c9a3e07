//! The Go seed program with a deadline, written with the macros: the worker's own
//! `#[cancellable(timeout = "2s")]` is Go's `context.WithTimeout(ctx, 2*time.Second)` plus
//! `defer cancel()`, and `select_done!` is the `select` in its loop. Main only waits.
//!
//! ```go
//! ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
//! defer cancel()
//! go doSomeOperation(ctx) // the same worker as in `cancel_macros`
//! ```
//!
//! Run: `cargo run -p context-examples --example deadline_macros`

use std::thread;
use std::time::{Duration, Instant};

use go_context::{cancellable, select_done, Context};

const HALF_SECOND: Duration = Duration::from_millis(500);

#[cancellable(timeout = "2s")]
fn do_some_operation() {
    loop {
        select_done! {
            done => { println!("Operation cancelled"); return }
            default => { println!("Performing work..."); let _ = Context::current().sleep(HALF_SECOND); }
        }
    }
}

fn main() {
    let start = Instant::now();
    let worker = thread::spawn(do_some_operation);
    worker.join().expect("the worker panicked");
    println!(
        "main: worker stopped at the deadline after {:.1?}",
        start.elapsed()
    );
}
