//! Every accepted form of `select_done!` compiles.

use go_context::{select_done, Context, Error};

fn sync_forms(ctx: &Context) -> Result<u32, Error> {
    let a = select_done! { done => 0, default => 1 };
    let b = select_done! {
        done(ctx) => 0,
        default => 1,
    };
    let c = select_done! {
        err = done(ctx.clone()) => return Err(err),
        default => { 1 }
    };
    let d = select_done! {
        _err = done => { 0 }
        default => { 1 }
    };
    Ok(a + b + c + d)
}

async fn async_forms(ctx: &Context) -> Result<u32, Error> {
    let a = select_done! {
        err = done(ctx) => return Err(err),
        n = async { 1 } => n,
    };
    let b = select_done! {
        done => 0,
        n = async { 1 } => n,
        (x, y) = async { (1, 2) } => x + y,
        default => 3,
    };
    Ok(a + b)
}

fn main() {
    let bg = Context::background();
    let _ = sync_forms(&bg);
    let _ = async_forms(&bg);
}
