use go_context::{cancellable, Error};

#[cancellable(timout = "2s")]
fn work() -> Result<(), Error> {
    Ok(())
}

fn main() {
    let _ = work();
}
