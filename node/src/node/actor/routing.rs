//! Routing: sending one copy of an envelope for all remote devices through
//! the uplink (the gateway for a member, the relay for a gateway or a
//! roaming device), and handling routed items that arrive — for this
//! device, or, as gateway, for the LAN or for the relay.
//!
//! Invariant: a hop never answers for a device it did not reach; only the
//! destination's signed receipt makes a message delivered, and only the
//! relay answers `Custody`.

use std::collections::BTreeMap;

use tincan_core::outbox::AttemptOutcome;
use tincan_core::route::fanout::NO_PATH;
use tincan_core::route::hop::{self, HopSource, HopState, Uplink};
use tincan_core::route::{Answer, DeviceAnswer, Route, Routed};
use tincan_core::site::Role;
use tincan_core::wire::{Frame, RefuseReason};
use tincan_core::{DeviceId, MessageId, Receipt};
use tokio::sync::oneshot;

use super::Actor;
use crate::node::link;

impl Actor {
    /// Where routed traffic leaves this node (core's rule): the followed
    /// gateway's LAN connection for a member (or the relay connection, if
    /// the member still has one while that LAN link is down), the relay
    /// connection otherwise.
    pub(super) fn uplink_conn(&self) -> Option<quinn::Connection> {
        match hop::uplink(self.election.role(), self.election.gateway()) {
            Uplink::Gateway(device) => self
                .conns
                .get(&device)
                .and_then(|c| c.last())
                .cloned()
                .or_else(|| self.relay.conn.clone()),
            Uplink::Relay => self.relay.conn.clone(),
            Uplink::Nowhere => None,
        }
    }

    /// Sends the outbox's transmits for devices without a LAN connection:
    /// one route (one copy) per message for all of them.
    pub(super) fn route_remote(&mut self, remote: BTreeMap<MessageId, Vec<DeviceId>>) {
        for (message_id, devices) in remote {
            let conn = self.uplink_conn();
            let item = self
                .deliveries
                .frame(&message_id)
                .and_then(|frame| link::routed_envelope(frame));
            let (Some(conn), Some(item)) = (conn, item) else {
                for device in devices {
                    self.outbox.handle_outcome(
                        self.now,
                        message_id,
                        device,
                        AttemptOutcome::Failed(NO_PATH.into()),
                    );
                }
                continue;
            };
            for device in &devices {
                if let Err(e) = self
                    .store
                    .outbox_record_attempt(&message_id, device, self.now)
                {
                    tracing::warn!(error = %e, "cannot record attempt");
                }
            }
            tracing::debug!(message = %message_id, devices = devices.len(), "routing one copy");
            let route = Route { to: devices, item };
            let uplink = self.relay.uplink.subscribe();
            tokio::spawn(link::route(conn, route, uplink, self.link_tx.clone()));
        }
    }

    /// The answers to a routed send.
    pub(super) fn on_routed(
        &mut self,
        message_id: MessageId,
        devices: Vec<DeviceId>,
        result: Result<Vec<DeviceAnswer>, String>,
    ) {
        let now = self.now;
        for device in devices {
            let answer = match &result {
                Err(e) => Answer::Failed(e.clone()),
                Ok(answers) => answers
                    .iter()
                    .find(|a| a.device == device)
                    .map(|a| a.answer.clone())
                    .unwrap_or_else(|| Answer::Failed("no answer for this device".into())),
            };
            let outcome = match answer {
                Answer::Receipt(receipt) => {
                    self.judge_answer(message_id, device, Ok(Frame::Receipt(receipt)))
                }
                Answer::Refused(reason) => self.judge_answer(
                    message_id,
                    device,
                    Ok(Frame::Refused { message_id, reason }),
                ),
                Answer::Custody => AttemptOutcome::Custody,
                Answer::Failed(reason) if reason == link::REROUTED => AttemptOutcome::Rerouted,
                Answer::Failed(reason) => AttemptOutcome::Failed(reason),
                Answer::Accepted => AttemptOutcome::Failed("unexpected answer".into()),
            };
            if outcome == AttemptOutcome::Custody {
                self.deliveries.handle_handed_over(message_id);
            }
            self.outbox.handle_outcome(now, message_id, device, outcome);
        }
    }

    /// A routed item arrived from `from`. Items for this device are taken
    /// here; as gateway, items from the relay go to the LAN and items from
    /// the LAN go to the relay. The answer goes back on `reply` once every
    /// device has one.
    pub(super) fn on_route_in(
        &mut self,
        from: DeviceId,
        route: Route,
        reply: oneshot::Sender<Frame>,
    ) {
        let source = if Some(from) == self.relay.device && self.relay.conn.is_some() {
            HopSource::Relay
        } else if self.org_peers.contains_key(&from) {
            HopSource::Member
        } else {
            HopSource::Other
        };
        let state = HopState {
            me: self.identity.device_id(),
            gateway: self.election.role() == Role::Gateway,
            relay_up: self.relay.conn.is_some(),
        };
        let lan_conn = |device: &DeviceId| self.conns.get(device).and_then(|c| c.last()).cloned();
        let plan = hop::plan_hop(route.to, source, state, |d| lan_conn(d).is_some());
        let mut answers: Vec<DeviceAnswer> = plan
            .unreachable
            .into_iter()
            .map(|device| DeviceAnswer {
                device,
                answer: Answer::Failed(hop::NOT_REACHABLE.into()),
            })
            .collect();
        let lan: Vec<(DeviceId, quinn::Connection)> = plan
            .to_lan
            .into_iter()
            .filter_map(|device| Some((device, lan_conn(&device)?)))
            .collect();
        let up = plan.to_relay;
        if plan.take {
            let answer = self.take_routed(from, &route.item);
            let device = self.identity.device_id();
            answers.push(DeviceAnswer { device, answer });
        }
        let relay = self.relay.conn.clone();
        let item = route.item;
        // What this node took is answered once it is on disk.
        let (stored_tx, stored) = oneshot::channel();
        self.answer(stored_tx, ());
        tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for (device, conn) in lan {
                let route = Route {
                    to: vec![device],
                    item: item.clone(),
                };
                tasks.spawn(link::forward(conn, route));
            }
            if let (false, Some(conn)) = (up.is_empty(), relay) {
                let route = Route { to: up, item };
                tasks.spawn(link::forward(conn, route));
            }
            while let Some(done) = tasks.join_next().await {
                if let Ok(mut forwarded) = done {
                    answers.append(&mut forwarded);
                }
            }
            if stored.await.is_ok() {
                let _ = reply.send(Frame::Answers(answers));
            }
        });
    }

    /// Takes a routed item addressed to this device.
    fn take_routed(&mut self, from: DeviceId, item: &Routed) -> Answer {
        match item {
            Routed::Envelope(envelope) => match self.on_envelope(from, (**envelope).clone()) {
                Some(Frame::Receipt(receipt)) => Answer::Receipt(receipt),
                Some(Frame::Refused { reason, .. }) => Answer::Refused(reason),
                Some(_) => Answer::Refused(RefuseReason::Other("unexpected".into())),
                None => Answer::Failed("could not store it; retry".into()),
            },
            Routed::Receipt(receipt) => self.on_late_receipt(receipt),
            Routed::Room(envelope) => match self.on_room_envelope(from, (**envelope).clone()) {
                Some(Frame::Receipt(receipt)) => Answer::Receipt(receipt),
                Some(Frame::Refused { reason, .. }) => Answer::Refused(reason),
                Some(_) => Answer::Refused(RefuseReason::Other("unexpected".into())),
                None => Answer::Failed("could not take it yet; retry".into()),
            },
        }
    }

    /// A receipt the relay forwards after delivering our message from its
    /// mailbox.
    fn on_late_receipt(&mut self, receipt: &Receipt) -> Answer {
        if receipt.sender_device != self.identity.device_id() {
            return Answer::Refused(RefuseReason::NotForThisDevice);
        }
        let device = receipt.recipient_device;
        let Some(cert) = self.certs.get(&device) else {
            return Answer::Failed("receipt from a device not known yet".into());
        };
        if receipt.verify(cert).is_err() {
            tracing::warn!(%device, "invalid late receipt ignored");
            return Answer::Refused(RefuseReason::BadSignature);
        }
        tracing::debug!(message = %receipt.message_id, %device, "late receipt");
        self.outbox.handle_outcome(
            self.now,
            receipt.message_id,
            device,
            AttemptOutcome::Delivered,
        );
        Answer::Accepted
    }
}
