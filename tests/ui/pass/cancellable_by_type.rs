//! issue 12: the parent is decided by type; forms that failed to compile now do.
#![deny(warnings)]

use std::sync::Arc;

use go_context::{cancellable, Context};

type Ctx = Context;

#[cancellable]
fn alias(ctx: Ctx) -> Option<bool> {
    Some(ctx.is_done())
}

#[cancellable]
fn arc(ctx: Arc<Context>) -> Option<bool> {
    Some(ctx.is_done())
}

#[cancellable]
fn optional(ctx: Option<&Context>) -> Option<bool> {
    Some(ctx.is_some_and(Context::is_done))
}

#[cancellable(timeout = "1s")]
fn forever(ctx: &'static Context) -> Option<bool> {
    Some(ctx.is_done())
}

#[cancellable]
fn poll_like(cx: &mut std::task::Context<'_>) -> Option<()> {
    cx.waker().wake_by_ref();
    Some(())
}

#[cancellable]
fn generic<C: AsRef<str>>(name: C, mut n: u32) -> Option<usize> {
    for _ in 0..2 {
        n += 1;
    }
    Some(name.as_ref().len() + n as usize)
}

const fn width<const N: usize>() -> usize {
    N
}

#[cancellable]
fn const_block() -> Option<usize> {
    Some(width::<{
        let mut i = 0;
        while i < 4 {
            i += 1;
        }
        i
    }>())
}

struct Req {
    ctx: Context,
}

impl Req {
    #[cancellable(parent = self.ctx)]
    fn field(&self) -> Option<bool> {
        Some(Context::current().is_done())
    }

    #[cancellable(parent = Context::current())]
    fn current(&self) -> Option<bool> {
        Some(self.ctx.is_done())
    }
}

fn main() {
    static BG: std::sync::OnceLock<Context> = std::sync::OnceLock::new();
    let bg = Context::background();
    let _ = alias(bg.clone());
    let _ = arc(Arc::new(bg.clone()));
    let _ = optional(Some(&bg));
    let _ = forever(BG.get_or_init(Context::background));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let _ = poll_like(&mut cx);
    let _ = generic("x", 1);
    let _ = const_block();
    let req = Req { ctx: bg };
    let _ = req.field();
    let _ = req.current();
}
