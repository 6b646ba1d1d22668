//! Driving core's `GatewayElection`: beacons to the organisation's LAN
//! peers as datagrams, lease claims to the relay, role changes applied.
//! The decisions are all in core; this only moves its transmits and
//! persists its facts.

use std::sync::Arc;

use tincan_core::election::ElectionEvent;
use tincan_core::election::ElectionTransmit;
use tincan_core::route::MemberCard;
use tincan_core::site::Role;
use tincan_core::wire::{self, Frame, Hello};
use tincan_core::{DeviceCert, UserId};

use super::{Actor, EPOCH_KEY, SITE_KEY};
use crate::event::{GatewayView, NodeEvent};
use crate::node::link::{self, LinkEvent};

/// How long a lease claim may wait for the relay's answer.
const CLAIM_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(2_000);

impl Actor {
    /// The card of a LAN peer that proves membership of this node's
    /// organisation (valid, unexpired, not revoked), if it does.
    pub(super) fn org_card(&self, cert: &DeviceCert, hello: &Hello) -> Option<MemberCard> {
        let mine = self.membership.as_ref()?;
        let theirs = hello.membership.as_ref()?;
        if theirs.org_key != mine.org_key {
            return None;
        }
        match theirs.admits(cert, self.now_secs(), self.revocations.as_ref()) {
            Ok(_) => Some(MemberCard {
                cert: cert.clone(),
                membership: theirs.clone(),
                name: hello.name.clone(),
            }),
            Err(e) => {
                tracing::info!(device = %cert.device_id(), error = %e, "peer is not a member of our organisation");
                None
            }
        }
    }

    /// Whether the organisation revoked `user`.
    pub(super) fn is_revoked(&self, user: &UserId) -> bool {
        self.revocations
            .as_ref()
            .is_some_and(|list| list.is_revoked(user))
    }

    /// This node's own card, when it is a member.
    pub(super) fn own_card(&self) -> Option<MemberCard> {
        Some(MemberCard {
            cert: self.identity.cert.clone(),
            membership: self.membership.clone()?,
            name: self.identity.name.clone(),
        })
    }

    /// Applies everything the election wants sent or reported.
    pub(super) fn drive_election(&mut self) {
        while let Some(transmit) = self.election.poll_transmit() {
            match transmit {
                ElectionTransmit::Beacon(beacon) => {
                    let Ok(bytes) = wire::encode(&Frame::Beacon(beacon)) else {
                        continue;
                    };
                    let bytes = bytes::Bytes::from(bytes);
                    for device in self.org_peers.keys() {
                        if let Some(conn) = self.conns.get(device).and_then(|c| c.last()) {
                            if let Err(e) = conn.send_datagram(bytes.clone()) {
                                tracing::debug!(%device, error = %e, "beacon not sent");
                            }
                        }
                    }
                }
                ElectionTransmit::Claim { site, epoch } => {
                    let Some(conn) = self.relay.conn.clone() else {
                        continue;
                    };
                    let tx = self.link_tx.clone();
                    let sent_at = self.now;
                    tokio::spawn(async move {
                        let frame = Frame::LeaseClaim { site, epoch };
                        let result = crate::rpc::request(&conn, &frame, CLAIM_TIMEOUT)
                            .await
                            .map_err(|e| e.to_string());
                        let _ = tx.send(LinkEvent::LeaseAnswer { sent_at, result }).await;
                    });
                }
                ElectionTransmit::Release { site, epoch } => {
                    if let Some(conn) = self.relay.conn.clone() {
                        let frame = Arc::new(Frame::LeaseRelease { site, epoch });
                        tokio::spawn(link::notify(conn, frame));
                    }
                }
            }
        }
        while let Some(event) = self.election.poll_event() {
            match event {
                ElectionEvent::RoleChanged { role, gateway } => {
                    tracing::info!(%role, ?gateway, site = ?self.election.site(), "role changed");
                    self.members_sent = None;
                    // Members are sent the directory once they follow this
                    // node as gateway (`Actor::note_follower`).
                    self.followers.clear();
                    if role == Role::Gateway {
                        self.share_lan_neighbours(None);
                    }
                    self.emit(NodeEvent::RoleChanged {
                        role: role.as_str().to_string(),
                        gateway: gateway.map(|g| GatewayView {
                            device_id: g.device.to_string(),
                            epoch: g.epoch,
                        }),
                    });
                }
                ElectionEvent::SiteChanged(site) => {
                    if let Err(e) = self.store.set_node_state(SITE_KEY, &site.to_string()) {
                        tracing::warn!(error = %e, "cannot persist site id");
                    }
                }
                ElectionEvent::EpochSeen(epoch) => {
                    if let Err(e) = self.store.set_node_state(EPOCH_KEY, &epoch.to_string()) {
                        tracing::warn!(error = %e, "cannot persist gateway epoch");
                    }
                }
            }
        }
        self.send_site_members();
    }

    /// A laptop on battery is not eligible as gateway (it may sleep or
    /// leave); plugged in again, its configured preference returns.
    pub(super) fn check_power(&mut self) {
        let on_battery = crate::platform::on_battery();
        if on_battery == self.on_battery {
            return;
        }
        self.on_battery = on_battery;
        let preference = if on_battery {
            tracing::info!("on battery: not eligible as branch gateway");
            tincan_core::site::GatewayPreference::Never
        } else {
            tracing::info!("on mains power: gateway preference {}", self.preference);
            self.preference
        };
        self.election.set_preference(self.now, preference);
    }

    /// The relay answered a claim sent at `sent_at`.
    pub(super) fn on_lease_answer(&mut self, sent_at: u64, result: Result<Frame, String>) {
        let now = self.now;
        match result {
            Ok(Frame::LeaseGranted {
                site, epoch, grant, ..
            }) => {
                tracing::debug!(%site, epoch, rtt_ms = now.saturating_sub(sent_at), "lease granted");
                self.election.handle_lease_granted(now, *grant);
            }
            Ok(Frame::LeaseRefused {
                site,
                epoch,
                current_epoch,
                holder,
            }) => {
                tracing::debug!(%site, epoch, current_epoch, ?holder, "lease refused");
                self.election
                    .handle_lease_refused(now, site, epoch, current_epoch, holder);
            }
            Ok(other) => {
                tracing::warn!(answer = other.name(), "unexpected answer to a lease claim")
            }
            // Unanswered: the election retries on its own timer.
            Err(e) => tracing::debug!(error = %e, "lease claim unanswered"),
        }
    }

    /// As gateway, tells the relay which devices the site holds whenever
    /// that set (or the lease) changed.
    pub(super) fn send_site_members(&mut self) {
        if self.election.role() != Role::Gateway {
            return;
        }
        let (Some(site), Some(gateway), Some(conn)) = (
            self.election.site(),
            self.election.gateway(),
            self.relay.conn.clone(),
        ) else {
            return;
        };
        let Some(own) = self.own_card() else {
            return;
        };
        let mut members = vec![own];
        members.extend(self.org_peers.values().cloned());
        let ids: Vec<_> = members.iter().map(|m| m.cert.device_id()).collect();
        let report = (site, gateway.epoch, ids);
        if self.members_sent.as_ref() == Some(&report) {
            return;
        }
        self.members_sent = Some(report);
        let frame = Arc::new(Frame::SiteMembers {
            site,
            epoch: gateway.epoch,
            members,
        });
        tokio::spawn(link::notify(conn, frame));
    }
}
