//! S11's mixed chain (docs/benchmarks.md), written once for the bench (`benches/deep_chain.rs`),
//! the callgrind driver (`examples/tree_ir.rs`) and the scale test (`tests/tests/core_scale.rs`),
//! which include this file with `#[path]`.

use std::time::{Duration, Instant};

use go_context::{CancelHandle, Context};

/// `depth` layers under `root`, one of four kinds in turn: a value, `with_cancel`, a
/// `with_deadline` later than the parent's effective deadline, a `with_timeout_cause` (later
/// too). Only the first deadline is armed; every later one is moot, and finding that out must
/// not walk the chain. Returns the contexts (the deepest last) and the handles.
pub fn mixed_chain(
    root: &Context,
    depth: usize,
    first_deadline: Instant,
) -> (Vec<Context>, Vec<CancelHandle>) {
    let mut contexts = Vec::with_capacity(depth);
    let mut handles = Vec::with_capacity(depth * 3 / 4 + 1);
    for i in 0..depth {
        let parent = contexts.last().unwrap_or(root);
        let ctx = match i % 4 {
            0 => parent.with_value(i),
            1 => {
                let (ctx, h) = parent.with_cancel();
                handles.push(h);
                ctx
            }
            2 => {
                let (ctx, h) =
                    parent.with_deadline(first_deadline + Duration::from_nanos(i as u64));
                handles.push(h);
                ctx
            }
            _ => {
                let (ctx, h) = parent.with_timeout_cause(Duration::from_secs(7200), "slow layer");
                handles.push(h);
                ctx
            }
        };
        contexts.push(ctx);
    }
    (contexts, handles)
}
