use go_context::{cancellable, Error};

// Go's time.ParseDuration stops at 2562047h47m16.854775807s.
#[cancellable(timeout = "3000000h")]
fn work() -> Result<(), Error> {
    Ok(())
}

fn main() {
    let _ = work();
}
