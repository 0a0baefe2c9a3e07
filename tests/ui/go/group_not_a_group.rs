use go_context::go;

fn work() -> Result<(), go_context::BoxError> {
    Ok(())
}

fn main() {
    let group = 5u8;
    let _handle = go!(group => work());
}
