//! A simulated device's sending side, driven as the daemon's
//! `actor/outgoing.rs` and `routing.rs` drive it: the outbox's transmits
//! go where core's fan-out rule ([`FanOut`]) says (a LAN link, one routed
//! copy per message through the uplink, or an immediate failure when
//! there is no path), and every answer is judged by core's rules: a
//! recipient's receipt or refusal, and the relay's `Custody` (the entry is
//! then held: no more retries until the receipt comes back from the
//! relay's mailbox).

use std::sync::Arc;

use tincan_core::delivery::{judge_answer, DeliveryEffect};
use tincan_core::outbox::{AttemptOutcome, OutboxEvent, Transmit};
use tincan_core::route::custody::MailKey;
use tincan_core::route::fanout::{FanOut, Paths};
use tincan_core::route::{Answer, Routed};
use tincan_core::wire::{Frame, RefuseReason};
use tincan_core::{DeviceId, MessageId};

use super::super::queue::{Event, Reply};
use super::super::world::World;
use super::super::SiteIdx;
use super::{SimNode, Uplink};

/// What a simulated node knows about its paths, for core's fan-out rule:
/// a LAN link to every running device of its site, the simulated
/// directory for devices elsewhere, and its uplink.
struct SimPaths<'a> {
    w: &'a World,
    here: SiteIdx,
    uplink: Uplink,
}

impl Paths for SimPaths<'_> {
    fn on_lan(&self, device: &DeviceId) -> bool {
        self.w
            .node_of(device)
            .is_some_and(|n| self.w.net.location[n.0] == self.here && self.w.net.up[n.0])
    }

    fn elsewhere(&self, device: &DeviceId) -> bool {
        self.w.node_of(device).is_some()
    }

    fn uplink_up(&self) -> bool {
        self.uplink != Uplink::None
    }
}

impl SimNode {
    /// An answer to a message of this node arrived: a recipient's receipt
    /// or refusal, or the relay's answers for devices it took custody of.
    /// A receipt the relay `held` for this node is answered back to it.
    pub(crate) fn on_reply(&mut self, w: &mut World, reply: Reply, held: bool) {
        if let Frame::Answers(answers) = *reply.frame {
            for a in answers {
                self.on_answer_of(w, reply.message_id, a.device, a.answer);
            }
            self.drive(w);
            return;
        }
        let key = (reply.message_id, reply.from_device);
        if held {
            self.answer_held_receipt(w, &reply);
        }
        let answer = match *reply.frame {
            Frame::Receipt(receipt) => Answer::Receipt(receipt),
            Frame::Refused { reason, .. } => Answer::Refused(reason),
            _ => Answer::Failed("unexpected answer".into()),
        };
        self.on_answer_of(w, key.0, key.1, answer);
        self.drive(w);
    }

    /// Tells the relay a receipt it held for this node was taken (the
    /// daemon's `on_late_receipt` answers `Accepted`), so it deletes it.
    fn answer_held_receipt(&mut self, w: &mut World, reply: &Reply) {
        let Frame::Receipt(receipt) = &*reply.frame else {
            return;
        };
        let answer = if receipt.sender_device != self.device_id() {
            Answer::Refused(RefuseReason::NotForThisDevice)
        } else {
            Answer::Accepted
        };
        let key = MailKey::new(&Routed::Receipt(receipt.clone()), self.device_id());
        let uplink = self.uplink(w);
        w.answer_relay(self.idx, uplink, key, answer);
    }

    /// What `answer` about `message_id` for `device` proves, by the
    /// daemon's rule (`routing.rs` `on_routed`), told to the outbox.
    fn on_answer_of(
        &mut self,
        w: &mut World,
        message_id: MessageId,
        device: DeviceId,
        answer: Answer,
    ) {
        if !self
            .pending
            .get(&message_id)
            .is_some_and(|p| p.devices.contains_key(&device))
        {
            // A late answer for something already settled.
            return;
        }
        let me = self.device_id();
        let cert = w.node_of(&device).and_then(|n| w.dir.certs.get(n.0));
        let outcome = match answer {
            Answer::Receipt(receipt) => {
                judge_answer(&me, &message_id, cert, Ok(Frame::Receipt(receipt)))
            }
            Answer::Refused(reason) => judge_answer(
                &me,
                &message_id,
                cert,
                Ok(Frame::Refused { message_id, reason }),
            ),
            Answer::Custody => AttemptOutcome::Custody,
            Answer::Failed(reason) => AttemptOutcome::Failed(reason),
            Answer::Accepted => AttemptOutcome::Failed("unexpected answer".into()),
        };
        if let AttemptOutcome::Failed(reason) = &outcome {
            // Proves nothing; the outbox retries, as the daemon's does.
            tracing::debug!(node = self.idx.0, %reason, "answer not taken");
            self.rejected += 1;
        }
        if outcome == AttemptOutcome::Custody {
            self.deliveries.handle_handed_over(message_id);
        }
        self.in_flight.remove(&(message_id, device));
        self.outbox
            .handle_outcome(w.now, message_id, device, outcome);
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
            let transmits: Vec<Transmit> =
                std::iter::from_fn(|| self.outbox.poll_transmit()).collect();
            let mut progressed = !transmits.is_empty();
            if progressed {
                self.transmit(w, transmits);
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

    /// One round of transmits, where core's fan-out rule sends them.
    fn transmit(&mut self, w: &mut World, transmits: Vec<Transmit>) {
        let uplink = self.uplink(w);
        let paths = SimPaths {
            w,
            here: w.net.location[self.idx.0],
            uplink,
        };
        let plan = FanOut::plan(transmits, &paths);
        for t in plan.lan {
            if let Some((envelope, frame_len, first)) = self.attempt(w, t.message_id, &[t.device]) {
                w.send_lan(self.idx, &envelope, frame_len, t.device, first);
            }
        }
        for (id, devices) in plan.routed {
            if let Some((envelope, frame_len, first)) = self.attempt(w, id, &devices) {
                w.send_routed(self.idx, uplink, &envelope, frame_len, devices, first);
            }
        }
        if !plan.unreachable.is_empty() {
            w.net.stats.no_gateway += 1;
        }
        for (t, reason) in plan.unreachable {
            let outcome = AttemptOutcome::Failed(reason.into());
            self.outbox
                .handle_outcome(w.now, t.message_id, t.device, outcome);
        }
    }

    /// Records an attempt of message `id` to `devices` (the store's attempt
    /// count, a timer for its receipt); the envelope to send, its frame
    /// length and whether it is every device's first attempt.
    fn attempt(
        &mut self,
        w: &mut World,
        id: MessageId,
        devices: &[DeviceId],
    ) -> Option<(Arc<tincan_core::Envelope>, usize, bool)> {
        let Some(pending) = self.pending.get_mut(&id) else {
            for device in devices {
                let outcome = AttemptOutcome::Refused("message not in store".into());
                self.outbox.handle_outcome(w.now, id, *device, outcome);
            }
            return None;
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
        Some((Arc::clone(&pending.envelope), pending.frame_len, first))
    }

    /// Records an outbox event in the store, through the daemon's delivery
    /// rule: the per-device results, the message state it decides, and
    /// which entries the relay holds (so a restart does not resend them).
    fn apply(&mut self, event: OutboxEvent) {
        let settled = match &event {
            OutboxEvent::Held { .. } => None,
            OutboxEvent::Delivered { message_id, device } => {
                self.delivered.insert((*message_id, *device));
                Some((*message_id, *device))
            }
            OutboxEvent::Failed {
                message_id,
                device,
                reason,
            } => {
                self.failed.push((*message_id, *device, reason.clone()));
                Some((*message_id, *device))
            }
        };
        self.deliveries.handle_outbox_event(event);
        while let Some(effect) = self.deliveries.poll_effect() {
            match effect {
                DeliveryEffect::State {
                    id, state, error, ..
                } => {
                    // The store moves a row only forward.
                    let row = self
                        .states
                        .entry(id)
                        .or_insert((tincan_core::delivery::MessageState::Queued, None));
                    if row.0.can_advance_to(state) {
                        *row = (state, error);
                    }
                }
                DeliveryEffect::Held { id, device } => {
                    self.held.insert((id, device));
                }
                DeliveryEffect::Settled { .. } => {}
            }
        }
        let Some((id, device)) = settled else {
            return;
        };
        self.in_flight.remove(&(id, device));
        self.held.remove(&(id, device));
        if let Some(pending) = self.pending.get_mut(&id) {
            pending.devices.remove(&device);
            if pending.devices.is_empty() {
                self.pending.remove(&id);
            }
        }
    }
}
