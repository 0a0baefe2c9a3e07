use go_context::{cancellable, Context, Error};

#[cancellable]
fn copy(src: &Context, dst: &Context) -> Result<(), Error> {
    let _ = (src, dst);
    Ok(())
}

fn main() {
    let bg = Context::background();
    let _ = copy(&bg, &bg);
}
