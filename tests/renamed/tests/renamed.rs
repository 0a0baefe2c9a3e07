//! issue 9 item 1: every macro works when go-context is renamed in `Cargo.toml` (here `ctx`),
//! with no `crate = "…"`.

use std::time::Duration;

use ctx::{cancellable, go, select_done, Context, Error};

/// Generous bound for "returned promptly" on a loaded 2-core machine.
const PROMPT: Duration = Duration::from_secs(10);

#[cancellable(timeout = "10ms")]
fn sync_spin(c: &Context) -> Result<u64, Error> {
    assert!(c.deadline().is_some(), "rebound to the child");
    let mut n = 0u64;
    loop {
        n = n.wrapping_add(1);
    }
}

#[cancellable(timeout = "10ms")]
async fn async_wait() -> Result<(), Error> {
    std::future::pending::<()>().await;
    Ok(())
}

#[cancellable]
fn seed(c: &Context) -> Option<&'static str> {
    let _ = c;
    let said = loop {
        select_done! {
            done => break "Operation cancelled",
            default => std::thread::yield_now(),
        }
    };
    Some(said)
}

#[test]
fn sync_cancellable_fn() {
    assert_eq!(
        sync_spin(&Context::background()),
        Err(Error::DeadlineExceeded)
    );
    assert_eq!(context_tests_renamed::spin(), Err(Error::DeadlineExceeded));
}

#[tokio::test]
async fn async_cancellable_fn() {
    assert_eq!(async_wait().await, Err(Error::DeadlineExceeded));
}

#[test]
fn select_done_sync_form_and_its_done_branch_in_a_cancellable_loop() {
    let (done, cancel) = Context::background().with_cancel();
    cancel.cancel();
    assert_eq!(seed(&done), Some("Operation cancelled"));
    assert_eq!(context_tests_renamed::rounds(&done), Some(0));
}

#[tokio::test]
async fn select_done_async_form() {
    let (c, _cancel) = Context::background().with_timeout(Duration::from_millis(5));
    let got = select_done! {
        err = done(&c) => Err(err),
        n = async { tokio::time::sleep(Duration::from_secs(3600)).await; 1 } => Ok(n),
    };
    assert_eq!(got, Err(Error::DeadlineExceeded));
}

fn crunch(c: Context) -> Result<(), Error> {
    loop {
        c.sleep(Duration::from_millis(1))?;
    }
}

#[test]
fn go_blocking_work_on_a_thread() {
    let handle = go!(|c| crunch(c));
    handle.cancel();
    assert_eq!(handle.join().unwrap(), Err(Error::Canceled));
}

#[tokio::test]
async fn go_a_future_as_a_task() {
    let handle = go!(async { 6 * 7 });
    let got = tokio::time::timeout(PROMPT, handle).await.unwrap().unwrap();
    assert_eq!(got, 42);
}
