use go_context::go;

fn work() {}

fn main() {
    let _handle = go!(in 5u8, work());
}
