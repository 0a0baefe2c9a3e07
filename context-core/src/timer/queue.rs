//! The timer's store: entries in `(deadline, id)` order, kept in sorted chunks of at most
//! [`CHUNK`] entries (a `BTreeMap` of `VecDeque`s), so an entry costs its own 8 + `size_of::<E>()`
//! bytes plus a little slack instead of a B-tree slot per entry.
//!
//! It knows nothing of what it stores beyond an [`Id`] (for the node timer, the node's address),
//! which makes `(deadline, id)` unique and lets [`Queue::remove`] find an entry without a handle.
//!
//! # Invariants
//!
//! 1. Every chunk is non-empty, sorted strictly ascending by `(deadline, id)`, and holds at most
//!    [`CHUNK`] entries.
//! 2. A chunk's map key is at most its first entry's key, and its last entry's key is below the
//!    next chunk's map key. So the entry with key `k`, if any, is in the chunk with the greatest
//!    map key `<= k`, and the first chunk's front is the earliest entry.
//! 3. Deadlines that only grow (`now + timeout`, the common case) append to the last chunk and
//!    start a new one when it is full: chunks stay full. Anywhere else a full chunk splits in
//!    half; a chunk emptied to a quarter of its capacity gives memory back.

use std::collections::{BTreeMap, VecDeque};

use crate::clock::Ticks;

/// What identifies an entry among those with the same deadline.
pub(crate) trait Id {
    /// Unique among live entries with the same deadline.
    fn id(&self) -> usize;
}

/// The most entries in a chunk.
pub(crate) const CHUNK: usize = 64;

type Key = (Ticks, usize);

pub(crate) struct Queue<E> {
    chunks: BTreeMap<Key, VecDeque<(Ticks, E)>>,
    len: usize,
}

fn key<E: Id>(entry: &(Ticks, E)) -> Key {
    (entry.0, entry.1.id())
}

/// Puts `entry` (with key `k`) into `chunk`, the one it belongs to. Returns a new chunk to add
/// after it, if `chunk` was full: a fresh one if `entry` goes after everything in the last chunk
/// (invariant 3), else the upper half of `chunk`.
fn place<E: Id>(
    chunk: &mut VecDeque<(Ticks, E)>,
    k: Key,
    entry: (Ticks, E),
    is_last: bool,
) -> Option<VecDeque<(Ticks, E)>> {
    let pos = match chunk.binary_search_by(|e| key(e).cmp(&k)) {
        Ok(_) => unreachable!("(deadline, id) is unique"),
        Err(pos) => pos,
    };
    if chunk.len() < CHUNK {
        chunk.insert(pos, entry);
        return None;
    }
    if pos == CHUNK && is_last {
        return Some(VecDeque::from([entry]));
    }
    let mut tail = chunk.split_off(CHUNK / 2);
    if pos >= CHUNK / 2 {
        tail.insert(pos - CHUNK / 2, entry);
    } else {
        chunk.insert(pos, entry);
    }
    Some(tail)
}

impl<E: Id> Queue<E> {
    pub(crate) const fn new() -> Queue<E> {
        Queue {
            chunks: BTreeMap::new(),
            len: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Ticks> {
        self.chunks
            .first_key_value()
            .and_then(|(_, c)| c.front())
            .map(|e| e.0)
    }

    /// Adds `entry` for `at`. Its `(at, id)` must not be in the queue already.
    pub(crate) fn insert(&mut self, at: Ticks, entry: E) {
        let k = (at, entry.id());
        self.len += 1;
        // The common case first: at or after the last chunk's key (growing deadlines).
        if let Some(mut last) = self.chunks.last_entry() {
            if *last.key() <= k {
                if let Some(tail) = place(last.get_mut(), k, (at, entry), true) {
                    self.chunks.insert(key(&tail[0]), tail);
                }
                return;
            }
        }
        let ck = match self.chunks.range(..=k).next_back() {
            Some((&ck, _)) => ck,
            None => match self.chunks.pop_first() {
                // Earlier than everything: the first chunk's key comes down to `k` (invariant 2).
                Some((_, first)) => {
                    self.chunks.insert(k, first);
                    k
                }
                None => {
                    self.chunks.insert(k, VecDeque::from([(at, entry)]));
                    return;
                }
            },
        };
        let chunk = self.chunks.get_mut(&ck).expect("found just above");
        if let Some(tail) = place(chunk, k, (at, entry), false) {
            self.chunks.insert(key(&tail[0]), tail);
        }
    }

    /// Removes and returns the entry for `at` with `id`, if it is there.
    pub(crate) fn remove(&mut self, at: Ticks, id: usize) -> Option<E> {
        let k = (at, id);
        let (&ck, chunk) = self.chunks.range_mut(..=k).next_back()?;
        let pos = chunk.binary_search_by(|e| key(e).cmp(&k)).ok()?;
        let (_, entry) = chunk.remove(pos).expect("found just above");
        self.len -= 1;
        if chunk.is_empty() {
            self.chunks.remove(&ck);
        } else if chunk.len() < chunk.capacity() / 4 {
            // Invariant 3: give a thinned chunk's memory back.
            chunk.shrink_to(chunk.len() * 2);
        }
        Some(entry)
    }

    /// Removes and returns the earliest entry if its deadline is at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Ticks) -> Option<(Ticks, E)> {
        let mut first = self.chunks.first_entry()?;
        let chunk = first.get_mut();
        if chunk.front()?.0 > now {
            return None;
        }
        let entry = chunk.pop_front();
        if chunk.is_empty() {
            first.remove();
        } else if chunk.len() < chunk.capacity() / 4 {
            chunk.shrink_to(chunk.len() * 2);
        }
        self.len -= 1;
        entry
    }

    /// Whether an entry with `id` is in the queue, at any deadline (a linear scan, for tests).
    #[cfg(test)]
    pub(crate) fn contains_id(&self, id: usize) -> bool {
        self.chunks.values().flatten().any(|e| e.1.id() == id)
    }

    /// Checks invariants 1 and 2 (for tests).
    #[cfg(test)]
    fn check(&self) {
        let mut prev: Option<Key> = None;
        let mut len = 0;
        for (&ck, chunk) in &self.chunks {
            assert!(!chunk.is_empty() && chunk.len() <= CHUNK);
            assert!(
                prev.is_none_or(|p| p < ck),
                "chunk keys above the previous chunk"
            );
            assert!(ck <= key(&chunk[0]));
            for e in chunk {
                assert!(
                    prev.is_none_or(|p| p < key(e)),
                    "entries strictly ascending"
                );
                prev = Some(key(e));
            }
            len += chunk.len();
        }
        assert_eq!(len, self.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct T(usize);

    impl Id for T {
        fn id(&self) -> usize {
            self.0
        }
    }

    /// xorshift64*, as in the integration tests.
    fn rng(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn drain(q: &mut Queue<T>) -> Vec<Key> {
        let mut out = Vec::new();
        while let Some((at, t)) = q.pop_due(Ticks::MAX) {
            out.push((at, t.0));
        }
        out
    }

    #[test]
    fn pops_in_deadline_then_id_order_and_never_early() {
        let mut q = Queue::new();
        let mut s = 7;
        let mut want = Vec::new();
        for id in 0..5000 {
            let at = (rng(&mut s) % 300) as Ticks - 150; // many equal deadlines, some negative
            q.insert(at, T(id));
            want.push((at, id));
        }
        q.check();
        want.sort();
        // Nothing is handed out before its deadline.
        assert!(q.pop_due(want[0].0 - 1).is_none());
        let cut = want[want.len() / 2].0;
        let mut got = Vec::new();
        while let Some((at, t)) = q.pop_due(cut) {
            assert!(at <= cut, "never early");
            got.push((at, t.0));
        }
        assert_eq!(q.next(), want.iter().map(|k| k.0).find(|&at| at > cut));
        got.extend(drain(&mut q));
        assert_eq!(got, want);
        assert_eq!(q.len(), 0);
        assert_eq!(q.next(), None);
    }

    #[test]
    fn removes_exactly_the_entry_asked_for() {
        let mut q = Queue::new();
        let mut s = 11;
        let mut live = Vec::new();
        for id in 0..3000 {
            let at = (rng(&mut s) % 100) as Ticks;
            q.insert(at, T(id));
            live.push((at, id));
        }
        // Remove every other one in a random order, and some that are not there.
        let mut removed = Vec::new();
        for i in (0..live.len()).rev().step_by(2) {
            let j = (rng(&mut s) as usize) % (i + 1);
            live.swap(i, j);
            let (at, id) = live.swap_remove(i);
            assert_eq!(q.remove(at, id).map(|t| t.0), Some(id));
            assert!(q.remove(at, id).is_none(), "gone");
            removed.push((at, id));
            if i % 97 == 0 {
                q.check();
            }
        }
        assert!(q.remove(-1, 0).is_none());
        assert!(q.remove(1000, 0).is_none());
        q.check();
        assert_eq!(q.len(), live.len());
        live.sort();
        assert_eq!(drain(&mut q), live);
    }

    #[test]
    fn growing_deadlines_fill_their_chunks() {
        let mut q = Queue::new();
        let n = 100 * CHUNK;
        for id in 0..n {
            q.insert(id as Ticks, T(id));
        }
        q.check();
        assert_eq!(q.chunks.len(), n / CHUNK, "every chunk full");
        assert!(q.chunks.values().all(|c| c.capacity() == CHUNK));
        // Earlier than everything: the first chunk's key comes down.
        q.insert(-5, T(n));
        q.check();
        assert_eq!(q.pop_due(Ticks::MAX).map(|e| e.0), Some(-5));
    }

    #[test]
    fn thinned_chunks_give_memory_back() {
        let mut q = Queue::new();
        for id in 0..CHUNK {
            q.insert(id as Ticks, T(id));
        }
        for id in 1..CHUNK {
            q.remove(id as Ticks, id);
        }
        q.check();
        assert!(q.chunks.values().all(|c| c.capacity() <= 8));
        q.remove(0, 0);
        assert!(q.chunks.is_empty());
    }
}
