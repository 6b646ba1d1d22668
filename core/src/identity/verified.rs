//! Certificates that verified before, so a peer's certificate costs one
//! ed25519 verification per process rather than one per message.
//!
//! Verification is a pure function of the certificate's bytes, so
//! remembering a success cannot change an answer: the set holds whole
//! certificates (compared field by field, signature included), never a
//! digest that another certificate could share, and only certificates
//! that verified. It is bounded: when full it starts over, which costs a
//! verification per certificate again and nothing else. It is shared by
//! every state machine in the process (the simulator runs thousands of
//! devices in one), behind a lock held only to look up or insert.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use super::DeviceCert;

/// Most certificates remembered: an office's devices many times over.
const CAPACITY: usize = 16_384;

fn set() -> &'static Mutex<HashSet<DeviceCert>> {
    static SET: OnceLock<Mutex<HashSet<DeviceCert>>> = OnceLock::new();
    SET.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Whether `cert` verified before.
pub(super) fn contains(cert: &DeviceCert) -> bool {
    // A poisoned lock only means another thread panicked mid-insert; the
    // set is still a set of verified certificates.
    let set = set().lock().unwrap_or_else(|e| e.into_inner());
    set.contains(cert)
}

/// Remembers a certificate that just verified.
pub(super) fn insert(cert: &DeviceCert) {
    let mut set = set().lock().unwrap_or_else(|e| e.into_inner());
    if set.len() >= CAPACITY {
        set.clear();
    }
    set.insert(cert.clone());
}
