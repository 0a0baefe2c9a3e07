use go_context::{select_done, Context};

fn main() {
    let ctx = Context::background();
    let _ = select_done! {
        ctx.done() => 0,
        default => 1,
    };
}
