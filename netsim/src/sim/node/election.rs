//! A simulated device's gateway election: core's [`GatewayElection`],
//! driven the way the daemon drives it (`node/src/node/actor/election.rs`):
//! beacons to the LAN, claims and releases to the relay, role changes
//! reported, the site and highest epoch persisted.

use tincan_core::route::hop;
use tincan_core::{
    Beacon, DeviceId, ElectionConfig, ElectionEvent, ElectionTransmit, GatewayElection,
    GatewayPreference, LeaseRefusal, Role, SiteId,
};

use super::super::queue::{Event, Hop, Packet};
use super::super::relay::PendingGrant;
use super::super::world::World;
use super::super::NodeIdx;
use super::SimNode;
use crate::sim::net::Link;

/// The part of the election that survives a crash: what the daemon stores.
#[derive(Clone, Debug, Default)]
pub(crate) struct StoredElection {
    pub(crate) site: Option<SiteId>,
    pub(crate) max_epoch: u64,
}

/// Where a node sends what leaves its site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Uplink {
    /// Straight to the relay: this node is gateway, or talks to the relay
    /// itself (roaming, between gateways).
    Direct,
    /// Through this node, the site's gateway.
    Via(NodeIdx),
    /// Nowhere yet (no relay connection, or a gateway not yet known).
    None,
}

impl SimNode {
    /// Starts the election (first boot, restart or a new network), from
    /// what the node stored.
    pub(crate) fn start_election(&mut self, w: &mut World, started_at: u64) {
        let now = w.now;
        let mut config = ElectionConfig::new(self.device_id());
        config.preference = self.preference;
        let stored = &self.stored_election;
        let mut election =
            GatewayElection::new(config, now, stored.site, stored.max_epoch, started_at);
        election.set_relay_configured(now, Some(w.relay.id()));
        election.handle_relay(now, true);
        self.election = Some(election);
        self.election_wake = None;
        self.pump_election(w);
    }

    /// Stops the election (crash, or leaving the network), telling the
    /// checks when that leaves a site without its gateway.
    pub(crate) fn stop_election(&mut self, w: &mut World) {
        self.election = None;
        self.election_wake = None;
        self.leave_roles(w);
    }

    fn leave_roles(&mut self, w: &mut World) {
        if let Some((site, _)) = self.gateway_of.take() {
            let location = w.net.location[self.idx.0];
            w.checks.left_gateway(w.now, self.idx, location, site, true);
        }
        w.relay.set_direct(self.idx, false);
    }

    /// The node's preference for being gateway.
    pub fn preference(&self) -> GatewayPreference {
        self.preference
    }

    /// The node's role now (`None` while down).
    pub fn role(&self) -> Option<Role> {
        self.election.as_ref().map(GatewayElection::role)
    }

    /// The election's view, for checks and reports.
    pub fn election(&self) -> Option<&GatewayElection> {
        self.election.as_ref()
    }

    /// Whether the node acts as its site's gateway now.
    pub fn is_gateway(&self) -> bool {
        self.role() == Some(Role::Gateway)
    }

    /// Where traffic for other sites goes from here: core's rule, as the
    /// daemon asks it. (A member whose gateway's LAN link is down falls
    /// back to a relay connection in the daemon when it has one; a
    /// simulated member has none.)
    pub(crate) fn uplink(&self, w: &World) -> Uplink {
        let Some(election) = self.election.as_ref() else {
            return Uplink::None;
        };
        match hop::uplink(election.role(), election.gateway()) {
            hop::Uplink::Gateway(device) => w.node_of(&device).map_or(Uplink::None, Uplink::Via),
            hop::Uplink::Relay => Uplink::Direct,
            hop::Uplink::Nowhere => Uplink::None,
        }
    }

    /// A beacon from `from`, a peer on this node's LAN.
    pub(crate) fn on_beacon(&mut self, w: &mut World, from: DeviceId, beacon: Beacon) {
        if let Some(election) = self.election.as_mut() {
            election.handle_beacon(w.now, from, beacon);
            self.pump_election(w);
        }
    }

    /// The relay answered a claim of this life.
    pub(crate) fn on_answer(
        &mut self,
        w: &mut World,
        site: SiteId,
        epoch: u64,
        result: Result<PendingGrant, LeaseRefusal>,
    ) {
        let Some(election) = self.election.as_mut() else {
            return;
        };
        match result {
            // Checked on the relay's signer thread against the relay the
            // node pinned (core checks that it is the one); a grant that
            // fails the check is ignored, as handle_lease_granted does.
            Ok(pending) => {
                if let Ok(verified) = pending.wait() {
                    election.handle_verified_grant(w.now, verified);
                }
            }
            Err(refusal) => election.handle_lease_refused(
                w.now,
                site,
                epoch,
                refusal.current_epoch(),
                refusal.holder(),
            ),
        }
        self.pump_election(w);
    }

    /// The election's timer fired.
    pub(crate) fn on_election_wake(&mut self, w: &mut World, time: u64) {
        if self.election_wake == Some(time) {
            self.election_wake = None;
        }
        if let Some(election) = self.election.as_mut() {
            election.handle_timeout(w.now, &mut w.crypto);
            self.pump_election(w);
        }
    }

    /// Carries out what the election asked for and records what changed.
    fn pump_election(&mut self, w: &mut World) {
        let Some(election) = self.election.as_mut() else {
            return;
        };
        let transmits: Vec<_> = std::iter::from_fn(|| election.poll_transmit()).collect();
        let events: Vec<_> = std::iter::from_fn(|| election.poll_event()).collect();
        let site_now = election.site();
        let timeout = election.poll_timeout();
        for event in events {
            match event {
                ElectionEvent::RoleChanged { role, gateway } => {
                    self.on_role(w, role, gateway.map(|g| g.epoch), site_now);
                }
                ElectionEvent::SiteChanged(site) => self.stored_election.site = Some(site),
                ElectionEvent::EpochSeen(epoch) => {
                    let stored = &mut self.stored_election.max_epoch;
                    *stored = (*stored).max(epoch);
                }
            }
        }
        for transmit in transmits {
            self.send_election(w, transmit);
        }
        if let Some(at) = timeout {
            if self.election_wake.is_none_or(|s| at < s) {
                let at = at.max(w.now);
                self.election_wake = Some(at);
                let event = Event::ElectionWake {
                    node: self.idx,
                    incarnation: self.incarnation,
                };
                w.queue.push(at, event);
            }
        }
    }

    fn on_role(&mut self, w: &mut World, role: Role, epoch: Option<u64>, site: Option<SiteId>) {
        let location = w.net.location[self.idx.0];
        let now = w.now;
        if let Some((old, _)) = self.gateway_of.take() {
            // A gateway renewing under a new epoch never left its post.
            let lost = role != Role::Gateway;
            w.checks.left_gateway(now, self.idx, location, old, lost);
        }
        if let (Role::Gateway, Some(epoch), Some(site)) = (role, epoch, site) {
            let device = self.device_id();
            w.checks
                .became_gateway(now, self.idx, device, location, site, epoch);
            self.gateway_of = Some((site, epoch));
        }
        // A gateway's own device is reached through its site's copy, like
        // its members; only a roaming device gets copies of its own.
        w.relay.set_direct(self.idx, role == Role::Roaming);
        if role == Role::Roaming {
            w.connected_direct(self.idx);
        }
    }

    fn send_election(&mut self, w: &mut World, transmit: ElectionTransmit) {
        let location = w.net.location[self.idx.0];
        match transmit {
            ElectionTransmit::Beacon(beacon) => w.beacon(self.idx, location, beacon),
            ElectionTransmit::Claim { site, epoch } => {
                let packet = Packet::Claim {
                    from: self.idx,
                    incarnation: self.incarnation,
                    site,
                    epoch,
                };
                w.send(Link::WanUp(location), Hop::Relay, packet);
            }
            ElectionTransmit::Release { site, epoch } => {
                let packet = Packet::Release {
                    from: self.idx,
                    site,
                    epoch,
                };
                w.send(Link::WanUp(location), Hop::Relay, packet);
            }
        }
    }
}
