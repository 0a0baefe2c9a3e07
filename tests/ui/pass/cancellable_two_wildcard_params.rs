// Two `_` parameters are ordinary Rust (trait impls, callbacks); #[cancellable] must accept them.
use go_context::{cancellable, Context};

#[cancellable]
fn two_wild(_: u8, _: u16) -> Option<()> {
    Some(())
}

trait Handler {
    fn handle(&self, ctx: &Context, req: u32, extra: u32) -> Option<u32>;
}
struct H;
impl Handler for H {
    #[cancellable]
    fn handle(&self, _: &Context, req: u32, _: u32) -> Option<u32> {
        Some(req)
    }
}

fn main() {
    assert_eq!(two_wild(1, 2), Some(()));
    assert_eq!(H.handle(&Context::background(), 3, 4), Some(3));
}
