//! The organisation's directory as this node learns it: from the relay
//! (while roaming or gateway) or from the gateway it follows (as member),
//! and what it passes on to its LAN as gateway.
//!
//! What the relay sends is kept in `Actor::directory`
//! ([`HeldDirectory`]) whatever the role: a claimant gets the relay's
//! whole directory while it is still roaming, and after the grant only
//! what changes, so a gateway that kept only what arrived as gateway would
//! pass on a directory with holes. Versioned pushes apply only to the
//! version they name (`tincan_core::route::directory`); one that does not
//! is answered with an error and the relay sends the whole directory.
//!
//! Members learn the directory only from their gateway, which forwards
//! it whole: when the relay tells it anything, and when a member starts
//! to follow it (its beacons name this node as gateway; a new link resets
//! that, as it may be a new process). The second matters for a member
//! that restarts before its gateway notices it left: nothing changes at
//! the relay then, so no push would ever come, and the restarted member
//! would know no device of another site (its messages to them stay
//! queued: `tests/chaos.rs` seed 0x7e57c4a05002, step 59). A push at link
//! up is not enough: the member refuses a directory from a peer it does
//! not yet follow.

use std::sync::Arc;

use tincan_core::peer_book::{PeerInfo, Via};
use tincan_core::route::directory::DirectoryUpdate;
use tincan_core::route::DirectoryEntry;
use tincan_core::site::Role;
use tincan_core::wire::Frame;
use tincan_core::DeviceId;

use super::{Actor, RemotePeer};
use crate::event::NodeEvent;
use crate::node::link;
use crate::store::PeerRecord;

impl Actor {
    /// Whether `entry` may be believed and shown: a valid certificate of a
    /// user not revoked, with a valid name, and not this device.
    fn is_valid_directory_entry(&self, entry: &DirectoryEntry) -> bool {
        let device = entry.cert.device_id();
        if device == self.identity.device_id()
            || entry.cert.verify().is_err()
            || self.is_revoked(&entry.cert.user_id())
        {
            return false;
        }
        if crate::keystore::validate_name(&entry.name).ok().as_deref() != Some(&entry.name) {
            tracing::warn!(%device, "directory entry with an invalid name skipped");
            return false;
        }
        true
    }

    /// A `Frame::Directory` part: from a relay that predates versioned
    /// pushes, or from the gateway this node follows. Merged by device.
    pub(super) fn on_directory(&mut self, from: DeviceId, entries: Vec<DirectoryEntry>) -> Frame {
        let valid: Vec<DirectoryEntry> = entries
            .into_iter()
            .filter(|e| self.is_valid_directory_entry(e))
            .collect();
        self.learn_directory(&valid);
        if Some(from) == self.relay.device {
            self.directory.merge(valid);
            if self.election.role() == Role::Gateway {
                self.push_directory_to_lan();
            }
        }
        Frame::Ack
    }

    /// A versioned push from the relay: applied if it is based on the
    /// version held, else refused so that the relay sends the whole
    /// directory.
    pub(super) fn on_directory_update(
        &mut self,
        from: DeviceId,
        mut update: DirectoryUpdate,
    ) -> Frame {
        if Some(from) != self.relay.device {
            return Frame::Error("directory updates come from the relay".into());
        }
        // What cannot be believed is held as absent, not as it was.
        let (valid, invalid): (Vec<DirectoryEntry>, Vec<DirectoryEntry>) =
            std::mem::take(&mut update.entries)
                .into_iter()
                .partition(|e| self.is_valid_directory_entry(e));
        update.entries = valid;
        update
            .gone
            .extend(invalid.iter().map(|e| e.cert.device_id()));
        let applied = match self.directory.handle_update(update) {
            Ok(applied) => applied,
            Err(e) => {
                tracing::debug!(error = %e, "directory update refused");
                return Frame::Error(e.to_string());
            }
        };
        self.learn_directory(&applied.entries);
        self.forget_directory(&applied.gone);
        if applied.complete && self.election.role() == Role::Gateway {
            self.push_directory_to_lan();
        }
        Frame::Ack
    }

    /// Takes directory entries into the views: reachability through the
    /// uplink, the peer book, stored peers, and online/offline events.
    fn learn_directory(&mut self, entries: &[DirectoryEntry]) {
        for entry in entries {
            let device = entry.cert.device_id();
            let user = entry.cert.user_id();
            self.certs.insert(device, entry.cert.clone());
            let was_online = self.remote.get(&device).is_some_and(|r| r.online);
            self.remote.insert(
                device,
                RemotePeer {
                    online: entry.online,
                },
            );
            if self.conns.contains_key(&device) {
                continue;
            }
            self.learn_peer(PeerInfo {
                device,
                user,
                name: entry.name.clone(),
                addrs: Vec::new(),
                online: entry.online,
                via: Via::Relay,
            });
            self.book.set_online(&device, entry.online);
            let record = PeerRecord {
                device,
                user,
                name: entry.name.clone(),
                cert: entry.cert.to_bytes(),
                addrs: Vec::new(),
                last_seen_ms: self.now,
            };
            if let Err(e) = self.store.upsert_peer(&record) {
                tracing::warn!(%device, error = %e, "cannot store remote peer");
            }
            if was_online != entry.online {
                self.emit_online(&device, entry.online);
            }
        }
    }

    /// Devices the directory no longer lists (removed, revoked): no longer
    /// reachable through the uplink, and offline unless linked here.
    fn forget_directory(&mut self, gone: &[DeviceId]) {
        for device in gone {
            let was_online = self.remote.remove(device).is_some_and(|r| r.online);
            if was_online && !self.conns.contains_key(device) {
                self.book.set_online(device, false);
                self.emit_online(device, false);
            }
        }
    }

    fn emit_online(&mut self, device: &DeviceId, online: bool) {
        if let Some(info) = self.book.device(device) {
            let peer = self.peer_view(info);
            self.emit(if online {
                NodeEvent::PeerOnline { peer }
            } else {
                NodeEvent::PeerOffline { peer }
            });
        }
    }

    /// A beacon from the organisation peer `from`: whether it `follows`
    /// this node as gateway. One that starts following (a member that
    /// just (re)started, or one that moved over from another gateway) is
    /// sent the directory: nothing may change at the relay that would
    /// bring it otherwise. Before it follows, it would refuse it.
    pub(super) fn note_follower(&mut self, from: DeviceId, follows: bool) {
        if !follows || self.election.role() != Role::Gateway {
            self.followers.remove(&from);
        } else if self.followers.insert(from) {
            self.push_directory_to(from);
        }
    }

    /// As gateway, sends the directory to every organisation peer on the
    /// LAN.
    pub(super) fn push_directory_to_lan(&self) {
        let devices: Vec<DeviceId> = self.org_peers.keys().copied().collect();
        for device in devices {
            self.push_directory_to(device);
        }
    }

    /// As gateway, sends the directory (in parts of at most
    /// `MAX_DIRECTORY_CHUNK`) to the organisation peer `device` over its
    /// newest link.
    pub(super) fn push_directory_to(&self, device: DeviceId) {
        if self.election.role() != Role::Gateway || self.directory.entries().is_empty() {
            return;
        }
        let Some(conn) = self.conns.get(&device).and_then(|c| c.last()) else {
            return;
        };
        let entries: Vec<DirectoryEntry> = self.directory.entries().values().cloned().collect();
        for chunk in entries.chunks(tincan_core::route::MAX_DIRECTORY_CHUNK) {
            let frame = Arc::new(Frame::Directory(chunk.to_vec()));
            tokio::spawn(link::notify(conn.clone(), frame));
        }
    }
}
