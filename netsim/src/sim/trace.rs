//! The trace hash: every processed event's time, order, place and ids,
//! hashed with blake3, so two runs can be compared by one string.
//!
//! The bytes are gathered in a buffer and hashed a block at a time. A
//! blake3 hash depends only on the bytes, not on how they were handed
//! over, so the hash is the one of feeding each field straight in; but
//! ten calls of `Hasher::update` with a few bytes each per event cost
//! about 5 % of a 2,000-node run (some ten million events).

/// Bytes gathered before they go through the hasher: large enough that
/// blake3 hashes whole chunks (and several at once), small enough to stay
/// in the cache.
const BUFFER: usize = 16 * 1024;

/// A blake3 hash of a stream of length-prefixed parts.
#[derive(Clone)]
pub(crate) struct Trace {
    hasher: blake3::Hasher,
    pending: Vec<u8>,
}

impl Trace {
    /// An empty trace whose hash is keyed by `context` (blake3's
    /// `derive_key` mode), so traces of different simulators differ.
    pub(crate) fn new(context: &str) -> Self {
        Self {
            hasher: blake3::Hasher::new_derive_key(context),
            pending: Vec::with_capacity(BUFFER),
        }
    }

    /// Appends raw bytes.
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= BUFFER {
            self.hasher.update(&self.pending);
            self.pending.clear();
        }
    }

    /// Appends `part` after its length (8 bytes, little endian), so that
    /// parts of different lengths cannot run into each other.
    pub(crate) fn part(&mut self, part: &[u8]) {
        self.bytes(&(part.len() as u64).to_le_bytes());
        self.bytes(part);
    }

    /// Appends a part whose bytes `write` puts at the end of `out`, for
    /// parts assembled from pieces (no temporary buffer per part).
    pub(crate) fn part_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let at = self.pending.len();
        self.pending.extend_from_slice(&[0; 8]);
        write(&mut self.pending);
        let len = (self.pending.len() - at - 8) as u64;
        self.pending[at..at + 8].copy_from_slice(&len.to_le_bytes());
        self.bytes(&[]);
    }

    /// The hash of everything so far, as hex.
    pub(crate) fn hash(&self) -> String {
        let mut hasher = self.hasher.clone();
        hasher.update(&self.pending);
        hasher.finalize().to_hex().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_what_feeding_every_part_straight_in_hashes() {
        let mut direct = blake3::Hasher::new_derive_key("test trace");
        let mut trace = Trace::new("test trace");
        for i in 0..10_000u64 {
            let part = i.to_le_bytes();
            let part = &part[..(i % 9) as usize];
            direct.update(&(part.len() as u64).to_le_bytes());
            direct.update(part);
            if i % 2 == 0 {
                trace.part(part);
            } else {
                trace.part_with(|out| out.extend_from_slice(part));
            }
        }
        assert_eq!(trace.hash(), direct.finalize().to_hex().to_string());
    }
}
