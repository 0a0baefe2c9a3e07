use go_context::{cancellable, CancelHandle, Context};

// issue 12 item 4: a returned context would reach the caller already cancelled.
#[cancellable]
fn give_back(ctx: Context) -> Option<Context> {
    Some(ctx)
}

#[cancellable(timeout = "1s")]
fn derive(ctx: &Context) -> Result<(Context, CancelHandle), go_context::Error> {
    Ok(ctx.with_cancel())
}

// Found by an audit: `Arc<Context>` is a parent form, so its return is refused too.
#[cancellable]
fn keep(ctx: std::sync::Arc<Context>) -> Option<std::sync::Arc<Context>> {
    Some(ctx)
}

fn main() {
    let _ = keep(std::sync::Arc::new(Context::background()));
    let _ = give_back(Context::background());
    let _ = derive(&Context::background());
}
