//! The relay's side of routing, through core's custody rule
//! (`tincan_core::route::custody`), as the real relay's `router.rs` and
//! `flush.rs` run it:
//!
//! - a routed envelope goes, one copy per location, to the devices the
//!   relay can locate now (a live gateway of their site, or their own
//!   connection); the others are held in their mailboxes and the sender
//!   is answered `Custody` (or `Refused(MailboxFull)`) for them, on its
//!   routed stream;
//! - a held copy is handed over when its device can be located again (a
//!   new gateway's grant, a device connecting itself, and every
//!   [`FLUSH_EVERY_MS`] while anything is held), and kept until the
//!   device answers the relay: its receipt replaces the copy by that
//!   receipt held for the sender, which is flushed by the same rules;
//! - receipts of copies handed over live go back to the sender as before,
//!   and are lost (the sender retries) when its site has no gateway: the
//!   real relay answers those on the stream they came on.
//!
//! The simulated relay decides a device's location from what the real
//! one learns from its gateways' member lists: the device runs, in a site
//! whose gateway holds the live lease. A forwarded copy that then finds
//! no one is lost, as a hop's failed answer would be, and retried by its
//! sender.

use std::collections::BTreeMap;
use std::sync::Arc;

use tincan_core::route::custody::{after_flush, plan_route, Flushed, MailKey, PutOutcome};
use tincan_core::route::{Answer, DeviceAnswer, Routed};
use tincan_core::wire::{self, Frame};
use tincan_core::{DeviceId, Envelope, Receipt};

use super::super::mailbox::{Held, HeldItem};
use super::super::net::Link;
use super::super::queue::{Event, Hop, Packet, Reply};
use super::super::{NodeIdx, SiteIdx};
use super::World;

/// How often the relay flushes what it holds (the real relay's
/// housekeeping: every 3 ticks of 1 s), and the least time between two
/// hand-overs of one copy.
pub(crate) const FLUSH_EVERY_MS: u64 = 3_000;

/// Where the relay reaches a device now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Location {
    /// Through its site's gateway.
    Gateway(NodeIdx),
    /// Over its own connection (roaming).
    Direct(NodeIdx),
}

impl Location {
    fn hop(self) -> Hop {
        match self {
            Location::Gateway(g) => Hop::GatewayIn(g),
            Location::Direct(n) => Hop::Node(n),
        }
    }
}

impl World {
    /// The relay: leases for claims; routed items through core's custody
    /// rule; answers to hand-overs from its mailboxes.
    pub(crate) fn relay(&mut self, packet: Packet) {
        match packet {
            Packet::Envelope {
                envelope,
                frame_len,
                from,
                to,
                first,
                ..
            } => {
                let devices = to.into_iter().flat_map(|(_, d)| d).collect();
                self.relay_envelope(&envelope, frame_len, from, devices, first);
            }
            packet @ Packet::Receipt { .. } => self.relay_receipt(packet),
            Packet::MailAnswer { key, answer, .. } => self.on_mail_answer(key, *answer),
            Packet::Claim {
                from,
                incarnation,
                site,
                epoch,
            } => self.relay_claim(from, incarnation, site, epoch),
            Packet::Release { from, site, epoch } => {
                let device = self.dir.certs[from.0].device_id();
                self.relay.release(self.now, device, site, epoch);
            }
            Packet::Answer { .. } => {}
        }
    }

    /// Where the relay reaches `device` now, if anywhere.
    fn locate(&self, device: &DeviceId) -> Option<(SiteIdx, Location)> {
        let node = self.node_of(device)?;
        if !self.net.up[node.0] {
            return None;
        }
        let site = self.net.location[node.0];
        if self.relay.is_direct(node) {
            return Some((site, Location::Direct(node)));
        }
        let gateway = self.relay.gateway_of(self.now, site)?;
        Some((site, Location::Gateway(gateway)))
    }

    /// A routed envelope: one copy per location now, custody for the rest
    /// (core's rule), and the custody answers back to the sender.
    fn relay_envelope(
        &mut self,
        envelope: &Arc<Envelope>,
        frame_len: usize,
        from: SiteIdx,
        devices: Vec<DeviceId>,
        first: bool,
    ) {
        // A partition cuts the two sites' path at the relay: those copies
        // are lost, as before the relay could decide anything.
        let mut open = Vec::with_capacity(devices.len());
        for device in devices {
            let Some(node) = self.node_of(&device) else {
                self.net.stats.undeliverable += 1;
                continue;
            };
            if self.net.partitioned(from, self.net.location[node.0]) {
                self.net.stats.partitioned += 1;
            } else {
                open.push(device);
            }
        }
        let plan = plan_route(open, |d| self.locate(d));
        for ((site, location), devices) in plan.forward {
            let copy = Packet::Envelope {
                envelope: Arc::clone(envelope),
                frame_len,
                from,
                to: vec![(site, devices)],
                first,
                held: false,
            };
            self.send_down(site, location.hop(), copy);
        }
        if plan.custody.is_empty() {
            return;
        }
        let item = Routed::Envelope(Box::new((**envelope).clone()));
        let mut answers = Vec::with_capacity(plan.custody.len());
        for device in plan.custody {
            let key = MailKey::new(&item, device);
            let held = HeldItem::Envelope {
                envelope: Arc::clone(envelope),
                frame_len,
                first,
            };
            let outcome = self.relay.mail.put(key, held, frame_len as u64);
            if outcome == PutOutcome::Stored {
                self.custody_items += 1;
            }
            answers.push(DeviceAnswer {
                device,
                answer: outcome.answer(),
            });
        }
        self.schedule_flush();
        let reply = Reply {
            message_id: envelope.id,
            to_device: envelope.sender.device_id(),
            from_device: answers[0].device,
            frame: Box::new(Frame::Answers(answers)),
        };
        self.answer_sender(reply, from);
    }

    /// Sends the relay's answers on a sender's routed stream: back into
    /// the site the item came from, to the sender.
    fn answer_sender(&mut self, reply: Reply, from: SiteIdx) {
        let frame_len = wire::encode(&reply.frame).map_or(0, |b| b.len());
        let Some(sender) = self.node_of(&reply.to_device) else {
            return;
        };
        let at = if self.relay.is_direct(sender) {
            Hop::Node(sender)
        } else if let Some(gateway) = self.relay.gateway_of(self.now, from) {
            Hop::GatewayIn(gateway)
        } else {
            // The stream's gateway is gone: the answer with it; the
            // sender's attempt times out and its retry is a duplicate.
            self.net.stats.no_gateway += 1;
            return;
        };
        let packet = Packet::Receipt {
            reply,
            frame_len,
            from,
            to_site: from,
            held: false,
        };
        self.send(Link::WanDown(from), at, packet);
    }

    /// A recipient's answer on its way to the sender: to the sender's own
    /// connection or its site's gateway, if there is one now.
    fn relay_receipt(&mut self, packet: Packet) {
        let Packet::Receipt {
            ref reply,
            from,
            to_site,
            ..
        } = packet
        else {
            return;
        };
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
        } else if let Some(gateway) = self.relay.gateway_of(self.now, to_site) {
            Hop::GatewayIn(gateway)
        } else {
            self.net.stats.no_gateway += 1;
            return;
        };
        self.send_down(to_site, at, packet);
    }

    /// A device answered a hand-over: core's flush rule settles, deletes
    /// or keeps its held copy.
    fn on_mail_answer(&mut self, key: MailKey, answer: Answer) {
        let Some(held) = self.relay.mail.get(&key) else {
            // Settled already (an answer to an earlier hand-over).
            return;
        };
        let item = match &held.item {
            HeldItem::Envelope { envelope, .. } => Routed::Envelope(Box::new((**envelope).clone())),
            HeldItem::Receipt { reply, .. } => match &*reply.frame {
                Frame::Receipt(r) => Routed::Receipt(r.clone()),
                _ => return,
            },
        };
        let cert = self.node_of(&key.device).map(|n| &self.dir.certs[n.0]);
        let verifies = |r: &Receipt| cert.is_some_and(|c| r.verify(c).is_ok());
        match after_flush(&item, key.device, Some(&answer), verifies) {
            Flushed::Settle(receipt) => {
                self.relay.mail.remove(&key);
                self.hold_receipt(key, receipt);
            }
            Flushed::Delete => {
                self.relay.mail.remove(&key);
            }
            Flushed::Keep => {}
        }
    }

    /// Holds `receipt` of a delivered held envelope for its sender (the
    /// real relay replaces the row in one write) and flushes the sender.
    fn hold_receipt(&mut self, delivered: MailKey, receipt: Receipt) {
        let sender = delivered.origin;
        let reply = Reply {
            message_id: receipt.message_id,
            to_device: sender,
            from_device: delivered.device,
            frame: Box::new(Frame::Receipt(receipt.clone())),
        };
        let frame_len = wire::encode(&reply.frame).map_or(0, |b| b.len());
        let key = MailKey::new(&Routed::Receipt(receipt), sender);
        let item = HeldItem::Receipt { reply, frame_len };
        if self.relay.mail.put(key, item, frame_len as u64) == PutOutcome::Stored {
            self.custody_items += 1;
        }
        self.flush(&[sender]);
    }

    /// A claim: core's lease rule decides; a new gateway of a site (a
    /// holder or epoch the relay did not route through before) gets what
    /// is held for that site's devices.
    fn relay_claim(
        &mut self,
        from: NodeIdx,
        incarnation: u32,
        site: tincan_core::SiteId,
        epoch: u64,
    ) {
        let now = self.now;
        let device = self.dir.certs[from.0].device_id();
        let location = self.net.location[from.0];
        let before = self.relay.granted(location);
        let result = self.relay.claim(now, from, device, location, site, epoch);
        let fresh = result.is_ok() && self.relay.granted(location) != before;
        let answer = Packet::Answer {
            incarnation,
            site,
            epoch,
            result,
        };
        self.send(Link::WanDown(location), Hop::Node(from), answer);
        if fresh && !self.relay.mail.is_empty() {
            let devices: Vec<DeviceId> = self
                .relay
                .mail
                .devices()
                .into_iter()
                .filter(|d| {
                    self.node_of(d)
                        .is_some_and(|n| self.net.location[n.0] == location)
                })
                .collect();
            self.flush(&devices);
        }
    }

    /// A node connected to the relay itself: what is held for it follows.
    pub(crate) fn connected_direct(&mut self, node: NodeIdx) {
        if !self.relay.mail.is_empty() {
            let device = self.dir.certs[node.0].device_id();
            self.flush(&[device]);
        }
    }

    /// The flush timer: every device with mail that can be located now.
    pub(crate) fn on_relay_tick(&mut self) {
        self.relay.tick_pending = false;
        let devices = self.relay.mail.devices();
        self.flush(&devices);
        self.schedule_flush();
    }

    /// Schedules the flush timer while anything is held.
    fn schedule_flush(&mut self) {
        if !self.relay.tick_pending && !self.relay.mail.is_empty() {
            self.relay.tick_pending = true;
            self.queue.push(self.now + FLUSH_EVERY_MS, Event::RelayTick);
        }
    }

    /// Hands what is held for `devices` to those that can be located, one
    /// copy per item and location (as `flush.rs` sends one item once with
    /// all its devices behind one gateway); a copy handed over less than
    /// [`FLUSH_EVERY_MS`] ago waits for its answer.
    pub(crate) fn flush(&mut self, devices: &[DeviceId]) {
        let now = self.now;
        let mut batches: BTreeMap<(SiteIdx, Location, MailKey), (Held, Vec<DeviceId>)> =
            BTreeMap::new();
        for device in devices {
            let Some((site, location)) = self.locate(device) else {
                continue;
            };
            for held in self.relay.mail.rows_mut(device) {
                if held.last_flush.is_some_and(|t| now < t + FLUSH_EVERY_MS) {
                    continue;
                }
                let first = held.flushes == 0;
                held.flushes += 1;
                held.last_flush = Some(now);
                // One batch per item: the key without its device.
                let item_key = MailKey {
                    device: DeviceId([0; 20]),
                    ..held.key
                };
                let batch = batches
                    .entry((site, location, item_key))
                    .or_insert_with(|| (held.clone(), Vec::new()));
                if !first {
                    // Any retried row makes the copy a retransmission.
                    batch.0.flushes = batch.0.flushes.max(2);
                }
                batch.1.push(*device);
            }
        }
        for ((site, location, _), (held, devices)) in batches {
            self.hand_over(site, location, held, devices);
        }
    }

    /// One hand-over of a held item to `devices` at `location`.
    fn hand_over(&mut self, site: SiteIdx, location: Location, held: Held, devices: Vec<DeviceId>) {
        // Its first hand-over is the item's first copy into the site if
        // the sender's was a first attempt; later ones are retransmits.
        let packet = match held.item {
            HeldItem::Envelope {
                envelope,
                frame_len,
                first,
            } => Packet::Envelope {
                envelope,
                frame_len,
                from: site,
                to: vec![(site, devices)],
                first: first && held.flushes <= 1,
                held: true,
            },
            HeldItem::Receipt { reply, frame_len } => Packet::Receipt {
                reply,
                frame_len,
                from: site,
                to_site: site,
                held: true,
            },
        };
        self.send_down(site, location.hop(), packet);
    }

    /// Puts a copy on `site`'s WAN link down, counting envelope copies per
    /// message: first attempts per site, later ones as retransmissions.
    pub(crate) fn send_down(&mut self, site: SiteIdx, at: Hop, packet: Packet) {
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
