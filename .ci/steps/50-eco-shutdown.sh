#!/usr/bin/env bash
# The `shutdown` example must drain and end by itself: it sends itself SIGINT after 300 ms.
# (Its tests, tracing/token_bridge/signal/executors, run with `cargo test --workspace`.)
set -euo pipefail
out="$(timeout 300 cargo run -q -p context-examples --example shutdown -- --after-ms 300)"
printf '%s\n' "$out"
grep -q "received SIGINT" <<<"$out"
grep -q "drained: .* result Ok(())" <<<"$out"
