use go_context::select_done;

async fn pick() -> u32 {
    select_done! {
        done => 0,
        v = 42u32 => v,
    }
}

fn main() {
    let _ = pick();
}
