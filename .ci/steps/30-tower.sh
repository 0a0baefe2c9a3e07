#!/usr/bin/env bash
# context-tower with every feature: the gRPC tests (feature `tonic`) and the `tonic`/`axum`
# doc examples, which `cargo test --workspace` does not reach (the workspace enables only
# `axum`, through the examples). No protoc needed: the tests use hand-written prost messages.
set -euo pipefail
cargo clippy -p context-tower --all-targets --all-features -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc -p context-tower --all-features --no-deps
cargo test -p context-tower --all-features --test grpc
cargo test -p context-tower --all-features --doc
cargo package -p context-tower --list --allow-dirty >/dev/null
