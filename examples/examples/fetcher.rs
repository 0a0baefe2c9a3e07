//! A fan-out fetcher: a `Group` with a limit runs one worker per URL, each request under its
//! own `#[cancellable(timeout = "300ms")]` deadline; the first failure cancels the rest, and
//! every worker says how it ended, and, if it was cancelled, why and by whom.
//!
//! Go's version of this is `errgroup.WithContext` + `g.SetLimit(3)` + `g.Go(...)` per URL +
//! `context.WithTimeout` inside each request. Two rounds run (the HTTP calls are simulated
//! with fixed latencies, so the output is the same every time, give or take a millisecond):
//!
//! 1. `/missing` answers 404: the group cancels the requests in flight, and the URLs still
//!    queued behind the limit never start.
//! 2. `/search` is slower than its per-request deadline: its timeout is the first failure.
//!
//! Run: `cargo run -p context-examples --example fetcher`

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use go_context::{cancellable, go, Context, Error, Group, MemberFailed};

/// What a request can fail with. `From<Error>` is what `#[cancellable]` needs to return
/// `Err(..)` when its context is done (its own deadline, or the group's cancellation).
#[derive(Debug)]
enum HttpError {
    Status(u16),
    Context(Error),
}

impl From<Error> for HttpError {
    fn from(e: Error) -> Self {
        HttpError::Context(e)
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Status(code) => write!(f, "HTTP {code}"),
            HttpError::Context(e) if e.is_timeout() => {
                write!(f, "timed out ({e}, per-request limit {REQUEST_TIMEOUT:?})")
            }
            HttpError::Context(e) => write!(f, "{e}"),
        }
    }
}

/// A worker's error: which URL, and what happened. This is the group's error type `E`.
#[derive(Debug)]
struct FetchError {
    url: &'static str,
    error: HttpError,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GET {}: {}", self.url, self.error)
    }
}

impl std::error::Error for FetchError {}

const REQUEST_TIMEOUT: Duration = Duration::from_millis(300);

/// The simulated server: latency and status per path.
fn server(url: &str) -> (Duration, u16) {
    let ms = |n| Duration::from_millis(n);
    match url {
        "/index" => (ms(50), 200),
        "/about" => (ms(80), 200),
        "/missing" => (ms(120), 404),
        "/contact" => (ms(120), 200),
        "/news" => (ms(150), 200),
        "/big" => (ms(250), 200),
        "/slow" => (ms(280), 200),
        "/search" => (ms(900), 200), // longer than REQUEST_TIMEOUT
        _ => (ms(60), 200),
    }
}

/// One GET. The macro gives it a child of the current context (the group's, since `go!`
/// installed it) with a 300 ms deadline, and races the body against that child: when the
/// group is cancelled or the deadline passes, the `.await` stops and this returns `Err`.
#[cancellable(timeout = "300ms")]
async fn get(url: &'static str) -> Result<usize, HttpError> {
    let (latency, status) = server(url);
    tokio::time::sleep(latency).await;
    match status {
        200 => Ok(url.len() * 1024),
        code => Err(HttpError::Status(code)),
    }
}

/// A group member: fetch one URL and report how it ended.
async fn worker(ctx: Context, url: &'static str, t0: Instant) -> Result<(), FetchError> {
    let at = |t: Instant| format!("{:>4} ms", t.duration_since(t0).as_millis());
    println!("{}  {url:<9} start", at(Instant::now()));
    let result = get(url).await;
    let now = at(Instant::now());
    match result {
        Ok(bytes) => {
            println!("{now}  {url:<9} ok, {bytes} bytes");
            Ok(())
        }
        // The group's context is done: another member failed (or the caller gave up).
        Err(HttpError::Context(e)) if ctx.is_done() => {
            let cause = ctx.cause().expect("a done context has a cause");
            match cause.downcast_ref::<MemberFailed>() {
                Some(failed) => println!(
                    "{now}  {url:<9} cancelled ({e}): because \"{failed}\" (member #{}, started at {})",
                    failed.member(),
                    failed.location()
                ),
                None => println!(
                    "{now}  {url:<9} cancelled ({e}): because \"{cause}\" at {}",
                    cause.location()
                ),
            }
            Err(FetchError {
                url,
                error: HttpError::Context(e),
            })
        }
        Err(error) => {
            println!("{now}  {url:<9} FAILED: {error}");
            Err(FetchError { url, error })
        }
    }
}

/// Fetches every URL, at most `limit` at a time; the first failure stops the rest.
async fn fetch_all(
    parent: &Context,
    urls: &[&'static str],
    limit: usize,
) -> Result<(), FetchError> {
    let t0 = Instant::now();
    let group = Group::new(parent);
    group
        .set_limit(limit)
        .expect("the limit is set before any member starts");
    let started = Arc::new(AtomicUsize::new(0));
    for &url in urls {
        let started = Arc::clone(&started);
        go!(group => |ctx| async move {
            started.fetch_add(1, Ordering::Relaxed);
            worker(ctx, url, t0).await
        });
    }
    let ctx = group.context().clone();
    let result = group.await;
    let started = started.load(Ordering::Relaxed);
    print!("        {started} of {} requests started", urls.len());
    if started < urls.len() {
        print!(
            "; {} never did (queued behind the limit of {limit} when the group failed)",
            urls.len() - started
        );
    }
    println!();
    // After `wait`, the group's context is always done; its cause says why.
    if let Some(cause) = ctx.cause() {
        println!(
            "        group context: {:?}, cause: {cause}",
            ctx.err().unwrap()
        );
    }
    result
}

#[tokio::main]
async fn main() {
    let root = Context::background();

    println!("== round 1: a 404 cancels the rest ==");
    let urls = [
        "/index", "/about", "/missing", "/big", "/slow", "/news", "/contact", "/faq",
    ];
    match fetch_all(&root, &urls, 3).await {
        Ok(()) => println!("all fetched"),
        Err(e) => println!("first error: {e}"),
    }

    println!();
    println!("== round 2: a per-request timeout is the first failure ==");
    let urls = ["/index", "/search", "/about", "/news", "/big", "/contact"];
    match fetch_all(&root, &urls, 3).await {
        Ok(()) => println!("all fetched"),
        Err(e) => println!("first error: {e}"),
    }
}
