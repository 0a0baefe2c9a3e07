use go_context::go;

async fn fetch() -> u32 {
    1
}

async fn caller() {
    let _handle = go!(fetch().await);
}

fn main() {
    let _ = caller();
}
