use go_context::go;

fn main() {
    let _handle = go!(|ctx, n| ctx.is_done() && n > 0);
}
