use context_core::go;

fn work() {}

fn main() {
    let _handle = go!(in, work());
}
