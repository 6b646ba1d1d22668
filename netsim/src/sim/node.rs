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
mod room;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tincan_core::delivery::{judge_answer, Deliveries, DeliveryEffect, MessageState};
use tincan_core::inbound::{admit, delivered_receipt, Admission, GoodStanding};
use tincan_core::outbox::{AttemptOutcome, Outbox, OutboxEvent};
use tincan_core::wire::{Frame, RefuseReason};
use tincan_core::{
    Content, DeviceId, Envelope, GatewayElection, GatewayPreference, Identity, MessageId, Opened,
    SiteId, UserId,
};

use election::StoredElection;
pub(crate) use election::Uplink;
use room::{Rejection, Rooms};

use super::queue::{Event, Reply};
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
                let to = w
                    .node_of(device)
                    .map_or(self.user_id(), |n| w.dir.certs[n.0].user_id());
                self.deliveries.restore(*id, to, *device, || ());
            }
        }
    }

    /// A packet with an envelope for this device arrived.
    pub(crate) fn on_envelope(&mut self, w: &mut World, envelope: &Envelope) {
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
                let uplink = self.uplink(w);
                w.route_reply(self.idx, uplink, reply);
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
        let uplink = self.uplink(w);
        w.route_reply(self.idx, uplink, reply);
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

    /// An answer (receipt or refusal) to a message of this node arrived.
    pub(crate) fn on_reply(&mut self, w: &mut World, reply: Reply) {
        let key = (reply.message_id, reply.from_device);
        if !self
            .pending
            .get(&key.0)
            .is_some_and(|p| p.devices.contains_key(&key.1))
        {
            // A late answer for something already settled.
            return;
        }
        // The daemon's rule (core's), with the answering device's
        // certificate from the simulated directory.
        let me = self.device_id();
        let cert = w.node_of(&key.1).and_then(|n| w.dir.certs.get(n.0));
        let outcome = judge_answer(&me, &key.0, cert, Ok(*reply.frame));
        if let AttemptOutcome::Failed(reason) = &outcome {
            // Proves nothing; the outbox retries, as the daemon's does.
            tracing::debug!(node = self.idx.0, %reason, "answer not taken");
            self.rejected += 1;
        }
        self.in_flight.remove(&key);
        self.outbox.handle_outcome(w.now, key.0, key.1, outcome);
        self.drive(w);
    }

    /// The outbox's timer fired.
    pub(crate) fn on_wake(&mut self, w: &mut World, time: u64) {
        if self.scheduled_wake == Some(time) {
            self.scheduled_wake = None;
        }
        self.outbox.handle_timeout(w.now);
        self.drive(w);
    }

    /// No receipt came back for `attempt` in time.
    pub(crate) fn on_attempt_timeout(
        &mut self,
        w: &mut World,
        message_id: MessageId,
        device: DeviceId,
        attempt: u64,
    ) {
        let key = (message_id, device);
        if self.in_flight.get(&key) != Some(&attempt) {
            return;
        }
        self.in_flight.remove(&key);
        self.outbox.handle_outcome(
            w.now,
            message_id,
            device,
            AttemptOutcome::Failed("no receipt in time".into()),
        );
        self.drive(w);
    }

    /// Performs what the outbox asks for and applies what it reports, until
    /// it has nothing more, then sets its timer (the documented drive loop).
    pub(crate) fn drive(&mut self, w: &mut World) {
        loop {
            let mut batch: BTreeMap<MessageId, Vec<DeviceId>> = BTreeMap::new();
            while let Some(t) = self.outbox.poll_transmit() {
                batch.entry(t.message_id).or_default().push(t.device);
            }
            let mut progressed = !batch.is_empty();
            for (id, devices) in batch {
                self.transmit(w, id, &devices);
            }
            while let Some(event) = self.outbox.poll_event() {
                progressed = true;
                self.apply(event);
            }
            if !progressed {
                break;
            }
        }
        if let Some(at) = self.outbox.poll_timeout() {
            if self.scheduled_wake.is_none_or(|s| at < s) {
                let at = at.max(w.now);
                self.scheduled_wake = Some(at);
                let incarnation = self.incarnation;
                w.queue.push(
                    at,
                    Event::Wake {
                        node: self.idx,
                        incarnation,
                    },
                );
            }
        }
    }

    /// One attempt of message `id` to `devices`, sent as one routed copy.
    fn transmit(&mut self, w: &mut World, id: MessageId, devices: &[DeviceId]) {
        let Some(pending) = self.pending.get_mut(&id) else {
            for device in devices {
                self.outbox.handle_outcome(
                    w.now,
                    id,
                    *device,
                    AttemptOutcome::Refused("message not in store".into()),
                );
            }
            return;
        };
        for device in devices {
            if let Some(attempts) = pending.devices.get_mut(device) {
                *attempts = attempts.saturating_add(1);
            }
            let attempt = self.next_attempt;
            self.next_attempt += 1;
            self.in_flight.insert((id, *device), attempt);
            w.queue.push(
                w.now + w.config.attempt_timeout_ms,
                Event::AttemptTimeout {
                    node: self.idx,
                    incarnation: self.incarnation,
                    message_id: id,
                    device: *device,
                    attempt,
                },
            );
        }
        let first = devices
            .iter()
            .all(|d| pending.devices.get(d).is_none_or(|a| *a <= 1));
        let envelope = Arc::clone(&pending.envelope);
        let frame_len = pending.frame_len;
        let uplink = self.uplink(w);
        w.route_envelope(self.idx, uplink, &envelope, frame_len, devices, first);
    }

    /// Records an outbox event in the store, through the daemon's delivery
    /// rule: the per-device results, and the message state it decides.
    fn apply(&mut self, event: OutboxEvent) {
        let (id, device) = match &event {
            // The simulated relay never takes custody: it only forwards.
            OutboxEvent::Held { .. } => return,
            OutboxEvent::Delivered { message_id, device } => {
                self.delivered.insert((*message_id, *device));
                (*message_id, *device)
            }
            OutboxEvent::Failed {
                message_id,
                device,
                reason,
            } => {
                self.failed.push((*message_id, *device, reason.clone()));
                (*message_id, *device)
            }
        };
        self.deliveries.handle_outbox_event(event);
        while let Some(effect) = self.deliveries.poll_effect() {
            if let DeliveryEffect::State {
                id, state, error, ..
            } = effect
            {
                // The store moves a row only forward.
                let row = self
                    .states
                    .entry(id)
                    .or_insert((MessageState::Queued, None));
                if row.0.can_advance_to(state) {
                    *row = (state, error);
                }
            }
        }
        self.in_flight.remove(&(id, device));
        if let Some(pending) = self.pending.get_mut(&id) {
            pending.devices.remove(&device);
            if pending.devices.is_empty() {
                self.pending.remove(&id);
            }
        }
    }
}
