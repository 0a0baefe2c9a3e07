use context_core::{go, Context, Group};

fn work(_: Context) -> Result<(), context_core::BoxError> {
    Ok(())
}

fn main() {
    let ctx = Context::background();
    let group: Group = Group::new(&ctx);
    go!(in ctx, group => |c| work(c));
}
