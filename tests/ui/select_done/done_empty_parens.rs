use go_context::select_done;

fn main() {
    let _ = select_done! {
        done() => 0,
        default => 1,
    };
}
