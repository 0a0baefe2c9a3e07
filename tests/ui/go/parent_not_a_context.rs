use context_core::go;

fn work() {}

fn main() {
    let _handle = go!(in 5u8, work());
}
