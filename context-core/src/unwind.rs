//! Containing the panics of user code that runs on our paths.
//!
//! A panic caught from user code (a waker, an `after_func` callback, a cause's `Display`, a
//! trace subscriber) is either re-raised to the caller whose call ran it or *discarded*.
//! Discarding drops the payload, and a payload is a user value too: its `Drop` may panic.
//! [`discard`] contains that second panic, so it cuts short neither a thread of ours (the
//! timer, the `after_func` pool, the signal dispatcher) nor the bookkeeping that follows
//! (a `Group` recording its failure). The second panic's own payload is forgotten, not
//! dropped: that would run user code again, with no end to the regress.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

/// A caught panic's payload, as [`std::panic::catch_unwind`] returns it.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// Runs `f`, which may run user code, so that neither its panic (already reported by the panic
/// hook) nor the drop of that panic's payload unwinds out of this call.
pub(crate) fn contain(f: impl FnOnce()) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
        discard(payload);
    }
}

/// Drops a caught panic's payload; a panic in its `Drop` is contained (see the module docs).
pub(crate) fn discard(payload: Payload) {
    if let Err(again) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static DROPS: AtomicUsize = AtomicUsize::new(0);

    struct PanicsOnDrop;

    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::SeqCst);
            if !std::thread::panicking() {
                panic::panic_any(PanicsOnDrop);
            }
        }
    }

    #[test]
    fn a_payload_whose_drop_panics_is_contained_and_the_next_is_not_dropped() {
        let before = DROPS.load(Ordering::SeqCst);
        contain(|| panic::panic_any(PanicsOnDrop));
        // The first payload was dropped (and panicked with a second one, which was forgotten
        // rather than dropped: dropping it would panic again).
        assert_eq!(DROPS.load(Ordering::SeqCst) - before, 1);
        contain(|| ());
        discard(Box::new(7_u32));
    }
}
