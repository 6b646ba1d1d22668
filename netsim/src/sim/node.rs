//! One simulated device: core's identity, outbox and room logs, driven the
//! way the daemon drives them, plus the few tables the daemon keeps in
//! SQLite.
//!
//! # What survives a crash
//! The durable part (`pending` messages with their attempt counts, the
//! received set, the displayed history, delivery results, the ops of each
//! room log) models the store and survives [`crate::sim::Sim::crash`]. The
//! [`Outbox`], the in-flight attempts, the reachability view, timers, room
//! ops held for their parents and partly gathered room logs are memory and
//! are rebuilt on restart from the durable part, as the daemon rebuilds
//! them.
//!
//! # Invariants
//! - A message is displayed at most once per (sender device, message id),
//!   checked after `Envelope::open` verified the signature, and a receipt is
//!   sent for every copy that is taken (duplicates included), so a lost
//!   receipt is repaired by the retry it causes. Content that cannot be
//!   taken yet (room ops ahead of their room's log) gets no answer, so the
//!   sender retries it, as the daemon's `Rejection::Retry`.
//! - An outbox entry is reported delivered only on a receipt that verifies
//!   against the recipient's certificate and names this device as sender.

mod election;
mod outgoing;
mod room;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tincan_core::delivery::{Deliveries, MessageState};
use tincan_core::inbound::{admit, delivered_receipt, Admission, GoodStanding};
use tincan_core::outbox::{AttemptOutcome, Outbox};
use tincan_core::route::custody::MailKey;
use tincan_core::route::{Answer, Routed};
use tincan_core::wire::{Frame, RefuseReason};
use tincan_core::{
    Content, DeviceId, Envelope, GatewayElection, GatewayPreference, Identity, MessageId, Opened,
    SiteId, UserId,
};

use election::StoredElection;
pub(crate) use election::Uplink;
use room::{Rejection, Rooms};

use super::queue::Reply;
use super::world::World;
use super::NodeIdx;

/// A message shown to the user of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Displayed {
    /// The sending device.
    pub from: DeviceId,
    /// The message id.
    pub id: MessageId,
    /// When it was displayed (virtual ms since the Unix epoch).
    pub at_ms: u64,
}

/// A queued message, as the store keeps it.
#[derive(Clone, Debug)]
struct Pending {
    envelope: Arc<Envelope>,
    frame_len: usize,
    expires_at: u64,
    /// Devices still to deliver to, with the attempts made so far.
    devices: BTreeMap<DeviceId, u32>,
}

/// A simulated device.
pub struct SimNode {
    idx: NodeIdx,
    identity: Identity,
    /// The identity's device id, hashed once (it is asked for per beacon).
    device: DeviceId,
    up: bool,
    incarnation: u32,
    // Memory: lost on crash.
    outbox: Outbox,
    in_flight: BTreeMap<(MessageId, DeviceId), u64>,
    reachable: BTreeMap<DeviceId, bool>,
    scheduled_wake: Option<u64>,
    next_attempt: u64,
    /// The daemon's rule for a message's state from its devices' outcomes.
    deliveries: Deliveries<()>,
    election: Option<GatewayElection>,
    election_wake: Option<u64>,
    /// The site and epoch this node is gateway of, as last reported.
    gateway_of: Option<(SiteId, u64)>,
    // Configuration.
    preference: GatewayPreference,
    // Durable: the store.
    stored_election: StoredElection,
    /// Each sent message's state and failure reason, as its history row.
    states: BTreeMap<MessageId, (MessageState, Option<String>)>,
    pending: BTreeMap<MessageId, Pending>,
    received: BTreeSet<(DeviceId, MessageId)>,
    displayed: Vec<Displayed>,
    delivered: BTreeSet<(MessageId, DeviceId)>,
    /// Entries the relay took custody of (the daemon's held mark).
    held: BTreeSet<(MessageId, DeviceId)>,
    failed: Vec<(MessageId, DeviceId, String)>,
    /// Room logs (durable) and logs being gathered (memory).
    rooms: Rooms,
    duplicates: u64,
    rejected: u64,
}

impl SimNode {
    pub(crate) fn new(idx: NodeIdx, identity: Identity, preference: GatewayPreference) -> Self {
        Self {
            idx,
            device: identity.device_id(),
            identity,
            up: true,
            incarnation: 0,
            outbox: Outbox::new(),
            in_flight: BTreeMap::new(),
            reachable: BTreeMap::new(),
            scheduled_wake: None,
            next_attempt: 0,
            deliveries: Deliveries::new(),
            election: None,
            election_wake: None,
            gateway_of: None,
            preference,
            stored_election: StoredElection::default(),
            states: BTreeMap::new(),
            pending: BTreeMap::new(),
            received: BTreeSet::new(),
            displayed: Vec::new(),
            delivered: BTreeSet::new(),
            held: BTreeSet::new(),
            failed: Vec::new(),
            rooms: Rooms::default(),
            duplicates: 0,
            rejected: 0,
        }
    }

    /// This node's index.
    pub fn idx(&self) -> NodeIdx {
        self.idx
    }

    /// The node's keys and certificate.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The node's display name.
    pub fn name(&self) -> &str {
        &self.identity.name
    }

    /// The node's user id (each node is its own user).
    pub fn user_id(&self) -> UserId {
        self.identity.user_id()
    }

    /// The node's device id.
    pub fn device_id(&self) -> DeviceId {
        self.device
    }

    /// Whether the node is running.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Every message displayed, in order.
    pub fn displayed(&self) -> &[Displayed] {
        &self.displayed
    }

    /// Whether `device` acknowledged message `id` sent by this node.
    pub fn is_delivered(&self, id: &MessageId, device: &DeviceId) -> bool {
        self.delivered.contains(&(*id, *device))
    }

    /// Deliveries the outbox gave up on (refused or expired).
    pub fn failures(&self) -> &[(MessageId, DeviceId, String)] {
        &self.failed
    }

    /// Whether message `id` was queued here and every device it was sealed
    /// to has an outcome (delivered or failed for good).
    pub fn is_settled(&self, id: &MessageId) -> bool {
        self.states.contains_key(id) && !self.pending.contains_key(id)
    }

    /// A sent message's state and failure reason, as the sender's history
    /// shows it.
    pub fn message_state(&self, id: &MessageId) -> Option<(MessageState, Option<&str>)> {
        self.states.get(id).map(|(s, e)| (*s, e.as_deref()))
    }

    /// (message, device) pairs still waiting for a receipt.
    pub fn pending_len(&self) -> usize {
        self.pending.values().map(|p| p.devices.len()).sum()
    }

    /// Copies that arrived again after being displayed (and were acknowledged
    /// without being displayed twice).
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Envelopes or receipts that failed verification.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    pub(crate) fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// Devices this node still has to deliver to.
    pub(crate) fn pending_devices(&self) -> BTreeSet<DeviceId> {
        self.pending
            .values()
            .flat_map(|p| p.devices.keys().copied())
            .collect()
    }

    /// Stores a sealed message for `devices` and queues it in the outbox.
    pub(crate) fn queue(
        &mut self,
        w: &mut World,
        envelope: Envelope,
        frame_len: usize,
        devices: &[(DeviceId, bool)],
    ) {
        let id = envelope.id;
        let expires_at = w.now + w.config.expiry_ms;
        let to = devices
            .first()
            .and_then(|(d, _)| w.node_of(d))
            .map_or(self.user_id(), |n| w.dir.certs[n.0].user_id());
        self.deliveries
            .insert(id, (), to, devices.iter().map(|(d, _)| *d));
        self.states.insert(id, (MessageState::Queued, None));
        self.pending.insert(
            id,
            Pending {
                envelope: Arc::new(envelope),
                frame_len,
                expires_at,
                devices: devices.iter().map(|(d, _)| (*d, 0)).collect(),
            },
        );
        for (device, reachable) in devices {
            self.set_reachable(w, *device, *reachable, false);
        }
        for (device, _) in devices {
            self.outbox.push(w.now, id, *device, expires_at, 0);
        }
        self.drive(w);
    }

    /// Tells the outbox whether `device` has a path, when that changed (or
    /// always, after a lost-then-found connection when `bounce` is set).
    pub(crate) fn set_reachable(&mut self, w: &World, device: DeviceId, up: bool, bounce: bool) {
        if bounce && self.reachable.get(&device) == Some(&true) {
            self.outbox.handle_reachable(w.now, device, false);
            self.reachable.insert(device, false);
        }
        if self.reachable.get(&device) != Some(&up) {
            self.outbox.handle_reachable(w.now, device, up);
            self.reachable.insert(device, up);
        }
    }

    /// The node stops: memory is lost, the store stays.
    pub(crate) fn crash(&mut self, w: &mut World) {
        self.stop_election(w);
        self.up = false;
        self.incarnation += 1;
        self.outbox = Outbox::new();
        self.in_flight.clear();
        self.reachable.clear();
        self.scheduled_wake = None;
        self.deliveries = Deliveries::new();
        self.rooms.crash();
    }

    /// The node starts again, reloads its outbox from the store and starts
    /// its election; the caller then sets reachability and drives it.
    pub(crate) fn restart(&mut self, w: &mut World) {
        self.up = true;
        let now = w.now;
        self.start_election(w, now);
        for (id, pending) in &self.pending {
            for (device, attempts) in &pending.devices {
                self.outbox
                    .push(w.now, *id, *device, pending.expires_at, *attempts);
                if self.held.contains(&(*id, *device)) {
                    // As the daemon restores it: the relay still holds it.
                    self.outbox
                        .handle_outcome(w.now, *id, *device, AttemptOutcome::Custody);
                }
                let to = w
                    .node_of(device)
                    .map_or(self.user_id(), |n| w.dir.certs[n.0].user_id());
                self.deliveries.restore(*id, to, *device, || ());
            }
        }
    }

    /// A packet with an envelope for this device arrived; `held` when the
    /// relay handed it over from its mailbox (the answer then goes to the
    /// relay, which settles its copy and holds the receipt for the sender).
    pub(crate) fn on_envelope(&mut self, w: &mut World, envelope: &Envelope, held: bool) {
        // The daemon's rule (core's); the simulator models no device
        // removal, revocation or blocking, so every sender is in good
        // standing.
        let opened = match admit(envelope, &self.identity.device, &GoodStanding) {
            Admission::Admitted(opened) => opened,
            Admission::Refused(refusal) => {
                tracing::debug!(node = self.idx.0, %refusal, "envelope refused");
                self.rejected += 1;
                // As the daemon does: the refusal goes back, so the sender
                // stops retrying and tells its user why.
                let reply = Reply {
                    message_id: refusal.message_id(),
                    to_device: envelope.sender.device_id(),
                    from_device: self.device_id(),
                    frame: Box::new(refusal.frame()),
                };
                self.answer(w, envelope, reply, held);
                return;
            }
        };
        let answer = match self.on_content(w, &opened) {
            Ok(()) => Frame::Receipt(delivered_receipt(&self.identity.device, &opened, w.now)),
            Err(Rejection::Refuse(reason)) => {
                tracing::debug!(node = self.idx.0, ?reason, "content refused");
                Frame::Refused {
                    message_id: opened.id,
                    reason,
                }
            }
            // Silence: the sender's outbox retries.
            Err(Rejection::Retry) => return,
        };
        let reply = Reply {
            message_id: opened.id,
            to_device: opened.sender.device_id(),
            from_device: self.device_id(),
            frame: Box::new(answer),
        };
        self.answer(w, envelope, reply, held);
    }

    /// Sends the answer to `envelope`: back to its sender, or to the relay
    /// when the relay handed it over from its mailbox.
    fn answer(&mut self, w: &mut World, envelope: &Envelope, reply: Reply, held: bool) {
        let uplink = self.uplink(w);
        if !held {
            w.route_reply(self.idx, uplink, reply);
            return;
        }
        let item = Routed::Envelope(Box::new(envelope.clone()));
        let key = MailKey::new(&item, self.device_id());
        let answer = match *reply.frame {
            Frame::Receipt(receipt) => Answer::Receipt(receipt),
            Frame::Refused { reason, .. } => Answer::Refused(reason),
            _ => return,
        };
        w.answer_relay(self.idx, uplink, key, answer);
    }

    /// Takes admitted content, as the daemon's handlers do: a text is shown
    /// (once per sender device and id: dedupe after admission, on the
    /// verified sender, as the daemon's unique row); room ops go to the
    /// room's log. Every copy that is taken gets a receipt, duplicates
    /// included, so a lost receipt is repaired by the retry it causes.
    fn on_content(&mut self, w: &World, opened: &Opened) -> Result<(), Rejection> {
        match &opened.content {
            Content::Text { .. } => {
                let from = opened.sender.device_id();
                if self.received.insert((from, opened.id)) {
                    self.displayed.push(Displayed {
                        from,
                        id: opened.id,
                        at_ms: w.now,
                    });
                } else {
                    self.duplicates += 1;
                }
                Ok(())
            }
            Content::RoomOps { room, ops, log_len } => {
                self.on_room_ops(opened, *room, ops.clone(), *log_len)
            }
            _ => Err(Rejection::Refuse(RefuseReason::Other(
                "unsupported content".into(),
            ))),
        }
    }
}
