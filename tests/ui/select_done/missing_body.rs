use go_context::select_done;

async fn next() -> u32 {
    1
}

async fn pick() -> u32 {
    select_done! {
        done => 0,
        _ = next() =>
    }
}

fn main() {
    let _ = pick();
}
