use go_context::{cancellable, Error};

// The body does not parse: the expansion keeps it as tokens, so rustc reports the real error
// (and only that one).
#[cancellable(timeout = "1s")]
fn work() -> Result<u32, Error> {
    let n = 1 +;
    Ok(n)
}

fn main() {
    let _ = work();
}
