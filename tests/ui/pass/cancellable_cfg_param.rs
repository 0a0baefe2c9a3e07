// A `#[cfg]`-gated parameter is ordinary Rust; #[cancellable] must not refer to it when the
// cfg is off.
use go_context::cancellable;

#[cancellable]
fn gated(#[cfg(any())] ctx: &Context, x: u8) -> Option<u8> {
    Some(x)
}

fn main() {
    assert_eq!(gated(1), Some(1));
}
