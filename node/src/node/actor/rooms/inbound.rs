//! Incoming room content: membership ops and sender keys (inside pairwise
//! envelopes), join requests, and room envelopes (sealed with a sender
//! key). Everything is checked after the signature: the op's author had
//! the right, the key's owner and this user were members of its epoch,
//! the message's sender is a member of its epoch and still is (for room
//! envelopes that is core's rule, [`tincan_core::inbound::room`]). Dedupe
//! of room messages is on (sender device, message id), after those checks.

use tincan_core::inbound::room::{
    admit_key, admit_room, ops_batch_fits, room_delivered_receipt, take_ops, take_whole_log,
    KeyAdmission, Missing, OpsVerdict, RoomAdmission, RoomKnowledge,
};
use tincan_core::post::mentions_name;
use tincan_core::room::{OpHash, RoomAction, RoomContent, RoomKeyGrant, RoomOp, SenderKey};
use tincan_core::wire::{Frame, RefuseReason};
use tincan_core::{DeviceCert, DeviceId, Opened, RoomEnvelope, RoomId, RoomLog};

use super::super::inbound::Rejection;
use super::super::Actor;
use crate::event::{MessageView, NodeEvent};
use crate::node::NodeError;
use crate::store::{Direction, MessageRecord, MessageState, RoomKeyRecord};

/// A typing notification older than this (sender's clock) is dropped.
const TYPING_STALE_MS: u64 = 30_000;

fn refuse(e: impl std::fmt::Display) -> Rejection {
    Rejection::Refuse(RefuseReason::Other(format!("room: {e}")))
}

fn rejection(e: NodeError) -> Rejection {
    match e {
        NodeError::Store(_) => Rejection::Retry,
        other => refuse(other),
    }
}

impl Actor {
    /// New ops of a room, or a whole log (we were added).
    pub(in crate::node::actor) fn on_room_ops(
        &mut self,
        opened: &Opened,
        room: RoomId,
        ops: Vec<RoomOp>,
        log_len: u32,
    ) -> Result<(), Rejection> {
        if !ops_batch_fits(&ops, log_len) {
            return Err(Rejection::Refuse(RefuseReason::TooLarge));
        }
        let me = self.identity.user_id();
        let Some(log) = self.rooms.logs.get_mut(&room) else {
            // The whole log, maybe in parts: gather them. Without all of it
            // (or for new ops that overtook it) the sender retries.
            if log_len == 0 {
                return Err(Rejection::Retry);
            }
            // Checked (signature, room, size) and bounded per sender and
            // in total before anything is held.
            let sender = opened.sender.user_id();
            let member = self.is_org_member(&sender);
            let whole =
                self.rooms
                    .incoming
                    .add(room, opened.sender.device_id(), member, ops, log_len);
            let ops = match whole {
                Ok(Some(ops)) => ops,
                Ok(None) => {
                    let held = self.rooms.incoming.total_bytes();
                    tracing::debug!(%room, from = %sender, held, "room log part held");
                    return Err(Rejection::Retry);
                }
                Err(e) => {
                    tracing::warn!(%room, from = %sender, error = %e, "room log part refused");
                    return Err(refuse(e));
                }
            };
            let (log, errors) = match take_whole_log(room, ops, &me) {
                Ok(taken) => taken,
                Err(e) => {
                    tracing::warn!(%room, from = %sender, error = %e, "refused the log of a room");
                    return Err(refuse(e));
                }
            };
            if !errors.is_empty() {
                tracing::warn!(%room, refused = errors.len(), first = %errors[0], "room ops refused");
            }
            tracing::info!(%room, from = %opened.sender.user_id(), "added to a room");
            let order = log.order().to_vec();
            self.rooms.created_at.insert(room, self.now);
            self.rooms.logs.insert(room, log);
            return self.persist_room(room, &order).map_err(rejection);
        };
        let taken = take_ops(log, ops, &me);
        if !taken.new.is_empty() {
            let admin = log.state().admins.contains(&me);
            let joiners: Vec<_> = taken
                .new
                .iter()
                .filter(|h| !log.is_skipped(h))
                .filter_map(|h| log.op(h))
                .filter(|op| matches!(op.action, RoomAction::Join) && op.author_user() != me)
                .map(RoomOp::author_user)
                .collect();
            let full = log.ops_in_order();
            self.persist_room(room, &taken.new).map_err(rejection)?;
            // Someone rejoined: they missed what happened while they were away.
            if admin {
                for user in joiners {
                    let certs = self.user_certs(&user);
                    let log_len = u32::try_from(full.len()).unwrap_or(u32::MAX);
                    self.send_ops(room, &full, &certs, log_len)
                        .map_err(rejection)?;
                }
            }
            // Users added by someone who had not seen every change yet get
            // those changes from each member that has them.
            for (users, missed) in &taken.catch_up {
                let certs: Vec<DeviceCert> =
                    users.iter().flat_map(|u| self.user_certs(u)).collect();
                tracing::info!(%room, users = users.len(), ops = missed.len(), "handing newcomers the changes their adder had not seen");
                self.send_ops(room, missed, &certs, 0).map_err(rejection)?;
            }
        }
        match taken.verdict() {
            OpsVerdict::Taken => Ok(()),
            // What is new stays stored; the held op is not acknowledged.
            OpsVerdict::Retry => Err(Rejection::Unanswered),
            OpsVerdict::Refused(e) => {
                tracing::warn!(%room, from = %opened.sender.user_id(), error = %e, "room op refused");
                Err(refuse(e))
            }
        }
    }

    /// A member device's sender key of one epoch.
    pub(in crate::node::actor) fn on_room_key(
        &mut self,
        opened: &Opened,
        grant: RoomKeyGrant,
    ) -> Result<(), Rejection> {
        let (device, user) = (opened.sender.device_id(), opened.sender.user_id());
        let me = self.identity.user_id();
        match admit_key(&grant, &user, &me, self.rooms.logs.get(&grant.room)) {
            KeyAdmission::Take => {}
            KeyAdmission::NotYet(missing) => {
                if missing == Missing::Log {
                    // The key overtook the log: this user is being added.
                    self.note_announced(grant.room, device);
                }
                return Err(Rejection::Retry);
            }
            KeyAdmission::Refused(e) => return Err(refuse(e)),
        }
        let slot = (grant.room, grant.epoch, device);
        if self.rooms.keys.contains_key(&slot) {
            return Ok(());
        }
        self.store
            .save_room_key(&RoomKeyRecord {
                room: grant.room,
                epoch: grant.epoch.0,
                device,
                key: grant.key.0,
            })
            .map_err(|_| Rejection::Retry)?;
        self.rooms.keys.insert(slot, grant.key);
        Ok(())
    }

    /// Someone presents the secret of our join link.
    pub(in crate::node::actor) fn on_room_join_request(
        &mut self,
        opened: &Opened,
        room: RoomId,
        secret: [u8; 16],
    ) -> Result<(), Rejection> {
        let user = opened.sender.user_id();
        let Some(log) = self.rooms.logs.get(&room) else {
            return Err(refuse("unknown room"));
        };
        if secret != self.link_secret(&room) {
            tracing::warn!(%room, %user, "join request with a wrong link secret");
            return Err(refuse("the join link is not valid"));
        }
        if log.state().members.contains(&user) {
            return Ok(());
        }
        tracing::info!(%room, %user, "adding a user who brought a join link");
        self.author_op(room, RoomAction::Add { users: vec![user] })
            .map_err(rejection)
    }

    /// A room message delivered to this device (directly or routed).
    pub(in crate::node::actor) fn on_room_envelope(
        &mut self,
        from: DeviceId,
        envelope: RoomEnvelope,
    ) -> Option<Frame> {
        let message_id = envelope.id;
        let content = match admit_room(&envelope, self.identity.device_id(), &*self, &self.rooms) {
            RoomAdmission::Admitted(content) => content,
            RoomAdmission::NotYet(missing) => {
                tracing::debug!(%from, message = %message_id, room = %envelope.room, ?missing, "room message waits; the sender retries");
                return None;
            }
            RoomAdmission::Refused(refusal) => {
                tracing::warn!(%from, message = %message_id, room = %envelope.room, error = %refusal, "room message refused");
                let reason = refusal.reason();
                return Some(Frame::Refused { message_id, reason });
            }
        };
        let (device, user) = (envelope.sender.device_id(), envelope.sender.user_id());
        let now = self.now;
        match content {
            RoomContent::Text { text } => {
                // In a room, `@Name` of this user is a mention: it notifies
                // even where the room is muted.
                let me = self.identity.user_id();
                let mentioned = mentions_name(&text, &self.identity.name);
                let record = MessageRecord {
                    id: message_id,
                    direction: Direction::In,
                    peer: user,
                    from_user: user,
                    from_device: device,
                    to_user: self.identity.user_id(),
                    text,
                    sent_at_ms: envelope.created_at_ms,
                    received_at_ms: Some(now),
                    state: MessageState::Delivered,
                    error: None,
                    room: Some(envelope.room),
                    system: false,
                    extras: crate::store::MessageExtras {
                        mentions: if mentioned { vec![me] } else { Vec::new() },
                        ..Default::default()
                    },
                };
                match self.store.insert_message(&record) {
                    Ok(true) => {
                        tracing::info!(message = %message_id, room = %envelope.room, "room message received");
                        let from_name = self.user_name(&user);
                        self.emit(NodeEvent::MessageReceived {
                            message: MessageView::from(&record),
                            from_name: from_name.clone(),
                        });
                        self.notify(&record, from_name);
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "cannot store a room message; not acknowledged");
                        return None;
                    }
                }
            }
            RoomContent::Typing => {
                if now.saturating_sub(envelope.created_at_ms) <= TYPING_STALE_MS
                    && self.rooms.typing_in.allow(now, &device)
                {
                    self.emit(NodeEvent::RoomTyping {
                        room: envelope.room.to_string(),
                        from: user.to_string(),
                        from_name: self.user_name(&user),
                        device_id: device.to_string(),
                    });
                }
            }
            #[allow(unreachable_patterns)]
            _ => {
                let reason = RefuseReason::Other("unsupported room content".into());
                return Some(Frame::Refused { message_id, reason });
            }
        }
        let receipt = room_delivered_receipt(&self.identity.device, &envelope, now);
        Some(Frame::Receipt(receipt))
    }
}

/// What this node knows of its rooms, for core's room admission.
impl RoomKnowledge for super::RoomsState {
    fn log(&self, room: &RoomId) -> Option<&RoomLog> {
        self.logs.get(room)
    }

    fn sender_key(&self, room: &RoomId, epoch: &OpHash, device: &DeviceId) -> Option<&SenderKey> {
        self.keys.get(&(*room, *epoch, *device))
    }

    fn announced(&self, room: &RoomId, device: &DeviceId) -> bool {
        self.announced.contains(&(*room, *device))
    }
}
