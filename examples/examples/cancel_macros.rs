//! The Go seed program written with the macros: `#[cancellable]` makes the worker's child
//! context and `select_done!` is Go's `select` with `case <-ctx.Done():`. Main cancels after
//! 2 s; the worker prints `Operation cancelled` and returns; main waits for it. Then the same
//! worker as an `async fn` on tokio, sleeping with `.await`: its done branch runs too (the
//! select is the body's checkpoint, so the body is not dropped at its `.await`).
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
//! Run: `cargo run -p context-examples --example cancel_macros`

use std::thread;
use std::time::{Duration, Instant};

use go_context::{cancellable, go, select_done, Context};

const HALF_SECOND: Duration = Duration::from_millis(500);

#[cancellable]
fn do_some_operation(ctx: Context) {
    loop {
        select_done! {
            done => { println!("Operation cancelled"); return }
            default => { println!("Performing work..."); let _ = ctx.sleep(HALF_SECOND); }
        }
    }
}

#[cancellable]
async fn do_some_operation_async(ctx: Context) -> Option<&'static str> {
    let _ = ctx;
    loop {
        select_done! {
            done => { println!("Operation cancelled"); return Some("Operation cancelled") }
            default => { println!("Performing work..."); tokio::time::sleep(HALF_SECOND).await; }
        }
    }
}

fn main() {
    let start = Instant::now();
    let (ctx, cancel) = Context::background().with_cancel();
    let worker = thread::spawn(move || do_some_operation(ctx));

    thread::sleep(Duration::from_secs(2));
    cancel.cancel();

    worker.join().expect("the worker panicked");
    println!("main: worker stopped after {:.1?}", start.elapsed());

    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async {
        let start = Instant::now();
        let (ctx, cancel) = Context::background().with_cancel();
        let worker = go!(do_some_operation_async(ctx.clone())); // a tokio task
        tokio::time::sleep(Duration::from_secs(2)).await;
        cancel.cancel();
        let said = worker.await.expect("the async worker panicked");
        assert_eq!(said, Some("Operation cancelled"));
        println!("main: async worker stopped after {:.1?}", start.elapsed());
    });
}
