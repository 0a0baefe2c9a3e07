use go_context::go;

fn work() {}

fn main() {
    let _handle = go!(in, work());
}
