use go_context::select_done;

async fn next() -> Option<u32> {
    Some(1)
}

async fn first() -> u32 {
    select_done! {
        done => 0,
        Some(n) = next() => n,
    }
}

fn main() {
    let _ = first();
}
