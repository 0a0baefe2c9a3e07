//! One timer for every deadline in the process.
//!
//! A single background thread (started on the first deadline) sleeps until the earliest
//! deadline and cancels the contexts whose deadline has passed. Arming and disarming are a
//! `BTreeMap` insert/remove under one lock.
//!
//! Deadlines are stored as [`Ticks`]: signed nanoseconds from a process-wide epoch, 8 bytes in
//! every cancel node instead of a boxed `Instant`. An entry is keyed by `(ticks, node address)`:
//! the entry holds the node, so the address stays unique while the entry exists and a stale
//! key can never remove somebody else's entry.
//!
//! # Invariants
//!
//! 1. `wake_at` is the time the thread will wake up by itself (or `None` if it waits for a
//!    notification). Arming an entry earlier than `wake_at` notifies the thread; a later one
//!    does not, so a steady stream of long timeouts costs no system call.
//! 2. The thread never takes a node lock while holding the timer lock: it collects due entries,
//!    releases the lock, then cancels them.
//! 3. An entry never fires early: the thread re-reads the clock after every wake-up, spurious or
//!    not.

use std::collections::{BTreeMap, HashMap};
use std::panic::Location;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::error::{BoxError, CauseData, Error};
use crate::sync::Arc;
use crate::trace::{self, Origin};
use crate::tree::{self, Node};

/// A deadline: nanoseconds since [`epoch`] (negative before it). [`NEVER`] means none.
pub(crate) type Ticks = i64;

/// "No deadline".
pub(crate) const NEVER: Ticks = i64::MIN;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `at` as ticks; `None` if it is too far in the future to represent (about 292 years), which
/// the caller treats as "no deadline". An instant too far in the past is clamped to the earliest
/// tick (`NEVER + 1`): it has passed just as surely, and a passed deadline must still cancel.
pub(crate) fn ticks(at: Instant) -> Option<Ticks> {
    let e = epoch();
    match at.checked_duration_since(e) {
        Some(after) => i64::try_from(after.as_nanos()).ok(),
        // -i64::MAX is NEVER + 1: never NEVER.
        None => Some(-i64::try_from((e - at).as_nanos()).unwrap_or(i64::MAX)),
    }
}

/// The instant `t` stands for (`t` is not [`NEVER`]).
pub(crate) fn instant(t: Ticks) -> Instant {
    let e = epoch();
    if t >= 0 {
        e + Duration::from_nanos(t as u64)
    } else {
        e - Duration::from_nanos(t.unsigned_abs())
    }
}

pub(crate) fn now() -> Ticks {
    ticks(Instant::now()).expect("the clock is within 292 years of the epoch")
}

struct Timer {
    state: Mutex<State>,
    wake: Condvar,
}

/// 16 bytes: the node, and where its deadline was set (the plain cause when it fires).
struct Entry {
    node: Arc<Node>,
    location: &'static Location<'static>,
}

type Key = (Ticks, usize);

#[derive(Default)]
struct State {
    entries: BTreeMap<Key, Entry>,
    /// The custom causes of `with_deadline_cause` entries: rare, so kept out of `entries`.
    custom: HashMap<Key, Arc<BoxError>>,
    wake_at: Option<Ticks>,
    running: bool,
}

impl State {
    /// Removes the custom cause of the entry at `k`, if it has one.
    fn take_custom(&mut self, k: &Key) -> Option<Arc<BoxError>> {
        if self.custom.is_empty() {
            return None;
        }
        let custom = self.custom.remove(k);
        if self.custom.is_empty() && self.custom.capacity() > 64 {
            // Give a burst's memory back.
            self.custom = HashMap::new();
        }
        custom
    }
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<Timer> = OnceLock::new();
    TIMER.get_or_init(|| Timer {
        state: Mutex::new(State::default()),
        wake: Condvar::new(),
    })
}

fn lock(t: &Timer) -> MutexGuard<'_, State> {
    // No user code runs under this lock: poison can only be a bug here, and the map stays valid.
    t.state.lock().unwrap_or_else(|p| p.into_inner())
}

fn key(at: Ticks, node: &Arc<Node>) -> Key {
    (at, Arc::as_ptr(node) as usize)
}

/// Arms the timer to cancel `node` with `DeadlineExceeded` and `cause` at `at`.
pub(crate) fn arm(at: Ticks, node: &Arc<Node>, cause: CauseData) {
    let t = timer();
    let (location, custom) = cause.into_parts();
    let mut state = lock(t);
    let entry = Entry {
        node: Arc::clone(node),
        location,
    };
    state.entries.insert(key(at, node), entry);
    if let Some(custom) = custom {
        state.custom.insert(key(at, node), custom);
    }
    if !state.running {
        // The thread waits for this lock, so it sees the entry just inserted.
        let started = std::thread::Builder::new()
            .name("context-timer".into())
            .spawn(run);
        state.running = started.is_ok();
        if started.is_err() {
            // Without this thread no deadline could fire: fail loudly rather than hang. The
            // next deadline tries to start it again.
            drop(state);
            panic!("go-context: the OS refused to start the timer thread");
        }
    } else if state.wake_at.is_none_or(|w| at < w) {
        t.wake.notify_one();
    }
}

/// Removes `node`'s entry armed for `at`, if it has not fired yet.
pub(crate) fn disarm(at: Ticks, node: &Arc<Node>) {
    let removed = {
        let mut state = lock(timer());
        let k = key(at, node);
        let entry = state.entries.remove(&k);
        let custom = entry.as_ref().and_then(|_| state.take_custom(&k));
        (entry, custom)
    };
    // Drop the node (and a custom cause) outside the timer lock.
    drop(removed);
}

fn run() {
    let t = timer();
    let mut state = lock(t);
    loop {
        let now = now();
        let mut due = Vec::new();
        while let Some(entry) = state.entries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (k, Entry { node, location }) = entry.remove_entry();
            let custom = state.take_custom(&k);
            due.push((node, CauseData::from_parts(location, custom)));
        }
        if !due.is_empty() {
            drop(state);
            for (node, cause) in due {
                // User code runs in here (wakers; drops of values and causes, if this is the last
                // reference). Its panic, already reported by the panic hook, must not unwind
                // through the one thread every deadline of the process depends on, nor skip
                // the rest of `due`.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                    if tree::cancel(&node, Error::DeadlineExceeded, cause) {
                        trace::cancelled(Origin::Deadline, || crate::Context { node });
                    }
                }));
            }
            state = lock(t);
            continue;
        }
        // Keep an earlier planned wake-up that is still ahead (invariant 1): re-planning it away
        // would make the next arm notify again.
        let next = state.entries.first_key_value().map(|(k, _)| k.0);
        let planned = state.wake_at.filter(|w| *w > now);
        let target = match (next, planned) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        state.wake_at = target;
        state = match target {
            None => t.wake.wait(state).unwrap_or_else(|p| p.into_inner()),
            Some(at) => {
                let timeout = Duration::from_nanos(at.saturating_sub(now).max(0) as u64);
                t.wake
                    .wait_timeout(state, timeout)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
        };
    }
}

#[cfg(test)]
pub(crate) fn is_armed(node: &Arc<Node>) -> bool {
    lock(timer())
        .entries
        .keys()
        .any(|&(_, addr)| addr == Arc::as_ptr(node) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_round_trip_exactly() {
        let now = Instant::now();
        for at in [
            now,
            now + Duration::from_nanos(1),
            now + Duration::from_secs(3600 * 24 * 365),
            epoch(),
        ] {
            assert_eq!(instant(ticks(at).unwrap()), at);
        }
        if let Some(past) = epoch().checked_sub(Duration::from_millis(5)) {
            assert_eq!(instant(ticks(past).unwrap()), past);
        }
        let far = now.checked_add(Duration::from_secs(400 * 365 * 24 * 3600));
        if let Some(far) = far {
            assert_eq!(ticks(far), None, "too far to represent: no deadline");
        }
        let long_ago = now.checked_sub(Duration::from_secs(400 * 365 * 24 * 3600));
        if let Some(long_ago) = long_ago {
            assert_eq!(
                ticks(long_ago),
                Some(NEVER + 1),
                "clamped: still in the past"
            );
        }
    }
}
