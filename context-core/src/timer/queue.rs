//! The timer's store: entries in `(deadline, id)` order, kept in sorted chunks of at most
//! [`CHUNK`] entries (a `VecDeque` of `VecDeque`s, found by a binary search over the chunks'
//! first keys), so an entry costs its own 8 + `size_of::<E>()` bytes plus a little slack, and a
//! quiet queue (a few entries, the common case between requests) is one short chunk: no tree
//! to descend, nothing allocated.
//!
//! It knows nothing of what it stores beyond an [`Id`] (for the node timer, the node's address),
//! which makes `(deadline, id)` unique and lets [`Queue::remove`] find an entry without a handle.
//!
//! # Invariants
//!
//! 1. Every chunk is non-empty, sorted strictly ascending by `(deadline, id)`, and holds at most
//!    [`CHUNK`] entries.
//! 2. Every entry of a chunk is below the next chunk's first entry. So the entry with key `k`,
//!    if any, is in the last chunk whose first key is `<= k`, and the first chunk's front is
//!    the earliest entry.
//! 3. Deadlines that only grow (`now + timeout`, the common case) append to the last chunk and
//!    start a new one when it is full: chunks stay full. Anywhere else a full chunk splits in
//!    half; a chunk emptied to a quarter of its capacity gives memory back, and so does the
//!    list of chunks. An empty queue keeps at most one small chunk's allocation (`spare`,
//!    [`SPARE`] entries) and a small list.

use std::collections::VecDeque;

use crate::clock::Ticks;

/// What identifies an entry among those with the same deadline.
pub(crate) trait Id {
    /// Unique among live entries with the same deadline.
    fn id(&self) -> usize;
}

/// The most entries in a chunk.
pub(crate) const CHUNK: usize = 64;

/// The largest chunk kept as the spare of an empty queue.
const SPARE: usize = 4;

/// The capacity of the list of chunks that is never given back.
const KEEP_CHUNKS: usize = 8;

/// An entry's place in the order: its deadline, then its id.
pub(crate) type Key = (Ticks, usize);

type Chunk<E> = VecDeque<(Ticks, E)>;

pub(crate) struct Queue<E> {
    chunks: VecDeque<Chunk<E>>,
    len: usize,
    /// The last chunk's allocation, kept when the queue empties if it is small: a queue that
    /// goes from empty to one entry and back, as most do between requests, allocates nothing.
    spare: Option<Chunk<E>>,
}

fn key<E: Id>(entry: &(Ticks, E)) -> Key {
    (entry.0, entry.1.id())
}

fn first_key<E: Id>(chunk: &Chunk<E>) -> Key {
    key(&chunk[0])
}

/// Puts `entry` (with key `k`) into `chunk`, the one it belongs to. Returns a new chunk to add
/// after it, if `chunk` was full: a fresh one if `entry` goes after everything in the last chunk
/// (invariant 3), else the upper half of `chunk`.
fn place<E: Id>(
    chunk: &mut Chunk<E>,
    k: Key,
    entry: (Ticks, E),
    is_last: bool,
) -> Option<Chunk<E>> {
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
            chunks: VecDeque::new(),
            len: 0,
            spare: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The earliest deadline.
    #[cfg(test)]
    pub(crate) fn next(&self) -> Option<Ticks> {
        self.first().map(|k| k.0)
    }

    /// The earliest entry's key.
    pub(crate) fn first(&self) -> Option<Key> {
        self.chunks.front().map(first_key)
    }

    /// The chunk that holds (or would hold) the entry with key `k` (invariant 2), if any
    /// chunk's first key is `<= k`.
    fn find(&self, k: Key) -> Option<usize> {
        // The common case first: the last chunk (growing deadlines; the only chunk of a
        // quiet queue).
        let last = self.chunks.len().checked_sub(1)?;
        if first_key(&self.chunks[last]) <= k {
            return Some(last);
        }
        self.chunks
            .partition_point(|c| first_key(c) <= k)
            .checked_sub(1)
    }

    /// Adds `entry` for `at`. Its `(at, id)` must not be in the queue already.
    pub(crate) fn insert(&mut self, at: Ticks, entry: E) {
        let k = (at, entry.id());
        self.len += 1;
        if self.chunks.is_empty() {
            let mut chunk = self
                .spare
                .take()
                .unwrap_or_else(|| VecDeque::with_capacity(SPARE));
            chunk.push_back((at, entry));
            self.chunks.push_back(chunk);
            return;
        }
        // Earlier than everything: it goes to the front of the first chunk.
        let i = self.find(k).unwrap_or(0);
        let is_last = i + 1 == self.chunks.len();
        if let Some(tail) = place(&mut self.chunks[i], k, (at, entry), is_last) {
            self.chunks.insert(i + 1, tail);
        }
    }

    /// Removes and returns the entry for `at` with `id`, if it is there.
    pub(crate) fn remove(&mut self, at: Ticks, id: usize) -> Option<E> {
        let k = (at, id);
        let i = self.find(k)?;
        let chunk = &mut self.chunks[i];
        // The last entry first: the only one of a quiet queue, the newest of growing ones.
        let (_, entry) = if chunk.back().is_some_and(|e| key(e) == k) {
            chunk.pop_back()
        } else {
            let pos = chunk.binary_search_by(|e| key(e).cmp(&k)).ok()?;
            chunk.remove(pos)
        }
        .expect("found just above");
        self.len -= 1;
        self.thinned(i);
        Some(entry)
    }

    /// Removes and returns the earliest entry if its deadline is at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Ticks) -> Option<(Ticks, E)> {
        let chunk = self.chunks.front_mut()?;
        if chunk.front()?.0 > now {
            return None;
        }
        let entry = chunk.pop_front();
        self.len -= 1;
        self.thinned(0);
        entry
    }

    /// Invariant 3, after an entry left chunk `i`: drops it if empty (kept as the spare if it
    /// was the last and is small), else gives back what a thinned chunk does not use.
    fn thinned(&mut self, i: usize) {
        let chunk = &mut self.chunks[i];
        if !chunk.is_empty() {
            if chunk.len() < chunk.capacity() / 4 {
                chunk.shrink_to(chunk.len() * 2);
            }
            return;
        }
        let chunk = if i + 1 == self.chunks.len() {
            self.chunks.pop_back()
        } else {
            self.chunks.remove(i)
        }
        .expect("chunk i exists");
        if self.chunks.is_empty() && chunk.capacity() <= SPARE {
            self.spare = Some(chunk);
        }
        let cap = self.chunks.capacity();
        if cap > KEEP_CHUNKS && self.chunks.len() < cap / 4 {
            self.chunks
                .shrink_to((self.chunks.len() * 2).max(KEEP_CHUNKS));
        }
    }

    /// Whether an entry with `id` is in the queue, at any deadline (a linear scan, for tests).
    #[cfg(test)]
    pub(crate) fn contains_id(&self, id: usize) -> bool {
        self.chunks.iter().flatten().any(|e| e.1.id() == id)
    }

    /// Checks invariants 1 and 2 (for tests).
    #[cfg(test)]
    fn check(&self) {
        let mut prev: Option<Key> = None;
        let mut len = 0;
        for chunk in &self.chunks {
            assert!(!chunk.is_empty() && chunk.len() <= CHUNK);
            for e in chunk {
                assert!(
                    prev.is_none_or(|p| p < key(e)),
                    "entries strictly ascending, across chunks too"
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
        assert!(q.chunks.iter().all(|c| c.capacity() == CHUNK));
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
        assert!(q.chunks.iter().all(|c| c.capacity() <= 8));
        q.remove(0, 0);
        assert!(q.chunks.is_empty());
    }

    #[test]
    fn a_drained_burst_gives_its_memory_back() {
        let mut q = Queue::new();
        let n = 200 * CHUNK;
        for id in 0..n {
            q.insert((id % 1000) as Ticks, T(id));
        }
        q.check();
        assert!(q.chunks.capacity() >= n / CHUNK);
        for id in 0..n {
            assert_eq!(q.remove((id % 1000) as Ticks, id).map(|t| t.0), Some(id));
        }
        assert!(q.chunks.is_empty());
        assert!(
            q.chunks.capacity() <= KEEP_CHUNKS,
            "the list of chunks shrank"
        );
        assert!(q.spare.as_ref().is_none_or(|c| c.capacity() <= SPARE));
        // A quiet queue reuses the spare: one entry in, out, in again.
        q.insert(1, T(0));
        q.remove(1, 0);
        assert!(q.spare.is_some(), "a one-entry chunk is kept");
        q.insert(2, T(1));
        assert!(q.spare.is_none(), "and reused");
        assert_eq!(q.pop_due(2).map(|e| e.0), Some(2));
    }
}
