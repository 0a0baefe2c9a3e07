//! A minimal slab: O(1) insert and remove by key, keys stable until removed.
//!
//! Used for the waiters of a context. Keys are reused after removal, so a key is only
//! meaningful while its owner knows the entry is still there; `tree` guarantees that by never
//! handing out a key after the slab has been taken (the context is done).

pub(crate) struct Slab<T> {
    /// Key 0, inline: a single waiter needs no allocation.
    first: Option<T>,
    /// Key `i + 1` is `entries[i]`.
    entries: Vec<Entry<T>>,
    next_free: usize,
    len: usize,
}

enum Entry<T> {
    Occupied(T),
    Vacant(usize),
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            first: None,
            entries: Vec::new(),
            next_free: 0,
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    pub(crate) fn insert(&mut self, value: T) -> usize {
        if self.first.is_none() {
            self.first = Some(value);
            self.len += 1;
            return 0;
        }
        self.insert_more(value) + 1
    }

    fn insert_more(&mut self, value: T) -> usize {
        let key = self.next_free;
        if key == self.entries.len() {
            self.entries.push(Entry::Occupied(value));
            self.next_free = key + 1;
        } else {
            match std::mem::replace(&mut self.entries[key], Entry::Occupied(value)) {
                Entry::Vacant(next) => self.next_free = next,
                Entry::Occupied(_) => unreachable!("slab free list points at an occupied entry"),
            }
        }
        self.len += 1;
        key
    }

    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        if key == 0 {
            return self.first.as_mut();
        }
        match self.entries.get_mut(key - 1) {
            Some(Entry::Occupied(v)) => Some(v),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        if key == 0 {
            let value = self.first.take()?;
            self.len -= 1;
            if self.len == 0 {
                *self = Slab::default();
            }
            return Some(value);
        }
        let key = key - 1;
        let entry = self.entries.get_mut(key)?;
        if let Entry::Vacant(_) = entry {
            return None;
        }
        let Entry::Occupied(value) = std::mem::replace(entry, Entry::Vacant(self.next_free)) else {
            unreachable!()
        };
        self.next_free = key;
        self.len -= 1;
        if self.len == 0 {
            // Give memory back once nothing waits any more.
            *self = Slab::default();
        }
        Some(value)
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn drain(self) -> impl Iterator<Item = T> {
        self.first
            .into_iter()
            .chain(self.entries.into_iter().filter_map(|e| match e {
                Entry::Occupied(v) => Some(v),
                Entry::Vacant(_) => None,
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::Slab;

    #[test]
    fn keys_are_stable_and_reused() {
        let mut s = Slab::default();
        let a = s.insert("a");
        let b = s.insert("b");
        let c = s.insert("c");
        assert_eq!(s.remove(b), Some("b"));
        assert_eq!(s.remove(b), None);
        assert_eq!(s.get_mut(a), Some(&mut "a"));
        let d = s.insert("d");
        assert_eq!(d, b, "a freed key is reused");
        assert_eq!(s.get_mut(c), Some(&mut "c"));
        let mut all: Vec<_> = s.drain().collect();
        all.sort();
        assert_eq!(all, ["a", "c", "d"]);
    }

    #[test]
    fn emptied_slab_releases_memory() {
        let mut s = Slab::default();
        let k = s.insert(1);
        s.remove(k);
        assert!(s.is_empty());
        assert_eq!(s.entries.capacity(), 0);
    }
}
