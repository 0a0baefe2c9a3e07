//! A driver for instruction counts of the tree's scenarios (S2, S4, S5, S11 of
//! `shared/BENCHMARKS.md`), ours and tokio-util's in one binary: `tree_ir <scenario> <N>` runs
//! the scenario N times. Under callgrind the count per operation is `(Ir(N) - Ir(0)) / N`,
//! exact on any load:
//!
//! ```text
//! cargo build --release -p go-context --example tree_ir
//! for n in 0 1000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/ir.$n target/release/examples/tree_ir s2_ours $n
//! done   # then `callgrind_annotate /tmp/ir.$n | head -20`, the "PROGRAM TOTALS" line
//! ```
//!
//! Scenarios (one iteration each):
//! - `s2_ours` / `s2_tokio`: a child of a live cancellable parent, cancelled, dropped;
//! - `s4_ours` / `s4_tokio`: 1,000 children of a fresh parent created, the parent cancelled,
//!   all dropped (divide by 1,000 for the cost per child);
//! - `s5_ours` / `s5_tokio`: a chain of 1,000 created, the root cancelled, dropped (per level:
//!   divide by 1,000);
//! - `s11_ours` / `s11_tokio`: 1,000 mixed layers (value, `with_cancel`, later `with_deadline`,
//!   `with_timeout_cause`; tokio-util: a plain chain) created, cancelled, then dropped in
//!   `drop_layers`, so `--toggle-collect='*drop_layers*'` counts the drop path alone.
//!
//! `TIME=1` prints the wall time of the loop (for quick A/B runs outside valgrind).
//!
//! `tree_ir s11_phases <depth>` (not for callgrind) builds S11's mixed chain of `depth` layers
//! on a 2 MiB stack and prints the wall time of each part of its drop: the handles, the
//! contexts but the last, the last one (which frees the chain).

use std::time::{Duration, Instant};

use go_context::Context;
#[path = "../benches/support/mixed_chain.rs"]
mod mixed_chain;
use mixed_chain::mixed_chain;
use tokio_util::sync::CancellationToken;
#[path = "../benches/support/ops.rs"]
#[allow(dead_code)] // this binary runs some of the operations
mod ops;
use ops::{s2_ours, s2_tokio};

const WIDTH: usize = 1_000;

fn s4_ours(kids: &mut Vec<(Context, go_context::CancelHandle)>) {
    let (parent, cancel) = Context::background().with_cancel();
    for _ in 0..WIDTH {
        kids.push(parent.with_cancel());
    }
    cancel.cancel();
    kids.clear();
}

fn s4_tokio(kids: &mut Vec<CancellationToken>) {
    let parent = CancellationToken::new();
    for _ in 0..WIDTH {
        kids.push(parent.child_token());
    }
    parent.cancel();
    kids.clear();
}

fn s5_ours(chain: &mut Vec<(Context, go_context::CancelHandle)>) {
    let (root, cancel) = Context::background().with_cancel();
    for _ in 0..WIDTH {
        let next = chain.last().map_or(&root, |(c, _)| c).with_cancel();
        chain.push(next);
    }
    cancel.cancel();
    chain.clear();
}

fn s5_tokio(chain: &mut Vec<CancellationToken>) {
    let root = CancellationToken::new();
    for _ in 0..WIDTH {
        let next = chain.last().unwrap_or(&root).child_token();
        chain.push(next);
    }
    root.cancel();
    chain.clear();
}

#[inline(never)]
fn drop_layers<T>(layers: T) {
    drop(layers);
}

fn s11_ours() {
    let first_deadline = Instant::now() + Duration::from_secs(3600);
    let (root, cancel) = Context::background().with_cancel();
    let (contexts, handles) = mixed_chain(&root, WIDTH, first_deadline);
    cancel.cancel();
    assert!(contexts.last().is_some_and(Context::is_done));
    drop_layers((handles, contexts, root));
}

fn s11_tokio() {
    let mut chain: Vec<CancellationToken> = Vec::with_capacity(WIDTH);
    let root = CancellationToken::new();
    for _ in 0..WIDTH {
        let next = chain.last().unwrap_or(&root).child_token();
        chain.push(next);
    }
    root.cancel();
    drop_layers((chain, root));
}

/// S11's drop, part by part (wall time), with `depth` layers.
fn s11_phases(depth: usize) {
    let first_deadline = Instant::now() + Duration::from_secs(3600);
    let (root, cancel) = Context::background().with_cancel();
    let (mut contexts, handles) = mixed_chain(&root, depth, first_deadline);
    cancel.cancel();
    let start = Instant::now();
    drop(handles);
    let handles_ms = start.elapsed().as_secs_f64() * 1e3;
    let last = contexts.pop();
    let start = Instant::now();
    drop(contexts);
    let contexts_ms = start.elapsed().as_secs_f64() * 1e3;
    let start = Instant::now();
    drop(last);
    drop(root);
    let chain_ms = start.elapsed().as_secs_f64() * 1e3;
    println!("s11_phases depth={depth} handles_ms={handles_ms:.1} contexts_ms={contexts_ms:.1} chain_ms={chain_ms:.1}");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().expect("usage: tree_ir <scenario> <N>");
    let n: usize = args
        .next()
        .expect("usage: tree_ir <scenario> <N>")
        .parse()
        .expect("N is a number");
    if scenario == "s11_phases" {
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || s11_phases(n))
            .expect("spawn")
            .join()
            .expect("s11_phases panicked");
        return;
    }
    // Everything a scenario needs is built before the loop, so N = 0 pays for it too.
    let (parent, _cancel) = Context::background().with_cancel();
    let token = CancellationToken::new();
    let mut kids = Vec::with_capacity(WIDTH);
    let mut tokens = Vec::with_capacity(WIDTH);
    let start = Instant::now();
    for _ in 0..n {
        match scenario.as_str() {
            "s2_ours" => s2_ours(&parent),
            "s2_tokio" => s2_tokio(&token),
            "s4_ours" => s4_ours(&mut kids),
            "s4_tokio" => s4_tokio(&mut tokens),
            "s5_ours" => s5_ours(&mut kids),
            "s5_tokio" => s5_tokio(&mut tokens),
            "s11_ours" => s11_ours(),
            "s11_tokio" => s11_tokio(),
            other => panic!("unknown scenario {other}"),
        }
    }
    if std::env::var_os("TIME").is_some() {
        println!("{scenario} x{n}: {:?}", start.elapsed());
    }
}
