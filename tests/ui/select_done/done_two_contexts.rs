use go_context::{select_done, Context};

fn main() {
    let ctx = Context::background();
    let other = Context::background();
    let _ = select_done! {
        done(&ctx, &other) => 0,
        default => 1,
    };
}
