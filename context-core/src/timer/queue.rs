//! The timer's store: entries in `(deadline, id)` order. A quiet queue (at most [`SMALL`]
//! entries, the common case between requests) keeps them inline, sorted, and allocates
//! nothing; a larger one keeps them in sorted chunks of at most [`CHUNK`] entries (a `VecDeque`
//! of `VecDeque`s, found by a binary search over the chunks' first keys), so an entry costs its
//! own 8 + `size_of::<E>()` bytes plus a little slack.
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
//!    list of chunks; an emptied queue holds no allocation at all.
//! 4. While there is no chunk, the entries (at most [`SMALL`]) are the first `small_len` slots
//!    of `small`, sorted strictly ascending, every one `Some`, the rest `None`. The entry that
//!    would make `SMALL + 1` moves them all into a first chunk; the queue goes back to the
//!    inline slots only once it is empty.

use std::collections::VecDeque;

use crate::clock::Ticks;

/// What identifies an entry among those with the same deadline.
pub(crate) trait Id {
    /// Unique among live entries with the same deadline.
    fn id(&self) -> usize;
}

/// The most entries in a chunk.
pub(crate) const CHUNK: usize = 64;

/// The most entries a queue keeps inline (invariant 4).
pub(crate) const SMALL: usize = 4;

/// An entry's place in the order: its deadline, then its id.
pub(crate) type Key = (Ticks, usize);

type Chunk<E> = VecDeque<(Ticks, E)>;

pub(crate) struct Queue<E> {
    /// Invariant 4: the entries of a queue without chunks.
    small: [Option<(Ticks, E)>; SMALL],
    small_len: usize,
    chunks: VecDeque<Chunk<E>>,
    len: usize,
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
            small: [const { None }; SMALL],
            small_len: 0,
            chunks: VecDeque::new(),
            len: 0,
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
        match self.chunks.front() {
            Some(chunk) => Some(first_key(chunk)),
            None => self.small[0].as_ref().map(key),
        }
    }

    /// The key of inline entry `i` (`i < small_len`, invariant 4).
    fn small_key(&self, i: usize) -> Key {
        key(self.small[i].as_ref().expect("invariant 4"))
    }

    /// The inline entries (invariant 4).
    #[cfg(test)]
    fn small_keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.small[..self.small_len]
            .iter()
            .map(|e| key(e.as_ref().expect("invariant 4")))
    }

    /// The chunk that holds (or would hold) the entry with key `k` (invariant 2), if any
    /// chunk's first key is `<= k`.
    fn find(&self, k: Key) -> Option<usize> {
        // The common case first: the last chunk (growing deadlines).
        let last = self.chunks.len().checked_sub(1)?;
        if first_key(&self.chunks[last]) <= k {
            return Some(last);
        }
        self.chunks
            .partition_point(|c| first_key(c) <= k)
            .checked_sub(1)
    }

    /// Adds `entry` for `at`. Its `(at, id)` must not be in the queue already.
    #[inline]
    pub(crate) fn insert(&mut self, at: Ticks, entry: E) {
        let k = (at, entry.id());
        self.len += 1;
        if self.chunks.is_empty() {
            let n = self.small_len;
            if n < SMALL {
                // Invariant 4: in order among the inline entries. Searched from the back, and
                // moved only if it is not the last: growing deadlines just append.
                let mut pos = n;
                while pos > 0 && self.small_key(pos - 1) > k {
                    pos -= 1;
                }
                if pos < n {
                    self.small[pos..=n].rotate_right(1);
                }
                self.small[pos] = Some((at, entry));
                self.small_len = n + 1;
                return;
            }
            // One more than fits inline: they all move to a first chunk, in order.
            let mut chunk = VecDeque::with_capacity(2 * SMALL);
            chunk.extend(self.small.iter_mut().filter_map(Option::take));
            self.small_len = 0;
            self.chunks.push_back(chunk);
        }
        // Earlier than everything: it goes to the front of the first chunk.
        let i = self.find(k).unwrap_or(0);
        let is_last = i + 1 == self.chunks.len();
        if let Some(tail) = place(&mut self.chunks[i], k, (at, entry), is_last) {
            self.chunks.insert(i + 1, tail);
        }
    }

    /// Removes and returns the entry for `at` with `id`, if it is there.
    #[inline]
    pub(crate) fn remove(&mut self, at: Ticks, id: usize) -> Option<E> {
        let k = (at, id);
        if self.chunks.is_empty() {
            // From the back: the newest of growing deadlines first.
            let pos = (0..self.small_len)
                .rev()
                .find(|&i| self.small_key(i) == k)?;
            return Some(self.take_small(pos));
        }
        let i = self.find(k)?;
        let chunk = &mut self.chunks[i];
        // The last entry first: the newest of growing deadlines.
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

    /// Takes the inline entry at `pos` (invariant 4: the later ones move down).
    #[inline]
    fn take_small(&mut self, pos: usize) -> E {
        let (_, entry) = self.small[pos].take().expect("invariant 4");
        if pos + 1 < self.small_len {
            self.small[pos..self.small_len].rotate_left(1);
        }
        self.small_len -= 1;
        self.len -= 1;
        entry
    }

    /// Removes and returns the earliest entry if its deadline is at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Ticks) -> Option<(Ticks, E)> {
        let Some(chunk) = self.chunks.front_mut() else {
            let at = self.small[0].as_ref()?.0;
            return (at <= now).then(|| (at, self.take_small(0)));
        };
        if chunk.front()?.0 > now {
            return None;
        }
        let entry = chunk.pop_front();
        self.len -= 1;
        self.thinned(0);
        entry
    }

    /// Invariant 3, after an entry left chunk `i`: drops it if empty, else gives back what a
    /// thinned chunk does not use; an emptied queue gives back its list too.
    fn thinned(&mut self, i: usize) {
        let chunk = &mut self.chunks[i];
        if !chunk.is_empty() {
            if chunk.len() < chunk.capacity() / 4 {
                chunk.shrink_to(chunk.len() * 2);
            }
            return;
        }
        let emptied = if i + 1 == self.chunks.len() {
            self.chunks.pop_back()
        } else {
            self.chunks.remove(i)
        };
        drop(emptied);
        if self.chunks.is_empty() {
            self.chunks = VecDeque::new();
        } else if self.chunks.len() < self.chunks.capacity() / 4 {
            self.chunks.shrink_to(self.chunks.len() * 2);
        }
    }

    /// Whether an entry with `id` is in the queue, at any deadline (a linear scan, for tests).
    #[cfg(test)]
    pub(crate) fn contains_id(&self, id: usize) -> bool {
        let small = self.small.iter().flatten();
        small
            .chain(self.chunks.iter().flatten())
            .any(|e| e.1.id() == id)
    }

    /// Checks invariants 1 and 2 (for tests).
    #[cfg(test)]
    fn check(&self) {
        let mut prev: Option<Key> = None;
        let mut len = self.small_len;
        assert!(self.small_len == 0 || self.chunks.is_empty(), "invariant 4");
        for (i, e) in self.small.iter().enumerate() {
            assert_eq!(e.is_some(), i < self.small_len, "invariant 4");
        }
        for k in self.small_keys() {
            assert!(
                prev.is_none_or(|p| p < k),
                "inline entries strictly ascending"
            );
            prev = Some(k);
        }
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
        assert_eq!(q.chunks.capacity(), 0, "an empty queue holds no allocation");
        q.check();
    }

    #[test]
    fn a_quiet_queue_keeps_its_entries_inline_in_order() {
        let mut q = Queue::new();
        for (at, id) in [(5, 0), (3, 1), (5, 2), (4, 3)] {
            q.insert(at, T(id));
            q.check();
        }
        assert!(q.chunks.is_empty() && q.chunks.capacity() == 0, "inline");
        assert_eq!(q.first(), Some((3, 1)));
        assert_eq!(q.remove(5, 0).map(|t| t.0), Some(0));
        assert!(q.remove(5, 0).is_none());
        assert!(q.contains_id(2) && !q.contains_id(0));
        q.check();
        // One more than fits: into a chunk, still in order.
        q.insert(1, T(4));
        q.insert(6, T(5));
        q.check();
        assert!(!q.chunks.is_empty());
        assert!(q.pop_due(0).is_none(), "never early");
        let order: Vec<_> = std::iter::from_fn(|| q.pop_due(10).map(|(at, t)| (at, t.0))).collect();
        assert_eq!(order, [(1, 4), (3, 1), (4, 3), (5, 2), (6, 5)]);
        assert_eq!(q.chunks.capacity(), 0);
        // And inline again.
        q.insert(7, T(6));
        assert!(q.chunks.is_empty());
        assert_eq!(q.pop_due(7).map(|(at, t)| (at, t.0)), Some((7, 6)));
        assert_eq!(q.len(), 0);
        q.check();
    }
}
