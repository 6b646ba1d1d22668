//! Gateway leases, as the relay grants them.
//!
//! The relay keeps one [`LeaseTable`] keyed by whatever names a site for it
//! (in practice `(organisation, site)`). Invariants:
//! - at most one *live* (unexpired, unreleased) lease per key;
//! - the epoch of a key never decreases, and an epoch once granted is never
//!   granted again after its lease lapsed or was released: a delayed or
//!   replayed claim of an old gateway is refused as stale, so a deposed
//!   gateway can never come back under its old epoch;
//! - a claim with a newer epoch is still refused while another holder's
//!   lease is live: failover waits for the lease to run out (at most the
//!   TTL), which is what lets a holder that lost contact step down on its
//!   own clock before anyone else is granted the site;
//! - a claim may go at most [`MAX_EPOCH_STEP`] above the current epoch, so
//!   nobody can burn a site's epoch space (a claim of `u64::MAX` would
//!   leave every later claim stale, and the site without a gateway for
//!   ever). Epochs therefore only ever grow by grants, a few at a time.
//!
//! Epochs survive a relay restart through [`LeaseTable::epochs`] and
//! [`LeaseTable::restore`]; live leases need not, since they are short.
//!
//! The table is bounded ([`MAX_LEASES`]): a refused claim leaves nothing
//! behind, and a claim for a new site in a full table evicts the site whose
//! lease lapsed longest ago ([`LeaseTable::poll_evicted`] tells the relay,
//! which forgets its stored epoch too). An evicted site that comes back
//! starts again near epoch 0; its nodes are told the relay's epoch in the
//! refusal of their higher claim and claim just above it.
//!
//! Like the rest of core this is pure: `now` (Unix ms) is always a parameter.

mod grant;

use std::collections::BTreeMap;

use crate::DeviceId;

pub use grant::{GrantError, LeaseGrant, VerifiedGrant, GRANT_CLOCK_SLACK_MS};

/// How far above a site's current epoch a claim may go. One would do for
/// a claimant that heard the current epoch; a few spare let a node that
/// saw a newer epoch of another relay (or a lost answer) claim without a
/// round trip, while `u64::MAX / MAX_EPOCH_STEP` grants are out of reach.
pub const MAX_EPOCH_STEP: u64 = 8;

/// The lease lifetime a relay grants unless configured otherwise, and the
/// one nodes assume until the relay's welcome says (see
/// [`crate::election::ElectionConfig::with_lease_ttl`]). Short, because a
/// silently dead gateway is replaced only once its lease lapsed: 1.2 s,
/// renewed every 400 ms, puts failover within about 1.5 s (issue 15);
/// it was 3 s.
pub const DEFAULT_LEASE_TTL_MS: u64 = 1_200;

/// Most sites a relay keeps leases and epochs for (all organisations
/// together): every member could otherwise mint site ids and fill it.
pub const MAX_LEASES: usize = 65_536;

/// A granted (or renewed) lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease<K> {
    /// The site it is for.
    pub key: K,
    /// The gateway holding it.
    pub holder: DeviceId,
    /// Its epoch; the relay routes the site only through this epoch.
    pub epoch: u64,
    /// When it lapses unless renewed (Unix ms).
    pub expires_at: u64,
}

/// Why a claim was refused. Both carry what the claimant needs to claim
/// sensibly next time: the current epoch (to claim above it) and the holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseRefusal {
    /// The epoch is older than the current one, or equal to it but not the
    /// live lease of the same holder (another holder, or a lapsed lease).
    /// Claim again with an epoch above `current_epoch`.
    #[error("stale lease epoch: the current epoch is {current_epoch}")]
    Stale {
        /// The highest epoch ever granted for the key.
        current_epoch: u64,
        /// The live holder, if any.
        holder: Option<DeviceId>,
    },
    /// Another device holds a live lease. Retry after it lapses.
    #[error("lease is held by {holder} at epoch {current_epoch}")]
    Held {
        /// The epoch of the live lease.
        current_epoch: u64,
        /// Its holder.
        holder: DeviceId,
    },
    /// The epoch is more than [`MAX_EPOCH_STEP`] above the current one.
    /// Claim again just above `current_epoch`.
    #[error("lease epoch too far above the current epoch {current_epoch}")]
    TooFar {
        /// The highest epoch ever granted for the key.
        current_epoch: u64,
        /// The live holder, if any (only ever the claimant itself: another
        /// live holder is reported as [`LeaseRefusal::Held`]).
        holder: Option<DeviceId>,
    },
    /// The table holds [`MAX_LEASES`] sites, all with live leases: no room
    /// for a new site. Retry later.
    #[error("the relay holds live leases for too many sites")]
    Full,
}

impl LeaseRefusal {
    /// The key's current epoch.
    pub fn current_epoch(&self) -> u64 {
        match *self {
            Self::Stale { current_epoch, .. }
            | Self::Held { current_epoch, .. }
            | Self::TooFar { current_epoch, .. } => current_epoch,
            Self::Full => 0,
        }
    }

    /// The live holder, if any.
    pub fn holder(&self) -> Option<DeviceId> {
        match *self {
            Self::Stale { holder, .. } | Self::TooFar { holder, .. } => holder,
            Self::Held { holder, .. } => Some(holder),
            Self::Full => None,
        }
    }
}

/// One site's lease as a relay keeps it: the table's entry, and what a
/// relay cluster stores per site in its shared engine (serde), where each
/// node decides a claim with [`LeaseState::claim`] and writes the result
/// by compare-and-set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeaseState {
    /// Highest epoch granted (or restored) for the site.
    pub epoch: u64,
    /// Holder of `epoch`; `None` once released or when only restored.
    pub holder: Option<DeviceId>,
    /// When the holder's lease lapses (Unix ms, exclusive).
    pub expires_at: u64,
}

impl LeaseState {
    /// The holder whose lease is live at `now`.
    pub fn live_holder(&self, now: u64) -> Option<DeviceId> {
        self.holder.filter(|_| self.expires_at > now)
    }

    /// The rule of a claim (first claim or renewal) by `holder` at `epoch`
    /// (see [`LeaseTable::claim`]): the state after a grant, or why not.
    pub fn claim(
        &self,
        now: u64,
        holder: DeviceId,
        epoch: u64,
        ttl_ms: u64,
    ) -> Result<LeaseState, LeaseRefusal> {
        let (current_epoch, live) = (self.epoch, self.live_holder(now));
        if epoch < current_epoch || (epoch == current_epoch && live != Some(holder)) {
            return Err(LeaseRefusal::Stale {
                current_epoch,
                holder: live,
            });
        }
        if epoch > current_epoch {
            if let Some(other) = live.filter(|h| *h != holder) {
                return Err(LeaseRefusal::Held {
                    current_epoch,
                    holder: other,
                });
            }
            if epoch - current_epoch > MAX_EPOCH_STEP {
                return Err(LeaseRefusal::TooFar {
                    current_epoch,
                    holder: live,
                });
            }
        }
        // Grant or renewal: either way the lease runs ttl from now.
        Ok(LeaseState {
            epoch,
            holder: Some(holder),
            expires_at: now.saturating_add(ttl_ms),
        })
    }

    /// The rule of a release (see [`LeaseTable::release`]): the state
    /// after it, or `None` when `holder` does not hold `epoch` now.
    pub fn release(&self, now: u64, holder: DeviceId, epoch: u64) -> Option<LeaseState> {
        (self.epoch == epoch && self.live_holder(now) == Some(holder)).then_some(LeaseState {
            epoch,
            holder: None,
            expires_at: now,
        })
    }
}

type Entry = LeaseState;

/// The leases of every site a relay serves.
#[derive(Clone, Debug)]
pub struct LeaseTable<K: Ord + Clone> {
    ttl_ms: u64,
    entries: BTreeMap<K, Entry>,
    max_entries: usize,
    evicted: Vec<K>,
}

impl<K: Ord + Clone> LeaseTable<K> {
    /// An empty table whose leases last `ttl_ms` from each grant or renewal.
    pub fn new(ttl_ms: u64) -> Self {
        Self::with_max_entries(ttl_ms, MAX_LEASES)
    }

    /// [`LeaseTable::new`] holding at most `max_entries` sites.
    pub fn with_max_entries(ttl_ms: u64, max_entries: usize) -> Self {
        Self {
            ttl_ms,
            entries: BTreeMap::new(),
            max_entries: max_entries.max(1),
            evicted: Vec::new(),
        }
    }

    /// A site forgotten to make room for another, for the relay to forget
    /// its stored epoch too.
    #[must_use]
    pub fn poll_evicted(&mut self) -> Option<K> {
        self.evicted.pop()
    }

    /// Makes room for one more site, evicting the one whose lease lapsed
    /// longest ago; `false` when every site has a live lease.
    fn make_room(&mut self, now: u64) -> bool {
        if self.entries.len() < self.max_entries {
            return true;
        }
        let oldest = self
            .entries
            .iter()
            .filter(|(_, e)| e.live_holder(now).is_none())
            .min_by_key(|(_, e)| e.expires_at)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(key) => {
                self.entries.remove(&key);
                self.evicted.push(key);
                true
            }
            None => false,
        }
    }

    /// The lease lifetime in milliseconds.
    pub fn ttl_ms(&self) -> u64 {
        self.ttl_ms
    }

    /// Handles a claim (first claim or renewal) by `holder` for `key` at
    /// `epoch`.
    ///
    /// Grants a new lease when `epoch` is above the current one and no other
    /// holder's lease is live (the holder's own older lease is replaced);
    /// renews when it is the live lease of the same holder and epoch.
    /// Epoch 0 is never granted: it means "no epoch yet"; nor is an epoch
    /// more than [`MAX_EPOCH_STEP`] above the current one.
    pub fn claim(
        &mut self,
        now: u64,
        key: K,
        holder: DeviceId,
        epoch: u64,
    ) -> Result<Lease<K>, LeaseRefusal> {
        let state = self.entries.get(&key).copied().unwrap_or_default();
        let granted = state.claim(now, holder, epoch, self.ttl_ms)?;
        // Only a grant stores anything: refused claims leave no entry.
        if !self.entries.contains_key(&key) && !self.make_room(now) {
            return Err(LeaseRefusal::Full);
        }
        self.entries.insert(key.clone(), granted);
        Ok(Lease {
            key,
            holder,
            epoch,
            expires_at: granted.expires_at,
        })
    }

    /// Mirrors a lease that a relay cluster's shared engine granted (by
    /// [`LeaseState::claim`] and compare-and-set), so this node routes
    /// through it; never lowers the epoch.
    pub fn adopt(&mut self, key: K, state: LeaseState) {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max_entries {
            return;
        }
        let entry = self.entries.entry(key).or_default();
        if state.epoch >= entry.epoch {
            *entry = state;
        }
    }

    /// Ends the lease early (a gateway stepping down). Only the live holder
    /// of the current epoch can release; returns whether it did. The epoch
    /// stays used: it will not be granted again.
    pub fn release(&mut self, now: u64, key: &K, holder: DeviceId, epoch: u64) -> bool {
        let Some(entry) = self.entries.get_mut(key) else {
            return false;
        };
        match entry.release(now, holder, epoch) {
            Some(released) => {
                *entry = released;
                true
            }
            None => false,
        }
    }

    /// The live holder of `key` and its epoch.
    pub fn holder(&self, now: u64, key: &K) -> Option<(DeviceId, u64)> {
        let entry = self.entries.get(key)?;
        entry.live_holder(now).map(|h| (h, entry.epoch))
    }

    /// The live lease of `key`.
    pub fn lease(&self, now: u64, key: &K) -> Option<Lease<K>> {
        let entry = self.entries.get(key)?;
        entry.live_holder(now).map(|holder| Lease {
            key: key.clone(),
            holder,
            epoch: entry.epoch,
            expires_at: entry.expires_at,
        })
    }

    /// Releases every live lease of `holder`, whose relay connection closed
    /// *gracefully* (a holder closing its connection has stopped acting as
    /// gateway; a connection that merely timed out must instead run out its
    /// lease, since the holder may still believe it is gateway). Returns the
    /// keys released.
    pub fn handle_holder_gone(&mut self, now: u64, holder: DeviceId) -> Vec<K> {
        let mut released = Vec::new();
        for (key, entry) in self.entries.iter_mut() {
            if entry.live_holder(now) == Some(holder) {
                entry.holder = None;
                entry.expires_at = now;
                released.push(key.clone());
            }
        }
        released
    }

    /// Every key with the last epoch used for it, for the relay to persist.
    pub fn epochs(&self) -> impl Iterator<Item = (&K, u64)> + '_ {
        self.entries.iter().map(|(k, e)| (k, e.epoch))
    }

    /// Restores a persisted epoch after a restart, so that no epoch up to it
    /// can be granted again. Never lowers an epoch already known.
    pub fn restore(&mut self, key: K, epoch: u64) {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max_entries {
            // More stored than the bound (an older relay): the rest start
            // near 0 again, as evicted sites do.
            return;
        }
        let entry = self.entries.entry(key).or_insert(Entry {
            epoch: 0,
            holder: None,
            expires_at: 0,
        });
        entry.epoch = entry.epoch.max(epoch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: u64 = 3_000;

    fn dev(n: u8) -> DeviceId {
        DeviceId([n; 20])
    }

    fn table() -> LeaseTable<&'static str> {
        LeaseTable::new(TTL)
    }

    #[test]
    fn grants_then_renews_the_same_holder_and_epoch() {
        let mut t = table();
        let lease = t.claim(100, "a", dev(1), 1).expect("granted");
        assert_eq!(lease.expires_at, 100 + TTL);
        assert_eq!(t.holder(100, &"a"), Some((dev(1), 1)));
        let renewed = t.claim(1_100, "a", dev(1), 1).expect("renewed");
        assert_eq!(renewed.expires_at, 1_100 + TTL);
        assert_eq!(t.holder(1_100 + TTL - 1, &"a"), Some((dev(1), 1)));
        assert_eq!(t.holder(1_100 + TTL, &"a"), None, "expiry is exclusive");
    }

    #[test]
    fn epoch_zero_is_never_granted() {
        let mut t = table();
        assert_eq!(
            t.claim(0, "a", dev(1), 0),
            Err(LeaseRefusal::Stale {
                current_epoch: 0,
                holder: None
            })
        );
    }

    #[test]
    fn another_holder_is_refused_while_the_lease_is_live() {
        let mut t = table();
        t.claim(0, "a", dev(1), 1).expect("granted");
        let refusal = t.claim(10, "a", dev(2), 2).expect_err("held");
        assert_eq!(
            refusal,
            LeaseRefusal::Held {
                current_epoch: 1,
                holder: dev(1)
            }
        );
        assert_eq!(refusal.holder(), Some(dev(1)));
        // Same epoch as the holder's: stale, whoever asks.
        assert!(matches!(
            t.claim(10, "a", dev(2), 1),
            Err(LeaseRefusal::Stale {
                current_epoch: 1,
                holder: Some(_)
            })
        ));
        // Once it lapses the newer epoch wins.
        let lease = t.claim(TTL, "a", dev(2), 2).expect("granted after expiry");
        assert_eq!(lease.epoch, 2);
        assert_eq!(t.holder(TTL, &"a"), Some((dev(2), 2)));
    }

    #[test]
    fn replaying_an_old_claim_is_refused_as_stale() {
        let mut t = table();
        t.claim(0, "a", dev(1), 1).expect("granted");
        t.claim(TTL, "a", dev(2), 2).expect("granted after expiry");
        // The old gateway's delayed renewal, and a replay of its first claim
        // after the new lease lapsed too: both stale forever.
        let refusal = t.claim(TTL + 1, "a", dev(1), 1).expect_err("stale");
        assert_eq!(refusal.current_epoch(), 2);
        assert!(matches!(refusal, LeaseRefusal::Stale { .. }));
        assert!(matches!(
            t.claim(10 * TTL, "a", dev(1), 1),
            Err(LeaseRefusal::Stale {
                current_epoch: 2,
                holder: None
            })
        ));
    }

    #[test]
    fn a_lapsed_lease_cannot_be_renewed_under_its_old_epoch() {
        let mut t = table();
        t.claim(0, "a", dev(1), 1).expect("granted");
        assert!(matches!(
            t.claim(TTL, "a", dev(1), 1),
            Err(LeaseRefusal::Stale {
                current_epoch: 1,
                holder: None
            })
        ));
    }

    #[test]
    fn the_holder_may_move_to_a_newer_epoch_while_live() {
        let mut t = table();
        t.claim(0, "a", dev(1), 1).expect("granted");
        assert_eq!(t.claim(5, "a", dev(1), 4).map(|l| l.epoch), Ok(4));
        assert!(matches!(
            t.claim(6, "a", dev(1), 1),
            Err(LeaseRefusal::Stale {
                current_epoch: 4,
                ..
            })
        ));
    }

    #[test]
    fn sites_are_independent() {
        let mut t = table();
        t.claim(0, "a", dev(1), 1).expect("granted");
        // Another site's lease is held: a claim for it is refused, and the
        // first site's lease is untouched.
        t.claim(0, "b", dev(2), 1).expect("granted");
        assert!(matches!(
            t.claim(1, "b", dev(1), 2),
            Err(LeaseRefusal::Held { holder, .. }) if holder == dev(2)
        ));
        assert_eq!(t.holder(1, &"a"), Some((dev(1), 1)));
        assert_eq!(t.holder(1, &"b"), Some((dev(2), 1)));
    }

    #[test]
    fn release_only_by_the_live_holder_of_the_current_epoch() {
        let mut t = table();
        t.claim(0, "a", dev(1), 3).expect("granted");
        assert!(!t.release(1, &"a", dev(2), 3), "not the holder");
        assert!(!t.release(1, &"a", dev(1), 2), "not the epoch");
        assert!(!t.release(1, &"b", dev(1), 3), "not the site");
        assert!(t.release(1, &"a", dev(1), 3));
        assert_eq!(t.holder(1, &"a"), None);
        assert!(!t.release(2, &"a", dev(1), 3), "already released");
        // Released epochs stay used; the next claim must go above.
        assert!(matches!(
            t.claim(2, "a", dev(1), 3),
            Err(LeaseRefusal::Stale { .. })
        ));
        assert_eq!(t.claim(2, "a", dev(2), 4).map(|l| l.holder), Ok(dev(2)));
    }

    #[test]
    fn a_holder_gone_loses_all_its_leases() {
        let mut t = table();
        t.claim(0, "a", dev(1), 1).expect("granted");
        t.claim(0, "b", dev(1), 1).expect("granted");
        t.claim(0, "c", dev(2), 1).expect("granted");
        assert_eq!(t.handle_holder_gone(5, dev(1)), vec!["a", "b"]);
        assert_eq!(t.holder(5, &"a"), None);
        assert_eq!(t.holder(5, &"c"), Some((dev(2), 1)));
        assert_eq!(t.claim(6, "a", dev(3), 2).map(|l| l.epoch), Ok(2));
    }

    #[test]
    fn epoch_jumps_the_relay_did_not_grant_are_refused() {
        let mut t = table();
        // Nobody can burn a site's epoch space: a claim far above the
        // current epoch is refused, and the site can still be leased.
        let refusal = t.claim(0, "a", dev(1), u64::MAX).expect_err("too far");
        assert_eq!(refusal.current_epoch(), 0);
        assert_eq!(refusal.holder(), None);
        assert_eq!(t.holder(0, &"a"), None);
        assert_eq!(t.claim(0, "a", dev(2), 1).map(|l| l.epoch), Ok(1));
        assert_eq!(
            t.claim(TTL, "a", dev(1), 2 + MAX_EPOCH_STEP),
            Err(LeaseRefusal::TooFar {
                current_epoch: 1,
                holder: None
            })
        );
        assert_eq!(
            t.claim(TTL, "a", dev(1), 1 + MAX_EPOCH_STEP)
                .map(|l| l.epoch),
            Ok(1 + MAX_EPOCH_STEP)
        );
    }

    #[test]
    fn epochs_survive_a_restart() {
        let mut t = table();
        t.claim(0, "a", dev(1), 7).expect("granted");
        t.claim(0, "b", dev(2), 2).expect("granted");
        let saved: Vec<(&str, u64)> = t.epochs().map(|(k, e)| (*k, e)).collect();
        assert_eq!(saved, vec![("a", 7), ("b", 2)]);

        let mut restarted = table();
        for (k, e) in saved {
            restarted.restore(k, e);
        }
        restarted.restore("a", 1); // never lowers
        assert_eq!(restarted.holder(0, &"a"), None, "no live lease restored");
        assert!(matches!(
            restarted.claim(1, "a", dev(1), 7),
            Err(LeaseRefusal::Stale {
                current_epoch: 7,
                holder: None
            })
        ));
        let lease = restarted.claim(1, "a", dev(1), 8).expect("granted");
        assert_eq!(restarted.lease(1, &"a"), Some(lease));
    }

    #[test]
    fn refused_claims_leave_nothing_and_a_full_table_evicts_the_longest_lapsed_site() {
        let (a, b, c) = (DeviceId([1; 20]), DeviceId([2; 20]), DeviceId([3; 20]));
        let mut table = LeaseTable::with_max_entries(TTL, 2);
        // Refused claims of made-up sites store nothing.
        for site in 10..100u32 {
            assert!(table.claim(0, site, a, 0).is_err());
            assert!(table.claim(0, site, a, MAX_EPOCH_STEP + 1).is_err());
        }
        assert_eq!(table.epochs().count(), 0);
        table.claim(0, 1u32, a, 1).expect("site 1");
        table.claim(10, 2u32, b, 1).expect("site 2");
        // Both live: no room for a third site.
        assert_eq!(table.claim(20, 3u32, c, 1), Err(LeaseRefusal::Full));
        assert_eq!(table.poll_evicted(), None);
        // Site 1 lapses first, so it goes.
        let later = 10 + TTL + 1;
        table
            .claim(later, 3u32, c, 1)
            .expect("site 3 after site 1 lapsed");
        assert_eq!(table.poll_evicted(), Some(1));
        assert_eq!(table.poll_evicted(), None);
        let sites: Vec<u32> = table.epochs().map(|(k, _)| *k).collect();
        assert_eq!(sites, vec![2, 3]);
        // Restoring beyond the bound keeps the table as it is.
        table.restore(4, 7);
        assert_eq!(table.epochs().count(), 2);
    }
}
