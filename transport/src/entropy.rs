//! The OS random source as a [`tincan_core::Entropy`].
//!
//! Core never reads the OS random source itself (so the simulator can
//! replay a run from a seed); the daemons hand it this one for real keys,
//! message ids and nonces. The node and the relay both need it, so it
//! lives in the crate they share.

use tincan_core::Entropy;

/// The OS random source, for real keys.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&mut self, dest: &mut [u8]) {
        // Without OS randomness no key can be made safely: stopping is right.
        getrandom::fill(dest).expect("the OS random source is unavailable");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_the_whole_buffer_with_fresh_bytes() {
        let a = OsEntropy.bytes32();
        let b = OsEntropy.bytes32();
        assert_ne!(a, b);
        assert_ne!(a, [0; 32]);
    }
}
