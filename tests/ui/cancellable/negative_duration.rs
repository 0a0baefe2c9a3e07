use go_context::{cancellable, Error};

#[cancellable(timeout = "-2s")]
fn work() -> Result<(), Error> {
    Ok(())
}

fn main() {
    let _ = work();
}
