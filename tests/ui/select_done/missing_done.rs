use context_core::select_done;

fn main() {
    let _ = select_done! {
        default => 1,
    };
}
