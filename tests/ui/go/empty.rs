use go_context::go;

fn main() {
    let _handle = go!();
}
