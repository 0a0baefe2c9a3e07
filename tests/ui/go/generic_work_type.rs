// Issue 12, 6: in a generic fn, `go!` cannot tell whether `R` is a future; it must not run it
// on a thread and hand back an unpolled future.
use go_context::{go, GoHandle};

fn spawn_it<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> GoHandle<R> {
    go!(f())
}

fn main() {
    let _ = spawn_it(|| 1);
}
