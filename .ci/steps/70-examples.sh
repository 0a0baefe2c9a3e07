#!/usr/bin/env bash
# What a newcomer runs first: every example of `examples/` that the other steps do not run
# (`deadline_chain`: 30-tower.sh; `shutdown`: 50-eco-shutdown.sh; `fanout_memory` and
# `timer_lateness` are measurements, minutes long, in RELIABILITY.md), run as the docs say,
# bounded, with the line that shows it did what its docs promise. Each ends by itself in a few
# seconds.
set -euo pipefail
cargo build -q -p context-examples --examples
run() {
  local example="$1" expect="$2" out
  if ! out="$(timeout 60 cargo run -q -p context-examples --example "$example" 2>&1)"; then
    printf '%s\n' "$out"
    echo "example $example failed or did not end within 60 s" >&2
    exit 1
  fi
  if ! grep -q -- "$expect" <<<"$out"; then
    printf '%s\n' "$out"
    echo "example $example: no line matching '$expect'" >&2
    exit 1
  fi
  printf -- '--- %s: %s\n' "$example" "$(grep -m1 -- "$expect" <<<"$out")"
}
# The Go seed program and its variants: cancelled by main after 2 s, or stopped by their
# own 2 s deadline.
run cancel 'Operation cancelled'
run cancel_async 'Operation cancelled'
run cancel_macros 'main: async worker stopped'
run deadline 'Operation cancelled: context deadline exceeded'
run deadline_async 'Operation cancelled: context deadline exceeded'
run deadline_macros 'Operation cancelled'
run seed 'worker returned Err(Canceled)'
run fetcher 'first error'
run tour 'Context::current()'
