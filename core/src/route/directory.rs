//! The relay's directory as one device holds it, kept in step by
//! versioned updates.
//!
//! The relay publishes each organisation's directory at increasing
//! versions and sends each device only what changed since the version that
//! device acknowledged. Without more, a change a device misses (a push that
//! failed or timed out and then landed after the next one, a push on a
//! connection being replaced, a part lost in the middle) would stay missed
//! until that entry happened to change again. So every
//! [`DirectoryUpdate`] names the version it applies to (`base`) and the
//! version it brings its holder to, and a [`HeldDirectory`] applies it only
//! when it holds exactly `base`. A `base` of 0 marks the whole directory,
//! which applies whatever is held and replaces it. Anything else is refused
//! ([`DirectoryUpdateError`]), and the relay answers a refusal with the
//! whole directory.
//!
//! # Invariant
//! A holder at version `v` holds exactly the relay's directory at `v`:
//! every update maps the directory at `base` to the directory at `version`
//! (changed and new entries in `entries`, devices that left it in `gone`),
//! and the whole directory maps anything to it. Entries are whole values,
//! never patches, so applying one twice changes nothing.
//!
//! # Parts
//! An update longer than [`MAX_DIRECTORY_CHUNK`] entries travels in parts
//! numbered from 0, the last one marked `last`. Parts apply in order only;
//! the holder has no version from the first part until the last (a missing
//! part leaves it without one, so the next delta is refused and the whole
//! directory follows). Devices absent from a whole directory are dropped
//! when its last part arrives, not before, so a holder never looks empty
//! in between.
//!
//! [`MAX_DIRECTORY_CHUNK`]: super::MAX_DIRECTORY_CHUNK

mod published;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::DirectoryEntry;
use crate::DeviceId;

pub use published::PublishedDirectory;

/// One part of a versioned directory push (relay → a device that asked for
/// them with [`crate::wire::Frame::DirectoryVersions`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryUpdate {
    /// The version the receiver must hold for this to apply; 0: this is
    /// the whole directory and applies to anything.
    pub base: u64,
    /// The version the receiver holds once the last part is applied.
    pub version: u64,
    /// This part's number, from 0.
    pub part: u32,
    /// Whether this is the last part.
    pub last: bool,
    /// Entries new or changed since `base` (every entry when `base` is 0).
    pub entries: Vec<DirectoryEntry>,
    /// Devices that left the directory since `base` (removed or revoked);
    /// empty when `base` is 0 (what the whole directory lacks is gone).
    pub gone: Vec<DeviceId>,
}

/// Why a [`DirectoryUpdate`] was not applied. The holder is unchanged by
/// a refused part (except that a refused delta is never half applied);
/// the sender should answer with the whole directory.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryUpdateError {
    /// The update is based on another version than the one held.
    #[error("directory update from version {base} does not apply: this device holds {held:?}")]
    OtherBase {
        /// The update's base.
        base: u64,
        /// The version held (`None`: no complete directory).
        held: Option<u64>,
    },
    /// A later part of an update that is not the one in progress, or out
    /// of order.
    #[error("directory part {part} of version {version} is out of order")]
    OutOfOrder {
        /// The part's number.
        part: u32,
        /// The version it belongs to.
        version: u64,
    },
}

/// What an applied part changed, for the holder's other views (reachability,
/// the peer book, a gateway's LAN).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectoryApplied {
    /// Entries now held (new or replaced), in the update's order.
    pub entries: Vec<DirectoryEntry>,
    /// Devices no longer held.
    pub gone: Vec<DeviceId>,
    /// Whether this completed an update (the holder has a version again).
    pub complete: bool,
}

/// An update being received in parts.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Partial {
    base: u64,
    version: u64,
    /// The next part expected.
    next: u32,
    /// For a whole directory: the devices its parts named so far.
    named: BTreeSet<DeviceId>,
}

/// The directory one device holds from its relay and the version it is at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeldDirectory {
    /// The version held; `None` before the first complete update, and
    /// while or after an update is cut short.
    version: Option<u64>,
    entries: BTreeMap<DeviceId, DirectoryEntry>,
    partial: Option<Partial>,
}

impl HeldDirectory {
    /// An empty holder (a new relay connection: the relay's first push is
    /// the whole directory).
    pub fn new() -> Self {
        Self::default()
    }

    /// The version held, if a complete update was the last thing applied.
    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// The entries held, by device.
    pub fn entries(&self) -> &BTreeMap<DeviceId, DirectoryEntry> {
        &self.entries
    }

    /// Forgets `device` (its user was revoked or it was removed, learnt
    /// some other way). The version stays: the relay drops it too, and
    /// then tells this holder it is gone, which changes nothing more.
    pub fn forget(&mut self, device: &DeviceId) {
        self.entries.remove(device);
    }

    /// Forgets the version but keeps the entries: a new relay connection,
    /// whose first update is the whole directory (it replaces them then).
    pub fn expect_whole(&mut self) {
        self.version = None;
        self.partial = None;
    }

    /// Takes entries of an unversioned push (`Frame::Directory`, from a
    /// relay that predates versions): merged by device, as such pushes
    /// always were; the holder has no version afterwards.
    pub fn merge(&mut self, entries: impl IntoIterator<Item = DirectoryEntry>) {
        self.expect_whole();
        for entry in entries {
            self.entries.insert(entry.cert.device_id(), entry);
        }
    }

    /// Applies one part of an update, or refuses it (see the module doc).
    ///
    /// ```
    /// use tincan_core::route::directory::{DirectoryUpdate, HeldDirectory};
    ///
    /// let mut held = HeldDirectory::new();
    /// let whole = DirectoryUpdate { base: 0, version: 3, part: 0, last: true, entries: vec![], gone: vec![] };
    /// assert!(held.handle_update(whole).is_ok());
    /// assert_eq!(held.version(), Some(3));
    /// // A delta from version 2 does not apply to version 3.
    /// let stale = DirectoryUpdate { base: 2, version: 4, part: 0, last: true, entries: vec![], gone: vec![] };
    /// assert!(held.handle_update(stale).is_err());
    /// assert_eq!(held.version(), Some(3));
    /// ```
    pub fn handle_update(
        &mut self,
        update: DirectoryUpdate,
    ) -> Result<DirectoryApplied, DirectoryUpdateError> {
        let DirectoryUpdate {
            base,
            version,
            part,
            last,
            entries,
            gone,
        } = update;
        if part == 0 {
            if base != 0 && self.version != Some(base) {
                return Err(DirectoryUpdateError::OtherBase {
                    base,
                    held: self.version,
                });
            }
            // A new update: one still in parts is abandoned (its later
            // parts will be refused).
            self.partial = Some(Partial {
                base,
                version,
                next: 0,
                named: BTreeSet::new(),
            });
        }
        let partial = match self.partial.as_mut() {
            Some(p) if p.version == version && p.base == base && p.next == part => p,
            _ => return Err(DirectoryUpdateError::OutOfOrder { part, version }),
        };
        // From here the held directory is between versions until the last
        // part.
        self.version = None;
        partial.next = part.saturating_add(1);
        let mut applied = DirectoryApplied::default();
        for entry in entries {
            let device = entry.cert.device_id();
            if base == 0 {
                partial.named.insert(device);
            }
            self.entries.insert(device, entry.clone());
            applied.entries.push(entry);
        }
        for device in gone {
            if self.entries.remove(&device).is_some() {
                applied.gone.push(device);
            }
        }
        if last {
            if base == 0 {
                let named = std::mem::take(&mut partial.named);
                let absent: Vec<DeviceId> = self
                    .entries
                    .keys()
                    .filter(|d| !named.contains(d))
                    .copied()
                    .collect();
                for device in absent {
                    self.entries.remove(&device);
                    applied.gone.push(device);
                }
            }
            self.partial = None;
            self.version = Some(version);
            applied.complete = true;
        }
        Ok(applied)
    }
}

#[cfg(test)]
mod tests;
