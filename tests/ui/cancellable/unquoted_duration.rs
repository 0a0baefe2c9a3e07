use go_context::{cancellable, Error};

#[cancellable(timeout = 500ms)]
fn half_a_second() -> Result<(), Error> {
    Ok(())
}

#[cancellable(timeout = 1.5h)]
fn ninety_minutes() -> Result<(), Error> {
    Ok(())
}

#[cancellable(timeout = 2h45m)]
fn compound() -> Result<(), Error> {
    Ok(())
}

#[cancellable(timeout = 2u64)]
fn rust_suffix() -> Result<(), Error> {
    Ok(())
}

#[cancellable(timeout = 3days)]
fn unknown_unit() -> Result<(), Error> {
    Ok(())
}

fn main() {
    let _ = (half_a_second(), ninety_minutes(), compound(), rust_suffix(), unknown_unit());
}
