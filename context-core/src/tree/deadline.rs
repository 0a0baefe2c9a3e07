//! A node's deadline on the timer: the entry (`Deadline`), what firing it does, and the
//! side table of custom causes.
//!
//! The timer is generic over what it fires and knows nothing of nodes; this file is the one
//! place that knows both. It does not know how to cancel either: what firing does is a
//! [`Fire`], given by `cancel.rs` (which arms and disarms entries), so the imports go one way:
//! `cancel` → `deadline` → `timer` → `clock`.
//!
//! An entry is 16 bytes (the node, the location of the call that set the deadline; the queue
//! adds the deadline), keyed by `(deadline, node address)`: the entry holds the node, so the
//! address stays unique while the entry exists and a stale key can never remove somebody
//! else's entry. The custom causes of `with_deadline_cause` entries are rare, so they wait in a
//! side table instead of widening every entry: the common, cause-less entry never takes its
//! lock (`CUSTOMS` counts them; its `Release` increment in `arm` happens before the entry is
//! armed, and pairs with the `Acquire` load in `take_custom`).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::panic::Location;
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, MutexGuard};

use crate::error::{BoxError, CauseData};
use crate::sync::{Arc, Ordering};
use crate::timer::{Expire, Id, Ticks, Timer};

use super::node::Node;

/// What a due deadline does to its node (for the tree: cancel it with `DeadlineExceeded`).
pub(super) trait Fire: Send + 'static {
    fn fire(node: &Arc<Node>, cause: CauseData);
}

/// The timer of node deadlines, firing `F`.
pub(super) struct Deadlines<F: Fire> {
    timer: Timer<Deadline<F>>,
}

/// A node's deadline entry.
struct Deadline<F> {
    node: Arc<Node>,
    location: &'static Location<'static>,
    fire: PhantomData<fn() -> F>,
}

type Key = (Ticks, usize);

/// The custom causes of armed `with_deadline_cause` entries, and how many there are.
static CUSTOM: Mutex<Option<HashMap<Key, Arc<BoxError>>>> = Mutex::new(None);
static CUSTOMS: AtomicUsize = AtomicUsize::new(0);

fn custom_causes() -> MutexGuard<'static, Option<HashMap<Key, Arc<BoxError>>>> {
    // No user code runs under this lock (the causes are dropped after it).
    CUSTOM.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes the custom cause of the entry at `k`, if it has one.
#[inline]
fn take_custom(k: Key) -> Option<Arc<BoxError>> {
    // Pairs with the `Release` increment in `arm`, which happened before the entry was armed.
    if CUSTOMS.load(Ordering::Acquire) == 0 {
        return None;
    }
    take_custom_slow(k)
}

#[cold]
fn take_custom_slow(k: Key) -> Option<Arc<BoxError>> {
    let mut map = custom_causes();
    let custom = map.as_mut()?.remove(&k);
    if custom.is_some() && CUSTOMS.fetch_sub(1, Ordering::Relaxed) == 1 {
        // Give a burst's memory back.
        *map = None;
    }
    custom
}

fn id(node: &Arc<Node>) -> usize {
    Arc::as_ptr(node) as usize
}

impl<F: Fire> Id for Deadline<F> {
    fn id(&self) -> usize {
        id(&self.node)
    }
}

impl<F: Fire> Expire for Deadline<F> {
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
        F::fire(&self.node, CauseData::from_parts(self.location, custom));
    }
}

impl<F: Fire> Deadlines<F> {
    pub(super) const fn new() -> Deadlines<F> {
        Deadlines {
            timer: Timer::new("context-timer"),
        }
    }

    /// Arms the timer to fire `node` with `cause` at `at`.
    pub(super) fn arm(&'static self, at: Ticks, node: &Arc<Node>, cause: CauseData) {
        let (location, custom) = cause.into_parts();
        if let Some(custom) = custom {
            custom_causes()
                .get_or_insert_with(HashMap::new)
                .insert((at, id(node)), custom);
            CUSTOMS.fetch_add(1, Ordering::Release);
        }
        let entry = Deadline {
            node: Arc::clone(node),
            location,
            fire: PhantomData,
        };
        if self.timer.arm(at, entry).is_err() {
            // Without its thread no deadline could fire: fail loudly rather than hang. The
            // entry stays armed and the next deadline tries to start the thread again.
            panic!("go-context: the OS refused to start the timer thread");
        }
    }

    /// Removes `node`'s entry armed for `at`, if it has not fired yet.
    pub(super) fn disarm(&self, at: Ticks, node: &Arc<Node>) {
        let removed = self.timer.disarm(at, id(node));
        let custom = removed.as_ref().and_then(|_| take_custom((at, id(node))));
        // Drop the node (and a custom cause) outside every timer lock.
        drop((removed, custom));
    }

    #[cfg(test)]
    pub(super) fn is_armed(&self, node: &Arc<Node>) -> bool {
        self.timer.contains_id(id(node))
    }
}
