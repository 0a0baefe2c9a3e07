//! issue 12: generated code triggers no lint on the user's tokens (`unused_braces` fired on
//! `done => { 0 }`).
#![deny(warnings)]

use go_context::{select_done, Context};

fn sync_forms(ctx: &Context) -> u32 {
    let a = select_done! { done => { 0 } default => { 1 } };
    let b = select_done! {
        _err = done(ctx) => { 0 }
        default => { 1 }
    };
    let c = select_done! {
        err = done => { u32::from(err.is_timeout()) }
        default => { 1 }
    };
    a + b + c
}

async fn async_forms(ctx: &Context) -> u32 {
    let a = select_done! {
        _err = done(ctx) => { 0 }
        n = async { 1 } => { n }
    };
    let b = select_done! {
        done => { 0 }
        (x, y) = async { (1, 2) } => { x + y }
        default => { 3 }
    };
    a + b
}

fn main() {
    let bg = Context::background();
    let _ = sync_forms(&bg);
    let _ = async_forms(&bg);
}
