use context_core::go;

fn main() {
    let _handle = go!(|ctx, n| ctx.is_done() && n > 0);
}
