//! Outgoing traffic: sealing content into envelopes, queueing it durably
//! in the outbox (or sending it once, for ephemeral state), and applying
//! the outbox's transmits and events.

use std::sync::Arc;

use tincan_core::delivery::{judge_answer, DeliveryEffect, INVALID_RECEIPT};
use tincan_core::outbox::{AttemptOutcome, OutboxEvent};
use tincan_core::route::fanout::{FanOut, Paths, NO_CONNECTION};
use tincan_core::wire::{self, Frame};
use tincan_core::{Content, DeviceCert, DeviceId, Envelope, MessageId, UserId};

use super::{Actor, MESSAGE_TTL_MS};
use crate::event::{MessageView, NodeEvent};
use crate::keystore::OsEntropy;
use crate::node::link;
use crate::node::NodeError;
use crate::store::{MessageRecord, MessageState, OutboxEntry};

impl Actor {
    pub(super) fn send_text(&mut self, peer: &str, text: String) -> Result<MessageView, NodeError> {
        // `bob,carol,dave`: one envelope sealed to every device of all of
        // them, so it crosses each WAN link once.
        let users = self.resolve_users(peer)?;
        self.send_post(&users, &text, None, false)
    }

    pub(super) fn emit_state(
        &self,
        id: MessageId,
        to: UserId,
        state: MessageState,
        error: Option<String>,
    ) {
        self.emit(NodeEvent::MessageState {
            id: id.to_string(),
            to: to.to_string(),
            state,
            error,
        });
    }

    /// Moves message `id` (to user `to`) forward to `state` in the store
    /// and tells watchers when it moved.
    fn write_state(
        &mut self,
        id: MessageId,
        to: UserId,
        state: MessageState,
        error: Option<String>,
    ) {
        match self
            .store
            .set_message_state(&id, &self.identity.device_id(), state, error.as_deref())
        {
            Ok(Some(now)) if now == state => self.emit_state(id, to, state, error),
            Ok(_) => {}
            Err(e) => tracing::error!(message = %id, error = %e, "cannot store message state"),
        }
    }

    /// Starts every transmit the outbox asks for (core's fan-out rule says
    /// which go over a LAN link and which as one routed copy) and applies
    /// its events.
    pub(super) fn drive_outbox(&mut self) {
        let transmits = std::iter::from_fn(|| self.outbox.poll_transmit()).collect::<Vec<_>>();
        let plan = FanOut::plan(transmits, &*self);
        for t in plan.lan {
            let conn = self.conns.get(&t.device).and_then(|c| c.last()).cloned();
            match (conn, self.deliveries.frame(&t.message_id)) {
                (Some(conn), Some(frame)) => {
                    if let Err(e) =
                        self.store
                            .outbox_record_attempt(&t.message_id, &t.device, self.now)
                    {
                        tracing::warn!(error = %e, "cannot record attempt");
                    }
                    let judge = link::AnswerJudge {
                        me: self.identity.device_id(),
                        recipient: self.certs.get(&t.device).cloned(),
                    };
                    tokio::spawn(link::deliver(
                        conn,
                        frame.clone(),
                        t.message_id,
                        t.device,
                        judge,
                        self.link_tx.clone(),
                    ));
                }
                _ => self.outbox.handle_outcome(
                    self.now,
                    t.message_id,
                    t.device,
                    AttemptOutcome::Failed(NO_CONNECTION.into()),
                ),
            }
        }
        for (t, reason) in plan.unreachable {
            if reason == NO_CONNECTION {
                self.link_on_demand(t.device);
            }
            self.outbox.handle_outcome(
                self.now,
                t.message_id,
                t.device,
                AttemptOutcome::Failed(reason.into()),
            );
        }
        self.route_remote(plan.routed);
        while let Some(event) = self.outbox.poll_event() {
            match &event {
                OutboxEvent::Delivered { message_id, device } => {
                    tracing::info!(message = %message_id, %device, "delivered")
                }
                OutboxEvent::Failed {
                    message_id,
                    device,
                    reason,
                } => tracing::warn!(message = %message_id, %device, %reason, "delivery failed"),
                OutboxEvent::Held { .. } => {}
            }
            self.deliveries.handle_outbox_event(event);
        }
        self.apply_delivery_effects();
    }

    /// Writes what the deliveries decided, in their order (a state before
    /// the outbox row it settles), and tells watchers.
    fn apply_delivery_effects(&mut self) {
        while let Some(effect) = self.deliveries.poll_effect() {
            match effect {
                DeliveryEffect::State {
                    id,
                    to,
                    state,
                    error,
                } => self.write_state(id, to, state, error),
                DeliveryEffect::Held { id, device } => {
                    tracing::info!(message = %id, %device, "relay holds it for the offline device");
                    if let Err(e) = self.store.outbox_mark_held(&id, &device) {
                        tracing::error!(error = %e, "cannot mark outbox entry held");
                    }
                }
                DeliveryEffect::Settled { id, device } => {
                    if let Err(e) = self.store.outbox_remove(&id, &device) {
                        tracing::error!(error = %e, "cannot remove outbox entry");
                    }
                }
            }
        }
    }

    /// What an answer from `device` about `message_id` proves (core's rule,
    /// with the certificate this node holds for the device).
    pub(super) fn judge_answer(
        &self,
        message_id: MessageId,
        device: DeviceId,
        answer: Result<Frame, String>,
    ) -> AttemptOutcome {
        let cert = self.certs.get(&device);
        let outcome = judge_answer(&self.identity.device_id(), &message_id, cert, answer);
        warn_invalid_receipt(message_id, device, &outcome);
        outcome
    }

    /// Seals `content` for `certs` (devices of user `to`) and queues it in
    /// the durable outbox, together with its history `records` (one per
    /// conversation; none for control content), in one transaction: from
    /// here on a kill loses nothing.
    pub(super) fn queue_envelope(
        &mut self,
        id: MessageId,
        now: u64,
        content: &Content,
        to: UserId,
        certs: &[DeviceCert],
        records: &[MessageRecord],
    ) -> Result<(), NodeError> {
        let frame = self.seal_frame(id, now, content, certs)?;
        let expires = now + MESSAGE_TTL_MS;
        let entries: Vec<OutboxEntry> = certs
            .iter()
            .map(|c| OutboxEntry::fresh(id, c.device_id(), frame.clone(), now, expires))
            .collect();
        if records.is_empty() {
            self.store.queue_control(&entries)?;
        } else {
            self.store.queue_outgoing_many(records, &entries)?;
        }
        self.deliveries.insert(
            id,
            Arc::new(frame),
            to,
            certs.iter().map(DeviceCert::device_id),
        );
        for cert in certs {
            self.outbox.push(now, id, cert.device_id(), expires, 0);
            self.link_on_demand(cert.device_id());
        }
        Ok(())
    }

    /// Seals `content` and sends it now to those of `certs` that are
    /// reachable, once, without the outbox: for state that is only worth
    /// its latest value or not at all (typing, presence). LAN peers get it
    /// directly; devices of other sites that the directory shows online
    /// get one routed copy through the uplink (never to offline ones, so
    /// the relay does not hold it). Nothing is stored. Returns how many
    /// devices it went to.
    pub(super) fn send_ephemeral(&mut self, content: &Content, certs: &[DeviceCert]) -> usize {
        let uplink = self.uplink_conn();
        let reachable: Vec<DeviceCert> = certs
            .iter()
            .filter(|c| self.reachable(&c.device_id()))
            .cloned()
            .collect();
        let now = self.now;
        for chunk in reachable.chunks(tincan_core::envelope::MAX_RECIPIENTS) {
            let id = MessageId::random(&mut OsEntropy);
            let frame = match self.seal_frame(id, now, content, chunk) {
                Ok(frame) => Arc::new(frame),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot seal ephemeral content");
                    return 0;
                }
            };
            let transmits = chunk.iter().map(|c| tincan_core::outbox::Transmit {
                message_id: id,
                device: c.device_id(),
            });
            // Only reachable devices are here: those not on the LAN are
            // online elsewhere.
            let plan = FanOut::plan(transmits, &*self);
            for t in plan.lan {
                if let Some(conn) = self.conns.get(&t.device).and_then(|c| c.last()) {
                    tokio::spawn(link::deliver_once(conn.clone(), frame.clone()));
                }
            }
            let routed = plan.routed.into_values().next().unwrap_or_default();
            if let (false, Some(conn), Some(item)) = (
                routed.is_empty(),
                uplink.clone(),
                link::routed_envelope(&frame),
            ) {
                let route = tincan_core::route::Route { to: routed, item };
                tokio::spawn(async move {
                    let _ = link::forward(conn, route).await;
                });
            }
        }
        reachable.len()
    }

    pub(super) fn seal_frame(
        &self,
        id: MessageId,
        now: u64,
        content: &Content,
        certs: &[DeviceCert],
    ) -> Result<Vec<u8>, NodeError> {
        let envelope = Envelope::seal(
            &self.identity.device,
            &self.identity.cert,
            certs,
            id,
            now,
            content,
            &mut OsEntropy,
        )
        .map_err(|e| NodeError::Seal(e.to_string()))?;
        wire::encode(&Frame::Envelope(envelope)).map_err(|e| NodeError::Seal(e.to_string()))
    }
}

/// The paths this node has now, for core's fan-out rule: a LAN link is
/// the device's newest connection; a device elsewhere is one the relay's
/// directory lists; the uplink is the gateway's or the relay's connection.
impl Paths for Actor {
    fn on_lan(&self, device: &DeviceId) -> bool {
        self.conns.get(device).is_some_and(|c| !c.is_empty())
    }

    fn elsewhere(&self, device: &DeviceId) -> bool {
        self.remote.contains_key(device)
    }

    fn uplink_up(&self) -> bool {
        self.uplink_conn().is_some()
    }
}

/// Logs an answer whose receipt did not prove delivery (it is ignored: the
/// outbox retries).
pub(super) fn warn_invalid_receipt(
    message_id: MessageId,
    device: DeviceId,
    outcome: &AttemptOutcome,
) {
    if matches!(outcome, AttemptOutcome::Failed(reason) if reason == INVALID_RECEIPT) {
        tracing::warn!(%device, message = %message_id, "invalid receipt ignored");
    }
}
