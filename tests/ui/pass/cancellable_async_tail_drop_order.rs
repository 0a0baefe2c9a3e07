//! An async `#[cancellable]` fn drops what it awaited in the same order in every edition:
//! `tail_expr_drop_order` (in `rust_2024_compatibility`, which `cargo fix --edition` turns on)
//! has nothing to report on it.
#![deny(tail_expr_drop_order)]

use go_context::{cancellable, select_done, Context, Error};

#[cancellable]
async fn raced(ctx: &Context) -> Result<u32, Error> {
    ctx.check()?;
    Ok(1)
}

#[cancellable(timeout = "1s")]
async fn raced_unit() {}

#[cancellable]
async fn impl_inside(n: u32) -> Option<impl Iterator<Item = u32>> {
    Some(0..n)
}

#[cancellable]
async fn with_select() -> Option<u32> {
    loop {
        select_done! {
            done => return None,
            default => break,
        }
    }
    Some(1)
}

fn main() {
    let bg = Context::background();
    let _ = (raced(&bg), raced_unit(), impl_inside(2), with_select());
}
