use go_context::cancellable;

#[cancellable]
const fn answer() -> Option<u32> {
    Some(42)
}

fn main() {
    let _ = answer();
}
