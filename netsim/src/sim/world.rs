//! Everything the simulated nodes share: the clock, the event queue, the
//! network, the directory of devices, the crypto randomness and the trace.
//!
//! Node handlers get `&mut World` next to `&mut SimNode`, so a node can send
//! packets and set timers while the simulator keeps ownership of both. The
//! routing here moves packets through the nodes the sites elected and the
//! relay: a sender's copies leave as core's fan-out planned them (LAN
//! links, one routed copy), the relay routes and holds them by core's
//! custody rule (`custody`), one copy per destination site, fanned out
//! inside the site by its gateway; the simulator checks at each gateway
//! hop that the node still is one.

mod custody;

use std::collections::BTreeMap;
use std::sync::Arc;

use tincan_core::route::custody::MailKey;
use tincan_core::route::{Answer, DeviceAnswer};
use tincan_core::wire::{self, Frame};
use tincan_core::{Beacon, DeviceCert, DeviceId, Envelope, MessageId, UserId};

use super::check::Checks;
use super::net::{Link, Net};
use super::node::Uplink;
use super::queue::{Event, Hop, Packet, Queue, Reply};
use super::relay::Relay;
use super::seed::SimRng;
use super::trace::Trace;
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
    /// Copies the relay took into custody (stored, not duplicates).
    pub(crate) custody_items: u64,
    trace: Trace,
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
            custody_items: 0,
            trace: Trace::new("tincan netsim trace v1"),
        }
    }

    /// Mixes `parts` into the trace hash.
    pub(crate) fn trace(&mut self, parts: &[&[u8]]) {
        for part in parts {
            self.trace.part(part);
        }
    }

    /// Records one dequeued event in the trace: its time, sequence, kind,
    /// place and ids, each as a length-prefixed part.
    pub(crate) fn trace_event(&mut self, seq: u64, event: &Event) {
        let (tag, index) = match event {
            Event::Arrive { at, .. } => match at {
                Hop::Node(n) => (1, n.0 as u64),
                Hop::GatewayOut(s) => (2, s.0 as u64),
                Hop::Relay => (3, 0),
                Hop::GatewayIn(s) => (4, s.0 as u64),
            },
            Event::Wake { node, .. } => (5, node.0 as u64),
            Event::AttemptTimeout { node, .. } => (6, node.0 as u64),
            Event::Beacon { from, .. } => (7, from.0 as u64),
            Event::ElectionWake { node, .. } => (8, node.0 as u64),
            Event::RelayTick => (9, 0),
        };
        let t = &mut self.trace;
        t.part(&self.now.to_le_bytes());
        t.part(&seq.to_le_bytes());
        t.part(&[tag]);
        t.part(&index.to_le_bytes());
        t.part_with(|d| event_detail(event, d));
    }

    /// The trace hash so far, as hex.
    pub(crate) fn trace_hash(&self) -> String {
        self.trace.hash()
    }

    /// The node owning `device`, if it is part of the simulation.
    pub(crate) fn node_of(&self, device: &DeviceId) -> Option<NodeIdx> {
        self.dir.by_device.get(device).copied()
    }

    /// Sends one attempt of `envelope` from `from` straight to `device`
    /// over their LAN link.
    pub(crate) fn send_lan(
        &mut self,
        from: NodeIdx,
        envelope: &Arc<Envelope>,
        frame_len: usize,
        device: DeviceId,
        first: bool,
    ) {
        let Some(target) = self.node_of(&device) else {
            self.net.stats.undeliverable += 1;
            return;
        };
        let here = self.net.location[from.0];
        let packet = Packet::Envelope {
            envelope: Arc::clone(envelope),
            frame_len,
            from: here,
            to: vec![(here, vec![device])],
            first,
            held: false,
        };
        self.send(Link::Lan, Hop::Node(target), packet);
    }

    /// Sends one routed copy of `envelope` from `from` for `devices`
    /// through the sender's `uplink` (the relay splits it per site).
    pub(crate) fn send_routed(
        &mut self,
        from: NodeIdx,
        uplink: Uplink,
        envelope: &Arc<Envelope>,
        frame_len: usize,
        devices: Vec<DeviceId>,
        first: bool,
    ) {
        let here = self.net.location[from.0];
        let packet = Packet::Envelope {
            envelope: Arc::clone(envelope),
            frame_len,
            from: here,
            to: vec![(here, devices)],
            first,
            held: false,
        };
        self.send_up(here, uplink, packet);
    }

    /// Sends a device's answer to a copy the relay handed over from its
    /// mailbox back up to the relay.
    pub(crate) fn answer_relay(
        &mut self,
        from: NodeIdx,
        uplink: Uplink,
        key: MailKey,
        answer: Answer,
    ) {
        let entry = DeviceAnswer {
            device: key.device,
            answer,
        };
        let frame_len = wire::encode(&Frame::Answers(vec![entry.clone()])).map_or(0, |b| b.len());
        let answer = Box::new(entry.answer);
        let here = self.net.location[from.0];
        let packet = Packet::MailAnswer {
            key,
            answer,
            frame_len,
            from: here,
        };
        self.send_up(here, uplink, packet);
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
            held: false,
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
    pub(crate) fn send_up(&mut self, here: SiteIdx, uplink: Uplink, packet: Packet) {
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
        if let Packet::MailAnswer { .. } = packet {
            // The answer on the relay's stream: a gateway passes it up.
            if state.gateway && source == HopSource::Member {
                self.send(Link::WanUp(site), Hop::Relay, packet);
            } else {
                self.net.stats.undeliverable += 1;
            }
            return None;
        }
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
}

/// The ids of `event` the trace records (the bytes the trace always
/// held: message and device ids, sites, epochs), appended to `d`.
fn event_detail(event: &Event, d: &mut Vec<u8>) {
    match event {
        Event::Arrive { packet, .. } => match packet {
            Packet::Envelope { envelope, to, .. } => {
                d.extend_from_slice(&envelope.id.0);
                for (site, devices) in to {
                    d.extend_from_slice(&(site.0 as u64).to_le_bytes());
                    for device in devices {
                        d.extend_from_slice(&device.0);
                    }
                }
            }
            Packet::Receipt { reply, .. } => {
                d.extend_from_slice(&reply.message_id.0);
                d.extend_from_slice(&reply.from_device.0);
            }
            Packet::MailAnswer { key, .. } => {
                d.extend_from_slice(&key.message_id.0);
                d.extend_from_slice(&key.device.0);
            }
            Packet::Claim {
                from, site, epoch, ..
            }
            | Packet::Release { from, site, epoch } => {
                d.extend_from_slice(&site.0);
                d.extend_from_slice(&(from.0 as u64).to_le_bytes());
                d.extend_from_slice(&epoch.to_le_bytes());
            }
            Packet::Answer {
                site,
                epoch,
                result,
                ..
            } => {
                d.extend_from_slice(&site.0);
                d.extend_from_slice(&epoch.to_le_bytes());
                d.push(u8::from(result.is_ok()));
            }
        },
        Event::Beacon { beacon, .. } => {
            let gateway = beacon.gateway.map(|g| g.epoch).unwrap_or(0);
            d.extend_from_slice(&gateway.to_le_bytes());
        }
        Event::AttemptTimeout {
            message_id, device, ..
        } => {
            d.extend_from_slice(&message_id.0);
            d.extend_from_slice(&device.0);
        }
        Event::Wake { .. } | Event::ElectionWake { .. } | Event::RelayTick => {}
    }
}
