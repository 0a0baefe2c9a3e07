//! The timer's threads: a *firer* that sleeps until the earliest deadline and expires due
//! entries one at a time, and a *standby* that takes over when an expiry is stuck in slow user
//! code, so a slow waker delays unrelated deadlines by about [`STALL`], not by its own duration.
//!
//! Generic over what it fires ([`Expire`]): the node timer is one instance
//! (`timer::DEADLINES`), and the unit tests below drive others with test payloads.
//!
//! # Invariants
//!
//! 1. Never early, in order: the firer reads the clock after every wake-up (spurious or not)
//!    and pops entries only if their deadline is at or before that reading, in `(deadline, id)`
//!    order across the shards (a merge of their fronts), at most [`BATCH`] at a time into its
//!    *hand*; it expires them one by one, in that order, with no lock held. An entry is expired
//!    only after the previous one has *landed* (its `expire` returned, or [`Expire::landed`]
//!    says its ordering effect is visible): see 4.
//! 2. No lock is held while user code runs: `expire` and the drops of entries and probes happen
//!    after every lock is released. The entries live in [`SHARDS`] queues, each under its own
//!    lock, chosen by a hash of `(deadline, id)` (so `disarm` finds the shard again from its
//!    arguments, and two threads arming at once nearly never meet on one lock). A shard's lock
//!    is held for one queue operation, or one pop, at a time, so a burst of equal deadlines
//!    keeps `arm` and `disarm` waiting for at most one entry's removal. Lock order: the state
//!    lock, then a hand's lock, then one shard's lock; `arm` and `disarm` take a shard's lock
//!    alone (and `arm`, after releasing it, may take the state lock alone); the firer takes its
//!    hand's lock alone for each entry, so arming threads never wait on it.
//! 3. Wake-ups without the state lock: `wake_at` is the deadline before which an `arm` must
//!    notify the firer (`arm` inserts, releases the shard, then loads `wake_at`, and takes the
//!    state lock to notify only if its deadline is earlier). The firer stores `i64::MAX`
//!    ("tell me") there before it scans the shards under the state lock, then the time it will
//!    wake up by itself (or `i64::MAX` if it will wait for a notification) before it waits, or
//!    `i64::MIN` ("no need") while it fires (it scans again before sleeping). Every access is
//!    `Relaxed`: the shard lock orders them. An `arm` whose insert comes after the scan of its
//!    shard took that shard's lock after the scan released it, so the store that preceded the
//!    scan happens before the `arm`'s load, which reads it or a later value (coherence): `MAX`,
//!    `MIN` from a firing that will scan again, or a wake-up time the firer will keep. An `arm`
//!    whose insert comes before the scan is seen by the scan. Either way no entry waits past
//!    its deadline for a notification that never came, and a steady stream of long timeouts
//!    costs no lock but its shard's and no system call. The notify itself happens under the
//!    state lock, which the firer holds from its scan until it waits, so it is never lost.
//!    `standby_at` is the same for the standby (`arm` notifies it if its deadline plus
//!    [`STALL`] is earlier; `i64::MIN` while there is no standby, `i64::MAX` while the OS
//!    refuses one: see 5), planned [`STALL`] after the earliest deadline or the current
//!    expiry's start.
//! 4. Takeover: the hand records the entry being expired and when it started (it stays
//!    recorded, landed, while the firer drops its probe after the expiry). If the standby
//!    finds it there for [`STALL`] or more *and landed*, it marks the hand abandoned, puts the
//!    hand's unexpired entries back in their shards (they are due and earlier than any other
//!    entry, so the order holds), bumps `generation` and becomes the firer; the stuck
//!    thread, on its return, sees the abandoned hand and a newer generation and becomes the
//!    standby (or exits if there is one: a standby is spawned under the state lock, so
//!    `has_standby` is never a spawn the OS may yet refuse). Requiring "landed" keeps invariant 1 across a
//!    takeover: a firer that is merely slow to reach its entry's effect (descheduled, say) is
//!    waited for. What the takeover lets go of (the stuck expiry's probe, entries that need no
//!    firing any more) may hold last references to user values: the new firer drops them
//!    under a hand of its own that shows an expiry in progress, landed, with a new standby
//!    watching, so a stall there is taken over in turn.
//! 5. At most [`MAX_THREADS`] threads exist; a takeover needs a free one for the next standby,
//!    so at most `MAX_THREADS - 2` expiries can be stuck at once. Beyond that, deadlines wait for
//!    a stuck expiry to return. If the OS refuses the standby, a firer stuck since cannot ask
//!    again: every `arm` does (`standby_at` is "tell me", and `notify` starts the standby, at
//!    most once per [`RETRY_SPAWN`]), so the next deadline armed after that brings the
//!    takeover.
//! 6. An entry being expired is in no queue, so a `disarm` of it from its own `expire` (the
//!    tree disarms every node it cancels) finds nothing: the firer notes it in a thread-local
//!    and such a `disarm` returns without taking a lock.
//! 7. An entry changes form only under its shard's lock: [`Expire::take`] as the firer pops it,
//!    [`Expire::requeue`] as a takeover puts it back. So what the owner of the entries argues
//!    about a queued entry (the node timer: its node is alive while it is queued, see
//!    `tree/deadline.rs`) may rely on the shard's lock ordering these against `arm` and
//!    `disarm`.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use super::queue::{Id, Key, Queue};
use crate::clock::{self, Ticks};

/// How long an expiry may take before the standby takes over the firing.
pub(crate) const STALL: Duration = Duration::from_millis(10);

/// The most threads a timer runs (firer, standby, and expiries stuck in user code).
pub(crate) const MAX_THREADS: usize = 32;

/// The most due entries the firer pops at once.
pub(crate) const BATCH: usize = 32;

/// How many queues the entries are spread over (invariant 2): a power of two.
pub(crate) const SHARDS: usize = 16;

/// After the OS refuses the standby thread, how long until the firer or an `arm` asks again.
const RETRY_SPAWN: Duration = Duration::from_millis(100);

/// What a timer fires: the entry as it waits in a queue (`Self`) and as the firer holds it
/// once it is due ([`Expire::Due`]). The two may differ: the node timer's queued entry holds
/// only its node's address, and its due entry a reference (invariant 7).
pub(crate) trait Expire: Id + Send + 'static {
    /// A due entry, taken out of its queue by the firer.
    type Due: Id + Send + 'static;

    /// Tells whether an expiry in progress has taken its ordering effect (for the node timer:
    /// the node is done). Dropping a probe while its `expire` runs must run no user code.
    type Probe: Send + 'static;

    /// The entry as the firer takes it out of its queue: called under its shard's lock.
    /// Must run no user code.
    fn take(self) -> Self::Due;

    /// A takeover puts a due entry back (invariant 4), under its shard's lock: `Ok` with the
    /// entry to queue again and what to drop once the lock is released, or `Err` with the
    /// whole due entry (to drop, after the lock) if it needs no firing any more. Must run no
    /// user code.
    fn requeue(due: Self::Due) -> Result<(Self, Self::Probe), Self::Due>
    where
        Self: Sized;

    fn probe(due: &Self::Due) -> Self::Probe;

    /// Whether later entries may be expired before this expiry returns (invariant 4).
    fn landed(probe: &Self::Probe) -> bool;

    /// Fires the entry, with no lock of the timer held. May run user code and take any time;
    /// a panic is caught (the panic hook has reported it). `at` is the entry's deadline.
    fn expire(due: Self::Due, at: Ticks);
}

/// One timer: a queue of entries and the threads that fire them.
pub(crate) struct Timer<E: Expire> {
    name: &'static str,
    shards: [Shard<E>; SHARDS],
    /// Read by every `arm`, written by the timer's threads only when they plan (invariant 3):
    /// on a line of their own, apart from the state the firer writes.
    wake: Wake,
    state: Mutex<State<E>>,
    firer: Condvar,
    standby: Condvar,
    /// How many times an `arm` notified the firer (tests: which patterns cost a wake-up).
    #[cfg(test)]
    notified: std::sync::atomic::AtomicUsize,
    /// Fault injection: how many standby threads the "OS" refuses next.
    #[cfg(test)]
    refuse_standby: std::sync::atomic::AtomicUsize,
    /// Runs as a standby thread is spawned, before `refuse_standby` is read.
    #[cfg(test)]
    spawning_standby: Mutex<Option<Box<dyn FnMut() + Send>>>,
    /// How many superseded threads exited.
    #[cfg(test)]
    stepped_down: std::sync::atomic::AtomicUsize,
    /// Runs as the firer has read the shards' fronts, before it pops the due entries.
    #[cfg(test)]
    merging: Mutex<Option<Box<dyn FnMut() + Send>>>,
}

/// One shard's queue, on its own cache lines (two threads arming in different shards do not
/// share a line).
#[repr(align(128))]
struct Shard<E>(Mutex<Queue<E>>);

/// Invariant 3: `arm` notifies the firer if its deadline is before `wake_at`, the standby if
/// its deadline plus [`STALL`] is before `standby_at`.
#[repr(align(128))]
struct Wake {
    wake_at: AtomicI64,
    standby_at: AtomicI64,
}

/// `wake_at`/`standby_at`: every `arm` must notify.
const TELL_ME: Ticks = i64::MAX;
/// `wake_at`/`standby_at`: no `arm` needs to notify.
const NO_NEED: Ticks = i64::MIN;

struct State<E: Expire> {
    /// When the firer planned to wake up by itself (`None`: it waits for a notification).
    wake_at: Option<Ticks>,
    /// Bumped by every takeover (invariant 4).
    generation: u64,
    /// The current firer's hand (kept from batch to batch), for the standby to watch.
    hand: Option<Arc<Mutex<Hand<E>>>>,
    firer_running: bool,
    has_standby: bool,
    /// When the OS last refused the standby thread.
    refused_at: Option<Ticks>,
    threads: usize,
}

/// Due entries popped by the firer and not yet expired, and the expiry in progress.
struct Hand<E: Expire> {
    entries: VecDeque<(Ticks, E::Due)>,
    /// The expiry in progress (or the last one, until the next starts): its start, its probe
    /// (`None` once its expiry has returned and the firer drops the probe, which may hold the
    /// last reference to what the entry fired: a stall there is taken over too).
    current: Option<(Ticks, Option<E::Probe>)>,
    /// Set by a takeover: the firer holding this hand has been superseded (invariant 4).
    abandoned: bool,
}

fn lock_hand<E: Expire>(hand: &Mutex<Hand<E>>) -> MutexGuard<'_, Hand<E>> {
    // No user code runs under this lock either.
    lock(hand)
}

/// Locks `m`, ignoring poison: no user code runs under the timer's locks, so poison can only
/// be a bug here, and the data stays valid.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

thread_local! {
    /// The entry this thread is expiring: `(timer address, deadline, id)` (invariant 6).
    static EXPIRING: Cell<Option<(usize, Ticks, usize)>> = const { Cell::new(None) };
}

/// Runs `f`, which may run user code, so that its panic (already reported by the panic hook)
/// neither unwinds through a timer thread, which every deadline depends on, nor skips the rest
/// of the firing.
fn quietly(f: impl FnOnce()) {
    crate::unwind::contain(f);
}

/// Waits on `cv` until `target` (read against `now`), or for a notification if `None`.
fn sleep_until<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    now: Ticks,
    target: Option<Ticks>,
) -> MutexGuard<'a, T> {
    match target {
        None => cv.wait(guard).unwrap_or_else(|p| p.into_inner()),
        Some(at) => {
            let timeout = Duration::from_nanos(at.saturating_sub(now).max(0) as u64);
            cv.wait_timeout(guard, timeout)
                .unwrap_or_else(|p| p.into_inner())
                .0
        }
    }
}

#[derive(Clone, Copy)]
enum Role {
    Firer(u64),
    Standby,
}

/// The OS refused to start the firer thread; the entry stays armed and the next `arm` tries
/// again.
#[derive(Debug)]
pub(crate) struct Refused;

impl<E: Expire> Timer<E> {
    pub(crate) const fn new(name: &'static str) -> Timer<E> {
        Timer {
            name,
            shards: [const { Shard(Mutex::new(Queue::new())) }; SHARDS],
            wake: Wake {
                // No firer yet: the first `arm` starts it.
                wake_at: AtomicI64::new(TELL_ME),
                standby_at: AtomicI64::new(NO_NEED),
            },
            state: Mutex::new(State {
                wake_at: None,
                generation: 0,
                hand: None,
                firer_running: false,
                has_standby: false,
                refused_at: None,
                threads: 0,
            }),
            firer: Condvar::new(),
            standby: Condvar::new(),
            #[cfg(test)]
            notified: std::sync::atomic::AtomicUsize::new(0),
            #[cfg(test)]
            refuse_standby: std::sync::atomic::AtomicUsize::new(0),
            #[cfg(test)]
            spawning_standby: Mutex::new(None),
            #[cfg(test)]
            stepped_down: std::sync::atomic::AtomicUsize::new(0),
            #[cfg(test)]
            merging: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<E>> {
        // No user code runs under this lock: poison can only be a bug here, and the queue
        // stays valid.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The shard of the entry `(at, id)` (invariant 2). `at` takes part, so that one thread's
    /// entries (often at one address, reused) spread over every shard.
    fn shard(&self, at: Ticks, id: usize) -> &Mutex<Queue<E>> {
        let h = ((at as u64) ^ (id as u64).rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        &self.shards[(h >> (64 - SHARDS.trailing_zeros())) as usize].0
    }

    /// Arms `entry` for `at`. `Err` if the firer thread is not running and the OS refused to
    /// start it: the entry stays armed, and the next `arm` tries again.
    pub(crate) fn arm(&'static self, at: Ticks, entry: E) -> Result<(), Refused> {
        let id = entry.id();
        lock(self.shard(at, id)).insert(at, entry);
        // Invariant 3: after the shard's lock is released.
        let watch = at.saturating_add(clock::span(STALL));
        if at < self.wake.wake_at.load(Ordering::Relaxed)
            || watch < self.wake.standby_at.load(Ordering::Relaxed)
        {
            return self.notify(at, watch);
        }
        Ok(())
    }

    /// The slow path of `arm` (invariant 3): starts the firer, or wakes it or the standby to
    /// plan again for `at`, or starts the standby the OS refused (invariant 5).
    #[cold]
    fn notify(&'static self, at: Ticks, watch: Ticks) -> Result<(), Refused> {
        let mut st = self.lock();
        if !st.firer_running {
            st.firer_running = true;
            st.threads += 1;
            let generation = st.generation;
            // The thread waits for this lock, then scans the shards: it finds the entry.
            if self.spawn(Role::Firer(generation)).is_err() {
                st.firer_running = false;
                st.threads -= 1;
                return Err(Refused);
            }
            return Ok(());
        }
        // Under the state lock, which the firer holds from its scan until it waits: the
        // notification cannot fall between the two.
        if at < self.wake.wake_at.load(Ordering::Relaxed) {
            self.wake.wake_at.store(at, Ordering::Relaxed);
            st.wake_at = Some(at);
            self.firer.notify_one();
            #[cfg(test)]
            self.notified.fetch_add(1, Ordering::Relaxed);
        }
        if st.has_standby && watch < self.wake.standby_at.load(Ordering::Relaxed) {
            self.wake.standby_at.store(watch, Ordering::Relaxed);
            self.standby.notify_one();
        } else if !st.has_standby && st.refused_at.is_some() {
            // Invariant 5: the OS refused the standby, and a stuck firer cannot ask again.
            drop(self.start_standby(st, clock::now()));
        }
        Ok(())
    }

    /// Removes the entry armed for `at` with `id`, if it has not been popped yet. The caller
    /// drops it (after the lock is released).
    pub(crate) fn disarm(&self, at: Ticks, id: usize) -> Option<E> {
        let me = self as *const Self as usize;
        if EXPIRING.with(Cell::get) == Some((me, at, id)) {
            // Invariant 6: being expired, so in no queue.
            return None;
        }
        lock(self.shard(at, id)).remove(at, id)
    }

    /// Puts back due entries taken from the queues (a takeover's, invariant 4), those that
    /// still need firing ([`Expire::requeue`]). Returns what to drop once every lock is
    /// released.
    fn put_back(
        &self,
        entries: impl IntoIterator<Item = (Ticks, E::Due)>,
    ) -> Vec<Result<E::Probe, E::Due>> {
        let mut to_drop = Vec::new();
        for (at, due) in entries {
            let mut q = lock(self.shard(at, due.id()));
            to_drop.push(match E::requeue(due) {
                Ok((entry, keep)) => {
                    q.insert(at, entry);
                    Ok(keep)
                }
                Err(due) => Err(due),
            });
        }
        to_drop
    }

    /// The first key of every shard, taking each shard's lock in turn.
    fn fronts(&self) -> [Option<Key>; SHARDS] {
        std::array::from_fn(|i| lock(&self.shards[i].0).first())
    }

    #[cfg(test)]
    pub(crate) fn contains_id(&self, id: usize) -> bool {
        self.shards.iter().any(|s| lock(&s.0).contains_id(id))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(&s.0).len()).sum()
    }

    fn spawn(&'static self, role: Role) -> std::io::Result<()> {
        #[cfg(test)]
        if let (Role::Standby, Some(f)) = (role, lock(&self.spawning_standby).as_mut()) {
            f();
        }
        #[cfg(test)]
        if matches!(role, Role::Standby)
            && self
                .refuse_standby
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(std::io::Error::other("refused (test)"));
        }
        thread::Builder::new()
            .name(self.name.into())
            .spawn(move || self.run(role))
            .map(drop)
    }

    fn run(&'static self, mut role: Role) {
        let mut st = self.lock();
        loop {
            st = match role {
                Role::Firer(generation) if generation != st.generation => {
                    // Superseded while stuck (invariant 4).
                    if st.has_standby {
                        st.threads -= 1;
                        #[cfg(test)]
                        self.stepped_down.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    st.has_standby = true;
                    role = Role::Standby;
                    st
                }
                Role::Firer(_) => self.fire_or_sleep(st),
                Role::Standby => match self.watch(st) {
                    (st, Some(generation)) => {
                        // Superseded already if its drops stalled (see `watch`).
                        role = Role::Firer(generation);
                        st
                    }
                    (st, None) => st,
                },
            };
        }
    }

    /// One step of the firer: expire a batch of due entries, or sleep until the next one.
    fn fire_or_sleep<'a>(
        &'static self,
        mut st: MutexGuard<'a, State<E>>,
    ) -> MutexGuard<'a, State<E>> {
        let now = clock::now();
        // Invariant 3: every `arm` from here on notifies, until the plan below is stored.
        self.wake.wake_at.store(TELL_ME, Ordering::Relaxed);
        let mut fronts = self.fronts();
        let next = fronts.iter().flatten().min().map(|k| k.0);
        if next.is_none_or(|at| at > now) {
            // Keep an earlier planned wake-up that is still ahead: re-planning it away would
            // make the next arm notify again.
            let planned = st.wake_at.filter(|w| *w > now);
            let target = match (next, planned) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            st.wake_at = target;
            self.wake
                .wake_at
                .store(target.unwrap_or(TELL_ME), Ordering::Relaxed);
            return sleep_until(&self.firer, st, now, target);
        }
        // Firing: the firer scans again before it sleeps, so no `arm` needs to notify.
        self.wake.wake_at.store(NO_NEED, Ordering::Relaxed);
        st = self.start_standby(st, now);
        #[cfg(test)]
        if let Some(f) = lock(&self.merging).as_mut() {
            f();
        }
        let hand = Arc::clone(st.hand.get_or_insert_with(|| {
            Arc::new(Mutex::new(Hand {
                entries: VecDeque::with_capacity(BATCH),
                current: None,
                abandoned: false,
            }))
        }));
        {
            // Invariant 2: the state lock, then the hand's, then one shard's at a time.
            // Invariant 1: a merge of the shards' fronts, in key order.
            let mut h = lock_hand(&hand);
            while h.entries.len() < BATCH {
                let Some((i, k)) = fronts
                    .iter()
                    .enumerate()
                    .filter_map(|(i, k)| Some((i, (*k)?)))
                    .filter(|(_, k)| k.0 <= now)
                    .min_by_key(|(_, k)| *k)
                else {
                    break;
                };
                let mut q = lock(&self.shards[i].0);
                // Only the front the merge chose: a front disarmed (or armed) since it was read
                // leaves another, which is merged again.
                let popped = if q.first() == Some(k) {
                    q.pop_due(now)
                } else {
                    None
                };
                if let Some((at, entry)) = popped {
                    // Under the shard's lock (invariant 7).
                    h.entries.push_back((at, entry.take()));
                }
                fronts[i] = q.first();
            }
        }
        drop(st);
        let me = self as *const Self as usize;
        loop {
            let mut h = lock_hand(&hand);
            // The probe may hold the last reference to what its entry fired: the expiry stays
            // current (landed) while it is dropped, so a stall there is taken over too.
            let last = h.current.as_mut().and_then(|(_, probe)| probe.take());
            if last.is_some() {
                drop(h);
                quietly(move || drop(last));
                h = lock_hand(&hand);
            }
            h.current = None;
            let next = if h.abandoned {
                None
            } else {
                h.entries.pop_front()
            };
            if let Some((_, entry)) = &next {
                h.current = Some((clock::now(), Some(E::probe(entry))));
            }
            drop(h);
            let Some((at, entry)) = next else {
                break;
            };
            EXPIRING.with(|e| e.set(Some((me, at, entry.id()))));
            quietly(move || E::expire(entry, at));
            EXPIRING.with(|e| e.set(None));
        }
        // A superseded firer finds a newer generation in `run` (invariant 4).
        self.lock()
    }

    /// Starts a standby if there is none and a thread is free (and the OS has not refused one
    /// lately). The thread is spawned under the state lock, as the firer's in `notify`: a
    /// superseded firer reads `has_standby` to step down only once it is known whether the OS
    /// gave the thread (invariant 5). If the OS refused it, every `arm` asks again: the firer
    /// may be stuck already.
    fn start_standby<'a>(
        &'static self,
        mut st: MutexGuard<'a, State<E>>,
        now: Ticks,
    ) -> MutexGuard<'a, State<E>> {
        if !st.has_standby && st.threads < MAX_THREADS {
            if self.may_spawn(&st, now) {
                // The thread waits for this lock, then watches.
                if self.spawn(Role::Standby).is_ok() {
                    st.has_standby = true;
                    st.threads += 1;
                } else {
                    st.refused_at = Some(now);
                }
            }
            if !st.has_standby && st.refused_at.is_some() {
                // Until a standby plans (invariant 3), every `arm` takes the slow path.
                self.wake.standby_at.store(TELL_ME, Ordering::Relaxed);
            }
        }
        st
    }

    fn may_spawn(&self, st: &State<E>, now: Ticks) -> bool {
        st.refused_at
            .is_none_or(|t| now.saturating_sub(t) >= clock::span(RETRY_SPAWN))
    }

    /// One step of the standby: take over a stuck firing (`Some` with the generation it fires
    /// for), or sleep until the next moment one could be stuck.
    fn watch<'a>(
        &'static self,
        mut st: MutexGuard<'a, State<E>>,
    ) -> (MutexGuard<'a, State<E>>, Option<u64>) {
        let now = clock::now();
        let stall = clock::span(STALL);
        let mut target = None;
        if let Some(hand) = st.hand.clone() {
            let mut h = lock_hand(&hand);
            if let Some((since, probe)) = &h.current {
                if now.saturating_sub(*since) < stall {
                    target = Some(since.saturating_add(stall));
                } else if !probe.as_ref().is_none_or(E::landed) {
                    // Not landed yet: look again a little later.
                    target = Some(now.saturating_add(stall));
                } else {
                    // Invariant 4: take over; the unexpired entries go back to their shards.
                    h.abandoned = true;
                    let stale = h.current.take();
                    let rest = std::mem::take(&mut h.entries);
                    drop(h);
                    let requeued = self.put_back(rest);
                    // The stuck thread keeps its count in `threads`. What is let go of below
                    // may hold the last references to what the stuck firer held (user code
                    // to drop): the new hand shows it as an expiry in progress, landed, for a
                    // new standby to take over from if it stalls.
                    let hand = Arc::new(Mutex::new(Hand {
                        entries: VecDeque::with_capacity(BATCH),
                        current: Some((now, None)),
                        abandoned: false,
                    }));
                    st.hand = Some(Arc::clone(&hand));
                    st.generation += 1;
                    let generation = st.generation;
                    st.has_standby = false;
                    self.wake.standby_at.store(NO_NEED, Ordering::Relaxed);
                    drop(self.start_standby(st, now));
                    quietly(move || drop((stale, requeued)));
                    lock_hand(&hand).current = None;
                    return (self.lock(), Some(generation));
                }
            } else if !h.entries.is_empty() {
                // Popped, the first not started yet: no arm will tell us when it starts (its
                // entries are in no queue), so look again once it could be stuck.
                target = Some(now.saturating_add(stall));
            }
        }
        // Invariant 3, as for the firer: "tell me" while scanning, then the plan.
        self.wake.standby_at.store(TELL_ME, Ordering::Relaxed);
        let target = target.or_else(|| {
            let next = self.fronts().into_iter().flatten().min();
            next.map(|k| k.0.max(now).saturating_add(stall))
        });
        self.wake
            .standby_at
            .store(target.unwrap_or(TELL_ME), Ordering::Relaxed);
        (sleep_until(&self.standby, st, now, target), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::Instant;

    const PATIENCE: Duration = Duration::from_secs(30);

    /// What the test entries record: `(deadline, id, when it fired)`.
    #[derive(Default)]
    struct Log {
        fired: Mutex<Vec<(Ticks, usize, Ticks)>>,
        changed: Condvar,
    }

    impl Log {
        fn push(&self, at: Ticks, id: usize) {
            let now = clock::now();
            self.fired.lock().unwrap().push((at, id, now));
            self.changed.notify_all();
        }

        /// Waits (bounded) until `n` entries have fired; returns what fired.
        fn wait_for(&self, n: usize) -> Vec<(Ticks, usize, Ticks)> {
            let start = Instant::now();
            let mut fired = self.fired.lock().unwrap();
            while fired.len() < n {
                assert!(
                    start.elapsed() < PATIENCE,
                    "only {} of {n} fired",
                    fired.len()
                );
                fired = self.changed.wait_timeout(fired, PATIENCE).unwrap().0;
            }
            fired.clone()
        }
    }

    type Action = Box<dyn FnOnce(&AtomicBool) + Send>;

    struct Job {
        at: Ticks,
        id: usize,
        log: Arc<Log>,
        landed: Arc<AtomicBool>,
        /// Runs after the entry is logged; it decides when the entry lands (default: at once).
        action: Option<Action>,
    }

    impl Id for Job {
        fn id(&self) -> usize {
            self.id
        }
    }

    impl Expire for Job {
        type Due = Job;
        type Probe = Arc<AtomicBool>;

        fn take(self) -> Job {
            self
        }

        fn requeue(due: Job) -> Result<(Job, Arc<AtomicBool>), Job> {
            let keep = Arc::clone(&due.landed);
            Ok((due, keep))
        }

        fn probe(due: &Job) -> Arc<AtomicBool> {
            Arc::clone(&due.landed)
        }

        fn landed(probe: &Arc<AtomicBool>) -> bool {
            probe.load(Ordering::SeqCst)
        }

        fn expire(due: Job, at: Ticks) {
            assert_eq!(at, due.at);
            due.log.push(due.at, due.id);
            match due.action {
                Some(action) => action(&due.landed),
                None => due.landed.store(true, Ordering::SeqCst),
            }
        }
    }

    fn timer() -> &'static Timer<Job> {
        Box::leak(Box::new(Timer::new("test-timer")))
    }

    fn job(at: Ticks, id: usize, log: &Arc<Log>, action: Option<Action>) -> Job {
        Job {
            at,
            id,
            log: Arc::clone(log),
            landed: Arc::new(AtomicBool::new(false)),
            action,
        }
    }

    fn ms(n: u64) -> Ticks {
        clock::span(Duration::from_millis(n))
    }

    /// xorshift64*.
    fn rng(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    #[test]
    fn entries_fire_in_order_and_never_early() {
        const N: usize = 2000;
        let mut head_start = ms(50);
        let mut s = 3;
        loop {
            let t = timer();
            let log = Arc::new(Log::default());
            let start = clock::now() + head_start;
            for id in 0..N {
                // Many equal deadlines among them.
                let at = start + (rng(&mut s) % 200) as Ticks * ms(1) / 2;
                t.arm(at, job(at, id, &log, None)).unwrap();
            }
            if clock::now() >= start {
                // Arming outlasted the head start (a loaded machine): order is only promised
                // among entries armed before the first is due. Again, with more room.
                assert!(head_start < ms(30_000), "could not arm in time");
                head_start *= 4;
                continue;
            }
            let fired = log.wait_for(N);
            for w in fired.windows(2) {
                assert!((w[0].0, w[0].1) < (w[1].0, w[1].1), "out of order: {w:?}");
            }
            for (at, _, when) in &fired {
                assert!(when >= at, "fired {} ns early", at - when);
            }
            return;
        }
    }

    #[test]
    fn a_stuck_expiry_does_not_hold_up_later_entries() {
        // Three entries in a row get stuck (each until the last one fires); the last one must
        // still fire: each stuck firer is taken over after STALL.
        const STUCK: usize = 3;
        let t = timer();
        let log = Arc::new(Log::default());
        let (tx, rx) = mpsc::channel::<()>();
        let rx = Arc::new(Mutex::new(rx));
        let released = Arc::new(AtomicUsize::new(0));
        let start = clock::now() + ms(5);
        for id in 0..STUCK {
            let rx = Arc::clone(&rx);
            let released = Arc::clone(&released);
            let action: Action = Box::new(move |landed| {
                landed.store(true, Ordering::SeqCst);
                // Stuck until the last entry fires (each one passes the news on).
                let got = rx.lock().unwrap().recv_timeout(PATIENCE);
                if got.is_ok() {
                    released.fetch_add(1, Ordering::SeqCst);
                }
            });
            t.arm(
                start + id as Ticks,
                job(start + id as Ticks, id, &log, Some(action)),
            )
            .unwrap();
        }
        let last: Action = Box::new(move |landed| {
            landed.store(true, Ordering::SeqCst);
            for _ in 0..STUCK {
                tx.send(()).unwrap();
            }
        });
        let at = start + ms(1);
        t.arm(at, job(at, STUCK, &log, Some(last))).unwrap();
        let fired = log.wait_for(STUCK + 1);
        assert_eq!(fired.iter().map(|f| f.1).collect::<Vec<_>>(), [0, 1, 2, 3]);
        // Every stuck one was released by the last one, not by its own timeout.
        let bound = Instant::now() + PATIENCE;
        while released.load(Ordering::SeqCst) < STUCK {
            assert!(
                Instant::now() < bound,
                "the last entry waited for the stuck ones"
            );
            thread::yield_now();
        }
        // The threads of the stuck ones go away again (one firer, one standby remain).
        while t.lock().threads > 2 {
            assert!(Instant::now() < bound, "superseded threads did not exit");
            thread::yield_now();
        }
    }

    #[test]
    fn a_refused_standby_is_asked_for_again_while_an_expiry_is_stuck() {
        // The OS refuses the standby as the first batch starts, and that batch's entry gets
        // stuck until a later one fires. Once RETRY_SPAWN has passed, the next arm must get
        // the standby started, which takes over: the later entry fires while the first is
        // still stuck (nobody else is left to ask for the standby again).
        let t = timer();
        t.refuse_standby.store(1, Ordering::SeqCst);
        let log = Arc::new(Log::default());
        let (stuck_tx, stuck_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        let start = clock::now() + ms(2);
        let stuck: Action = Box::new(move |landed| {
            landed.store(true, Ordering::SeqCst);
            stuck_tx.send(()).unwrap();
            let released = release_rx.recv_timeout(PATIENCE).is_ok();
            done_tx.send(released).unwrap();
        });
        t.arm(start, job(start, 0, &log, Some(stuck))).unwrap();
        stuck_rx
            .recv_timeout(PATIENCE)
            .expect("the first entry fired");
        let refused = {
            let mut st = t.lock();
            assert!(!st.has_standby, "the standby was refused");
            assert_eq!(st.threads, 1, "a refused thread keeps no slot");
            let refused = st.refused_at.expect("refused");
            // The retry is due (rather than waiting RETRY_SPAWN here).
            st.refused_at = Some(refused - clock::span(RETRY_SPAWN));
            refused
        };
        let at = clock::now().max(refused) + ms(1);
        let release: Action = Box::new(move |landed| {
            landed.store(true, Ordering::SeqCst);
            release_tx.send(()).unwrap();
        });
        t.arm(at, job(at, 1, &log, Some(release))).unwrap();
        let released = done_rx
            .recv_timeout(PATIENCE * 2)
            .expect("the stuck entry returned");
        assert!(released, "the later entry waited for the stuck one");
        let fired = log.wait_for(2);
        assert_eq!(fired.iter().map(|f| f.1).collect::<Vec<_>>(), [0, 1]);
        // The stuck thread goes away again (one firer, one standby remain).
        let bound = Instant::now() + PATIENCE;
        while t.lock().threads > 2 {
            assert!(Instant::now() < bound, "the superseded thread did not exit");
            thread::yield_now();
        }
    }

    #[test]
    fn a_superseded_firer_stays_as_the_standby_when_the_next_one_is_refused() {
        // `a` gets stuck; the standby takes over and asks for a new standby, which the OS
        // refuses, while `a` returns. Its thread must stay as the standby (had it taken the
        // pending spawn for a standby, none would be left): `b`, stuck next, is taken over in
        // turn, and `c` fires while `b` waits for it.
        let t = timer();
        let log = Arc::new(Log::default());
        let (stuck_tx, stuck_rx) = mpsc::channel();
        let (release_a, released_a) = mpsc::channel::<()>();
        let (took_over_tx, took_over) = mpsc::channel();
        let mut spawns = 0;
        *lock(&t.spawning_standby) = Some(Box::new(move || {
            spawns += 1;
            if spawns == 2 {
                // The takeover's: `a` returns meanwhile, then the OS refuses.
                release_a.send(()).unwrap();
                let bound = Instant::now() + Duration::from_secs(1);
                while t.stepped_down.load(Ordering::Relaxed) == 0 && Instant::now() < bound {
                    thread::yield_now();
                }
                t.refuse_standby.store(1, Ordering::SeqCst);
                took_over_tx.send(()).unwrap();
            }
        }));
        let start = clock::now() + ms(2);
        let a: Action = Box::new(move |landed| {
            landed.store(true, Ordering::SeqCst);
            stuck_tx.send(()).unwrap();
            released_a.recv_timeout(PATIENCE).unwrap();
        });
        t.arm(start, job(start, 0, &log, Some(a))).unwrap();
        stuck_rx.recv_timeout(PATIENCE).expect("`a` fired");
        took_over
            .recv_timeout(PATIENCE)
            .expect("the standby took over");
        let (release_b, released_b) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        let b: Action = Box::new(move |landed| {
            landed.store(true, Ordering::SeqCst);
            done_tx
                .send(released_b.recv_timeout(PATIENCE).is_ok())
                .unwrap();
        });
        let c: Action = Box::new(move |landed| {
            landed.store(true, Ordering::SeqCst);
            let _ = release_b.send(());
        });
        let at = clock::now() + ms(1);
        t.arm(at, job(at, 1, &log, Some(b))).unwrap();
        t.arm(at + 1, job(at + 1, 2, &log, Some(c))).unwrap();
        let released = done_rx.recv_timeout(PATIENCE * 2).expect("`b` returned");
        assert!(released, "`c` waited for the stuck `b`");
        let fired = log.wait_for(3);
        assert_eq!(fired.iter().map(|f| f.1).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn an_expiry_that_has_not_landed_is_waited_for() {
        // The first entry takes 5 x STALL before its effect is visible: the second one, due
        // just after, must not fire before that (the order holds across a slow firer).
        let t = timer();
        let log = Arc::new(Log::default());
        let landed_at = Arc::new(Mutex::new(None));
        let start = clock::now() + ms(5);
        let slow: Action = {
            let landed_at = Arc::clone(&landed_at);
            Box::new(move |landed| {
                // The slow part under test (not a synchronisation).
                thread::sleep(STALL * 5);
                *landed_at.lock().unwrap() = Some(clock::now());
                landed.store(true, Ordering::SeqCst);
            })
        };
        t.arm(start, job(start, 0, &log, Some(slow))).unwrap();
        t.arm(start + 1, job(start + 1, 1, &log, None)).unwrap();
        let fired = log.wait_for(2);
        let landed_at = landed_at
            .lock()
            .unwrap()
            .expect("landed before the next fired");
        assert!(fired[1].2 >= landed_at);
    }

    #[test]
    fn a_panicking_expiry_does_not_stop_the_timer() {
        let t = timer();
        let log = Arc::new(Log::default());
        let start = clock::now() + ms(2);
        let boom: Action = Box::new(|_| panic!("deliberate panic in a test expiry"));
        t.arm(start, job(start, 0, &log, Some(boom))).unwrap();
        t.arm(start + 1, job(start + 1, 1, &log, None)).unwrap();
        assert_eq!(log.wait_for(2).len(), 2);
    }

    #[test]
    fn a_disarmed_entry_never_fires() {
        let t = timer();
        let log = Arc::new(Log::default());
        let start = clock::now() + ms(20);
        t.arm(start, job(start, 0, &log, None)).unwrap();
        t.arm(start + 1, job(start + 1, 1, &log, None)).unwrap();
        let disarmed = t.disarm(start, 0);
        let fired = log.wait_for(1);
        if disarmed.is_some() {
            assert_eq!(fired.iter().map(|f| f.1).collect::<Vec<_>>(), [1]);
            assert!(!t.contains_id(0));
        }
    }

    #[test]
    fn an_expiry_may_disarm_itself_and_others() {
        let t = timer();
        let log = Arc::new(Log::default());
        let (tx, rx) = mpsc::channel();
        let start = clock::now() + ms(2);
        let later = start + ms(60_000);
        let action: Action = Box::new(move |landed| {
            // Itself: being expired, in no queue (invariant 6); another: still armed.
            let own = t.disarm(start, 0).is_some();
            let other = t.disarm(later, 1).map(|j| j.id);
            landed.store(true, Ordering::SeqCst);
            tx.send((own, other)).unwrap();
        });
        t.arm(later, job(later, 1, &log, None)).unwrap();
        t.arm(start, job(start, 0, &log, Some(action))).unwrap();
        assert_eq!(rx.recv_timeout(PATIENCE), Ok((false, Some(1))));
        assert!(!t.contains_id(1));
    }

    #[test]
    fn entries_spread_over_the_shards_and_disarm_finds_each() {
        let t = timer();
        let log = Arc::new(Log::default());
        let start = clock::now() + ms(3_600_000);
        let mut s = 5;
        let keys: Vec<(Ticks, usize)> = (0..2000)
            .map(|id| (start + (rng(&mut s) % 50) as Ticks, id))
            .collect();
        for &(at, id) in &keys {
            t.arm(at, job(at, id, &log, None)).unwrap();
        }
        assert_eq!(t.len(), keys.len());
        let used = t.shards.iter().filter(|s| lock(&s.0).len() > 0).count();
        assert_eq!(used, SHARDS, "2000 entries leave no shard empty");
        for &(at, id) in keys.iter().rev() {
            assert_eq!(t.disarm(at, id).map(|j| j.id), Some(id));
            assert!(t.disarm(at, id).is_none(), "gone");
        }
        assert_eq!(t.len(), 0);
    }

    /// Waits (bounded) until the firer sleeps until `far` (invariant 3's plan).
    fn wait_until_the_firer_plans_for(t: &Timer<Job>, far: Ticks) {
        let bound = Instant::now() + PATIENCE;
        while t.wake.wake_at.load(Ordering::Relaxed) != far {
            assert!(Instant::now() < bound, "the firer never planned for {far}");
            thread::yield_now();
        }
    }

    #[test]
    fn an_earlier_entry_wakes_a_firer_asleep_until_a_later_one() {
        let t = timer();
        let log = Arc::new(Log::default());
        let far = clock::now() + ms(3_600_000);
        t.arm(far, job(far, 0, &log, None)).unwrap();
        wait_until_the_firer_plans_for(t, far);
        let near = clock::now() + ms(1);
        t.arm(near, job(near, 1, &log, None)).unwrap();
        let fired = log.wait_for(1);
        assert_eq!(fired[0].1, 1);
        assert!(fired[0].2 >= near, "never early");
        assert!(t.contains_id(0), "the far one waits");
    }

    #[test]
    fn disarming_the_earliest_entry_never_wakes_the_firer() {
        // A server's requests: each arms a deadline later than the one before and disarms the
        // earliest when it ends. Once the firer sleeps until the first deadline, none of it
        // may notify the firer (a woken firer would only sleep again).
        let t = timer();
        let log = Arc::new(Log::default());
        let far = clock::now() + ms(3_600_000);
        t.arm(far, job(far, 0, &log, None)).unwrap();
        wait_until_the_firer_plans_for(t, far);
        let before = t.notified.load(Ordering::Relaxed);
        for i in 1..=1000 {
            let at = far + i as Ticks;
            t.arm(at, job(at, i, &log, None)).unwrap();
            let earliest = (at - 1, i - 1);
            assert_eq!(t.disarm(earliest.0, earliest.1).map(|j| j.id), Some(i - 1));
        }
        assert_eq!(
            t.notified.load(Ordering::Relaxed),
            before,
            "an arm later than the planned wake-up, or a disarm, notified the firer"
        );
        // An earlier deadline still does.
        let near = clock::now() + ms(1);
        t.arm(near, job(near, usize::MAX, &log, None)).unwrap();
        assert_eq!(t.notified.load(Ordering::Relaxed), before + 1);
        assert_eq!(log.wait_for(1)[0].1, usize::MAX);
    }

    /// An id from `*next` on whose entry for `at` lands in shard `want`.
    fn id_in_shard(t: &Timer<Job>, at: Ticks, want: usize, next: &mut usize) -> usize {
        loop {
            let id = *next;
            *next += 1;
            if std::ptr::eq(t.shard(at, id), &t.shards[want].0) {
                return id;
            }
        }
    }

    #[test]
    fn a_front_disarmed_while_the_firer_merges_keeps_the_order() {
        // Shard 0 (scanned first) holds `a` at `at` and `b` at `at + 2`, the last shard `c` at
        // `at + 1`. `a` is disarmed once the firer has read the fronts, before it pops: if it
        // merged on the front it had read, it would pop `b` (shard 0's front by then) before
        // `c`. (The firer wakes up for `a` later than `at + 2`: 2 ns.)
        const ROUNDS: usize = 20;
        let t = timer();
        let to_disarm = Arc::new(Mutex::new(None));
        let disarmed = Arc::new(AtomicUsize::new(0));
        *lock(&t.merging) = Some(Box::new({
            let (to_disarm, disarmed) = (Arc::clone(&to_disarm), Arc::clone(&disarmed));
            move || {
                if let Some((at, id)) = lock(&to_disarm).take() {
                    if t.disarm(at, id).is_some() {
                        disarmed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }));
        let mut next = 0;
        for round in 0..ROUNDS {
            let log = Arc::new(Log::default());
            let at = clock::now() + ms(2);
            let a = id_in_shard(t, at, 0, &mut next);
            let b = id_in_shard(t, at + 2, 0, &mut next);
            let c = id_in_shard(t, at + 1, SHARDS - 1, &mut next);
            *lock(&to_disarm) = Some((at, a));
            t.arm(at + 1, job(at + 1, c, &log, None)).unwrap();
            t.arm(at + 2, job(at + 2, b, &log, None)).unwrap();
            t.arm(at, job(at, a, &log, None)).unwrap();
            let fired: Vec<usize> = log.wait_for(2).iter().map(|f| f.1).collect();
            assert_eq!(disarmed.load(Ordering::SeqCst), round + 1, "`a` disarmed");
            assert_eq!(fired, [c, b], "out of order after a disarm of a front");
        }
    }

    #[test]
    fn concurrent_arms_never_lose_a_wake_up() {
        // Four threads arm entries due soon, in shuffled order, while the firer plans and
        // sleeps: each must fire (a lost notification would leave one waiting for a later
        // deadline, here an hour away).
        const PER_THREAD: usize = 300;
        let t = timer();
        let log = Arc::new(Log::default());
        let far = clock::now() + ms(3_600_000);
        t.arm(far, job(far, usize::MAX, &log, None)).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|n| {
                let log = Arc::clone(&log);
                thread::spawn(move || {
                    let mut s = 17 + n as u64;
                    for i in 0..PER_THREAD {
                        let at = clock::now() + (rng(&mut s) % 3_000_000) as Ticks;
                        t.arm(at, job(at, n * PER_THREAD + i, &log, None)).unwrap();
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        let fired = log.wait_for(4 * PER_THREAD);
        assert!(fired.iter().all(|(at, _, when)| when >= at), "never early");
        assert!(t.contains_id(usize::MAX));
    }
}
