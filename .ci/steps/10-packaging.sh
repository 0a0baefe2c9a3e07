#!/usr/bin/env bash
# Packaging: check what users build, not only what the workspace builds.
#   1. go-context alone, with no default features and with each feature on its own;
#   2. the stated MSRV (workspace `rust-version`) on the library crates (context-tower's on a
#      lockfile resolved for that Rust);
#   3. the docs with every feature, warnings denied: stable, and nightly with `--cfg docsrs`
#      (what docs.rs runs; it marks each feature-gated item with its feature);
#   4. `cargo publish --dry-run` of every published crate, in dependency order;
#   5. a brand-new user's path: `cargo add go-context --features tokio` in a scratch crate
#      outside the workspace, from the packaged tarballs, then build and run the README's seed.
# Installs what it needs (jq, the MSRV toolchain, a pinned nightly). A few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The crates published to crates.io, in publish order (a crate after the crates it depends on).
# A new published crate is one more word here, e.g. "context-macros go-context context-tower".
PUBLISHED="context-macros go-context context-tower"
# The crate users depend on, whose features are checked one by one.
CORE="go-context"
# The nightly for the docs.rs-style build; pinned so a new nightly cannot break CI overnight.
NIGHTLY="nightly-2026-05-20"

say() { printf -- '--- %s\n' "$*"; }

if ! command -v jq >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq jq >/dev/null
fi

metadata="$(cargo metadata --no-deps --format-version 1)"
msrv="$(jq -r --arg p "$CORE" '.packages[] | select(.name == $p) | .rust_version' <<<"$metadata")"
# Every feature of the core, as Cargo.toml declares them now (new features are picked up here).
features="$(jq -r --arg p "$CORE" \
  '.packages[] | select(.name == $p) | .features | keys[] | select(. != "default")' <<<"$metadata")"
target_dir="$(jq -r .target_directory <<<"$metadata")"
# MSRV and docs.rs-style docs: the core and its macros. context-tower's own step
# (30-tower.sh) checks its docs with every feature; its MSRV is checked below, on a lockfile
# of its own.
lib_args=(-p context-macros -p go-context)
publish_args=()
for p in $PUBLISHED; do publish_args+=(-p "$p"); done

# A publishable workspace member missing from PUBLISHED is not dry-run: say so loudly.
for p in $(jq -r '.packages[] | select(.publish != []) | .name' <<<"$metadata"); do
  case " $PUBLISHED " in
    *" $p "*) ;;
    *) echo "WARNING: $p is publishable but not in PUBLISHED (.ci/steps/10-packaging.sh)" ;;
  esac
done

say "$CORE: no default features, then each feature alone: $(echo $features)"
cargo check -p "$CORE" --no-default-features
for f in $features; do
  say "$CORE --no-default-features --features $f"
  cargo check -p "$CORE" --no-default-features --features "$f"
done
cargo check -p "$CORE" --all-features
# The crate's doctests as a user of the crate alone runs them (default features): in the
# workspace other members turn `tokio` on, which once hid a doctest that needed it.
say "$CORE doctests with its default features alone"
cargo test -q -p "$CORE" --doc

say "MSRV $msrv: ${PUBLISHED}"
rustup toolchain install "$msrv" --profile minimal
CARGO_TARGET_DIR="$target_dir/msrv" cargo "+$msrv" check "${lib_args[@]}" --all-features
# context-tower claims the same MSRV, every feature included. The newest tonic 0.14 needs a
# newer Rust (0.14.7+: 1.88), so a user on the MSRV gets an older 0.14 from cargo's MSRV-aware
# resolver (resolver 3, or `incompatible-rust-versions = "fallback"`): check that resolution,
# in a copy of the committed tree so the workspace's own Cargo.lock stays as it is.
say "MSRV $msrv: context-tower --all-features, dependencies resolved for Rust $msrv"
msrv_tree="$(mktemp -d)"
git archive HEAD | tar -x -C "$msrv_tree"
(
  cd "$msrv_tree"
  CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback cargo "+$msrv" update --quiet
  CARGO_TARGET_DIR="$target_dir/msrv" cargo "+$msrv" check -p context-tower --all-features
)
rm -rf "$msrv_tree"

say "docs, every feature, warnings denied (stable)"
RUSTDOCFLAGS="-D warnings" cargo doc "${lib_args[@]}" --all-features --no-deps
say "docs as docs.rs builds them ($NIGHTLY, --cfg docsrs)"
rustup toolchain install "$NIGHTLY" --profile minimal
RUSTDOCFLAGS="-D warnings --cfg docsrs" CARGO_TARGET_DIR="$target_dir/docsrs" \
  cargo "+$NIGHTLY" doc "${lib_args[@]}" --all-features --no-deps
# The gated items must carry their feature badge (an `Available on crate feature` note): the
# pages of SpawnError and of the types with tokio-only methods (Group, GoHandle).
doc="$target_dir/docsrs/doc/go_context"
# page:feature — each page must mark its gated items with that feature (`SpawnError` is no
# longer gated: `Group::try_spawn_blocking` returns it without tokio).
for pair in struct.Group.html:tokio struct.GoHandle.html:tokio struct.Context.html:tokio-util \
  struct.Context.html:signal struct.TokenCancelled.html:tokio-util \
  struct.SignalReceived.html:signal; do
  page="${pair%%:*}" feature="${pair#*:}"
  if [ ! -e "$doc/$page" ]; then
    echo "WARNING: no $page in the docs: update the page list in .ci/steps/10-packaging.sh"
  elif ! grep -q "Available on <strong>crate feature <code>$feature</code>" "$doc/$page"; then
    echo "docs.rs build: $page does not mark its $feature-gated items with their feature"
    exit 1
  fi
done

say "cargo publish --dry-run: $PUBLISHED"
for p in $PUBLISHED; do cargo package -p "$p" --list | sed "s|^|  $p: |"; done
cargo publish --dry-run "${publish_args[@]}"

say "a new user: cargo add $CORE --features tokio, then the seed, from the packaged crates"
version_of() { jq -r --arg p "$1" '.packages[] | select(.name == $p) | .version' <<<"$metadata"; }
pkg="$target_dir/package"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/src"
# The program is the README's first ```rust block ("First program (the seed)"), as pasted.
awk '/^```rust$/ { inside = 1; next } inside && /^```/ { exit } inside { print }' README.md \
  >"$scratch/src/main.rs"
grep -q 'fn main' "$scratch/src/main.rs" || { echo "README.md: no seed program found"; exit 1; }
# Only go-context is given by path; its own dependency on context-macros is resolved as from
# crates.io, which the patch points at the packaged macros (not published yet).
cat >"$scratch/Cargo.toml" <<EOF
[package]
name = "seed-user"
version = "0.1.0"
edition = "2021"

[dependencies]

[patch.crates-io]
context-macros = { path = "$pkg/context-macros-$(version_of context-macros)" }

[workspace]
EOF
# Outside the repository rust-toolchain.toml does not apply: name its toolchain explicitly.
toolchain="$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)"
(
  cd "$scratch"
  export CARGO_TARGET_DIR="$target_dir/seed-user"
  cargo "+$toolchain" add --path "$pkg/$CORE-$(version_of "$CORE")" --features tokio
  cargo "+$toolchain" run --quiet
)
