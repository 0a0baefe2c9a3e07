use go_context::go;

fn a() {}
fn b() {}

fn main() {
    let _handle = go!(a(), b());
}
