//! The one place that names the synchronisation primitives, so that `--cfg loom` can swap
//! them for loom's model-checked twins (as tokio-util and crossbeam do).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU8, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
// Under loom, `Arc` stays std's: loom's `Arc` cannot be a method receiver (`self: &Arc<Node>`)
// and has no `into_inner`. The model tests check leaks themselves, through `Weak`s.
#[cfg(loom)]
pub(crate) use std::sync::Arc;
#[cfg(loom)]
pub(crate) use thread::Thread;

/// loom's threads, plus the one call loom lacks.
#[cfg(loom)]
pub(crate) mod thread {
    pub(crate) use loom::thread::{current, park, Thread};

    /// loom has no timed park; the models only use untimed waits (and zero timeouts, which
    /// never park).
    pub(crate) fn park_timeout(_: std::time::Duration) {
        panic!("loom models only untimed waits: park_timeout is not modelled")
    }
}

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU8};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::thread::{self, Thread};

pub(crate) use std::sync::atomic::Ordering;

/// Locks `m`, ignoring poison: no user code ever runs while one of our locks is held, so a
/// poisoned lock can only come from a bug in this crate, and its data is still consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}
