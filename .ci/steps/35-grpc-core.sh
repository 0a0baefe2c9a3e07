#!/usr/bin/env bash
# Interop with gRPC's C core (Python's grpcio, a prebuilt wheel) both ways:
# context-tower/tests/grpc_core.rs. CONTEXT_TOWER_GRPC_CORE=1 turns a missing peer into a
# failure instead of a skip.
set -euo pipefail
if ! python3 -c 'import grpc' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    'grpcio>=1.50' ||
    { apt-get update -qq && apt-get install -y -qq python3-grpcio; }
fi
python3 -c 'import grpc; print("grpcio", grpc.__version__)'
CONTEXT_TOWER_GRPC_CORE=1 cargo test -p context-tower --all-features --test grpc_core
