use go_context::cancellable;

#[derive(Debug)]
struct MyError;

#[cancellable]
fn work() -> Result<(), MyError> {
    Ok(())
}

fn main() {
    let _ = work();
}
