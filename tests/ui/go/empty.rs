use context_core::go;

fn main() {
    let _handle = go!();
}
