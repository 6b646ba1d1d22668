//! Gateway leases: at most one unexpired holder per key (a site), fenced by
//! epochs that only grow.
//!
//! This is a private stand-in with exactly the API of
//! `tincan_core::lease::LeaseTable`, which replaces it at merge time.
//!
//! # Rules
//! - A claim with an epoch below the key's current epoch, or equal to it
//!   from another holder, is [`LeaseRefusal::Stale`].
//! - A claim with a higher epoch while another holder's lease is unexpired
//!   is [`LeaseRefusal::Held`].
//! - A claim with a higher epoch and no live lease of another holder is
//!   granted; the same holder with the same epoch renews.
//! - Releasing or losing the holder ends the lease but keeps the epoch, so
//!   the epoch of a key never goes down ([`LeaseTable::restore`] puts back
//!   what was persisted before a restart).
//!
//! Time is an argument (ms on any monotonic clock); nothing here reads it.

use std::collections::HashMap;
use std::hash::Hash;

use tincan_core::DeviceId;

/// A granted lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Who holds it.
    pub holder: DeviceId,
    /// Its epoch.
    pub epoch: u64,
    /// When it ends unless renewed (same clock as `now`).
    pub expires_at_ms: u64,
}

/// Why a claim was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseRefusal {
    /// The claimed epoch is older than the current one (or equal to it from
    /// another holder): the claimant missed a newer gateway.
    Stale {
        /// The key's current epoch.
        current_epoch: u64,
        /// The live holder, if any.
        holder: Option<DeviceId>,
    },
    /// Another holder's lease is still live.
    Held {
        /// The key's current epoch.
        current_epoch: u64,
        /// The live holder.
        holder: DeviceId,
    },
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    epoch: u64,
    /// The last holder of `epoch`, if any was granted since start.
    holder: Option<DeviceId>,
    expires_at_ms: u64,
}

impl Entry {
    fn live_holder(&self, now_ms: u64) -> Option<DeviceId> {
        self.holder.filter(|_| now_ms < self.expires_at_ms)
    }
}

/// Leases per key with a fixed time to live.
#[derive(Debug)]
pub struct LeaseTable<K> {
    ttl_ms: u64,
    entries: HashMap<K, Entry>,
}

impl<K: Hash + Eq + Clone> LeaseTable<K> {
    /// An empty table whose grants last `ttl_ms`.
    pub fn new(ttl_ms: u64) -> Self {
        Self {
            ttl_ms,
            entries: HashMap::new(),
        }
    }

    /// The time to live of a grant, ms.
    pub fn ttl_ms(&self) -> u64 {
        self.ttl_ms
    }

    /// `holder` claims (or renews) `key` with `epoch` at `now_ms`.
    pub fn claim(
        &mut self,
        now_ms: u64,
        key: K,
        holder: DeviceId,
        epoch: u64,
    ) -> Result<Lease, LeaseRefusal> {
        let expires_at_ms = now_ms.saturating_add(self.ttl_ms);
        let entry = self.entries.entry(key).or_insert(Entry {
            epoch: 0,
            holder: None,
            expires_at_ms: 0,
        });
        let live = entry.live_holder(now_ms);
        if epoch < entry.epoch || (epoch == entry.epoch && entry.holder != Some(holder)) {
            return Err(LeaseRefusal::Stale {
                current_epoch: entry.epoch,
                holder: live,
            });
        }
        if epoch > entry.epoch {
            if let Some(other) = live.filter(|h| *h != holder) {
                return Err(LeaseRefusal::Held {
                    current_epoch: entry.epoch,
                    holder: other,
                });
            }
        }
        // A new epoch, or the same holder renewing its epoch (whose lease no
        // one else can have taken: that would have raised the epoch).
        *entry = Entry {
            epoch,
            holder: Some(holder),
            expires_at_ms,
        };
        Ok(Lease {
            holder,
            epoch,
            expires_at_ms,
        })
    }

    /// `holder` gives up `key` at `epoch`; returns whether a lease ended.
    pub fn release(&mut self, now_ms: u64, key: K, holder: DeviceId, epoch: u64) -> bool {
        match self.entries.get_mut(&key) {
            Some(entry) if entry.epoch == epoch && entry.live_holder(now_ms) == Some(holder) => {
                entry.expires_at_ms = now_ms;
                true
            }
            _ => false,
        }
    }

    /// The live holder of `key` and its epoch.
    pub fn holder(&self, now_ms: u64, key: &K) -> Option<(DeviceId, u64)> {
        let entry = self.entries.get(key)?;
        entry.live_holder(now_ms).map(|h| (h, entry.epoch))
    }

    /// Ends every live lease of `holder` (its connection is gone); returns
    /// the keys it held.
    pub fn handle_holder_gone(&mut self, now_ms: u64, holder: DeviceId) -> Vec<K> {
        let mut ended = Vec::new();
        for (key, entry) in &mut self.entries {
            if entry.live_holder(now_ms) == Some(holder) {
                entry.expires_at_ms = now_ms;
                ended.push(key.clone());
            }
        }
        ended
    }

    /// The current epoch of every key (to persist).
    pub fn epochs(&self) -> impl Iterator<Item = (&K, u64)> + '_ {
        self.entries.iter().map(|(k, e)| (k, e.epoch))
    }

    /// Puts back a persisted epoch (never lowers one already known).
    pub fn restore(&mut self, key: K, epoch: u64) {
        let entry = self.entries.entry(key).or_insert(Entry {
            epoch: 0,
            holder: None,
            expires_at_ms: 0,
        });
        entry.epoch = entry.epoch.max(epoch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(n: u8) -> DeviceId {
        DeviceId([n; 20])
    }

    #[test]
    fn grant_hold_stale_renew_and_expiry() {
        let mut t = LeaseTable::new(3_000);
        let lease = t.claim(0, "s", dev(1), 1).expect("granted");
        assert_eq!(lease.expires_at_ms, 3_000);
        assert_eq!(
            t.claim(10, "s", dev(2), 2),
            Err(LeaseRefusal::Held {
                current_epoch: 1,
                holder: dev(1)
            })
        );
        assert_eq!(
            t.claim(10, "s", dev(2), 1),
            Err(LeaseRefusal::Stale {
                current_epoch: 1,
                holder: Some(dev(1))
            })
        );
        assert_eq!(
            t.claim(1_000, "s", dev(1), 1).expect("renew").expires_at_ms,
            4_000
        );
        assert_eq!(t.holder(3_999, &"s"), Some((dev(1), 1)));
        assert_eq!(t.holder(4_000, &"s"), None);
        assert_eq!(t.claim(4_000, "s", dev(2), 2).expect("taken").epoch, 2);
        assert!(matches!(
            t.claim(4_001, "s", dev(1), 1),
            Err(LeaseRefusal::Stale {
                current_epoch: 2,
                ..
            })
        ));
    }

    #[test]
    fn release_gone_and_restore_keep_the_epoch() {
        let mut t = LeaseTable::new(3_000);
        t.claim(0, 7u8, dev(1), 5).expect("granted");
        assert!(!t.release(1, 7, dev(2), 5));
        assert!(t.release(1, 7, dev(1), 5));
        assert_eq!(t.holder(2, &7), None);
        t.claim(3, 7, dev(2), 6).expect("granted");
        assert_eq!(t.handle_holder_gone(4, dev(2)), vec![7]);
        assert_eq!(t.holder(5, &7), None);
        assert_eq!(t.epochs().collect::<Vec<_>>(), vec![(&7, 6)]);

        let mut restarted = LeaseTable::new(3_000);
        restarted.restore(7u8, 6);
        assert!(matches!(
            restarted.claim(0, 7, dev(2), 6),
            Err(LeaseRefusal::Stale {
                current_epoch: 6,
                holder: None
            })
        ));
        assert!(restarted.claim(0, 7, dev(2), 7).is_ok());
        restarted.restore(7, 3);
        assert_eq!(restarted.epochs().next().map(|(_, e)| e), Some(7));
    }
}
