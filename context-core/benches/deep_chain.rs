//! Scenarios S5m and S11 of `shared/BENCHMARKS.md`, on a thread with a 2 MiB stack, timed once
//! per variant (harness = false). A stack overflow aborts the process, so "works" means the
//! line was printed.
//!
//! - S5m: a chain of 1,000,000 nested `with_cancel` (tokio-util: `child_token`) created,
//!   cancelled at the root and dropped.
//! - S11: the same depth of *mixed* layers for ours, in turn a value, `with_cancel`, a
//!   `with_deadline` later than the parent's effective deadline and a `with_timeout_cause` (also
//!   later), against tokio-util's plain chain of the same depth (it has no values or deadlines).
//!   Before the effective deadline was stored per node, this was quadratic.
//!
//! Each variant runs in a child process of its own (this binary re-executed with the variant's
//! name): the allocator's heap grows once per process, and a variant run second in the same
//! process would reuse the heap the first one grew (page faults and `mprotect` calls that show
//! up as time) and look faster than it is.
//!
//! Output lines:
//! `RESULT <S5m|S11> <who> create_ms=<ms> cancel_ms=<ms> drop_ms=<ms> total_ms=<ms> depth=<n>`.

use std::time::{Duration, Instant};

use go_context::Context;
#[path = "support/mixed_chain.rs"]
mod mixed_chain;
use mixed_chain::mixed_chain;
use tokio_util::sync::CancellationToken;

const DEPTH: usize = 1_000_000;
const STACK: usize = 2 * 1024 * 1024;

/// Runs `f` on a fresh thread with a 2 MiB stack.
fn on_small_stack<F: FnOnce() + Send + 'static>(f: F) {
    std::thread::Builder::new()
        .name("s5m".into())
        .stack_size(STACK)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the S5m thread panicked");
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

fn report(id: &str, who: &str, phases: [f64; 3]) {
    let [create, cancel, drop] = phases;
    println!(
        "RESULT {id} {who} create_ms={create:.1} cancel_ms={cancel:.1} drop_ms={drop:.1} total_ms={:.1} depth={DEPTH}",
        create + cancel + drop
    );
}

fn ours() {
    let mut chain = Vec::with_capacity(DEPTH);
    let (root, cancel) = Context::background().with_cancel();
    let start = Instant::now();
    for _ in 0..DEPTH {
        let next = chain.last().map_or(&root, |(c, _)| c).with_cancel();
        chain.push(next);
    }
    let create = ms(start);
    let start = Instant::now();
    cancel.cancel();
    let cancelled = ms(start);
    assert!(chain.last().is_some_and(|(c, _)| c.is_done()));
    let start = Instant::now();
    drop(chain);
    drop(root);
    report("S5m", "ours", [create, cancelled, ms(start)]);
}

fn tokio_util(id: &str) {
    let mut chain: Vec<CancellationToken> = Vec::with_capacity(DEPTH);
    let root = CancellationToken::new();
    let start = Instant::now();
    for _ in 0..DEPTH {
        let next = chain.last().unwrap_or(&root).child_token();
        chain.push(next);
    }
    let create = ms(start);
    let start = Instant::now();
    root.cancel();
    let cancelled = ms(start);
    assert!(chain.last().is_some_and(CancellationToken::is_cancelled));
    let start = Instant::now();
    drop(chain);
    drop(root);
    report(id, "tokio_util", [create, cancelled, ms(start)]);
}

fn s11_ours() {
    let first_deadline = Instant::now() + Duration::from_secs(3600);
    let (root, cancel) = Context::background().with_cancel();
    let start = Instant::now();
    let (contexts, handles) = mixed_chain(&root, DEPTH, first_deadline);
    let create = ms(start);
    let start = Instant::now();
    cancel.cancel();
    let cancelled = ms(start);
    assert!(contexts.last().is_some_and(Context::is_done));
    let start = Instant::now();
    drop(handles);
    drop(contexts);
    drop(root);
    report("S11", "ours", [create, cancelled, ms(start)]);
}

fn main() {
    let variant = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    match variant.as_deref() {
        Some("ours") => on_small_stack(ours),
        Some("tokio_util") => on_small_stack(|| tokio_util("S5m")),
        Some("s11_ours") => on_small_stack(s11_ours),
        Some("s11_tokio_util") => on_small_stack(|| tokio_util("S11")),
        _ => {
            let me = std::env::current_exe().expect("path of this benchmark");
            for variant in ["ours", "tokio_util", "s11_ours", "s11_tokio_util"] {
                let status = std::process::Command::new(&me)
                    .arg(variant)
                    .status()
                    .expect("run a variant");
                assert!(status.success(), "{variant} failed: {status}");
            }
        }
    }
}
