//! go-context depended on as `ctx` (`ctx = { package = "go-context", .. }` in `Cargo.toml`):
//! the macros reach it without `crate = "…"` (`#[cancellable]` reads the name from the
//! manifest; `go!` and `select_done!` go through `$crate`). The tests are in
//! `tests/renamed.rs`; these items check that the library itself builds that way.

use ctx::{cancellable, select_done, Context, Error};

/// Counts until the 10 ms deadline: a sync `#[cancellable]` fn under the renamed crate.
///
/// ```
/// assert_eq!(context_tests_renamed::spin(), Err(ctx::Error::DeadlineExceeded));
/// ```
#[cancellable(timeout = "10ms")]
pub fn spin() -> Result<u64, Error> {
    let mut n = 0u64;
    loop {
        n = n.wrapping_add(1);
    }
}

/// Rounds of work until `ctx` is done, counted by a `select_done!` loop.
///
/// ```
/// let (ctx, cancel) = ctx::Context::background().with_cancel();
/// cancel.cancel();
/// assert_eq!(context_tests_renamed::rounds(&ctx), Some(0));
/// ```
#[cancellable]
pub fn rounds(ctx: &Context) -> Option<u64> {
    let mut rounds = 0;
    loop {
        select_done! {
            done(ctx) => return Some(rounds),
            default => rounds += 1,
        }
    }
}
