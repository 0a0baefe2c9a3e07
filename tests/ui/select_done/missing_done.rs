use go_context::select_done;

fn main() {
    let _ = select_done! {
        default => 1,
    };
}
