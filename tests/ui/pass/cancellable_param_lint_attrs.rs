// A parameter's lint attributes still apply under #[cancellable]: the parameter moves into a
// local of the body, which is what goes unused, so the attributes go there.
#![deny(warnings)]

use go_context::cancellable;

#[cancellable]
fn allowed(#[allow(unused_variables)] x: u8, #[expect(unused_variables)] y: u8) -> Option<()> {
    Some(())
}

#[cancellable]
fn destructured(#[allow(unused_variables)] (a, b): (u8, u8)) -> Option<u8> {
    Some(a)
}

#[cancellable]
fn gated(
    #[cfg_attr(all(), allow(unused_variables))] z: u8,
    #[cfg_attr(all(), expect(unused_variables))] w: u8,
) -> Option<()> {
    Some(())
}

fn main() {
    assert_eq!(allowed(1, 2), Some(()));
    assert_eq!(destructured((1, 2)), Some(1));
    assert_eq!(gated(3, 4), Some(()));
}
