//! Helpers for the spawning tests (`go.rs`, `group.rs`): a time bound that turns a hang into a
//! failure, panic messages, and runtimes.

use std::sync::mpsc;
use std::time::Duration;

/// Generous bound for "this must happen", on a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Runs `f` on its own thread and waits at most [`PATIENCE`] for it: a hang fails the test
/// instead of hanging it (the stuck thread is left behind; the process ends with the tests).
pub fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(PATIENCE)
        .expect("hung (or panicked) instead of returning")
}

/// The message of a panic payload (`&str` or `String`), else "".
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// A multi-thread runtime with `workers` workers.
pub fn multi_thread(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .build()
        .unwrap()
}

/// A current-thread runtime.
pub fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}
