use go_context::cancellable;

#[cancellable]
async fn count() -> u32 {
    let mut n = 0;
    while n < 10 {
        n += 1;
    }
    n
}

fn main() {
    let _ = count();
}
