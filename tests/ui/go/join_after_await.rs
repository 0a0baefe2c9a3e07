// Issue 11, 5: joining a handle after awaiting it cannot compile (awaiting consumes it).
use go_context::go;

async fn one() -> u8 {
    1
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let handle = go!(one());
    let _ = (&mut handle).await;
    let _ = handle.join();
}
