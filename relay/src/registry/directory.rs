//! What each registered device has been told of its organisation's
//! directory, so that a push carries only what changed for it, and a
//! device that missed something is brought back in step.
//!
//! Each organisation keeps the directory it last published
//! ([`tincan_core::route::directory::PublishedDirectory`]: each entry stamped with the version at
//! which it last changed, each device that left with the version at which
//! it left), and each registered connection the version its device
//! acknowledged ([`DirectorySent`]). A push round
//! ([`Registry::directory_round`]) republishes the directory and hands out
//! one batch per distinct acknowledged version.
//!
//! # Versioned devices
//! A device that asked for them (`Frame::DirectoryVersions`) gets
//! `Frame::DirectoryUpdate`s: what changed since the version it holds,
//! naming that version as the base and the version it brings the device
//! to, and the devices that left. The device applies an update only to the
//! version it names (`tincan_core::route::directory`), so nothing it missed
//! can be built upon: a push that failed, one that timed out and landed
//! after the next one, one cut between parts. The relay acts on the answer
//! ([`PushOutcome`]):
//! - acknowledged: the device holds that version;
//! - refused (an error answer): the device holds something else, so its
//!   next push is the whole directory;
//! - failed (no answer, a lost stream): the relay cannot know whether it
//!   was applied, so it keeps the base it is sure of and tries again later;
//!   if the device did apply it, it refuses the next delta and gets the
//!   whole directory.
//!
//! A connection starts at version 0, which always means the whole
//! directory: a device that (re)connects, or that the relay has lost track
//! of, is sent everything once.
//!
//! # Devices that did not ask
//! Nodes that predate versions get what they always got: the whole
//! directory as `Frame::Directory` parts, on every round whether or not
//! anything changed (they merge frames by device and heal on the next
//! one). Encoded once per round and shared, it costs them no more than
//! before.
//!
//! At most one push per connection is in flight ([`DirectorySent::busy`]),
//! and what a connection pins is one push of shared bytes, not one copy
//! per change. Before, every change pushed the whole directory to every
//! device, each push a copy of every entry: N devices registering cost N²
//! entries in flight and in the allocator.

use std::collections::BTreeMap;

use tincan_core::route::MAX_DIRECTORY_CHUNK;
use tincan_core::wire::Frame;
use tincan_core::{DeviceId, OrgId};

use super::Registry;

/// What a registered connection has of the directory.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirectorySent {
    /// The published version its device holds (0: none, or unknown; its
    /// next push is the whole directory).
    pub version: u64,
    /// A push to it is in flight.
    pub busy: bool,
    /// It asked for versioned updates; otherwise it gets the whole
    /// directory as `Frame::Directory` parts.
    pub versioned: bool,
    /// Not versioned, and a round passed while its push was in flight:
    /// push again when that one ends.
    pub again: bool,
}

/// How a push to one connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// Every part was acknowledged: the device holds the push's version.
    Acked,
    /// The device answered an error: it did not apply a part.
    Refused,
    /// No answer (timeout, lost stream or connection): applied or not.
    Failed,
}

/// What to do about a connection after its push ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectoryNext {
    /// It is up to date (or gone).
    Nothing,
    /// Push again at the next round.
    Now,
    /// Push again after a pause (it did not answer, or refused the whole
    /// directory: trying at once would only repeat that).
    Later,
}

/// One push of a round: the same frames for every connection in `to`.
#[derive(Debug)]
pub struct DirectoryBatch {
    /// The version the recipients hold (`None`: unversioned recipients).
    pub since: Option<u64>,
    /// The version they reach once they acknowledge every frame.
    pub version: u64,
    /// The frames, in order (parts of one update, or of the whole
    /// directory).
    pub frames: Vec<Frame>,
    /// Entries the frames carry (for logs).
    pub entries: usize,
    /// The recipients (marked busy until [`Registry::directory_done`]).
    pub to: Vec<(DeviceId, quinn::Connection)>,
}

impl Registry {
    /// Republishes `org`'s directory at `now_ms` and returns the pushes due:
    /// one batch per version that idle versioned connections stand at, if
    /// behind, and one whole directory for the idle unversioned ones. Marks
    /// their connections busy.
    pub fn directory_round(&mut self, now_ms: u64, org: &OrgId) -> Vec<DirectoryBatch> {
        let current = self.directory(now_ms, org);
        let Some(state) = self.orgs.get_mut(org) else {
            return Vec::new();
        };
        let published = &mut state.published;
        published.publish(current);
        let version = published.version();
        // Tombstones only devices that will get a delta still need.
        let oldest = state
            .direct
            .values()
            .filter(|c| c.directory.versioned && c.directory.version > 0)
            .map(|c| c.directory.version)
            .min()
            .unwrap_or(version);
        published.prune(oldest);
        let mut groups: BTreeMap<Option<u64>, Vec<(DeviceId, quinn::Connection)>> = BTreeMap::new();
        for (device, conn) in &mut state.direct {
            let sent = &mut conn.directory;
            if sent.busy {
                sent.again |= !sent.versioned;
                continue;
            }
            let due = if sent.versioned {
                (sent.version < version || sent.version == 0).then_some(Some(sent.version))
            } else {
                Some(None)
            };
            if let Some(since) = due {
                sent.busy = true;
                sent.again = false;
                groups
                    .entry(since)
                    .or_default()
                    .push((*device, conn.conn.clone()));
            }
        }
        groups
            .into_iter()
            .map(|(since, to)| match since {
                Some(since) => {
                    let updates = published.updates_since(since);
                    DirectoryBatch {
                        since: Some(since),
                        version,
                        entries: updates.iter().map(|u| u.entries.len()).sum(),
                        frames: updates.into_iter().map(Frame::DirectoryUpdate).collect(),
                        to,
                    }
                }
                None => {
                    let entries = published.entries();
                    DirectoryBatch {
                        since: None,
                        version,
                        entries: entries.len(),
                        frames: entries
                            .chunks(MAX_DIRECTORY_CHUNK)
                            .map(|c| Frame::Directory(c.to_vec()))
                            .collect(),
                        to,
                    }
                }
            })
            .collect()
    }

    /// A device asked for versioned updates on connection `stable_id`: its
    /// next push is the whole directory as an update (asking again changes
    /// nothing, so it cannot make the relay resend everything). Returns
    /// whether a push is now due (a registered connection that had not
    /// asked before).
    pub fn directory_versioned(
        &mut self,
        org: &OrgId,
        device: &DeviceId,
        stable_id: usize,
    ) -> bool {
        let Some(conn) = self
            .orgs
            .get_mut(org)
            .and_then(|s| s.direct.get_mut(device))
            .filter(|c| c.conn.stable_id() == stable_id)
        else {
            return false;
        };
        if conn.directory.versioned {
            return false;
        }
        conn.directory.versioned = true;
        conn.directory.version = 0;
        true
    }

    /// The push of `batch_version` to connection `stable_id` of `device`,
    /// from `since` (`None`: unversioned), ended with `outcome`; returns
    /// what to do next. A push that ended on a connection since replaced
    /// changes nothing.
    pub fn directory_done(
        &mut self,
        org: &OrgId,
        device: &DeviceId,
        stable_id: usize,
        since: Option<u64>,
        batch_version: u64,
        outcome: PushOutcome,
    ) -> DirectoryNext {
        let Some(state) = self.orgs.get_mut(org) else {
            return DirectoryNext::Nothing;
        };
        let Some(conn) = state
            .direct
            .get_mut(device)
            .filter(|c| c.conn.stable_id() == stable_id)
        else {
            return DirectoryNext::Nothing;
        };
        let sent = &mut conn.directory;
        sent.busy = false;
        let published = state.published.version();
        match (since, outcome) {
            // It asked for versions while an unversioned push was out.
            (None, _) if sent.versioned => DirectoryNext::Now,
            (None, PushOutcome::Acked) if std::mem::take(&mut sent.again) => DirectoryNext::Now,
            (None, PushOutcome::Acked) => DirectoryNext::Nothing,
            (None, _) => DirectoryNext::Later,
            (Some(_), PushOutcome::Acked) => {
                sent.version = batch_version;
                if batch_version < published {
                    DirectoryNext::Now
                } else {
                    DirectoryNext::Nothing
                }
            }
            (Some(since), PushOutcome::Refused) => {
                sent.version = 0;
                if since == 0 {
                    DirectoryNext::Later
                } else {
                    DirectoryNext::Now
                }
            }
            (Some(_), PushOutcome::Failed) => DirectoryNext::Later,
        }
    }
}

#[cfg(test)]
mod tests {
    // Rounds with connections are exercised end to end
    // (relay/tests/directory.rs: a newcomer gets everything, the others
    // only what changed, a device that missed a push is brought back).
    use super::*;

    #[test]
    fn nothing_is_due_without_connections() {
        let org = OrgId::from_public_key(&[3u8; 32]);
        let mut registry = Registry::new(&[org], 3000);
        assert!(registry.directory_round(1, &org).is_empty());
        let done =
            registry.directory_done(&org, &DeviceId([1; 20]), 1, Some(0), 1, PushOutcome::Acked);
        assert_eq!(done, DirectoryNext::Nothing);
        assert!(!registry.directory_versioned(&org, &DeviceId([1; 20]), 1));
    }
}
