//! trybuild UI tests: every misuse of the macros is a compile error that names the fix.
//!
//! The `.stderr` snapshots follow the toolchain pinned in `rust-toolchain.toml`. Regenerate
//! with `TRYBUILD=overwrite cargo test -p context-tests --test ui`, then read each by eye.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/cancellable/*.rs");
    t.compile_fail("ui/select_done/*.rs");
    t.compile_fail("ui/go/*.rs");
    t.pass("ui/pass/*.rs");
}
