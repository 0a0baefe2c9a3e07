#!/usr/bin/env bash
# The core's private docs (its invariants and module maps are written for contributors):
# every intra-doc link resolves, with and without features. About a minute on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUSTDOCFLAGS="-D warnings" cargo doc -p go-context --no-deps --document-private-items
RUSTDOCFLAGS="-D warnings" cargo doc -p go-context --no-deps --document-private-items --all-features
