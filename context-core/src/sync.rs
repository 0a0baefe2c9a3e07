//! The one place that names the synchronisation primitives, so that `--cfg loom` can swap
//! them for loom's model-checked twins (as tokio-util and crossbeam do).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU8};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use loom::thread::{self, Thread};

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
