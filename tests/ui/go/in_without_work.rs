use go_context::{go, Context};

fn main() {
    let ctx = Context::background();
    let _handle = go!(in ctx,);
}
