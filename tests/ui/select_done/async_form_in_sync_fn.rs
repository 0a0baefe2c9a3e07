// A select with future branches awaits, so it needs an async fn or block (or the sync form:
// `done` and `default` branches only). rustc says so at the first future branch.
use go_context::select_done;

async fn next() -> u32 {
    1
}

fn pick() -> u32 {
    select_done! {
        done => 0,
        v = next() => v,
    }
}

fn main() {
    let _ = pick();
}
