use context_core::go;

fn main() {
    let _handle = go!(|ctx: &context_core::Context| ctx.is_done());
}
