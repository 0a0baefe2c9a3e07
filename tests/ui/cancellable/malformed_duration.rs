use go_context::{cancellable, Error};

#[cancellable(timeout = "2 seconds")]
fn work() -> Result<(), Error> {
    Ok(())
}

fn main() {
    let _ = work();
}
