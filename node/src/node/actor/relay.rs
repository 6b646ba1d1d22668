//! The relay side of the actor: when to hold a relay connection (roaming
//! or gateway only), what the relay tells us (neighbours, revocations; the
//! directory is `directory.rs`'s), and which devices the outbox may try.

use std::sync::Arc;

use tincan_core::peer_book::Via;
use tincan_core::route::{Neighbour, Register, Welcome};
use tincan_core::site::Role;
use tincan_core::wire::Frame;
use tincan_core::{DeviceId, Revocations};

use super::Actor;
use crate::event::NodeEvent;
use crate::node::link;
use crate::node::uplink;
use crate::node::NodeError;

/// Longest wait between attempts to reach the relay.
const MAX_RELAY_BACKOFF_MS: u64 = 10_000;
/// The application close code of a LAN connection refused or cut because
/// the peer's user is revoked.
pub(super) const CLOSE_REVOKED: u32 = 5;
/// How long a device waits before dialling again an address that refused
/// it (or that it refused) as revoked: a decision that will not change.
pub(super) const REVOKED_DIAL_BACKOFF_MS: u64 = 60_000;

/// Whether the peer closed `conn` because it holds this device's user as
/// revoked.
pub(super) fn closed_as_revoked(conn: &quinn::Connection) -> bool {
    matches!(
        conn.close_reason(),
        Some(quinn::ConnectionError::ApplicationClosed(close))
            if close.error_code == CLOSE_REVOKED.into() && &close.reason[..] == b"revoked"
    )
}

impl Actor {
    /// Whether this node should hold a relay connection now: a member of an
    /// organisation with a relay, and not behind a gateway.
    fn wants_relay(&self) -> bool {
        // A removed device would only be refused.
        self.devices.removed.is_none()
            && self.relay_addr.is_some()
            && self.membership.is_some()
            && matches!(self.election.role(), Role::Roaming | Role::Gateway)
    }

    /// Opens or closes the relay connection to match the role.
    pub(super) fn manage_relay(&mut self) {
        let now = self.now;
        if !self.wants_relay() {
            if let Some(conn) = self.relay.conn.take() {
                tracing::info!("behind a gateway now; closing the relay connection");
                conn.close(0u32.into(), b"member");
                self.election.handle_relay(now, false);
            }
            return;
        }
        if self.relay.conn.is_some() || self.relay.connecting || self.relay.next_at > now {
            return;
        }
        if let Some(problem) = self.membership_problem() {
            // The relay would refuse it: say why here, with the remedy.
            self.relay.error = Some(problem);
            return;
        }
        let (Some(addr), Some(register)) = (self.relay_addr.clone(), self.register_frame()) else {
            return;
        };
        self.relay.connecting = true;
        self.relay.registered_lonely = register.lonely;
        tracing::debug!(relay = %addr, "connecting to the relay");
        tokio::spawn(uplink::run(
            self.endpoint.clone(),
            addr,
            register,
            self.link_tx.clone(),
        ));
    }

    /// Why this node's own membership cannot get it onto the relay, as
    /// far as it knows: expired, or its user revoked.
    fn membership_problem(&self) -> Option<String> {
        let membership = self.membership.as_ref()?;
        if membership.expires_at <= self.now_secs() {
            return Some(format!(
                "not connecting to the relay: the membership of {} expired (at unix time {}); ask your admin for a new one (`tincan org issue`), then run `tincan org join FILE`",
                membership.org_name, membership.expires_at
            ));
        }
        if self.is_revoked(&self.identity.user_id()) {
            return Some(format!(
                "not connecting to the relay: this user was revoked by the organisation {}",
                membership.org_name
            ));
        }
        None
    }

    fn register_frame(&self) -> Option<Register> {
        Some(Register {
            name: self.identity.name.clone(),
            membership: self.membership.clone()?,
            lan_addrs: crate::platform::lan_addrs(self.listen),
            lonely: self.org_peers.is_empty(),
        })
    }

    /// Once a second: re-register when loneliness changed (so the relay
    /// introduces neighbours when multicast is blocked).
    pub(super) fn relay_tick(&mut self) {
        let lonely = self.org_peers.is_empty();
        if lonely == self.relay.registered_lonely {
            return;
        }
        let (Some(conn), Some(register)) = (self.relay.conn.clone(), self.register_frame()) else {
            return;
        };
        self.relay.registered_lonely = lonely;
        tokio::spawn(link::notify(conn, Arc::new(Frame::Register(register))));
    }

    pub(super) fn on_relay_up(
        &mut self,
        conn: quinn::Connection,
        welcome: Welcome,
        relay_device: DeviceId,
        node: String,
    ) {
        tracing::info!(public_addr = %welcome.public_addr, relay = %node, "connected to the relay");
        self.relay.connecting = false;
        self.relay.failures = 0;
        self.relay.error = None;
        self.relay.device = Some(relay_device);
        if !self.wants_relay() {
            conn.close(0u32.into(), b"member");
            return;
        }
        if let Some(list) = &self.revocations {
            tokio::spawn(link::notify(
                conn.clone(),
                Arc::new(Frame::Revocations(list.clone())),
            ));
        }
        // Removals made while the relay was out of reach reach it now.
        self.share_roster(&conn, None);
        // Directory pushes that name the version they apply to; the first
        // on this connection is the whole directory.
        self.directory.expect_whole();
        tokio::spawn(link::notify(
            conn.clone(),
            Arc::new(Frame::DirectoryVersions),
        ));
        self.relay.conn = Some(conn);
        self.relay.node = Some(node);
        self.members_sent = None;
        // This relay's lease lifetime, not the one this build assumes: the
        // step-down must come before *its* lease could lapse.
        self.election.set_lease_ttl(self.now, welcome.lease_ttl_ms);
        self.election.handle_relay(self.now, true);
    }

    pub(super) fn on_relay_failed(&mut self, reason: String) {
        tracing::warn!(%reason, "relay unreachable");
        self.relay.connecting = false;
        self.relay.failures = self.relay.failures.saturating_add(1);
        let backoff = (500u64 << self.relay.failures.min(5)).min(MAX_RELAY_BACKOFF_MS);
        self.relay.next_at = self.now + backoff;
        self.relay.error = Some(reason);
    }

    pub(super) fn on_relay_down(&mut self, stable_id: usize, reason: String) {
        if self.relay.conn.as_ref().map(quinn::Connection::stable_id) != Some(stable_id) {
            return;
        }
        tracing::info!(%reason, "relay connection closed");
        self.relay.conn = None;
        self.relay.node = None;
        self.relay.error = Some(reason);
        self.relay.next_at = self.now + 500;
        self.election.handle_relay(self.now, false);
    }

    /// Whether `from` may tell us about the organisation: the relay, or the
    /// gateway we follow.
    pub(super) fn is_uplink(&self, from: &DeviceId) -> bool {
        Some(*from) == self.relay.device && self.relay.conn.is_some()
            || self.election.gateway().map(|g| g.device) == Some(*from)
    }

    pub(super) fn on_control(&mut self, from: DeviceId, frame: Frame) -> Frame {
        // Any peer may tell us about its own user's devices (rosters prove
        // themselves: certificates and revocations are signed).
        let frame = match frame {
            Frame::Devices(roster) => return self.on_roster(from, roster),
            // Any linked LAN peer may pass records on: each is signed by
            // the device it describes.
            Frame::Lan(gossip) => return self.on_lan_gossip(from, gossip),
            other => other,
        };
        // From any authenticated LAN peer of the organisation, not only the
        // uplink: neighbour lists are dialling hints (like mDNS, which anyone
        // on the LAN may send; the dial itself is mutually authenticated),
        // and a revocation list proves itself (signed by the organisation
        // key), so an admin behind a gateway can hand it on to the relay.
        let from_member = self.org_peers.contains_key(&from)
            && matches!(frame, Frame::Neighbours(_) | Frame::Revocations(_));
        if !from_member && !self.is_uplink(&from) {
            return Frame::Error("only the relay or this site's gateway may send that".into());
        }
        match frame {
            Frame::Directory(entries) => self.on_directory(from, entries),
            Frame::DirectoryUpdate(update) => self.on_directory_update(from, update),
            Frame::Neighbours(list) => self.on_neighbours(list),
            Frame::Revocations(list) => match self.apply_revocations(list) {
                Ok(()) => Frame::Ack,
                Err(e) => Frame::Error(e.to_string()),
            },
            other => Frame::Error(format!("unexpected {}", other.name())),
        }
    }

    fn on_neighbours(&mut self, list: Vec<Neighbour>) -> Frame {
        for neighbour in list {
            if neighbour.device == self.identity.device_id() || neighbour.addrs.is_empty() {
                continue;
            }
            if self.conns.contains_key(&neighbour.device) {
                // It dialled us first: it is a LAN neighbour all the same.
                if let Some(info) = self.book.device(&neighbour.device) {
                    if info.via == Via::Static {
                        let mut info = info.clone();
                        info.via = Via::Lan;
                        self.book.learn(info);
                    }
                }
                continue;
            }
            tracing::info!(device = %neighbour.device, addrs = ?neighbour.addrs, "introduced to a probable LAN neighbour");
            self.hints.insert(neighbour.device, neighbour.addrs);
        }
        self.dial_due();
        Frame::Ack
    }

    /// As gateway, tells LAN peers of the organisation about one another
    /// (all pairs, or only the pairs with `new`), so that a LAN without
    /// multicast becomes a full mesh even for a device that arrived after
    /// the election (the relay then only knows the gateway).
    pub(super) fn share_lan_neighbours(&self, new: Option<DeviceId>) {
        if self.election.role() != Role::Gateway {
            return;
        }
        let peers: Vec<(DeviceId, quinn::Connection)> = self
            .org_peers
            .keys()
            .filter_map(|d| Some((*d, self.conns.get(d)?.last()?.clone())))
            .collect();
        for (device, conn) in &peers {
            let list: Vec<Neighbour> = peers
                .iter()
                .filter(|(other, _)| other != device)
                .filter(|(other, _)| new.is_none_or(|n| n == *device || n == *other))
                .map(|(other, c)| Neighbour {
                    device: *other,
                    addrs: vec![crate::addr::canonical(c.remote_address())],
                })
                .collect();
            if !list.is_empty() {
                tokio::spawn(link::notify(
                    conn.clone(),
                    Arc::new(Frame::Neighbours(list)),
                ));
            }
        }
    }

    /// Takes a newer revocation list: stores it, cuts off revoked users and
    /// passes it on (to the relay and the LAN).
    fn apply_revocations(&mut self, list: Revocations) -> Result<(), NodeError> {
        let Some(membership) = &self.membership else {
            return Ok(());
        };
        if self.revocations.as_ref() == Some(&list) {
            return Ok(());
        }
        crate::org::accept_revocations(&list, membership, self.revocations.as_ref())?;
        crate::org::save_revocations(&self.home, &list)?;
        tracing::info!(
            serial = list.serial,
            revoked = list.revoked.len(),
            "new revocation list"
        );
        self.revocations = Some(list.clone());
        self.enforce_revocations();
        let revoked: Vec<DeviceId> = self
            .directory
            .entries()
            .iter()
            .filter(|(_, e)| list.is_revoked(&e.cert.user_id()))
            .map(|(d, _)| *d)
            .collect();
        for device in &revoked {
            self.directory.forget(device);
        }
        let certs = &self.certs;
        self.remote.retain(|device, _| {
            certs
                .get(device)
                .is_none_or(|c| !list.is_revoked(&c.user_id()))
        });
        let frame = Arc::new(Frame::Revocations(list));
        if let Some(conn) = &self.relay.conn {
            tokio::spawn(link::notify(conn.clone(), frame.clone()));
        }
        for device in self.org_peers.keys() {
            if let Some(conn) = self.conns.get(device).and_then(|c| c.last()) {
                tokio::spawn(link::notify(conn.clone(), frame.clone()));
            }
        }
        Ok(())
    }

    /// Closes connections to revoked users' devices.
    fn enforce_revocations(&mut self) {
        let revoked_lan: Vec<DeviceId> = self
            .mesh
            .devices()
            .filter(|r| self.is_revoked(&r.cert.user_id()))
            .map(|r| r.device())
            .collect();
        for device in revoked_lan {
            self.mesh.forget(&device);
        }
        let revoked: Vec<DeviceId> = self
            .conns
            .keys()
            .filter(|d| {
                self.certs
                    .get(d)
                    .is_some_and(|c| self.is_revoked(&c.user_id()))
            })
            .copied()
            .collect();
        for device in revoked {
            tracing::warn!(%device, "closing the connection of a revoked user");
            self.mesh.forget(&device);
            if let Some(conns) = self.conns.get(&device) {
                for conn in conns {
                    conn.close(CLOSE_REVOKED.into(), b"revoked");
                }
            }
            if self.org_peers.remove(&device).is_some() {
                self.election.handle_peer_lost(self.now, device);
            }
            self.remote.remove(&device);
        }
        // Revoked devices of other sites: no longer reachable or online.
        let remote: Vec<DeviceId> = self
            .remote
            .keys()
            .filter(|d| {
                self.certs
                    .get(d)
                    .is_some_and(|c| self.is_revoked(&c.user_id()))
            })
            .copied()
            .collect();
        for device in remote {
            tracing::info!(%device, "forgetting a revoked user's remote device");
            self.remote.remove(&device);
            if self.book.device(&device).is_some_and(|d| d.online) {
                self.book.set_online(&device, false);
                if let Some(info) = self.book.device(&device) {
                    self.emit(NodeEvent::PeerOffline {
                        peer: self.peer_view(info),
                    });
                }
            }
        }
    }

    /// A LAN peer cut us off as revoked: stop dialling it in a loop (it
    /// will refuse every time) and say why once.
    pub(super) fn back_off_revoked(&mut self, device: DeviceId) {
        tracing::warn!(%device, "peer refuses this device: it holds this user as revoked by the organisation");
        let at = self.now + REVOKED_DIAL_BACKOFF_MS;
        let addrs: Vec<std::net::SocketAddr> = self
            .hints
            .get(&device)
            .into_iter()
            .flatten()
            .chain(
                self.book
                    .device(&device)
                    .into_iter()
                    .flat_map(|d| d.addrs.iter()),
            )
            .copied()
            .collect();
        for addr in addrs {
            self.dials.entry(addr).or_default().next_at = at;
        }
    }

    /// Hands the held revocation list to a LAN member that just connected,
    /// so a device that was away when it was issued still learns it.
    pub(super) fn share_revocations(&self, conn: &quinn::Connection) {
        if let Some(list) = &self.revocations {
            tokio::spawn(link::notify(
                conn.clone(),
                Arc::new(Frame::Revocations(list.clone())),
            ));
        }
    }

    /// Re-reads the home's organisation files (`tincan org revoke`).
    pub(super) fn reload_org(&mut self) -> Result<(), NodeError> {
        if let Some(list) = crate::org::load_revocations(&self.home)? {
            self.apply_revocations(list)?;
        }
        Ok(())
    }

    /// Tells the outbox which devices have a path now: a LAN connection,
    /// or (for devices the relay knows) an uplink; and tells routed sends
    /// still waiting which connection is the uplink now.
    pub(super) fn refresh_reachability(&mut self) {
        let now = self.now;
        let uplink = self.uplink_conn();
        let id = uplink.as_ref().map(quinn::Connection::stable_id);
        self.relay.uplink.send_if_modified(|current| {
            let moved = *current != id;
            *current = id;
            moved
        });
        let uplink = uplink.is_some();
        let mut now_reachable: std::collections::BTreeSet<DeviceId> =
            self.conns.keys().copied().collect();
        if uplink {
            now_reachable.extend(self.remote.keys().copied());
        }
        let lost: Vec<DeviceId> = self.reachable.difference(&now_reachable).copied().collect();
        let gained: Vec<DeviceId> = now_reachable.difference(&self.reachable).copied().collect();
        for device in lost {
            self.outbox.handle_reachable(now, device, false);
            // A remote device seen through an uplink we no longer have is
            // not shown online any more; the next directory says again.
            if let Some(remote) = self.remote.get_mut(&device) {
                if remote.online {
                    remote.online = false;
                    self.book.set_online(&device, false);
                    if let Some(info) = self.book.device(&device) {
                        let peer = self.peer_view(info);
                        self.emit(NodeEvent::PeerOffline { peer });
                    }
                }
            }
        }
        for device in gained {
            self.outbox.handle_reachable(now, device, true);
        }
        self.reachable = now_reachable;
    }
}
