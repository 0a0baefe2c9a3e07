//! One timer for every deadline in the process.
//!
//! A single background thread (started on the first deadline) sleeps until the earliest
//! deadline and cancels the contexts whose deadline has passed. Arming and disarming are a
//! `BTreeMap` insert/remove under one lock, keyed by `(deadline, unique id)` so a stale key can
//! never remove somebody else's entry.
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

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;
use std::time::Instant;

use crate::error::Error;
use crate::sync::{lock, Arc, Condvar, Mutex, Ordering};
use crate::tree::{self, Body, Node};

struct Timer {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    entries: BTreeMap<(Instant, u64), Arc<Node>>,
    wake_at: Option<Instant>,
    running: bool,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<Timer> = OnceLock::new();
    TIMER.get_or_init(|| Timer {
        state: Mutex::new(State::default()),
        wake: Condvar::new(),
    })
}

/// A process-unique id for a new deadline entry.
pub(crate) fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Arms the timer to cancel `node` with `DeadlineExceeded` at `at`.
pub(crate) fn arm(at: Instant, id: u64, node: Arc<Node>) {
    let t = timer();
    let mut state = lock(&t.state);
    state.entries.insert((at, id), node);
    if !state.running {
        state.running = true;
        // If the OS refuses a thread, deadlines cannot fire; say so loudly rather than hang.
        std::thread::Builder::new()
            .name("context-timer".into())
            .spawn(run)
            .expect("context-core: failed to start the timer thread");
    } else if state.wake_at.is_none_or(|w| at < w) {
        t.wake.notify_one();
    }
}

/// Removes the entry armed with `(at, id)`, if it has not fired yet.
pub(crate) fn disarm(at: Instant, id: u64) {
    let removed = lock(&timer().state).entries.remove(&(at, id));
    // Drop the node outside the timer lock.
    drop(removed);
}

fn run() {
    let t = timer();
    let mut state = lock(&t.state);
    loop {
        let now = Instant::now();
        let mut due = Vec::new();
        while let Some(entry) = state.entries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        if !due.is_empty() {
            drop(state);
            for node in due {
                if let Body::Cancel(core) = &node.body {
                    if let Some(d) = &core.deadline {
                        tree::cancel(&node, Error::DeadlineExceeded, d.cause.clone());
                    }
                }
            }
            state = lock(&t.state);
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
                t.wake
                    .wait_timeout(state, at.saturating_duration_since(now))
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
        };
    }
}

#[cfg(test)]
pub(crate) fn is_armed(at: Instant, id: u64) -> bool {
    lock(&timer().state).entries.contains_key(&(at, id))
}
