#!/usr/bin/env bash
# context-tower with every feature: the gRPC tests (feature `tonic`) and the `tonic`/`axum`
# doc examples, which `cargo test --workspace` does not reach (the workspace enables only
# `axum`, through the examples). No protoc needed: the tests use hand-written prost messages.
set -euo pipefail
cargo clippy -p context-tower --all-targets --all-features -- -D warnings
cargo clippy -p context-examples --example deadline_chain --features grpc -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc -p context-tower --all-features --no-deps
cargo test -p context-tower --all-features --test grpc
# A timer stalled on purpose: tonic's own Server must still answer DEADLINE_EXCEEDED.
cargo test -p context-tower --all-features --test late_timer
# The random races with feature `tonic` too (our gRPC client's errors are then `tonic::Status`).
cargo test -p context-tower --all-features --test races
cargo test -p context-tower --all-features --doc
# The crate tests from its own package: no test includes a file from outside it.
if grep -rn '#\[path = "\.\./' context-tower/tests; then
  echo "context-tower/tests includes a file from outside the crate" >&2
  exit 1
fi
files="$(cargo package -p context-tower --list --allow-dirty)"
grep -qx 'tests/support/counting_alloc.rs' <<<"$files"
# The deadline_chain example, over HTTP then gRPC, ends by itself with DEADLINE_EXCEEDED at
# the client and C's work stopped (it asserts both; bounded here in case it hangs).
out="$(timeout 180 cargo run -q -p context-examples --example deadline_chain --features grpc)"
echo "$out"
grep -q 'client: DEADLINE_EXCEEDED (504' <<<"$out"
grep -q 'client: DeadlineExceeded (status 4)' <<<"$out"
