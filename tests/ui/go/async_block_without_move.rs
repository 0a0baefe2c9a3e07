// Issue 12: an `async` block that borrows, without `move`: rustc's own error on the user's
// block, with its hint to add `move` (as `tokio::spawn` gives).
use go_context::go;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let name = String::from("gopher");
    let _handle = go!(async { name.len() });
}
