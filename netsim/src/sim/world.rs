//! Everything the simulated nodes share: the clock, the event queue, the
//! network, the directory of devices, the crypto randomness and the trace.
//!
//! Node handlers get `&mut World` next to `&mut SimNode`, so a node can send
//! packets and set timers while the simulator keeps ownership of both. The
//! routing here moves packets through the nodes the sites elected and the
//! relay: one envelope copy per destination site, fanned out inside the
//! site by its gateway; the simulator checks at each gateway hop that the
//! node still is one.

use std::collections::BTreeMap;
use std::sync::Arc;

use tincan_core::wire;
use tincan_core::{Beacon, DeviceCert, DeviceId, Envelope, MessageId, UserId};

use super::check::Checks;
use super::net::{Link, Net};
use super::node::Uplink;
use super::queue::{Event, Hop, Packet, Queue, Reply};
use super::relay::Relay;
use super::seed::SimRng;
use super::{NodeIdx, SiteIdx};
use tincan_core::route::hop::{plan_hop, HopSource, HopState};

/// Who is who: device ids, certificates and users of every node.
#[derive(Default)]
pub(crate) struct Directory {
    pub(crate) by_device: BTreeMap<DeviceId, NodeIdx>,
    pub(crate) certs: Vec<DeviceCert>,
    pub(crate) users: BTreeMap<UserId, Vec<NodeIdx>>,
}

/// Timing of the simulated node software.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NodeConfig {
    /// How long a sender waits for a receipt before reporting the attempt
    /// as failed to its outbox.
    pub(crate) attempt_timeout_ms: u64,
    /// How long a message may wait in an outbox.
    pub(crate) expiry_ms: u64,
}

/// The shared state of a simulation.
pub(crate) struct World {
    /// Virtual time, ms since the Unix epoch.
    pub(crate) now: u64,
    pub(crate) queue: Queue,
    pub(crate) net: Net,
    pub(crate) dir: Directory,
    pub(crate) config: NodeConfig,
    /// Keys, message ids and sealing randomness.
    pub(crate) crypto: SimRng,
    pub(crate) relay: Relay,
    pub(crate) checks: Checks,
    /// First-attempt envelope copies that entered each site, per message.
    pub(crate) first_copies: BTreeMap<(MessageId, SiteIdx), u32>,
    /// Envelope copies of later attempts that entered a site.
    pub(crate) wan_retransmits: u64,
    trace: blake3::Hasher,
}

impl World {
    pub(crate) fn new(now: u64, net: Net, config: NodeConfig, mut crypto: SimRng) -> Self {
        let relay = Relay::new(&mut crypto);
        Self {
            now,
            queue: Queue::default(),
            net,
            dir: Directory::default(),
            config,
            crypto,
            relay,
            checks: Checks::default(),
            first_copies: BTreeMap::new(),
            wan_retransmits: 0,
            trace: blake3::Hasher::new_derive_key("tincan netsim trace v1"),
        }
    }

    /// Mixes `parts` into the trace hash.
    pub(crate) fn trace(&mut self, parts: &[&[u8]]) {
        for part in parts {
            self.trace.update(&(part.len() as u64).to_le_bytes());
            self.trace.update(part);
        }
    }

    /// Records one dequeued event in the trace.
    pub(crate) fn trace_event(&mut self, seq: u64, event: &Event) {
        let (tag, index, detail): (u8, u64, Vec<u8>) = match event {
            Event::Arrive { at, packet } => {
                let (tag, index) = match at {
                    Hop::Node(n) => (1, n.0 as u64),
                    Hop::GatewayOut(s) => (2, s.0 as u64),
                    Hop::Relay => (3, 0),
                    Hop::GatewayIn(s) => (4, s.0 as u64),
                };
                let detail = match packet {
                    Packet::Envelope { envelope, to, .. } => {
                        let mut d = envelope.id.0.to_vec();
                        for (site, devices) in to {
                            d.extend_from_slice(&(site.0 as u64).to_le_bytes());
                            for device in devices {
                                d.extend_from_slice(&device.0);
                            }
                        }
                        d
                    }
                    Packet::Receipt { reply, .. } => {
                        [&reply.message_id.0[..], &reply.from_device.0[..]].concat()
                    }
                    Packet::Claim {
                        from, site, epoch, ..
                    }
                    | Packet::Release { from, site, epoch } => {
                        let mut d = site.0.to_vec();
                        d.extend_from_slice(&(from.0 as u64).to_le_bytes());
                        d.extend_from_slice(&epoch.to_le_bytes());
                        d
                    }
                    Packet::Answer {
                        site,
                        epoch,
                        result,
                        ..
                    } => {
                        let mut d = site.0.to_vec();
                        d.extend_from_slice(&epoch.to_le_bytes());
                        d.push(u8::from(result.is_ok()));
                        d
                    }
                };
                (tag, index, detail)
            }
            Event::Wake { node, .. } => (5, node.0 as u64, Vec::new()),
            Event::Beacon { from, beacon, .. } => {
                let gateway = beacon.gateway.map(|g| g.epoch).unwrap_or(0);
                (7, from.0 as u64, gateway.to_le_bytes().to_vec())
            }
            Event::ElectionWake { node, .. } => (8, node.0 as u64, Vec::new()),
            Event::AttemptTimeout {
                node,
                message_id,
                device,
                ..
            } => (
                6,
                node.0 as u64,
                [&message_id.0[..], &device.0[..]].concat(),
            ),
        };
        let now = self.now;
        self.trace(&[
            &now.to_le_bytes(),
            &seq.to_le_bytes(),
            &[tag],
            &index.to_le_bytes(),
            &detail,
        ]);
    }

    /// The trace hash so far, as hex.
    pub(crate) fn trace_hash(&self) -> String {
        self.trace.finalize().to_hex().to_string()
    }

    /// The node owning `device`, if it is part of the simulation.
    pub(crate) fn node_of(&self, device: &DeviceId) -> Option<NodeIdx> {
        self.dir.by_device.get(device).copied()
    }

    /// Sends one copy of `envelope` from `from` towards `devices`: directly
    /// to devices in the sender's site, and a single copy for all remote
    /// devices through the sender's `uplink` (the relay splits it per site).
    pub(crate) fn route_envelope(
        &mut self,
        from: NodeIdx,
        uplink: Uplink,
        envelope: &Arc<Envelope>,
        frame_len: usize,
        devices: &[DeviceId],
        first: bool,
    ) {
        let here = self.net.location[from.0];
        let mut remote: BTreeMap<SiteIdx, Vec<DeviceId>> = BTreeMap::new();
        for device in devices {
            let Some(target) = self.node_of(device) else {
                self.net.stats.undeliverable += 1;
                continue;
            };
            let site = self.net.location[target.0];
            if site == here {
                let packet = Packet::Envelope {
                    envelope: Arc::clone(envelope),
                    frame_len,
                    from: here,
                    to: vec![(here, vec![*device])],
                    first,
                };
                self.send(Link::Lan, Hop::Node(target), packet);
            } else {
                remote.entry(site).or_default().push(*device);
            }
        }
        if !remote.is_empty() {
            let packet = Packet::Envelope {
                envelope: Arc::clone(envelope),
                frame_len,
                from: here,
                to: remote.into_iter().collect(),
                first,
            };
            self.send_up(here, uplink, packet);
        }
    }

    /// Sends `reply` from `from` back to the device that sent the message.
    pub(crate) fn route_reply(&mut self, from: NodeIdx, uplink: Uplink, reply: Reply) {
        let Some(target) = self.node_of(&reply.to_device) else {
            self.net.stats.undeliverable += 1;
            return;
        };
        let frame_len = wire::encode(&reply.frame)
            .map(|bytes| bytes.len())
            .unwrap_or(0);
        let here = self.net.location[from.0];
        let to_site = self.net.location[target.0];
        let packet = Packet::Receipt {
            reply,
            frame_len,
            from: here,
            to_site,
        };
        if to_site == here {
            self.send(Link::Lan, Hop::Node(target), packet);
        } else {
            self.send_up(here, uplink, packet);
        }
    }

    /// Puts `packet` on `link` towards `at`, now (see [`Net::send`]).
    pub(crate) fn send(&mut self, link: Link, at: Hop, packet: Packet) {
        self.net.send(&mut self.queue, self.now, link, at, packet);
    }

    /// Sends what leaves site `here` through a node's uplink.
    fn send_up(&mut self, here: SiteIdx, uplink: Uplink, packet: Packet) {
        match uplink {
            Uplink::Direct => {
                self.send(Link::WanUp(here), Hop::Relay, packet);
            }
            Uplink::Via(gateway) => {
                let at = Hop::GatewayOut(gateway);
                self.send(Link::Lan, at, packet);
            }
            Uplink::None => self.net.stats.no_gateway += 1,
        }
    }

    /// A beacon from `from`: one LAN datagram to each peer of `site`,
    /// arriving together (each lost on its own when it arrives).
    pub(crate) fn beacon(&mut self, from: NodeIdx, site: SiteIdx, beacon: Beacon) {
        let peers = self.net.members[site.0].len().saturating_sub(1) as u64;
        if peers == 0 {
            return;
        }
        self.net.stats.lan_messages += peers;
        let at = self.now + self.net.lan_delay();
        self.queue.push(at, Event::Beacon { from, site, beacon });
    }

    /// Moves a packet on at the relay.
    pub(crate) fn forward(&mut self, at: Hop, packet: Packet) {
        if at == Hop::Relay {
            self.relay(packet);
        }
    }

    /// Node `g` (in `state`) got `packet` from `source` as a hop between
    /// its site and the relay: core's hop rule decides which devices it
    /// hands the packet to on its LAN and which it sends on to the relay.
    /// Returns the copy addressed to `g` itself, for the caller to deliver.
    pub(crate) fn hop(
        &mut self,
        g: NodeIdx,
        source: HopSource,
        state: HopState,
        packet: Packet,
    ) -> Option<Packet> {
        let site = self.net.location[g.0];
        let devices: Vec<DeviceId> = match &packet {
            Packet::Envelope { to, .. } => to.iter().flat_map(|(_, d)| d.iter().copied()).collect(),
            Packet::Receipt { reply, .. } => vec![reply.to_device],
            _ => return None,
        };
        let on_lan = |d: &DeviceId| {
            self.node_of(d)
                .is_some_and(|n| self.net.location[n.0] == site && self.net.up[n.0])
        };
        let plan = plan_hop(devices, source, state, on_lan);
        self.net.stats.undeliverable += plan.unreachable.len() as u64;
        for device in &plan.to_lan {
            if let Some(target) = self.node_of(device) {
                let copy = packet.for_device(site, *device);
                self.send(Link::Lan, Hop::Node(target), copy);
            }
        }
        if !plan.to_relay.is_empty() {
            let up = packet.only(&plan.to_relay);
            self.send(Link::WanUp(site), Hop::Relay, up);
        }
        plan.take.then(|| packet.for_device(site, state.me))
    }

    /// The relay: leases for claims; one copy per destination site through
    /// its gateway (or straight to devices connected themselves), unless
    /// the sites are cut off.
    fn relay(&mut self, packet: Packet) {
        let now = self.now;
        match packet {
            Packet::Envelope {
                envelope,
                frame_len,
                from,
                to,
                first,
            } => {
                for (site, devices) in to {
                    if self.net.partitioned(from, site) {
                        self.net.stats.partitioned += 1;
                        continue;
                    }
                    let (direct, via): (Vec<DeviceId>, Vec<DeviceId>) = devices
                        .into_iter()
                        .partition(|d| self.node_of(d).is_some_and(|n| self.relay.is_direct(n)));
                    for device in direct {
                        let Some(node) = self.node_of(&device) else {
                            continue;
                        };
                        let copy = Packet::Envelope {
                            envelope: Arc::clone(&envelope),
                            frame_len,
                            from,
                            to: vec![(site, vec![device])],
                            first,
                        };
                        self.send_down(site, Hop::Node(node), copy);
                    }
                    if via.is_empty() {
                        continue;
                    }
                    let Some(gateway) = self.relay.gateway_of(now, site) else {
                        self.net.stats.no_gateway += 1;
                        continue;
                    };
                    let copy = Packet::Envelope {
                        envelope: Arc::clone(&envelope),
                        frame_len,
                        from,
                        to: vec![(site, via)],
                        first,
                    };
                    self.send_down(site, Hop::GatewayIn(gateway), copy);
                }
            }
            Packet::Receipt {
                ref reply,
                from,
                to_site,
                ..
            } => {
                if self.net.partitioned(from, to_site) {
                    self.net.stats.partitioned += 1;
                    return;
                }
                let Some(target) = self.node_of(&reply.to_device) else {
                    self.net.stats.undeliverable += 1;
                    return;
                };
                let at = if self.relay.is_direct(target) {
                    Hop::Node(target)
                } else if let Some(gateway) = self.relay.gateway_of(now, to_site) {
                    Hop::GatewayIn(gateway)
                } else {
                    self.net.stats.no_gateway += 1;
                    return;
                };
                self.send_down(to_site, at, packet);
            }
            Packet::Claim {
                from,
                incarnation,
                site,
                epoch,
            } => {
                let device = self.dir.certs[from.0].device_id();
                let location = self.net.location[from.0];
                let result = self.relay.claim(now, from, device, location, site, epoch);
                let answer = Packet::Answer {
                    incarnation,
                    site,
                    epoch,
                    result,
                };
                self.send(Link::WanDown(location), Hop::Node(from), answer);
            }
            Packet::Release { from, site, epoch } => {
                let device = self.dir.certs[from.0].device_id();
                self.relay.release(now, device, site, epoch);
            }
            Packet::Answer { .. } => {}
        }
    }

    /// Puts a copy on `site`'s WAN link down, counting envelope copies per
    /// message: first attempts per site, later ones as retransmissions.
    fn send_down(&mut self, site: SiteIdx, at: Hop, packet: Packet) {
        if let Packet::Envelope {
            envelope, first, ..
        } = &packet
        {
            if *first {
                *self.first_copies.entry((envelope.id, site)).or_default() += 1;
            } else {
                self.wan_retransmits += 1;
            }
        }
        self.send(Link::WanDown(site), at, packet);
    }
}
