//! The set of verified chunks: a plain bitmap, persisted as its bytes
//! (bit `i % 8` of byte `i / 8` is chunk `i`), so a resumed transfer knows
//! exactly which chunks need no second fetch.

/// A fixed-size set of chunk indices.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ChunkSet {
    bits: Vec<u8>,
    len: u64,
    count: u64,
}

impl ChunkSet {
    /// An empty set for `len` chunks.
    pub fn new(len: u64) -> Self {
        Self {
            bits: vec![0; len.div_ceil(8) as usize],
            len,
            count: 0,
        }
    }

    /// A set for `len` chunks from stored bytes; bits beyond `len` and
    /// missing bytes are ignored (a damaged row costs a re-fetch, never a
    /// wrong claim beyond the file).
    pub fn from_bytes(len: u64, bytes: &[u8]) -> Self {
        let mut set = Self::new(len);
        for index in 0..len {
            let (byte, bit) = ((index / 8) as usize, index % 8);
            if bytes.get(byte).is_some_and(|b| b & (1 << bit) != 0) {
                set.insert(index);
            }
        }
        set
    }

    /// The bitmap bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }

    /// Number of chunks the set is sized for.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the set is sized for no chunk at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of chunks in the set.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether every chunk is in the set.
    pub fn is_full(&self) -> bool {
        self.count == self.len
    }

    /// Whether `index` is in the set (false when out of range).
    pub fn contains(&self, index: u64) -> bool {
        index < self.len && self.bits[(index / 8) as usize] & (1 << (index % 8)) != 0
    }

    /// Adds `index`; returns whether it was new (false when out of range).
    pub fn insert(&mut self, index: u64) -> bool {
        if index >= self.len || self.contains(index) {
            return false;
        }
        self.bits[(index / 8) as usize] |= 1 << (index % 8);
        self.count += 1;
        true
    }

    /// Removes `index`; returns whether it was there.
    pub fn remove(&mut self, index: u64) -> bool {
        if !self.contains(index) {
            return false;
        }
        self.bits[(index / 8) as usize] &= !(1 << (index % 8));
        self.count -= 1;
        true
    }

    /// The missing indices at or after `from`, in order.
    pub fn missing_from(&self, from: u64) -> impl Iterator<Item = u64> + '_ {
        (from..self.len).filter(|i| !self.contains(*i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_and_round_trip() {
        let mut set = ChunkSet::new(13);
        assert!(set.insert(0) && set.insert(12) && !set.insert(12) && !set.insert(13));
        assert_eq!(set.count(), 2);
        assert_eq!(set.as_bytes(), &[0b1, 0b1_0000]);
        let back = ChunkSet::from_bytes(13, set.as_bytes());
        assert_eq!(back, set);
        assert!(set.remove(0) && !set.remove(0));
        assert_eq!(set.missing_from(10).collect::<Vec<_>>(), [10, 11]);
        // Garbage beyond the length is ignored.
        let junk = ChunkSet::from_bytes(3, &[0xff, 0xff]);
        assert_eq!(junk.count(), 3);
        assert!(junk.is_full());
        assert!(ChunkSet::new(0).is_full());
    }
}
