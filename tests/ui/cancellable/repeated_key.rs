use go_context::{cancellable, Error};

#[cancellable(timeout = "1s", timeout = "2s")]
fn work() -> Result<(), Error> {
    Ok(())
}

fn main() {
    let _ = work();
}
