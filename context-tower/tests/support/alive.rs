//! [`Alive`]: counts live values (handlers, bodies, `go!` tasks) in a static counter, so a test
//! can wait until none is left.

use std::sync::atomic::{AtomicIsize, Ordering};

/// Counts one live value in its counter until dropped.
pub struct Alive(&'static AtomicIsize);

impl Alive {
    pub fn new(counter: &'static AtomicIsize) -> Alive {
        counter.fetch_add(1, Ordering::SeqCst);
        Alive(counter)
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits until `pending` reports nothing left (`None`), looking every 5 ms (the counts have no
/// signal to wait on); past `limit`, panics with what `pending` last reported.
pub async fn settle(limit: std::time::Duration, pending: impl Fn() -> Option<String>) {
    let t0 = std::time::Instant::now();
    while let Some(left) = pending() {
        assert!(t0.elapsed() < limit, "did not settle: {left}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
