use go_context::cancellable;

#[cancellable]
fn count() -> u32 {
    let mut n = 0;
    loop {
        n += 1;
        if n == 10 {
            return n;
        }
    }
}

fn main() {
    let _ = count();
}
