//! Every accepted form of `#[cancellable]` compiles.

use std::time::Duration;

use go_context::{cancellable, Context, Error};

#[cancellable]
fn no_args() {}

#[cancellable(timeout = "300ms")]
fn millis() -> Option<()> {
    None
}

#[cancellable(timeout = "1.5h")]
fn fractional_hours() -> Option<()> {
    None
}

#[cancellable(timeout = "2h45m")]
fn compound() -> Option<()> {
    None
}

#[cancellable(timeout = "10us")]
fn micros() -> Option<()> {
    None
}

#[cancellable(timeout = "1µs")]
fn micro_sign() -> Option<()> {
    None
}

#[cancellable(timeout = "1ns")]
fn nanos() -> Option<()> {
    None
}

#[cancellable(timeout = "2562047h")]
fn longest_hours() -> Option<()> {
    None
}

#[cancellable(timeout = Duration::from_millis(ms))]
fn runtime_timeout(ms: u64) -> std::io::Result<()> {
    Ok(())
}

#[cancellable(crate = "go_context", timeout = "1s")]
fn crate_path() -> Result<(), Error> {
    Ok(())
}

#[cancellable(parent = b)]
fn chosen_parent(a: &Context, b: Context) -> Result<(), Error> {
    let _ = (a, b);
    Ok(())
}

#[cancellable]
fn owned(mut ctx: Context) -> Option<bool> {
    ctx = ctx.with_value(1u8);
    Some(ctx.is_done())
}

#[cancellable]
fn with_lifetime<'a>(ctx: &'a Context, s: &'a str) -> Option<&'a str> {
    let _ = ctx;
    Some(s)
}

#[cancellable]
fn impl_trait_inside(n: u32) -> Result<impl Iterator<Item = u32>, Error> {
    Ok(0..n)
}

#[cancellable]
async fn async_unit() {}

#[cancellable(timeout = "1s")]
async fn async_result(ctx: &Context) -> Result<u32, Error> {
    ctx.check()?;
    Ok(1)
}

struct S;

impl S {
    #[cancellable]
    fn by_ref(&self) -> Option<()> {
        Some(())
    }

    #[cancellable]
    async fn by_mut(&mut self) -> Option<()> {
        Some(())
    }
}

trait T {
    #[cancellable]
    fn default_method(&self) -> Option<u8> {
        Some(1)
    }
}

impl T for S {}

fn main() {
    no_args();
    let _ = (millis(), fractional_hours(), compound(), micros(), micro_sign(), nanos());
    let _ = (longest_hours(), runtime_timeout(5), crate_path());
    let bg = Context::background();
    let _ = chosen_parent(&bg, bg.clone());
    let _ = owned(bg.clone());
    let _ = with_lifetime(&bg, "x");
    let _ = impl_trait_inside(3);
    let _ = async_unit();
    let _ = async_result(&bg);
    let _ = S.by_ref();
    let _ = S.default_method();
    let mut s = S;
    let _ = s.by_mut();
}
