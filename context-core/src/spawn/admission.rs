//! Group admission: who may start (the limit), who waits (the queue, oldest first), what a
//! failure changes (the first one cancels, later ones are only recorded; queued members are
//! dropped in fail-fast mode), and when the group is idle (the signal `wait` waits on).
//!
//! A plain state machine over a member type `M`, with no thread or task of its own, so that
//! the loom model below checks every interleaving of admissions, finishes and waits.
//!
//! # Invariants
//!
//! 1. `running` counts admitted members that have not finished: never more than `limit`.
//!    `starting` counts those of them whose launch (spawning the thread or task) has not been
//!    recorded yet, so `wait` cannot return before every member thread is known. `ending`
//!    counts finished members (their slot already freed, so whoever joined one can start the
//!    next or change the settings) whose handle does not have its outcome yet, so `wait`
//!    cannot return before every handle has it. (The queued members a finish starts count
//!    as running and starting already.)
//! 2. Idle means `running == 0 && starting == 0 && ending == 0 && queued` empty; the
//!    transition into idle fires the idle signal in the same critical section (signal
//!    invariant 3). The settings can change once no member is running, starting or queued
//!    (an ending member no longer depends on them).
//! 3. Every decision is made under the lock, and every consequence (spawning, dropping a
//!    refused or skipped member, waking the waiter) is carried out by the caller after it: the
//!    methods return what to do.
//! 4. Of all failures, exactly one is `first` (it cancels the group, in fail-fast mode); of
//!    the errors, exactly one is kept, and of the panics exactly one.
//! 5. Once the group is abandoned (dropped without `wait`), nothing is queued any more: the
//!    queue is dropped, and members admitted later (none can be: the group is gone) or freed
//!    slots start nothing that was not admitted before.

use std::collections::VecDeque;

use super::errors::{LimitError, SpawnError};
use super::signal::Signal;
use crate::sync::{lock, Mutex};
use crate::{CancelHandle, Context};

pub(crate) struct Admission<M> {
    state: Mutex<State<M>>,
}

struct State<M> {
    limit: Option<usize>,
    fail_fast: bool,
    running: usize,
    starting: usize,
    ending: usize,
    queued: VecDeque<M>,
    failed: bool,
    error_kept: bool,
    panic_kept: bool,
    next_member: u64,
    idle: Signal,
}

impl<M> State<M> {
    /// No member running, starting or queued: the settings may change (invariant 2).
    fn is_quiet(&self) -> bool {
        self.running == 0 && self.starting == 0 && self.queued.is_empty()
    }

    fn is_idle(&self) -> bool {
        self.is_quiet() && self.ending == 0
    }

    fn fire_if_idle(&mut self) -> Option<CancelHandle> {
        if self.is_idle() {
            self.idle.fire()
        } else {
            None
        }
    }
}

/// What [`Admission::admit`] decided.
pub(crate) enum Admit<M> {
    /// Launch it now (it counts as running and starting); then call [`Admission::launched`].
    Start(M),
    /// It waits in the queue.
    Queued,
    /// Not admitted; drop it after the call.
    Refused(M, SpawnError),
}

/// What a failure means for the failing member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Claim {
    /// The group's first failure, in fail-fast mode: cancel the group with its cause.
    pub(crate) cancel: bool,
    /// The first of its kind (error or panic): keep it for `wait`; else drop it.
    pub(crate) keep: bool,
}

/// What to do after a member finished or the group was abandoned, outside the lock.
pub(crate) struct After<M> {
    /// Members to launch now (admitted: running and starting).
    pub(crate) start: Vec<M>,
    /// Members dropped unstarted (the group failed, fail-fast, or was abandoned).
    pub(crate) skipped: Vec<M>,
    /// Dropping it wakes the waiters: the group became idle (never after `finish`: the
    /// member is still ending, see [`Admission::ended`]).
    pub(crate) idle: Option<CancelHandle>,
}

impl<M> Admission<M> {
    pub(crate) fn new() -> Admission<M> {
        Admission {
            state: Mutex::new(State {
                limit: None,
                fail_fast: true,
                running: 0,
                starting: 0,
                ending: 0,
                queued: VecDeque::new(),
                failed: false,
                error_kept: false,
                panic_kept: false,
                next_member: 0,
                idle: Signal::default(),
            }),
        }
    }

    pub(crate) fn set_limit(&self, n: usize) -> Result<(), LimitError> {
        if n == 0 {
            return Err(LimitError::Zero);
        }
        let mut st = lock(&self.state);
        if !st.is_quiet() {
            return Err(LimitError::MembersActive);
        }
        st.limit = Some(n);
        Ok(())
    }

    pub(crate) fn set_fail_fast(&self, on: bool) -> Result<(), LimitError> {
        let mut st = lock(&self.state);
        if !st.is_quiet() {
            return Err(LimitError::MembersActive);
        }
        st.fail_fast = on;
        Ok(())
    }

    /// Numbers a new member (`make` gets its sequence number; it only builds, it runs no user
    /// code) and decides: start now, queue (if `queue`), or refuse.
    pub(crate) fn admit(&self, queue: bool, make: impl FnOnce(u64) -> M) -> Admit<M> {
        let mut st = lock(&self.state);
        let member = make(st.next_member);
        st.next_member += 1;
        if st.failed && st.fail_fast {
            return Admit::Refused(member, SpawnError::FAILED);
        }
        if st.limit.is_some_and(|n| st.running >= n) {
            if !queue {
                return Admit::Refused(member, SpawnError::FULL);
            }
            st.queued.push_back(member);
            return Admit::Queued;
        }
        st.running += 1;
        st.starting += 1;
        Admit::Start(member)
    }

    /// Records that a started member's launch is done (its thread, if any, is recorded).
    #[must_use]
    pub(crate) fn launched(&self) -> Option<CancelHandle> {
        let mut st = lock(&self.state);
        st.starting -= 1;
        st.fire_if_idle()
    }

    /// Records a failure (before the member finishes, so `wait` sees its consequences).
    pub(crate) fn fail(&self, panicked: bool) -> Claim {
        let mut st = lock(&self.state);
        let cancel = !st.failed && st.fail_fast;
        st.failed = true;
        let kept = if panicked {
            &mut st.panic_kept
        } else {
            &mut st.error_kept
        };
        let keep = !*kept;
        *kept = true;
        Claim { cancel, keep }
    }

    /// Records that a member finished: frees its slot for queued members (or drops them, after
    /// a failure in fail-fast mode). The member counts as ending until [`ended`](Self::ended).
    #[must_use]
    pub(crate) fn finish(&self) -> After<M> {
        let mut st = lock(&self.state);
        st.running -= 1;
        st.ending += 1;
        let mut start = Vec::new();
        let mut skipped = Vec::new();
        if st.failed && st.fail_fast {
            skipped.extend(st.queued.drain(..));
        } else {
            while st.limit.is_none_or(|n| st.running < n) {
                let Some(member) = st.queued.pop_front() else {
                    break;
                };
                st.running += 1;
                st.starting += 1;
                start.push(member);
            }
        }
        After {
            start,
            skipped,
            idle: None,
        }
    }

    /// Records that a finished member's end is over: its handle has its outcome (the members
    /// its finish started count as running and starting until launched).
    #[must_use]
    pub(crate) fn ended(&self) -> Option<CancelHandle> {
        let mut st = lock(&self.state);
        st.ending -= 1;
        st.fire_if_idle()
    }

    /// The group was dropped without `wait` (invariant 5): the members still queued will never
    /// start; they are returned as `skipped`, to drop after the call.
    #[must_use]
    pub(crate) fn abandon(&self) -> After<M> {
        let mut st = lock(&self.state);
        let skipped = st.queued.drain(..).collect();
        let idle = st.fire_if_idle();
        After {
            start: Vec::new(),
            skipped,
            idle,
        }
    }

    /// `None` if idle now; else the context that is done once the group is idle.
    pub(crate) fn idle_signal(&self) -> Option<Context> {
        let mut st = lock(&self.state);
        if st.is_idle() {
            None
        } else {
            Some(st.idle.listen())
        }
    }

    /// `(limit, running, queued, failed)`, for `Debug`.
    pub(crate) fn snapshot(&self) -> (Option<usize>, usize, usize, bool) {
        let st = lock(&self.state);
        (st.limit, st.running, st.queued.len(), st.failed)
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Group admission under every interleaving (up to the preemption bound): the limit holds,
    //! each member runs exactly once or is dropped exactly once, exactly one failure cancels,
    //! and a waiter on the idle signal always wakes.

    use super::*;
    use crate::sync::Arc;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::thread;

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(2);
        }
        builder.check(f);
    }

    /// Runs `member` and every member its finish lets start, as a member thread does.
    fn run(
        adm: &Admission<u32>,
        member: u32,
        ran: &AtomicUsize,
        max: &AtomicUsize,
        now: &AtomicUsize,
    ) {
        let mut todo = vec![member];
        while let Some(m) = todo.pop() {
            drop(adm.launched());
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(n, Ordering::SeqCst);
            ran.fetch_add(1 << (8 * m), Ordering::SeqCst);
            now.fetch_sub(1, Ordering::SeqCst);
            let after = adm.finish();
            assert!(after.skipped.is_empty());
            todo.extend(after.start);
            drop(adm.ended());
        }
    }

    #[test]
    fn loom_group_limit_queue_and_idle() {
        model(|| {
            let adm = Arc::new(Admission::<u32>::new());
            adm.set_limit(1).unwrap();
            let ran = Arc::new(AtomicUsize::new(0));
            let max = Arc::new(AtomicUsize::new(0));
            let now = Arc::new(AtomicUsize::new(0));
            let spawner = |id: u32| {
                let (adm, ran, max, now) = (adm.clone(), ran.clone(), max.clone(), now.clone());
                thread::spawn(move || match adm.admit(true, |_| id) {
                    Admit::Start(m) => run(&adm, m, &ran, &max, &now),
                    Admit::Queued => {}
                    Admit::Refused(..) => panic!("nothing refuses in a live queueing group"),
                })
            };
            let a = spawner(0);
            let b = spawner(1);
            a.join().unwrap();
            b.join().unwrap();
            // Both admissions are done: the waiter sees idle, or waits and is woken.
            if let Some(idle) = adm.idle_signal() {
                idle.wait();
            }
            assert_eq!(
                ran.load(Ordering::SeqCst),
                1 | (1 << 8),
                "each ran exactly once"
            );
            assert_eq!(max.load(Ordering::SeqCst), 1, "the limit held");
            assert!(adm.idle_signal().is_none());
        });
    }

    #[test]
    fn loom_group_waiter_wakes_when_the_last_member_finishes() {
        model(|| {
            let adm = Arc::new(Admission::<u32>::new());
            let Admit::Start(m) = adm.admit(true, |_| 0) else {
                panic!("no limit: starts")
            };
            let member = {
                let adm = adm.clone();
                thread::spawn(move || {
                    let _ = m;
                    drop(adm.launched());
                    drop(adm.finish());
                    drop(adm.ended());
                })
            };
            // Waited on a thread of its own, which ends right after: the cancellation unparks
            // the waiter after releasing its locks, possibly once the wait has returned, and
            // loom's `unpark` wakes a thread blocked on anything, a `join` included (std
            // allows the stray unpark; see `loom_cancel_drop_derive_and_wait_at_once`).
            let waiter = {
                let adm = adm.clone();
                thread::spawn(move || {
                    if let Some(idle) = adm.idle_signal() {
                        idle.wait();
                    }
                })
            };
            waiter.join().unwrap();
            assert!(adm.idle_signal().is_none());
            member.join().unwrap();
        });
    }

    #[test]
    fn loom_group_slot_is_free_before_the_end_is_over() {
        model(|| {
            let adm = Arc::new(Admission::<u32>::new());
            adm.set_limit(1).unwrap();
            let Admit::Start(_) = adm.admit(false, |n| n as u32) else {
                panic!("a free slot")
            };
            drop(adm.launched());
            // The member's outcome, delivered between freeing the slot and the end's end.
            let delivered = Arc::new(AtomicUsize::new(0));
            let ender = {
                let (adm, delivered) = (adm.clone(), delivered.clone());
                thread::spawn(move || {
                    let after = adm.finish();
                    assert!(after.start.is_empty() && after.skipped.is_empty());
                    delivered.store(1, Ordering::SeqCst);
                    drop(adm.ended());
                })
            };
            if delivered.load(Ordering::SeqCst) == 1 {
                // Whoever saw the outcome finds the slot free and the settings open.
                assert!(adm.set_limit(1).is_ok(), "the settings after the outcome");
            }
            if let Some(idle) = adm.idle_signal() {
                idle.wait();
            }
            assert_eq!(
                delivered.load(Ordering::SeqCst),
                1,
                "idle only once the outcome is delivered"
            );
            ender.join().unwrap();
            assert!(matches!(adm.admit(false, |n| n as u32), Admit::Start(_)));
        });
    }

    #[test]
    fn loom_group_abandoned_queue_starts_or_drops_each_member_once() {
        model(|| {
            let adm = Arc::new(Admission::<u32>::new());
            adm.set_limit(1).unwrap();
            let Admit::Start(_) = adm.admit(true, |n| n as u32) else {
                panic!("a free slot")
            };
            assert!(matches!(adm.admit(true, |n| n as u32), Admit::Queued));
            drop(adm.launched());
            let finisher = {
                let adm = adm.clone();
                thread::spawn(move || {
                    let after = adm.finish();
                    drop(adm.ended());
                    let started = after.start.len();
                    for _ in 0..started {
                        drop(adm.launched());
                        drop(adm.finish());
                        drop(adm.ended());
                    }
                    started
                })
            };
            let after = adm.abandon();
            let skipped = after.skipped.len();
            drop(after.idle);
            let started = finisher.join().unwrap();
            assert_eq!(
                started + skipped,
                1,
                "the queued member started or was dropped, once"
            );
            assert!(adm.idle_signal().is_none());
        });
    }

    #[test]
    fn loom_group_first_failure_is_unique_and_skips_the_queue() {
        model(|| {
            let adm = Arc::new(Admission::<u32>::new());
            adm.set_limit(2).unwrap();
            let (Admit::Start(_), Admit::Start(_)) =
                (adm.admit(true, |n| n as u32), adm.admit(true, |n| n as u32))
            else {
                panic!("two slots")
            };
            assert!(matches!(adm.admit(true, |n| n as u32), Admit::Queued));
            drop(adm.launched());
            drop(adm.launched());
            let failer = |panicked: bool| {
                let adm = adm.clone();
                thread::spawn(move || {
                    let claim = adm.fail(panicked);
                    let after = adm.finish();
                    assert!(after.start.is_empty(), "nothing starts after a failure");
                    drop(adm.ended());
                    (claim, after.skipped.len())
                })
            };
            let a = failer(false);
            let b = failer(false);
            let (ca, sa) = a.join().unwrap();
            let (cb, sb) = b.join().unwrap();
            assert!(ca.cancel ^ cb.cancel, "exactly one failure cancels");
            assert!(ca.keep ^ cb.keep, "exactly one error is kept");
            assert_eq!(sa + sb, 1, "the queued member is dropped exactly once");
            assert!(matches!(adm.admit(true, |n| n as u32), Admit::Refused(_, e) if e.is_failed()));
            assert!(adm.idle_signal().is_none());
        });
    }
}
