//! One timer for every deadline in the process: the node glue over a generic engine.
//!
//! - [`queue`]: the ordered store (`(deadline, id)` order, sorted chunks);
//! - [`driver`]: the threads that fire due entries, in order, never early, with no lock held,
//!   and take over when an expiry is stuck in slow user code;
//! - this file: what a node's deadline entry is and does when it fires
//!   (`tree::cancel(.., DeadlineExceeded, cause)`), and the crate-internal API the tree calls:
//!   [`arm`], [`disarm`], `is_armed`, plus the clock's [`Ticks`], [`NEVER`], [`ticks`],
//!   [`instant`] and [`now`], re-exported.
//!
//! An entry is 24 bytes (deadline, node, location of the call that set the deadline), keyed by
//! `(deadline, node address)`: the entry holds the node, so the address stays unique while the
//! entry exists and a stale key can never remove somebody else's entry. The custom causes of
//! `with_deadline_cause` entries are rare, so they wait in a side table instead of widening
//! every entry.
//!
//! # What runs on the timer's threads
//!
//! A due entry runs `tree::cancel`, which wakes the node's waiters (wakers run there; threads
//! are unparked; `after_func` callbacks are only handed to their pool) and may drop the last
//! reference to values. None of it runs under a lock of the timer. If one expiry takes longer
//! than [`driver::STALL`] (10 ms) after its node is done (a slow waker, a slow `Drop`), a
//! standby thread takes over the firing, so later deadlines are late by about 10 ms, not by
//! the slow code's duration. Up to 30 expiries can be stuck at once ([`driver::MAX_THREADS`]
//! threads, less the firer and the standby); beyond that, deadlines wait for one to return.
//!
//! The tree calls this module and this module calls the tree (`tree::cancel`): the glue is the
//! one place where the timer knows of nodes; [`queue`] and [`driver`] import only the clock.

mod driver;
mod queue;

use std::collections::HashMap;
use std::panic::Location;
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, MutexGuard};

pub(crate) use crate::clock::{instant, now, ticks, Ticks, NEVER};
use crate::error::{BoxError, CauseData, Error};
use crate::sync::{Arc, Ordering};
use crate::tree::{self, Node};
use driver::{Expire, Timer};
use queue::Id;

/// The timer of every node deadline.
static DEADLINES: Timer<Deadline> = Timer::new("context-timer");

/// A node's deadline entry.
struct Deadline {
    node: Arc<Node>,
    location: &'static Location<'static>,
}

type Key = (Ticks, usize);

/// The custom causes of armed `with_deadline_cause` entries, and how many there are (so that
/// the common, cause-less entry never takes this lock).
static CUSTOM: Mutex<Option<HashMap<Key, Arc<BoxError>>>> = Mutex::new(None);
static CUSTOMS: AtomicUsize = AtomicUsize::new(0);

fn custom_causes() -> MutexGuard<'static, Option<HashMap<Key, Arc<BoxError>>>> {
    // No user code runs under this lock (the causes are dropped after it).
    CUSTOM.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes the custom cause of the entry at `k`, if it has one.
fn take_custom(k: Key) -> Option<Arc<BoxError>> {
    // Pairs with the `Release` increment in `arm`, which happened before the entry was armed.
    if CUSTOMS.load(Ordering::Acquire) == 0 {
        return None;
    }
    let mut map = custom_causes();
    let custom = map.as_mut()?.remove(&k);
    if custom.is_some() && CUSTOMS.fetch_sub(1, Ordering::Relaxed) == 1 {
        // Give a burst's memory back.
        *map = None;
    }
    custom
}

impl Id for Deadline {
    fn id(&self) -> usize {
        Arc::as_ptr(&self.node) as usize
    }
}

impl Expire for Deadline {
    /// A clone of the node, to see whether it is done: the entry's own reference outlives
    /// every look, so dropping the clone while `expire` runs never drops the node.
    type Probe = Arc<Node>;

    fn probe(&self) -> Arc<Node> {
        Arc::clone(&self.node)
    }

    fn landed(node: &Arc<Node>) -> bool {
        node.err().is_some()
    }

    fn expire(self, at: Ticks) {
        let custom = take_custom((at, self.id()));
        tree::cancel(
            &self.node,
            Error::DeadlineExceeded,
            CauseData::from_parts(self.location, custom),
            crate::trace::Origin::Deadline,
        );
    }
}

/// Arms the timer to cancel `node` with `DeadlineExceeded` and `cause` at `at`.
pub(crate) fn arm(at: Ticks, node: &Arc<Node>, cause: CauseData) {
    let (location, custom) = cause.into_parts();
    if let Some(custom) = custom {
        let k = (at, Arc::as_ptr(node) as usize);
        custom_causes()
            .get_or_insert_with(HashMap::new)
            .insert(k, custom);
        CUSTOMS.fetch_add(1, Ordering::Release);
    }
    let entry = Deadline {
        node: Arc::clone(node),
        location,
    };
    if DEADLINES.arm(at, entry).is_err() {
        // Without its thread no deadline could fire: fail loudly rather than hang. The entry
        // stays armed and the next deadline tries to start the thread again.
        panic!("go-context: the OS refused to start the timer thread");
    }
}

/// Removes `node`'s entry armed for `at`, if it has not fired yet.
pub(crate) fn disarm(at: Ticks, node: &Arc<Node>) {
    let id = Arc::as_ptr(node) as usize;
    let removed = DEADLINES.disarm(at, id);
    let custom = removed.as_ref().and_then(|_| take_custom((at, id)));
    // Drop the node (and a custom cause) outside every timer lock.
    drop((removed, custom));
}

#[cfg(test)]
pub(crate) fn is_armed(node: &Arc<Node>) -> bool {
    DEADLINES.contains_id(Arc::as_ptr(node) as usize)
}
