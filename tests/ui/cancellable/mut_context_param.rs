use go_context::{cancellable, Context};

// issue 12 item 4: writes through a `&mut Context` could not reach the caller.
#[cancellable]
fn replace(ctx: &mut Context) -> Option<()> {
    *ctx = ctx.with_value(7u32);
    Some(())
}

fn main() {
    let mut ctx = Context::background();
    let _ = replace(&mut ctx);
}
