//! Driving core's `LanMesh`: this node's signed record, gossip to and from
//! LAN peers, whom to dial, which idle links to close, and what the user is
//! shown (peers learned second hand, online and offline).
//!
//! The rules live in `tincan_core::lan`; this file only moves frames,
//! dials, closes and mirrors the mesh's view into the peer book and store.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tincan_core::lan::{LanEvent, LanGossip, LanRecord, LanStatus, LinkEnd};
use tincan_core::peer_book::{PeerInfo, Via};
use tincan_core::site::Role;
use tincan_core::wire::Frame;
use tincan_core::DeviceId;

use super::{link, Actor};
use crate::event::NodeEvent;
use crate::store::PeerRecord;

/// Close code of a link closed because nothing used it.
pub(super) const CLOSE_IDLE: u32 = 6;

/// A link that moved more than this many bytes since the last idle check
/// is busy (a file transfer), whatever the mesh believes.
const BUSY_BYTES: u64 = 64 * 1024;

/// Dials the mesh asked for, by address, and which device each is for.
#[derive(Default)]
pub(super) struct MeshDials {
    by_addr: HashMap<SocketAddr, DeviceId>,
    /// Bytes each device's links had moved at the last idle check.
    bytes_seen: HashMap<DeviceId, u64>,
    /// Peer rows to store with the next batch.
    pub(super) unsaved: std::collections::BTreeMap<DeviceId, PeerRecord>,
    /// Name pins to store with the next batch.
    pub(super) unsaved_pins: Vec<(String, tincan_core::UserId)>,
    /// Devices whose user was forgotten (`peers forget`), with the version
    /// of their record then: peers that still hold that record pass it on,
    /// and it must not bring a ghost back; a newer one (the device lives)
    /// does.
    pub(super) forgotten: std::collections::BTreeMap<DeviceId, u64>,
    /// Starts and stops the mDNS browse (none without mDNS).
    pub(super) browser: Option<crate::discovery::Browser>,
    /// Browse at least until then (Unix ms): a node starting with the
    /// office hears everyone at once.
    pub(super) browse_until: u64,
}

/// How long after start a node browses mDNS whatever its links.
pub(super) const BROWSE_AFTER_START_MS: u64 = 30_000;

/// Whether `ip` is one a LAN peer may ask us to dial: private, link-local,
/// unique-local or loopback. A record could name any address; this keeps
/// a LAN peer from making every node dial a host on the internet.
pub(super) fn is_lan_scope(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local() || v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unicast_link_local()
                || v6.is_unique_local()
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_lan_scope(v4.into()))
        }
    }
}

impl Actor {
    /// Where peers may dial this node: its interface addresses when it
    /// listens on all of them and announces itself on the LAN, the listen
    /// address when that is specific, nothing otherwise (a node run with
    /// static peers only is dialled by them, not found through others).
    fn own_addrs(&self) -> Vec<SocketAddr> {
        let port = self.listen.port();
        if !self.listen.ip().is_unspecified() {
            return vec![self.listen];
        }
        if !self.mdns {
            return Vec::new();
        }
        let mut addrs: Vec<SocketAddr> = if_addrs::get_if_addrs()
            .unwrap_or_default()
            .into_iter()
            .filter(|i| !i.is_loopback())
            .map(|i| i.ip())
            // A link-local IPv6 address needs the receiver's own scope id,
            // which only its mDNS answer carries.
            .filter(|ip| match ip {
                IpAddr::V6(v6) => !v6.is_unicast_link_local(),
                IpAddr::V4(_) => true,
            })
            .filter(|ip| self.listen.is_ipv6() || ip.is_ipv4())
            .map(|ip| SocketAddr::new(ip, port))
            .collect();
        addrs.sort_by_key(|a| a.is_ipv6());
        addrs
    }

    /// Signs and sets this node's record (here, with the presence others are
    /// shown, or leaving), with a version above `above` and the last one.
    pub(super) fn sign_own_record(&mut self, above: u64, leaving: bool) {
        let last = self.mesh.own().map_or(0, |r| r.version);
        let version = self
            .now
            .max(last.saturating_add(1))
            .max(above.saturating_add(1));
        let status = if leaving {
            LanStatus::Leaving
        } else {
            LanStatus::Here(self.chat.presence.update().shown)
        };
        let record = LanRecord::sign(&self.identity, self.own_addrs(), version, status);
        self.mesh.set_own(record);
    }

    /// Gossip from the linked peer `from`.
    pub(super) fn on_lan_gossip(&mut self, from: DeviceId, gossip: LanGossip) -> Frame {
        tracing::debug!(%from, records = gossip.records.len(), suspicions = gossip.suspicions.len(), "lan gossip in");
        match self.mesh.handle_gossip(self.now, from, gossip) {
            Ok(()) => Frame::Ack,
            Err(e) => {
                tracing::warn!(%from, error = %e, "refused a lan record");
                Frame::Error(e.to_string())
            }
        }
    }

    /// Whether links to `device` are kept whatever the mesh says: devices
    /// of this user (they sync), and, in an organisation with a relay, its
    /// members (the gateway election beacons to every one of them).
    fn link_is_pinned(&self, device: &DeviceId) -> bool {
        let own_user = self
            .certs
            .get(device)
            .is_some_and(|c| c.user_id() == self.identity.user_id());
        own_user
            || (self.org_peers.contains_key(device) && self.election.role() != Role::Standalone)
    }

    /// Sends the mesh's gossip and applies its events. Called after every
    /// turn of the loop.
    pub(super) fn drive_lan(&mut self) {
        let now = self.now;
        self.mesh.handle_timeout(now);
        self.send_gossip();
        let events: Vec<LanEvent> = std::iter::from_fn(|| self.mesh.poll_event()).collect();
        // New peers enter the book first, so that they can be shown online.
        let learned: Vec<DeviceId> = events
            .iter()
            .filter_map(|e| match e {
                LanEvent::Learned(device) => Some(*device),
                _ => None,
            })
            .collect();
        if !learned.is_empty() {
            self.learn_from_mesh(&learned);
        }
        self.steer_browse(now);
        for event in events {
            match event {
                LanEvent::Learned(_) => {}
                LanEvent::Online(device) => {
                    self.show_online(device, true);
                    if self.outbox.waiting_devices().contains(&device) {
                        self.link_on_demand(device);
                    }
                }
                LanEvent::Offline(device) => self.show_online(device, false),
                LanEvent::Check(device) => {
                    tracing::debug!(%device, "link lost; checking the peer");
                    let _ = self.dial_device(device, true);
                }
                LanEvent::Close(device) => self.close_if_idle(device),
                LanEvent::Refute { above } => {
                    tracing::info!(above, "a peer reported this node gone; saying it is here");
                    self.sign_own_record(above, false);
                }
            }
        }
    }

    /// Browses mDNS only while it is needed (see `crate::discovery::Browser`):
    /// after start, while this node holds no LAN link, and always in an
    /// organisation with a relay (members link to every member they hear).
    fn steer_browse(&self, now: u64) {
        let Some(browser) = &self.mesh_dials.browser else {
            return;
        };
        let linked = self.mesh.link_count() > 0 && self.mesh.devices().next().is_some();
        let org_mesh = self.membership.is_some() && self.election.role() != Role::Standalone;
        browser.set_browsing(!linked || org_mesh || now < self.mesh_dials.browse_until);
    }

    /// Takes devices learned second hand into the peer book and the store
    /// (in one transaction: a LAN of hundreds arrives at once).
    fn learn_from_mesh(&mut self, devices: &[DeviceId]) {
        for device in devices {
            let Some(record) = self.mesh.record(device).cloned() else {
                continue;
            };
            let user = record.cert.user_id();
            if self.is_forgotten(device, record.version) {
                self.mesh.forget(device);
                continue;
            }
            if self.devices.known.is_revoked(&record.cert) || self.is_revoked(&user) {
                self.mesh.forget(device);
                continue;
            }
            let new_user =
                user != self.identity.user_id() && self.book.devices_of(&user).next().is_none();
            if new_user && !self.room_for_a_stranger() {
                continue;
            }
            self.certs.insert(*device, record.cert.clone());
            let _ = self.devices.known.learn(record.cert.clone());
            let addrs: Vec<SocketAddr> = record
                .addrs
                .iter()
                .copied()
                .filter(|a| is_lan_scope(a.ip()))
                .collect();
            self.learn_peer(PeerInfo {
                device: *device,
                user,
                name: record.name.clone(),
                addrs: addrs.clone(),
                // Shown online (and announced) on the mesh's event.
                online: false,
                // Its signed record came over a LAN link and names LAN
                // addresses: a device of this LAN, whether its mDNS was
                // heard or a peer passed the record on. A configured peer
                // stays static, whether its link or its record (gossiped
                // by a third peer) arrives first.
                via: if self.book.device(device).map(|known| known.via) == Some(Via::Static)
                    || addrs.iter().any(|a| self.static_peers.contains(*a))
                {
                    Via::Static
                } else {
                    Via::Lan
                },
            });
            let stored = PeerRecord {
                device: *device,
                user,
                name: record.name,
                cert: record.cert.to_bytes(),
                addrs: addrs.iter().map(ToString::to_string).collect(),
                last_seen_ms: self.now,
            };
            self.save_peer_soon(stored);
        }
        tracing::debug!(
            learned = devices.len(),
            known = self.mesh.devices().count(),
            links = self.mesh.link_count(),
            "lan records"
        );
    }

    /// Stores a peer's row with the next [`Actor::save_peers`], at the end
    /// of this turn of the loop: a LAN of hundreds arrives in a few
    /// seconds, and a durable commit per peer and per name pin would hold
    /// up the loop (every link, every message) for each fsync.
    pub(super) fn save_peer_soon(&mut self, record: PeerRecord) {
        self.mesh_dials.unsaved.insert(record.device, record);
    }

    /// Writes the peer rows and name pins waiting since the last call, in
    /// one transaction.
    pub(super) fn save_peers(&mut self) {
        if self.mesh_dials.unsaved.is_empty() && self.mesh_dials.unsaved_pins.is_empty() {
            return;
        }
        let rows = std::mem::take(&mut self.mesh_dials.unsaved);
        let pins = std::mem::take(&mut self.mesh_dials.unsaved_pins);
        tracing::debug!(peers = rows.len(), pins = pins.len(), "storing peers");
        let batched = match self.store.begin_batch() {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a batch for peers; writing them one by one");
                false
            }
        };
        for (name, user) in pins {
            if let Err(e) = self.store.pin_name(&name, &user) {
                tracing::warn!(error = %e, "cannot persist name pin");
            }
        }
        for record in rows.values() {
            if let Err(e) = self.store.upsert_peer(record) {
                tracing::warn!(device = %record.device, error = %e, "cannot store a peer");
            }
        }
        if batched {
            if let Err(e) = self.store.commit_batch() {
                tracing::warn!(error = %e, "cannot store peers");
            }
        }
    }

    /// Mirrors the mesh's online state into the peer book and tells
    /// subscribers.
    fn show_online(&mut self, device: DeviceId, online: bool) {
        if !self.book.set_online(&device, online) {
            return;
        }
        // A device that said it is offline (appear-offline) stays so.
        if online && self.chat.peers.hides(&device) {
            return;
        }
        if let Some(info) = self.book.device(&device) {
            let peer = self.peer_view(info);
            tracing::info!(%device, online, "peer {}", if online { "online" } else { "offline" });
            self.emit(if online {
                NodeEvent::PeerOnline { peer }
            } else {
                NodeEvent::PeerOffline { peer }
            });
        }
    }

    /// The mesh finds the link to `device` idle: close it, unless it is
    /// pinned or moved file-sized traffic since the last check.
    fn close_if_idle(&mut self, device: DeviceId) {
        let Some(conns) = self.conns.get(&device) else {
            return;
        };
        let bytes: u64 = conns
            .iter()
            .map(|c| {
                let s = c.stats();
                s.udp_tx.bytes + s.udp_rx.bytes
            })
            .sum();
        let before = self
            .mesh_dials
            .bytes_seen
            .insert(device, bytes)
            .unwrap_or(0);
        if self.link_is_pinned(&device) || bytes.saturating_sub(before) > BUSY_BYTES {
            self.mesh.handle_traffic(self.now, device);
            return;
        }
        tracing::debug!(%device, "closing an idle link");
        for conn in conns {
            conn.close(CLOSE_IDLE.into(), b"idle");
        }
    }

    /// Dials `device` at the addresses the mesh knows, for a ring link or
    /// a message, or (`check`) to learn whether a peer whose link broke is
    /// still there, whatever the back-off. A failed dial of a device with a
    /// record reports it gone: were it only slow, it refutes the report as
    /// soon as it links to anyone; were it dead, nobody else might notice.
    /// Whether a dial of `device` is under way.
    pub(super) fn dial_device(&mut self, device: DeviceId, check: bool) -> bool {
        let now = self.now;
        let addrs: Vec<SocketAddr> = self
            .mesh
            .addrs(&device)
            .into_iter()
            .filter(|a| is_lan_scope(a.ip()))
            .collect();
        // A check tries every address at once; otherwise one at a time,
        // best first, as for mDNS hints.
        let addrs: Vec<SocketAddr> = if check {
            addrs
        } else {
            self.next_dial(&addrs, now).into_iter().collect()
        };
        let mut started = false;
        for addr in addrs {
            if check {
                self.dials.entry(addr).or_default().next_at = 0;
            }
            if self.try_dial(addr, now) {
                // The mesh hears how it ended (`mesh_dial_failed`): a
                // device whose record says "here" becomes suspect, one only
                // hinted at waits its turn again.
                self.mesh_dials.by_addr.insert(addr, device);
                started = true;
            } else if self.mesh_dials.by_addr.get(&addr) == Some(&device) {
                started = true;
            }
        }
        if check && !started && !self.conns.contains_key(&device) {
            self.mesh.handle_unreachable(now, device);
        }
        started
    }

    /// A dial failed: when it was the last check of `device`, the device is
    /// unreachable.
    pub(super) fn mesh_dial_failed(&mut self, addr: SocketAddr) {
        let Some(device) = self.mesh_dials.by_addr.remove(&addr) else {
            return;
        };
        if !self.mesh_dials.by_addr.values().any(|d| *d == device) {
            self.mesh.handle_unreachable(self.now, device);
        }
    }

    /// A link to `device` came up: its pending dials are done.
    pub(super) fn mesh_link_up(&mut self, device: DeviceId) {
        self.mesh_dials.by_addr.retain(|_, d| *d != device);
        self.mesh.handle_link_up(self.now, device);
    }

    /// The last link to `device` went down.
    pub(super) fn mesh_link_down(&mut self, device: DeviceId, lost: bool) {
        let end = if lost { LinkEnd::Lost } else { LinkEnd::Closed };
        self.mesh_dials.bytes_seen.remove(&device);
        self.mesh.handle_link_down(self.now, device, end);
    }

    /// The dials the mesh asks for (ring neighbours, hint-only devices),
    /// and LAN peers that messages wait for.
    pub(super) fn dial_ring(&mut self) {
        for (device, _) in self.mesh.poll_dials(self.now) {
            if !self.dial_device(device, false) {
                self.mesh.handle_dial_skipped(&device);
            }
        }
        for device in self.outbox.waiting_devices() {
            self.link_on_demand(device);
        }
    }

    /// Something waits for `device`: when it is a LAN peer we hold no link
    /// to, dial it (the outbox retries as soon as the link is up).
    pub(super) fn link_on_demand(&mut self, device: DeviceId) {
        if !self.conns.contains_key(&device) && self.mesh.is_online(&device) {
            let _ = self.dial_device(device, false);
        }
    }

    /// Before shutting down: a signed "leaving" for every link, so peers
    /// show this node offline at once. Returns the sends to wait for.
    pub(super) fn lan_goodbye(&mut self) -> Vec<tokio::task::JoinHandle<()>> {
        self.sign_own_record(0, true);
        self.send_gossip()
    }

    /// Sends the gossip the mesh has due, each message on its link; the
    /// sends, for a caller that must wait for them.
    fn send_gossip(&mut self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut sends = Vec::new();
        while let Some((device, gossip)) = self.mesh.poll_transmit() {
            if let Some(conn) = self.conns.get(&device).and_then(|c| c.last()) {
                tracing::debug!(to = %device, records = gossip.records.len(), "lan gossip out");
                let frame = Arc::new(Frame::Lan(gossip));
                sends.push(tokio::spawn(link::notify(conn.clone(), frame)));
            }
        }
        sends
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lan_addresses_are_dialled_from_records() {
        for ok in [
            "10.1.2.3",
            "192.168.1.9",
            "172.16.0.1",
            "127.0.0.1",
            "169.254.1.1",
            "fe80::1",
            "fd00::1",
            "::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_lan_scope(ok.parse().expect("ip")), "{ok}");
        }
        for bad in ["8.8.8.8", "1.1.1.1", "2001:db8::1", "::ffff:8.8.8.8"] {
            assert!(!is_lan_scope(bad.parse().expect("ip")), "{bad}");
        }
    }
}
