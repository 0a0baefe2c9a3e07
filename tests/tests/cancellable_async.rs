//! `#[cancellable]` on `async fn`s, under tokio.

use std::future::pending;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use go_context::{cancellable, Context, Error};
use tokio::sync::oneshot;

const PROMPT: Duration = Duration::from_secs(10);

/// Sets its flag when dropped.
struct DropGuard(Arc<AtomicBool>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[cancellable]
async fn parked(
    ctx: &Context,
    dropped: Arc<AtomicBool>,
    started: oneshot::Sender<()>,
) -> Result<(), Error> {
    let _ = ctx;
    let _guard = DropGuard(dropped);
    started.send(()).unwrap();
    pending::<()>().await;
    unreachable!("never completes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_is_dropped_at_its_await_on_cancel() {
    let (ctx, cancel) = Context::background().with_cancel();
    let dropped = Arc::new(AtomicBool::new(false));
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn({
        let dropped = dropped.clone();
        async move { parked(&ctx, dropped, tx).await }
    });
    rx.await.unwrap();
    assert!(!dropped.load(Ordering::SeqCst));
    cancel.cancel();
    let result = tokio::time::timeout(PROMPT, task).await.unwrap().unwrap();
    assert_eq!(result, Err(Error::Canceled));
    assert!(
        dropped.load(Ordering::SeqCst),
        "the body future was dropped"
    );
}

#[tokio::test]
async fn a_done_parent_means_the_body_is_never_polled() {
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    let dropped = Arc::new(AtomicBool::new(false));
    let (tx, rx) = oneshot::channel();
    assert_eq!(
        parked(&ctx, dropped.clone(), tx).await,
        Err(Error::Canceled)
    );
    assert!(rx.await.is_err(), "the body never ran to its send");
}

#[cancellable(timeout = "20ms")]
async fn sleeps_an_hour() -> Result<u32, Error> {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    Ok(1)
}

#[tokio::test]
async fn the_deadline_stops_an_await() {
    let start = Instant::now();
    assert_eq!(sleeps_an_hour().await, Err(Error::DeadlineExceeded));
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert!(start.elapsed() < PROMPT);
}

#[cancellable]
fn sync_inner_deadline() -> Option<Instant> {
    Context::current().deadline()
}

#[cancellable]
async fn async_inner_deadline() -> Option<Instant> {
    tokio::task::yield_now().await;
    Context::current().deadline()
}

#[cancellable(timeout = "1h")]
async fn outer(ctx: Context) -> Option<[Instant; 4]> {
    let own = ctx.deadline()?;
    tokio::task::yield_now().await;
    let current = Context::current().deadline()?;
    let sync_inner = sync_inner_deadline()?;
    let async_inner = async_inner_deadline().await?;
    Some([own, current, sync_inner, async_inner])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_child_is_current_across_awaits_and_nested_fns_inherit() {
    // Spawned: the future of a #[cancellable] async fn is Send.
    let all = tokio::spawn(outer(Context::background()))
        .await
        .unwrap()
        .unwrap();
    assert!(all.iter().all(|d| *d == all[0]), "{all:?}");
    assert!(all[0] > Instant::now() + Duration::from_secs(1800));
    assert_eq!(format!("{:?}", Context::current()), "background");
}

#[cancellable(timeout = "20ms")]
async fn cpu_loop(rounds: &AtomicU64) -> Option<u64> {
    loop {
        rounds.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test]
async fn loops_in_async_bodies_are_checked_too() {
    let rounds = AtomicU64::new(0);
    assert_eq!(cpu_loop(&rounds).await, None);
    assert!(rounds.load(Ordering::Relaxed) > 0);
}

#[derive(Debug, PartialEq)]
enum FetchError {
    Context(Error),
    NotFound(u32),
}

impl From<Error> for FetchError {
    fn from(err: Error) -> Self {
        FetchError::Context(err)
    }
}

async fn lookup(id: u32) -> Result<u32, FetchError> {
    tokio::task::yield_now().await;
    if id == 0 {
        Err(FetchError::NotFound(id))
    } else {
        Ok(id * 10)
    }
}

struct Client {
    base: u32,
    calls: u32,
}

impl Client {
    #[cancellable]
    async fn fetch(&self, ctx: &Context, id: u32) -> Result<u32, FetchError> {
        let _ = ctx;
        if id == 99 {
            return Ok(self.base);
        }
        let value = lookup(id).await?;
        Ok(self.base + value)
    }

    #[cancellable]
    async fn fetch_all<I>(&mut self, ids: I) -> Result<Vec<u32>, FetchError>
    where
        I: IntoIterator<Item = u32>,
    {
        let mut out = Vec::new();
        for id in ids {
            self.calls += 1;
            out.push(lookup(id).await?);
        }
        Ok(out)
    }
}

#[tokio::test]
async fn methods_generics_question_mark_and_early_return() {
    let mut client = Client { base: 1, calls: 0 };
    let bg = Context::background();
    assert_eq!(client.fetch(&bg, 2).await, Ok(21));
    assert_eq!(client.fetch(&bg, 0).await, Err(FetchError::NotFound(0)));
    assert_eq!(client.fetch(&bg, 99).await, Ok(1));
    assert_eq!(client.fetch_all([1, 2]).await, Ok(vec![10, 20]));
    assert_eq!(client.calls, 2);
    let (done, cancel) = bg.with_cancel();
    cancel.cancel();
    assert_eq!(
        client.fetch(&done, 2).await,
        Err(FetchError::Context(Error::Canceled))
    );
    let _current = done.enter();
    assert_eq!(
        client.fetch_all([1]).await,
        Err(FetchError::Context(Error::Canceled))
    );
    assert_eq!(client.calls, 2, "the body was never polled");
}

#[cancellable(timeout = "10ms")]
async fn io_wait() -> std::io::Result<()> {
    pending::<()>().await;
    Ok(())
}

#[tokio::test]
async fn io_result_alias_in_async_fns() {
    let err = io_wait().await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
}

trait Service {
    #[cancellable]
    async fn call(&self, ctx: &Context) -> Option<bool> {
        tokio::task::yield_now().await;
        Some(ctx.deadline().is_some())
    }
}

struct Echo;

impl Service for Echo {}

#[tokio::test]
async fn async_trait_default_methods() {
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(3600));
    assert_eq!(Echo.call(&ctx).await, Some(true));
    assert_eq!(Echo.call(&Context::background()).await, Some(false));
}

#[cancellable(timeout = "1h")]
async fn unit_body(flag: &AtomicBool) {
    tokio::task::yield_now().await;
    flag.store(true, Ordering::SeqCst);
}

#[test]
fn async_fns_run_on_any_executor() {
    let flag = AtomicBool::new(false);
    futures_executor::block_on(unit_body(&flag));
    assert!(flag.load(Ordering::SeqCst));
}

#[cancellable(timeout = "1h")]
async fn own_deadline() -> Option<Instant> {
    Context::current().deadline()
}

#[tokio::test]
async fn the_child_and_its_deadline_are_made_at_the_first_poll() {
    let fut = own_deadline();
    let created = Instant::now();
    let deadline = fut.await.unwrap();
    assert!(deadline >= created + Duration::from_secs(3600));
}

// ===== issue 12 item 2: the done branch of a select_done! in an async body runs =====

/// The async seed written with the macros: Go's `for { select { case <-ctx.Done(): ...;
/// return; default: work() } }`.
#[cancellable]
async fn seed_worker(ctx: &Context, said: Arc<std::sync::Mutex<Vec<&'static str>>>) {
    let _ = ctx;
    loop {
        go_context::select_done! {
            done => {
                said.lock().unwrap().push("Operation cancelled");
                return;
            }
            default => {
                said.lock().unwrap().push("Performing work...");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_12_2_the_done_branch_of_an_async_select_runs() {
    let (ctx, cancel) = Context::background().with_cancel();
    let said = Arc::new(std::sync::Mutex::new(Vec::new()));
    let task = tokio::spawn({
        let said = said.clone();
        async move { seed_worker(&ctx, said).await }
    });
    // Cancel once the worker is inside its loop, often in the middle of its `sleep`.
    while said.lock().unwrap().len() < 3 {
        tokio::task::yield_now().await;
    }
    cancel.cancel();
    tokio::time::timeout(PROMPT, task).await.unwrap().unwrap();
    let said = said.lock().unwrap();
    assert_eq!(said.last(), Some(&"Operation cancelled"), "{said:?}");
}

use go_context::select_done as pick;

#[cancellable(timeout = "20ms")]
async fn renamed_select_in_async() -> Result<&'static str, Error> {
    loop {
        pick! {
            err = done => return Ok(if err.is_timeout() { "deadline seen" } else { "?" }),
            default => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

#[tokio::test]
async fn issue_12_5_a_renamed_select_in_an_async_body_runs_its_done_branch() {
    assert_eq!(renamed_select_in_async().await, Ok("deadline seen"));
}
