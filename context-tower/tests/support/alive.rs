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
