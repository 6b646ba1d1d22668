//! The publishing side: the directory as the relay last published it to
//! one organisation, and the [`DirectoryUpdate`]s that bring a device
//! from any version it acknowledged to the current one.
//!
//! Each entry carries the version at which it last changed, and each
//! device that left the directory (removed, revoked) a tombstone with the
//! version at which it left, so a delta from `since` is the entries and
//! tombstones newer than `since`. Tombstones are dropped once no holder
//! needs them ([`PublishedDirectory::prune`]); a holder older than the
//! oldest kept tombstone gets the whole directory instead.

use std::collections::BTreeMap;

use super::DirectoryUpdate;
use crate::route::{DirectoryEntry, MAX_DIRECTORY_CHUNK};
use crate::DeviceId;

/// One organisation's directory as last published.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishedDirectory {
    /// Version of the latest change (0: nothing published yet).
    version: u64,
    /// Each device's entry and the version at which it last changed.
    entries: BTreeMap<DeviceId, (DirectoryEntry, u64)>,
    /// Devices that left, and the version at which they left.
    gone: BTreeMap<DeviceId, u64>,
    /// Deltas exist from this version on (older tombstones were pruned).
    floor: u64,
}

impl PublishedDirectory {
    /// Nothing published yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The version of the latest change.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Devices listed now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nobody is listed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Publishes `current` (every device the directory lists now, each at
    /// most once): entries that differ from the published ones, and
    /// devices no longer listed, take the next version. Returns whether
    /// anything changed.
    pub fn publish(&mut self, current: Vec<DirectoryEntry>) -> bool {
        let next = self.version + 1;
        let mut changed = false;
        let mut listed: BTreeMap<DeviceId, DirectoryEntry> = BTreeMap::new();
        for entry in current {
            listed.insert(entry.cert.device_id(), entry);
        }
        let left: Vec<DeviceId> = self
            .entries
            .keys()
            .filter(|d| !listed.contains_key(d))
            .copied()
            .collect();
        for device in left {
            self.entries.remove(&device);
            self.gone.insert(device, next);
            changed = true;
        }
        for (device, entry) in listed {
            match self.entries.get_mut(&device) {
                Some((old, _)) if *old == entry => {}
                Some(slot) => {
                    *slot = (entry, next);
                    changed = true;
                }
                None => {
                    // Back after leaving: listed again, no longer gone.
                    self.gone.remove(&device);
                    self.entries.insert(device, (entry, next));
                    changed = true;
                }
            }
        }
        if changed {
            self.version = next;
        }
        changed
    }

    /// Forgets tombstones that no holder needs: `oldest` is the oldest
    /// version any holder that will get a delta acknowledged (holders at 0
    /// get the whole directory). Holders older than that get the whole
    /// directory from then on.
    pub fn prune(&mut self, oldest: u64) {
        let oldest = oldest.min(self.version);
        if oldest <= self.floor {
            return;
        }
        self.gone.retain(|_, v| *v > oldest);
        self.floor = oldest;
    }

    /// Tombstones kept (devices that left and that some holder may not
    /// have been told of yet).
    pub fn tombstones(&self) -> usize {
        self.gone.len()
    }

    /// The parts that bring a holder at `since` to [`Self::version`]: a
    /// delta when `since` is a version deltas exist from, else (0, too
    /// old, or unknown) the whole directory. Entries are sorted by device.
    pub fn updates_since(&self, since: u64) -> Vec<DirectoryUpdate> {
        let whole = since == 0 || since < self.floor || since > self.version;
        let base = if whole { 0 } else { since };
        let entries: Vec<DirectoryEntry> = self
            .entries
            .values()
            .filter(|(_, v)| whole || *v > since)
            .map(|(e, _)| e.clone())
            .collect();
        let gone: Vec<DeviceId> = if whole {
            Vec::new()
        } else {
            self.gone
                .iter()
                .filter(|(_, v)| **v > since)
                .map(|(d, _)| *d)
                .collect()
        };
        let mut parts: Vec<DirectoryUpdate> = Vec::new();
        let part = |n: usize, entries: &[DirectoryEntry], gone: &[DeviceId]| DirectoryUpdate {
            base,
            version: self.version,
            part: u32::try_from(n).unwrap_or(u32::MAX),
            last: false,
            entries: entries.to_vec(),
            gone: gone.to_vec(),
        };
        for chunk in entries.chunks(MAX_DIRECTORY_CHUNK) {
            parts.push(part(parts.len(), chunk, &[]));
        }
        // A device id is a tenth of an entry: many fit one frame.
        for chunk in gone.chunks(MAX_DIRECTORY_CHUNK * 8) {
            parts.push(part(parts.len(), &[], chunk));
        }
        if parts.is_empty() {
            parts.push(part(0, &[], &[]));
        }
        if let Some(last) = parts.last_mut() {
            last.last = true;
        }
        parts
    }

    /// Every entry listed now, sorted by device (the whole directory as
    /// [`crate::wire::Frame::Directory`] parts carry it).
    pub fn entries(&self) -> Vec<DirectoryEntry> {
        self.entries.values().map(|(e, _)| e.clone()).collect()
    }
}
