//! A lock kept in two bits of a state word that holds other things too (a cancel node's state
//! and handle count, see `node.rs`), guarding a value beside it: [`WordLock`].
//!
//! Uncontended, taking it is one read-modify-write (`fetch_or` of [`LOCKED`]) and releasing it
//! one more (a compare-exchange that clears `LOCKED` and may set other bits of the word in the
//! same operation: [`Guard::publish_on_unlock`], which saves cancelling a leaf two separate
//! `fetch_or`s for its state and its settled flag).
//!
//! Contended, a locker spins briefly (a bounded number of rounds, never a yield loop), then
//! parks: it sets [`PARKED`] and sleeps on one bucket of a small global table of
//! (`Mutex`, `Condvar`) pairs, picked by the word's address. The lock can be held a long time
//! (a cancellation holds its origin's lock while it walks a subtree of a million nodes, and
//! `wait_settled`/`unlink` wait for exactly that), so waiters must sleep, not burn a core.
//!
//! # Invariants
//!
//! 1. `LOCKED` is set by the one thread that holds the lock, and cleared only by it. The data
//!    is touched only between the two: the `Acquire` of the `fetch_or` that set `LOCKED`
//!    pairs with the `Release` of the compare-exchange that
//!    cleared it in the previous holder's unlock (a compare-exchange in both paths), so each holder sees every write of the one
//!    before (mutual exclusion: the model `loom_lock_mutual_exclusion`).
//! 2. `PARKED` is set only while `LOCKED` is set, by a waiter that holds its bucket's mutex, and
//!    cleared only by the holder's unlock, also under that mutex, in the same read-modify-write
//!    that clears `LOCKED`. So while a holder holds the bucket's mutex, `PARKED` cannot change.
//! 3. No lost wake-up: a waiter sets `PARKED` (a compare-exchange that expects `LOCKED`) and
//!    then waits on the condvar, holding the bucket's mutex throughout (the wait releases it
//!    atomically). The holder's unlock is one read-modify-write of the word: if it comes first
//!    in the word's modification order, the waiter's compare-exchange fails (`LOCKED` is gone)
//!    and it retries the lock; if it comes after, it sees `PARKED`, and takes the bucket's mutex
//!    (only possible once the waiter is waiting) before it clears the bits and notifies every
//!    waiter of the bucket. `PARKED` needs no ordering of its own (`Relaxed`): the bucket's
//!    mutex orders the waiting and the notifying, and the data is ordered by invariant 1. A
//!    woken waiter (also one woken for another word of the same bucket, or spuriously) simply
//!    retries. The model `loom_lock_no_lost_wake_up_of_a_parker` checks this.
//! 4. The unlock's read-modify-write is its last access to the word's memory: the parked path
//!    takes the bucket's mutex *before* it, and touches only the (static) bucket after. So a
//!    holder may publish, with its unlock, a flag that lets another thread free the memory
//!    (the settled flag of tree invariant 3).
//! 5. No user code runs in here, and nothing here allocates.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};

use crate::sync::{lock, AtomicU32, Condvar, Mutex, Ordering};

/// Set while the lock is held.
pub(crate) const LOCKED: u32 = 1 << 27;
/// Set while the lock is held and a waiter sleeps (or is about to) on the word's bucket.
pub(crate) const PARKED: u32 = 1 << 26;
/// The bits of the word this module owns; the others are the user's.
pub(crate) const LOCK_BITS: u32 = LOCKED | PARKED;

/// A `T` guarded by the `LOCKED` bit of a word whose other bits (all but [`LOCK_BITS`]) belong
/// to the user, who changes them with atomic read-modify-writes of [`word`](WordLock::word).
pub(crate) struct WordLock<T> {
    word: AtomicU32,
    /// A second word for the owner, nothing to do with the lock: it fills what would be
    /// padding between `word` and an 8-byte aligned `data` (a cancel node keeps its slot here,
    /// which makes it 40 bytes, not 48).
    spare: AtomicU32,
    data: UnsafeCell<T>,
    /// Under loom only, for the tree's models: a loom mutex that contended lockers block on
    /// instead of parking (see [`WordLock::lock`]); `None` for the lock's own models
    /// ([`WordLock::parking`]), which park as outside loom.
    #[cfg(loom)]
    gate: Option<Mutex<()>>,
}

// SAFETY: the data is only reached through a `Guard`, and a guard exists for one thread at a
// time (invariant 1), as with `std::sync::Mutex`, which is `Sync` for `T: Send`.
unsafe impl<T: Send> Sync for WordLock<T> {}

impl<T> WordLock<T> {
    /// An unlocked lock around `data`; `bits` are the word's other bits.
    #[cfg(test)]
    pub(crate) fn new(bits: u32, data: T) -> WordLock<T> {
        WordLock::with_spare(bits, 0, data)
    }

    /// Like `new` (for tests), with `spare` the value of the [`spare`](WordLock::spare)
    /// word.
    pub(crate) fn with_spare(bits: u32, spare: u32, data: T) -> WordLock<T> {
        debug_assert_eq!(bits & LOCK_BITS, 0, "the lock's bits are its own");
        WordLock {
            word: AtomicU32::new(bits),
            spare: AtomicU32::new(spare),
            data: UnsafeCell::new(data),
            #[cfg(loom)]
            gate: Some(Mutex::new(())),
        }
    }

    /// Under loom: a lock whose contended lockers park on the table, as outside loom (the
    /// lock's own models).
    #[cfg(all(loom, test))]
    pub(crate) fn parking(bits: u32, data: T) -> WordLock<T> {
        WordLock {
            gate: None,
            ..WordLock::new(bits, data)
        }
    }

    /// The word. Its owner may read it and change the bits outside [`LOCK_BITS`] with atomic
    /// read-modify-writes, never store to it.
    #[inline]
    pub(crate) fn word(&self) -> &AtomicU32 {
        &self.word
    }

    /// The owner's spare word (see the field); the lock never touches it.
    #[inline]
    pub(crate) fn spare(&self) -> &AtomicU32 {
        &self.spare
    }

    /// Takes the lock: spins briefly, then sleeps, while another thread holds it.
    #[inline]
    pub(crate) fn lock(&self) -> Guard<'_, T> {
        // Under loom, in the tree's models, lockers first queue on a loom mutex, which loom
        // models as one step, then take `LOCKED` (yielding in the one-step window where the
        // previous holder has let the gate go but not yet cleared `LOCKED`). The word's bits and
        // the publishing unlock stay modelled; the parking is `loom_lock_*`'s. Parking in every
        // node multiplied the tree's models' interleavings (one went from 5,512 to 254,972,
        // 6.5 s to 332 s; the whole suite from about a minute to more than half an hour).
        #[cfg(loom)]
        if let Some(gate) = &self.gate {
            let gate = lock(gate);
            while self.word.fetch_or(LOCKED, Ordering::Acquire) & LOCKED != 0 {
                loom::thread::yield_now();
            }
            return Guard {
                lock: self,
                publish: 0,
                gate: Some(gate),
            };
        }
        // Acquire pairs with the Release of the previous holder's unlock (invariant 1).
        // Only the bit is tested: one `lock bts` on x86 (using the whole previous value
        // would make it a compare-exchange loop).
        if self.word.fetch_or(LOCKED, Ordering::Acquire) & LOCKED != 0 {
            // A guess for the word: the exchanges that follow check it.
            self.lock_contended(LOCKED);
        }
        Guard {
            lock: self,
            publish: 0,
            #[cfg(loom)]
            gate: None,
        }
    }

    /// Takes the lock held by another thread; `word` is a guess of the word, with `LOCKED`.
    /// Returns the word as the successful `fetch_or` left it.
    #[cold]
    #[inline(never)]
    fn lock_contended(&self, mut word: u32) -> u32 {
        let mut spins = 0;
        loop {
            if word & LOCKED == 0 {
                let before = self.word.fetch_or(LOCKED, Ordering::Acquire);
                if before & LOCKED == 0 {
                    return before | LOCKED;
                }
                word = before;
                continue;
            }
            // Under loom, spinning only multiplies the interleavings: park at once.
            if !cfg!(loom) && spins < SPIN_ROUNDS {
                for _ in 0..1u32 << spins {
                    std::hint::spin_loop();
                }
                spins += 1;
                word = self.word.load(Ordering::Relaxed);
                continue;
            }
            park(&self.word, word);
            // Woken (or the lock was released before we slept): most likely free now.
            let before = self.word.fetch_or(LOCKED, Ordering::Acquire);
            if before & LOCKED == 0 {
                return before | LOCKED;
            }
            word = before;
        }
    }

    #[cold]
    #[inline(never)]
    fn unlock_parked(&self, publish: u32, guess: u32) {
        let bucket = bucket(&self.word);
        let guard = lock(&bucket.mutex);
        // Invariant 2: we hold the bucket's mutex and the lock, so `PARKED` stays set; clear
        // both bits (the other bits may change beside us: a compare-exchange). Release as in
        // `unlock`. Invariant 4: the successful exchange is the last access to the word.
        // `guess`, read before we took the mutex, may be stale in the other bits only: the
        // exchange checks it.
        let mut word = guess;
        while let Err(now) = self.word.compare_exchange_weak(
            word,
            (word & !LOCK_BITS) | publish,
            Ordering::Release,
            Ordering::Relaxed,
        ) {
            word = now;
        }
        bucket.condvar.notify_all();
        drop(guard);
    }

    /// Releases the lock, setting `publish` in the same read-modify-write.
    #[inline]
    fn unlock(&self, publish: u32) {
        let mut word = self.word.load(Ordering::Relaxed);
        loop {
            if word & PARKED != 0 {
                return self.unlock_parked(publish, word);
            }
            // Release pairs with the next holder's Acquire (invariant 1), and with the Acquire
            // loads of whoever reads the published bits.
            match self.word.compare_exchange_weak(
                word,
                (word & !LOCKED) | publish,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => word = now,
            }
        }
    }
}

/// Rounds of spinning (1, 2, 4, .. `spin_loop` hints: 63 in all, well under a microsecond)
/// before a waiter parks.
const SPIN_ROUNDS: u32 = 6;

/// Sleeps until the holder of `word`'s lock releases it (or spuriously); the caller retries.
/// `guess`: a value of the word seen with `LOCKED`, the first guess of the compare-exchange
/// that sets `PARKED`.
fn park(word: &AtomicU32, guess: u32) {
    let bucket = bucket(word);
    let guard = lock(&bucket.mutex);
    // A guess with `PARKED` may predate an unlock that cleared it: read the word again, under
    // the mutex (that unlock cleared it under the same mutex, so this load sees it: invariant
    // 2). A guess without `PARKED` is checked by the compare-exchange itself.
    let mut now = if guess & PARKED != 0 {
        word.load(Ordering::Relaxed)
    } else {
        guess
    };
    loop {
        if now & LOCKED == 0 {
            // Released meanwhile: retry rather than sleep (invariant 3).
            return;
        }
        if now & PARKED != 0 {
            // Set by another waiter, and seen under the mutex: it stays set until the holder
            // takes the mutex to wake us all.
            break;
        }
        // Relaxed: the bucket's mutex orders the sleep and the notification (invariant 3).
        match word.compare_exchange_weak(now, now | PARKED, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break,
            // Read under the mutex, so, like the load above, not older than a clearing of
            // `PARKED` made under it.
            Err(changed) => now = changed,
        }
    }
    // `PARKED` is set while `LOCKED` is: the holder's unlock takes this mutex (held until the
    // wait releases it) and notifies.
    let guard = match bucket.condvar.wait(guard) {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    drop(guard);
}

/// The guard of a [`WordLock`]: the lock is held while it lives; dropping it releases the lock.
pub(crate) struct Guard<'a, T> {
    lock: &'a WordLock<T>,
    /// Bits to set in the word by the unlock.
    publish: u32,
    /// Under loom, the gate held (see [`WordLock::lock`]).
    #[cfg(loom)]
    gate: Option<crate::sync::MutexGuard<'a, ()>>,
}

impl<T> Guard<'_, T> {
    /// Sets `bits` in the word when the lock is released, in the same read-modify-write: nobody
    /// sees them before the data written under the lock, and after they are seen the unlock
    /// touches the word no more (invariant 4). None of `bits` may be set in the word yet, nor be
    /// set by anyone else before the unlock, nor be one of [`LOCK_BITS`].
    #[inline]
    pub(crate) fn publish_on_unlock(&mut self, bits: u32) {
        debug_assert_eq!(bits & LOCK_BITS, 0, "the lock's bits are its own");
        self.publish |= bits;
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the lock is held (invariant 1): no other thread touches the data.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only reference through us.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // Under loom the gate goes first: after the unlock the node may be freed.
        #[cfg(loom)]
        drop(self.gate.take());
        self.lock.unlock(self.publish);
    }
}

/// One bucket of the parking table. Aligned to a cache line: buckets of unrelated words do not
/// share one.
#[repr(align(64))]
struct Bucket {
    mutex: Mutex<()>,
    condvar: Condvar,
}

impl Bucket {
    #[cfg(not(loom))]
    const fn new() -> Bucket {
        Bucket {
            mutex: Mutex::new(()),
            condvar: Condvar::new(),
        }
    }
}

/// Buckets of the parking table: waiters on different words rarely share one (and then only
/// wake each other for a retry).
#[cfg(not(loom))]
const BUCKETS: usize = 64;

#[cfg(not(loom))]
static TABLE: [Bucket; BUCKETS] = [const { Bucket::new() }; BUCKETS];

/// The bucket of `word`: its address, hashed (Fibonacci hashing: the low bits of an address are
/// alike for equally aligned nodes).
#[cfg(not(loom))]
fn bucket(word: &AtomicU32) -> &'static Bucket {
    let addr = word as *const AtomicU32 as usize as u64;
    let hash = addr.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - BUCKETS.trailing_zeros());
    &TABLE[hash as usize]
}

// Under loom, one bucket, made afresh for each execution of a model (loom's primitives live
// inside it): every word shares it, which also models the collisions.
#[cfg(loom)]
loom::lazy_static! {
    static ref TABLE: Bucket = Bucket {
        mutex: Mutex::new(()),
        condvar: Condvar::new(),
    };
}

#[cfg(loom)]
fn bucket(_: &AtomicU32) -> &'static Bucket {
    &TABLE
}

#[cfg(all(test, not(loom)))]
mod tests {
    //! The lock alone, on real threads (Miri runs these: see `.ci/steps/40-miri.sh`).

    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use super::*;

    fn threads() -> (usize, usize) {
        if cfg!(miri) {
            (3, 50)
        } else {
            (4, 20_000)
        }
    }

    /// Increments under the lock from several threads lose none (mutual exclusion), while other
    /// bits of the word change beside the lock and are kept.
    #[test]
    fn counts_under_the_lock_add_up_and_other_bits_survive() {
        let (n, rounds) = threads();
        let lock = Arc::new(WordLock::new(0, 0usize));
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let lock = Arc::clone(&lock);
                std::thread::spawn(move || {
                    for _ in 0..rounds {
                        *lock.lock() += 1;
                        // Another bit of the word, changed without the lock.
                        lock.word().fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(*lock.lock(), n * rounds);
        let word = lock.word().load(Ordering::Relaxed);
        assert_eq!(word & LOCK_BITS, 0, "released, nobody parked");
        assert_eq!(
            word as usize,
            n * rounds,
            "the other bits kept every change"
        );
    }

    /// A waiter on a lock held for long parks (instead of spinning) and is woken by the unlock;
    /// the unlock publishes its bits with the release.
    #[test]
    fn a_parked_waiter_is_woken_by_the_unlock_and_sees_the_published_bits() {
        let lock = Arc::new(WordLock::new(0, false));
        let mut guard = lock.lock();
        let started = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (lock, started) = (Arc::clone(&lock), Arc::clone(&started));
            std::thread::spawn(move || {
                started.store(true, Ordering::SeqCst);
                let seen = *lock.lock();
                (seen, lock.word().load(Ordering::Acquire) & 1)
            })
        };
        // Wait (without a sleep standing in for it) until the waiter has parked: it sets
        // `PARKED` before sleeping. Bounded: it parks after its spin rounds.
        while !started.load(Ordering::SeqCst) || lock.word().load(Ordering::Relaxed) & PARKED == 0 {
            std::thread::yield_now();
        }
        *guard = true;
        guard.publish_on_unlock(1);
        drop(guard);
        assert_eq!(waiter.join().unwrap(), (true, 1));
        assert_eq!(
            lock.word().load(Ordering::Relaxed),
            1,
            "both lock bits cleared"
        );
    }

    /// Many threads contending for a few locks (sharing buckets with each other, 64 buckets for
    /// 3 words or many more) all get through: no waiter is left asleep.
    #[test]
    fn waiters_of_words_that_share_buckets_all_get_through() {
        let (n, rounds) = threads();
        let locks: Arc<Vec<WordLock<u64>>> =
            Arc::new((0..3).map(|_| WordLock::new(0, 0)).collect());
        let handles: Vec<_> = (0..n)
            .map(|t| {
                let locks = Arc::clone(&locks);
                std::thread::spawn(move || {
                    for i in 0..rounds {
                        let mut g = locks[(i + t) % 3].lock();
                        *g += 1;
                        if i % 64 == 0 {
                            // Hold it a while now and then, so that others park.
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let total: u64 = locks.iter().map(|l| *l.lock()).sum();
        assert_eq!(total, (n * rounds) as u64);
    }
}
