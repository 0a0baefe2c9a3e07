use go_context::go;

fn work() -> u32 {
    1
}

fn main() {
    let _handle = go!(work);
}
