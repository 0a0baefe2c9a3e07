#!/usr/bin/env bash
# Runs the Go twins of the benchmark scenarios (bench/go) when a Go toolchain is available,
# printing `go test -bench` output. Debian: `apt-get install golang-1.19-go` (then the toolchain
# is in /usr/lib/go-1.19/bin, which this script also looks in).
# Usage: scripts/bench-go.sh [benchtime]   (default 1s; S5m, S6t and S8 always run once)
set -euo pipefail
cd "$(dirname "$0")/../bench/go"
if ! command -v go >/dev/null 2>&1; then
  for dir in /usr/lib/go-1.19/bin /usr/lib/go/bin /usr/local/go/bin; do
    if [ -x "$dir/go" ]; then PATH="$PATH:$dir"; break; fi
  done
fi
if ! command -v go >/dev/null 2>&1; then
  echo "bench-go: no 'go' on PATH; skipping the Go twins" >&2
  exit 0
fi
export GOFLAGS="${GOFLAGS:-} -mod=mod" GOTOOLCHAIN=local GOPROXY=off
benchtime="${1:-1s}"
go version
go test -run '^$' -bench '^Benchmark(S1|S1p|S2|S2p|S3|S4Create|S4Cancel|S4w|S5Create|S5Cancel|S7Deepest|S7Missing)$' \
  -benchtime "$benchtime" .
go test -run '^$' -bench '^Benchmark(S5m|S6t|S8|S8t)$' -benchtime 1x .
