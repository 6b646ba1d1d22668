//! Everything the simulated nodes share: the clock, the event queue, the
//! network, the directory of devices, the crypto randomness and the trace.
//!
//! Node handlers get `&mut World` next to `&mut SimNode`, so a node can send
//! packets and set timers while the simulator keeps ownership of both. The
//! routing here plays the part of the gateways and the relay: one envelope
//! copy per destination site, fanned out inside the site by its gateway.

use std::collections::BTreeMap;
use std::sync::Arc;

use tincan_core::wire::{self, Frame};
use tincan_core::{DeviceCert, DeviceId, Envelope, Receipt, UserId};

use super::net::{Link, Net};
use super::queue::{Event, Hop, Packet, Queue};
use super::seed::SimRng;
use super::{NodeIdx, SiteIdx};

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
    trace: blake3::Hasher,
}

impl World {
    pub(crate) fn new(now: u64, net: Net, config: NodeConfig, crypto: SimRng) -> Self {
        Self {
            now,
            queue: Queue::default(),
            net,
            dir: Directory::default(),
            config,
            crypto,
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
                    Packet::Receipt { receipt, .. } => {
                        [&receipt.message_id.0[..], &receipt.recipient_device.0[..]].concat()
                    }
                };
                (tag, index, detail)
            }
            Event::Wake { node, .. } => (5, node.0 as u64, Vec::new()),
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
    /// devices to the sender's gateway (the relay splits it per site).
    pub(crate) fn route_envelope(
        &mut self,
        from: NodeIdx,
        envelope: &Arc<Envelope>,
        frame_len: usize,
        devices: &[DeviceId],
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
                };
                self.net.send(
                    &mut self.queue,
                    self.now,
                    Link::Lan,
                    Hop::Node(target),
                    packet,
                );
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
            };
            self.net.send(
                &mut self.queue,
                self.now,
                Link::Lan,
                Hop::GatewayOut(here),
                packet,
            );
        }
    }

    /// Sends `receipt` from `from` back to the device that sent the message.
    pub(crate) fn route_receipt(&mut self, from: NodeIdx, receipt: Receipt) {
        let Some(target) = self.node_of(&receipt.sender_device) else {
            self.net.stats.undeliverable += 1;
            return;
        };
        let frame_len = wire::encode(&Frame::Receipt(receipt.clone()))
            .map(|bytes| bytes.len())
            .unwrap_or(0);
        let here = self.net.location[from.0];
        let to_site = self.net.location[target.0];
        let packet = Packet::Receipt {
            receipt,
            frame_len,
            from: here,
            to_site,
        };
        let at = if to_site == here {
            Hop::Node(target)
        } else {
            Hop::GatewayOut(here)
        };
        self.net
            .send(&mut self.queue, self.now, Link::Lan, at, packet);
    }

    /// Moves a packet one hop on at a gateway or the relay.
    pub(crate) fn forward(&mut self, at: Hop, packet: Packet) {
        let now = self.now;
        match at {
            Hop::GatewayOut(site) => {
                self.net
                    .send(&mut self.queue, now, Link::WanUp(site), Hop::Relay, packet);
            }
            Hop::Relay => self.relay(packet),
            Hop::GatewayIn(site) => self.fan_out(site, packet),
            Hop::Node(_) => {}
        }
    }

    /// The relay: one copy per destination site, unless the sites are cut off.
    fn relay(&mut self, packet: Packet) {
        let now = self.now;
        match packet {
            Packet::Envelope {
                envelope,
                frame_len,
                from,
                to,
            } => {
                for (site, devices) in to {
                    if self.net.partitioned(from, site) {
                        self.net.stats.partitioned += 1;
                        continue;
                    }
                    let copy = Packet::Envelope {
                        envelope: Arc::clone(&envelope),
                        frame_len,
                        from,
                        to: vec![(site, devices)],
                    };
                    self.net.send(
                        &mut self.queue,
                        now,
                        Link::WanDown(site),
                        Hop::GatewayIn(site),
                        copy,
                    );
                }
            }
            Packet::Receipt { from, to_site, .. } => {
                if self.net.partitioned(from, to_site) {
                    self.net.stats.partitioned += 1;
                    return;
                }
                self.net.send(
                    &mut self.queue,
                    now,
                    Link::WanDown(to_site),
                    Hop::GatewayIn(to_site),
                    packet,
                );
            }
        }
    }

    /// A gateway hands what entered its site to each addressed device that is
    /// (still) in the site.
    fn fan_out(&mut self, site: SiteIdx, packet: Packet) {
        let now = self.now;
        match packet {
            Packet::Envelope {
                envelope,
                frame_len,
                from,
                to,
            } => {
                for device in to.into_iter().flat_map(|(_, devices)| devices) {
                    let target = self.node_of(&device);
                    match target {
                        Some(target) if self.net.location[target.0] == site => {
                            let copy = Packet::Envelope {
                                envelope: Arc::clone(&envelope),
                                frame_len,
                                from,
                                to: vec![(site, vec![device])],
                            };
                            self.net
                                .send(&mut self.queue, now, Link::Lan, Hop::Node(target), copy);
                        }
                        _ => self.net.stats.undeliverable += 1,
                    }
                }
            }
            Packet::Receipt { ref receipt, .. } => match self.node_of(&receipt.sender_device) {
                Some(target) if self.net.location[target.0] == site => {
                    self.net
                        .send(&mut self.queue, now, Link::Lan, Hop::Node(target), packet);
                }
                _ => self.net.stats.undeliverable += 1,
            },
        }
    }
}
