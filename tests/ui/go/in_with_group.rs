use go_context::{go, Context, Group};

fn work(_: Context) -> Result<(), go_context::BoxError> {
    Ok(())
}

fn main() {
    let ctx = Context::background();
    let group: Group = Group::new(&ctx);
    go!(in ctx, group => |c| work(c));
}
