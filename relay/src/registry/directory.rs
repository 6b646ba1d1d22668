//! What each registered device has been told of its organisation's
//! directory, so that a push carries only what changed for it.
//!
//! Each organisation keeps the directory it last published, each entry
//! stamped with the version at which it last changed, and each registered
//! connection the version it acknowledged. A push round
//! ([`Registry::directory_round`]) republishes the directory (only entries
//! that differ get a new version) and hands out one batch per distinct
//! acknowledged version: the entries changed since, for all connections
//! at that version. Connections registered since the last round stand at
//! version 0 and get everything; the rest get a delta. Receivers merge
//! directory frames by device (they always did: a directory longer than
//! one frame comes in parts), so a delta is an ordinary directory frame.
//!
//! At most one push per connection is in flight ([`DirectorySent::busy`]),
//! so deltas arrive in order, and what a connection pins is one push of
//! shared bytes, not one copy per change.
//!
//! Before, every change pushed the whole directory to every device, each
//! push a copy of every entry: N devices registering cost N² entries in
//! flight and in the allocator, and 200 devices 1.1 MB each of resident
//! memory. The directory is still sent whole once per connection (a
//! device new to this relay knows nobody): the wire protocol has no way
//! for a device to say what it already holds.
//!
//! Removed and revoked devices leave the published directory in the same
//! round that leaves them out of `known`, so they are never sent again.

use std::collections::{BTreeMap, HashMap};

use tincan_core::route::DirectoryEntry;
use tincan_core::{DeviceId, OrgId};

use super::Registry;

/// The directory as last published to an organisation's devices.
#[derive(Debug, Default)]
pub struct Published {
    /// Version of the latest change (0: nothing published yet).
    version: u64,
    /// Each device's entry and the version at which it last changed.
    entries: HashMap<DeviceId, (DirectoryEntry, u64)>,
}

/// What a registered connection has of the directory.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirectorySent {
    /// The published version it acknowledged (0: none).
    pub version: u64,
    /// A push to it is in flight.
    pub busy: bool,
}

/// One push of a round: the entries changed since `since`, sorted by
/// device, for connections that acknowledged `since`; acknowledging it
/// brings them to `version`.
#[derive(Debug)]
pub struct DirectoryBatch {
    /// The version the recipients acknowledged.
    pub since: u64,
    /// The version they reach once they acknowledge.
    pub version: u64,
    /// The entries.
    pub entries: Vec<DirectoryEntry>,
    /// The recipients (marked busy until [`Registry::directory_done`]).
    pub to: Vec<(DeviceId, quinn::Connection)>,
}

impl Registry {
    /// Republishes `org`'s directory at `now_ms` and returns the pushes due:
    /// one batch per version that idle registered connections stand at,
    /// if behind. Marks their connections busy.
    pub fn directory_round(&mut self, now_ms: u64, org: &OrgId) -> Vec<DirectoryBatch> {
        let current = self.directory(now_ms, org);
        let Some(state) = self.orgs.get_mut(org) else {
            return Vec::new();
        };
        let published = &mut state.published;
        let next = published.version + 1;
        let mut changed = false;
        if published.entries.len() > current.len() {
            let keep: std::collections::HashSet<DeviceId> =
                current.iter().map(|e| e.cert.device_id()).collect();
            published.entries.retain(|d, _| keep.contains(d));
        }
        for entry in current {
            let device = entry.cert.device_id();
            match published.entries.get_mut(&device) {
                Some((old, _)) if *old == entry => {}
                Some(slot) => {
                    *slot = (entry, next);
                    changed = true;
                }
                None => {
                    published.entries.insert(device, (entry, next));
                    changed = true;
                }
            }
        }
        if changed {
            published.version = next;
        }
        let version = published.version;
        let mut groups: BTreeMap<u64, Vec<(DeviceId, quinn::Connection)>> = BTreeMap::new();
        for (device, conn) in &mut state.direct {
            if !conn.directory.busy && conn.directory.version < version {
                conn.directory.busy = true;
                groups
                    .entry(conn.directory.version)
                    .or_default()
                    .push((*device, conn.conn.clone()));
            }
        }
        groups
            .into_iter()
            .map(|(since, to)| {
                let mut entries: Vec<DirectoryEntry> = published
                    .entries
                    .values()
                    .filter(|(_, v)| *v > since)
                    .map(|(e, _)| e.clone())
                    .collect();
                entries.sort_by_key(|e| e.cert.device_id());
                DirectoryBatch {
                    since,
                    version,
                    entries,
                    to,
                }
            })
            .collect()
    }

    /// The push to connection `stable_id` of `device` ended: acknowledged
    /// up to `acked` (`None`: it failed, and the device keeps what it had).
    /// Returns whether that connection is still registered and behind the
    /// published directory (changes arrived while it was busy).
    pub fn directory_done(
        &mut self,
        org: &OrgId,
        device: &DeviceId,
        stable_id: usize,
        acked: Option<u64>,
    ) -> bool {
        let Some(state) = self.orgs.get_mut(org) else {
            return false;
        };
        let Some(conn) = state
            .direct
            .get_mut(device)
            .filter(|c| c.conn.stable_id() == stable_id)
        else {
            return false;
        };
        conn.directory.busy = false;
        if let Some(v) = acked {
            conn.directory.version = conn.directory.version.max(v);
        }
        conn.directory.version < state.published.version
    }
}

#[cfg(test)]
mod tests {
    // Rounds with connections are exercised end to end
    // (relay/tests/directory.rs: a newcomer gets everything, the others
    // only what changed).
    use super::*;

    #[test]
    fn nothing_is_due_without_connections() {
        let org = OrgId::from_public_key(&[3u8; 32]);
        let mut registry = Registry::new(&[org], 3000);
        assert!(registry.directory_round(1, &org).is_empty());
        assert!(!registry.directory_done(&org, &DeviceId([1; 20]), 1, Some(1)));
    }
}
