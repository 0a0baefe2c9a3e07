use go_context::go;

fn main() {
    let _handle = go!(|ctx: &go_context::Context| ctx.is_done());
}
