use go_context::{cancellable, Error};

#[cancellable(timeout = std::time::Duration::from_millis(ms))]
fn work((ms, x): (u64, u8)) -> Result<u64, Error> {
    Ok(ms + u64::from(x))
}

fn main() {
    let _ = work((5, 1));
}
