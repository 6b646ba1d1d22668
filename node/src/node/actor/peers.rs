//! Peers in the actor: LAN and static connections coming up and going
//! down, the peer book (with its name pins and spoof warnings), mDNS hints
//! and dialling with per-address back-off.

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;

use tincan_core::peer_book::{LearnOutcome, PeerInfo, Via};
use tincan_core::wire::Hello;
use tincan_core::{DeviceCert, DeviceId, UserId};

use super::{link, relay, Actor, LinkEvent};
use crate::discovery::DiscoveryEvent;
use crate::event::NodeEvent;
use crate::store::PeerRecord;
use tincan_core::site::Role;

/// Longest wait between dials of an unreachable static peer.
const MAX_DIAL_BACKOFF_MS: u64 = 10_000;

/// Most users from outside the organisation (all users, without one) that
/// a node remembers: twice the 500 peers one LAN must admit. Members of the
/// organisation do not count; they are bounded by its membership.
pub(super) const MAX_STRANGERS: usize = 1_000;

/// Dial state of one address.
#[derive(Default)]
pub(super) struct DialState {
    pub(super) in_progress: bool,
    pub(super) failures: u32,
    pub(super) next_at: u64,
}

/// The peers configured by address (`--peer`, `peers` in config.toml) and
/// what their host names resolved to: a link to or from one of them is
/// shown `via: static`, any other LAN link `via: lan`.
pub(super) struct StaticPeers {
    /// As configured: `HOST:PORT` or `IP:PORT`.
    pub(super) configured: Vec<String>,
    /// Addresses configured host names resolved to.
    resolved: HashSet<SocketAddr>,
}

impl StaticPeers {
    pub(super) fn new(configured: Vec<String>) -> Self {
        StaticPeers {
            configured,
            resolved: HashSet::new(),
        }
    }

    /// Remembers what a configured host name resolved to.
    pub(super) fn resolved(&mut self, addrs: &[SocketAddr]) {
        self.resolved.extend(addrs.iter().map(|a| canonical(*a)));
    }

    /// Whether `addr` is a configured peer's.
    pub(super) fn contains(&self, addr: SocketAddr) -> bool {
        let addr = canonical(addr);
        self.resolved.contains(&addr)
            || self
                .configured
                .iter()
                .filter_map(|p| p.parse::<SocketAddr>().ok())
                .any(|p| canonical(p) == addr)
    }
}

/// `addr` with an IPv4-mapped IPv6 address as the IPv4 one (how a
/// dual-stack socket reports an IPv4 peer).
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

impl Actor {
    /// A connection to `device` closed; the device goes offline when it
    /// was the last one.
    pub(super) fn on_down(
        &mut self,
        device: DeviceId,
        stable_id: usize,
        reason: String,
        lost: bool,
    ) {
        let closed = self
            .conns
            .get(&device)
            .and_then(|l| l.iter().find(|c| c.stable_id() == stable_id).cloned());
        if closed.as_ref().is_some_and(relay::closed_as_revoked) {
            self.back_off_revoked(device);
        }
        if let Some(list) = self.conns.get_mut(&device) {
            list.retain(|c| c.stable_id() != stable_id);
            if list.is_empty() {
                self.conns.remove(&device);
                if self.org_peers.remove(&device).is_some() {
                    self.election.handle_peer_lost(self.now, device);
                }
                tracing::info!(%device, %reason, lost, "link closed");
                // Whether the peer is shown offline is the mesh's call: a
                // closed idle link says nothing about the peer.
                self.mesh_link_down(device, lost);
            }
        }
    }

    /// A dial to `addr` failed: back off exponentially, up to
    /// [`MAX_DIAL_BACKOFF_MS`].
    pub(super) fn on_dial_failed(&mut self, addr: SocketAddr, reason: String) {
        let state = self.dials.entry(addr).or_default();
        state.in_progress = false;
        state.failures = state.failures.saturating_add(1);
        let backoff = (500u64 << state.failures.min(5)).min(MAX_DIAL_BACKOFF_MS);
        state.next_at = self.now + backoff;
        tracing::debug!(%addr, %reason, "dial failed");
        self.mesh_dial_failed(addr);
    }

    /// A connection came up (dialled or accepted) with an authenticated
    /// certificate: refuse it if the device is ourselves, removed or
    /// revoked; otherwise learn and store the peer and share what it needs.
    pub(super) fn on_up(
        &mut self,
        conn: quinn::Connection,
        cert: DeviceCert,
        hello: Box<Hello>,
        addr: SocketAddr,
        dialed: Option<SocketAddr>,
    ) {
        let device = cert.device_id();
        let user = cert.user_id();
        if device == self.identity.device_id() {
            // We dialled ourselves (a static peer pointing at us): stop trying.
            conn.close(0u32.into(), b"self");
            if let Some(addr) = dialed {
                self.dials.entry(addr).or_default().next_at = u64::MAX;
            }
            return;
        }
        if self.refuse_removed(&conn, &cert) {
            if let Some(addr) = dialed {
                self.dials.entry(addr).or_default().next_at =
                    self.now + relay::REVOKED_DIAL_BACKOFF_MS;
            }
            return;
        }
        if let Some(addr) = dialed {
            let state = self.dials.entry(addr).or_default();
            *state = DialState::default();
        }
        let via = self.via_of_link(&device, addr, dialed);
        let mut new_org_peer = false;
        if let Some(card) = self.org_card(&cert, &hello) {
            new_org_peer = self.org_peers.insert(device, card).is_none();
            self.share_revocations(&conn);
        } else if self.is_revoked(&user) {
            tracing::warn!(%device, %user, "refusing a revoked user's device");
            conn.close(relay::CLOSE_REVOKED.into(), b"revoked");
            if let Some(addr) = dialed {
                self.dials.entry(addr).or_default().next_at =
                    self.now + relay::REVOKED_DIAL_BACKOFF_MS;
            }
            return;
        } else if self.book.devices_of(&user).next().is_none() && !self.room_for_a_stranger() {
            tracing::warn!(%device, %user, "refusing a new identity from outside the organisation: {MAX_STRANGERS} are known and none can be forgotten");
            conn.close(0u32.into(), b"too many unknown peers");
            return;
        }
        self.learn_peer(PeerInfo {
            device,
            user,
            name: hello.name.clone(),
            addrs: vec![addr],
            // Shown online (and announced) by the mesh, below.
            online: false,
            via,
        });
        self.certs.insert(device, cert.clone());
        let _ = self.devices.known.learn(cert.clone());
        self.share_roster(&conn, Some(&user));
        let record = PeerRecord {
            device,
            user,
            name: hello.name,
            cert: cert.to_bytes(),
            addrs: vec![addr.to_string()],
            last_seen_ms: self.now,
        };
        self.save_peer_soon(record);
        self.conns.entry(device).or_default().push(conn);
        tracing::debug!(%device, %user, %addr, "link up");
        self.mesh_link_up(device);
        if new_org_peer {
            self.share_lan_neighbours(Some(device));
        }
        // A new link may be a member that restarted before we noticed it
        // leave: it must follow us again to be sent the directory.
        self.followers.remove(&device);
    }

    /// Whether one more user from outside the organisation may be
    /// remembered: below [`MAX_STRANGERS`], or after forgetting the least
    /// recently seen one who is offline and left nothing to keep (no
    /// message either way, not a contact, no mail waiting). Anyone can
    /// make identities for free, so without this bound each new one would
    /// add peer rows and name pins for ever.
    pub(super) fn room_for_a_stranger(&mut self) -> bool {
        let me = self.identity.user_id();
        let members: BTreeSet<UserId> = self
            .org_peers
            .keys()
            .filter_map(|d| self.book.device(d).map(|p| p.user))
            .collect();
        let is_stranger = |u: &UserId| *u != me && !members.contains(u);
        let strangers = self.book.users().into_iter().filter(is_stranger).count();
        if strangers < MAX_STRANGERS {
            return true;
        }
        let candidates = match self.store.forgettable_users(64) {
            Ok(candidates) => candidates,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list peers to forget");
                return false;
            }
        };
        let Some(gone) = candidates
            .into_iter()
            .find(|u| is_stranger(u) && self.book.devices_of(u).all(|d| !d.online))
        else {
            return false;
        };
        if let Err(e) = self.store.forget_user(&gone) {
            tracing::warn!(user = %gone, error = %e, "cannot forget a peer");
            return false;
        }
        for device in self.book.forget_user(&gone) {
            self.certs.remove(&device);
        }
        tracing::info!(user = %gone, "forgot the least recently seen unknown peer to make room");
        true
    }

    /// Adds or refreshes a peer in the book; persists a new name pin and
    /// reports a name conflict (a spoof attempt) loudly.
    pub(super) fn learn_peer(&mut self, info: PeerInfo) {
        let (name, user) = (info.name.clone(), info.user);
        match self.book.learn(info) {
            LearnOutcome::New { pinned: true } => {
                // Stored at the end of this turn (`save_peers`), with the
                // other pins and peers of the turn in one commit.
                self.mesh_dials.unsaved_pins.push((name, user));
            }
            LearnOutcome::NameConflict {
                name,
                holder,
                claimant,
            } => {
                tracing::warn!(
                    %name, %holder, %claimant,
                    "SPOOF WARNING: a second user announces the name {name:?}; shown as {:?}, never chosen for {name:?}",
                    self.book.display_name(&claimant)
                );
                self.emit(NodeEvent::NameConflict {
                    name,
                    holder: holder.to_string(),
                    claimant: claimant.to_string(),
                });
            }
            _ => {}
        }
    }

    /// Remembers `cert` (called `name`) as a device to seal to, offline
    /// until it connects: in the peer book if it is not there yet, and in
    /// the store.
    pub(super) fn remember_device(&mut self, cert: &DeviceCert, name: String) {
        let (device, user) = (cert.device_id(), cert.user_id());
        self.certs.insert(device, cert.clone());
        if self.book.device(&device).is_none() {
            self.learn_peer(PeerInfo {
                device,
                user,
                name: name.clone(),
                addrs: Vec::new(),
                online: false,
                via: Via::Remembered,
            });
        }
        let record = PeerRecord {
            device,
            user,
            name,
            cert: cert.to_bytes(),
            addrs: Vec::new(),
            last_seen_ms: 0,
        };
        if let Err(e) = self.store.upsert_peer(&record) {
            tracing::warn!(%device, error = %e, "cannot store a device");
        }
    }

    /// How a new link to `device` at `addr` was found: a configured peer's
    /// address is `Static`; a device heard on mDNS, introduced by a gateway,
    /// known to the LAN mesh, or met at a LAN address while this node runs
    /// mDNS is `Lan`; anything else (a peer that configured us) `Static`.
    fn via_of_link(&self, device: &DeviceId, addr: SocketAddr, dialed: Option<SocketAddr>) -> Via {
        if self.static_peers.contains(addr) || dialed.is_some_and(|a| self.static_peers.contains(a))
        {
            Via::Static
        } else if self.hints.contains_key(device)
            || self.mesh.record(device).is_some()
            || (self.mdns && super::lan::is_lan_scope(addr.ip()))
        {
            Via::Lan
        } else {
            Via::Static
        }
    }

    /// An mDNS hint arrived or went away.
    pub(super) fn on_discovery(&mut self, ev: DiscoveryEvent) {
        match ev {
            DiscoveryEvent::Found {
                device,
                addrs,
                user,
                name,
            } => {
                tracing::debug!(%device, %user, %name, ?addrs, "mdns hint");
                self.mesh.handle_hint(device, addrs.clone());
                self.hints.insert(device, addrs);
                self.dial_due();
            }
            DiscoveryEvent::Lost { device } => {
                tracing::debug!(%device, "mdns goodbye");
                self.mesh.handle_hint_lost(&device);
                self.hints.remove(&device);
            }
        }
    }

    /// Dials static peers and discovered devices that have no live connection.
    pub(super) fn dial_due(&mut self) {
        if self.devices.removed.is_some() {
            // Removed by its user: every peer refuses it; stop knocking.
            return;
        }
        let now = self.now;
        self.dial_ring();
        // In an organisation with a relay, members still link to every
        // member they hear of: the gateway election beacons to each.
        let org_mesh = self.membership.is_some() && self.election.role() != Role::Standalone;
        let mut targets: Vec<SocketAddr> = self
            .hints
            .iter()
            .filter(|_| org_mesh)
            .filter(|(device, _)| !self.conns.contains_key(device))
            .filter_map(|(_, addrs)| self.next_dial(addrs, now))
            .collect();
        for peer in &self.static_peers.configured {
            match peer.parse::<SocketAddr>() {
                Ok(addr) => targets.push(addr),
                // A host name: resolve off the actor, dial when resolved.
                Err(_) => {
                    let (peer, tx) = (peer.clone(), self.link_tx.clone());
                    tokio::spawn(async move {
                        match tokio::net::lookup_host(&peer).await {
                            Ok(addrs) => {
                                let _ = tx.send(LinkEvent::Resolved(addrs.collect())).await;
                            }
                            Err(e) => {
                                tracing::debug!(%peer, error = %e, "cannot resolve static peer")
                            }
                        }
                    });
                }
            }
        }
        self.dial_all(targets, now);
    }

    /// The address of one device's hint to dial now, if any: one dial per
    /// device at a time, best address first (`crate::addr::next_dial`).
    pub(super) fn next_dial(&self, addrs: &[SocketAddr], now: u64) -> Option<SocketAddr> {
        let state = |a: &SocketAddr| self.dials.get(a);
        crate::addr::next_dial(
            addrs,
            |a| state(a).is_some_and(|s| s.in_progress),
            |a| *a != self.listen && state(a).is_none_or(|s| s.next_at <= now),
        )
    }

    /// Dials each target that no online device is known at.
    pub(super) fn dial_all(&mut self, targets: Vec<SocketAddr>, now: u64) {
        let online: HashSet<SocketAddr> = self
            .book
            .devices()
            .filter(|d| d.online)
            .flat_map(|d| d.addrs.iter().copied())
            .collect();
        for addr in targets {
            if !online.contains(&addr) {
                self.try_dial(addr, now);
            }
        }
    }

    /// Starts a dial to `addr` unless one is running or it is backing off;
    /// whether it started one.
    pub(super) fn try_dial(&mut self, addr: SocketAddr, now: u64) -> bool {
        if addr == self.listen {
            return false;
        }
        let state = self.dials.entry(addr).or_default();
        if state.in_progress || state.next_at > now {
            return false;
        }
        state.in_progress = true;
        tokio::spawn(link::dial(
            self.endpoint.clone(),
            addr,
            self.hello.clone(),
            self.link_tx.clone(),
        ));
        true
    }
}
