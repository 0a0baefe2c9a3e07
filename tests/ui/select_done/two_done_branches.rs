use go_context::select_done;

fn main() {
    let _ = select_done! {
        done => 0,
        err = done => { let _ = err; 1 }
        default => 2,
    };
}
