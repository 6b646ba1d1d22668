//! Sending in rooms: this device's sender key per epoch (drawn and handed
//! out on first use), room messages sealed once and queued in the outbox
//! for every member device, and typing notifications sent once.

use std::sync::Arc;

use tincan_core::room::{OpHash, RoomContent, RoomKeyGrant, SenderKey};
use tincan_core::wire::{self, Frame, MAX_TEXT_LEN};
use tincan_core::{Content, DeviceCert, DeviceId, MessageId, RoomEnvelope, RoomId};

use super::super::{Actor, MESSAGE_TTL_MS};
use crate::event::{MessageView, RoomTypingView};
use crate::keystore::OsEntropy;
use crate::node::NodeError;
use crate::store::{Direction, MessageRecord, MessageState, OutboxEntry, RoomKeyRecord};

impl Actor {
    /// This device's sender key of the room's current epoch: drawn, stored
    /// and queued to the epoch's member devices on first use.
    fn own_sender_key(&mut self, id: RoomId) -> Result<(OpHash, SenderKey), NodeError> {
        let log = self
            .rooms
            .logs
            .get(&id)
            .ok_or_else(|| NodeError::UnknownRoom(id.to_string()))?;
        let epoch = log.state().epoch;
        let me = self.identity.device_id();
        if let Some(key) = self.rooms.keys.get(&(id, epoch, me)) {
            return Ok((epoch, key.clone()));
        }
        let key = SenderKey::generate(&mut OsEntropy);
        self.store.save_room_key(&RoomKeyRecord {
            room: id,
            epoch: epoch.0,
            device: me,
            key: key.0,
        })?;
        self.rooms.keys.insert((id, epoch, me), key.clone());
        let certs = self.member_certs(id);
        tracing::info!(room = %id, epoch = ?epoch, devices = certs.len(), "new sender key");
        self.queue_control_content(
            &Content::RoomKey(RoomKeyGrant {
                room: id,
                epoch,
                key: key.clone(),
            }),
            &certs,
        )?;
        Ok((epoch, key))
    }

    /// Certificates of the current members' devices (not this one).
    fn member_certs(&self, id: RoomId) -> Vec<DeviceCert> {
        self.rooms
            .logs
            .get(&id)
            .map(|log| {
                log.state()
                    .members
                    .iter()
                    .flat_map(|u| self.user_certs(u))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Checks that we may post in the room now.
    fn check_can_post(&self, id: RoomId) -> Result<(), NodeError> {
        let me = self.identity.user_id();
        let state = self
            .rooms
            .logs
            .get(&id)
            .map(|l| l.state())
            .ok_or_else(|| NodeError::UnknownRoom(id.to_string()))?;
        if state.disabled {
            return Err(tincan_core::RoomError::Disabled.into());
        }
        if !state.members.contains(&me) {
            return Err(NodeError::NotRoomMember(state.name.clone()));
        }
        Ok(())
    }

    pub(in crate::node::actor) fn room_send(
        &mut self,
        room: &str,
        text: String,
    ) -> Result<MessageView, NodeError> {
        if text.trim().is_empty() {
            return Err(NodeError::EmptyText);
        }
        if text.len() > MAX_TEXT_LEN {
            return Err(NodeError::TooLarge {
                len: text.len(),
                max: MAX_TEXT_LEN,
            });
        }
        let id = self.resolve_room(room)?;
        self.check_can_post(id)?;
        let (epoch, key) = self.own_sender_key(id)?;
        let certs = self.member_certs(id);
        let now = self.now;
        let message_id = MessageId::random(&mut OsEntropy);
        let me = self.identity.user_id();
        let record = MessageRecord {
            id: message_id,
            direction: Direction::Out,
            peer: me,
            from_user: me,
            from_device: self.identity.device_id(),
            to_user: me,
            text: text.clone(),
            sent_at_ms: now,
            received_at_ms: None,
            state: if certs.is_empty() {
                MessageState::Sent
            } else {
                MessageState::Queued
            },
            error: None,
            room: Some(id),
            system: false,
            extras: Default::default(),
        };
        if certs.is_empty() {
            self.store.insert_message(&record)?;
            return Ok(MessageView::from(&record));
        }
        let devices: Vec<DeviceId> = certs.iter().map(DeviceCert::device_id).collect();
        let envelope = RoomEnvelope::seal(
            &self.identity.device,
            &self.identity.cert,
            id,
            epoch,
            &key,
            devices.clone(),
            message_id,
            now,
            &RoomContent::Text { text },
            &mut OsEntropy,
        )
        .map_err(|e| NodeError::Seal(e.to_string()))?;
        let frame = wire::encode(&Frame::RoomEnvelope(envelope))
            .map_err(|e| NodeError::Seal(e.to_string()))?;
        let expires = now + MESSAGE_TTL_MS;
        let entries: Vec<OutboxEntry> = devices
            .iter()
            .map(|device| OutboxEntry::fresh(message_id, *device, frame.clone(), now, expires))
            .collect();
        self.store
            .queue_outgoing_many(std::slice::from_ref(&record), &entries)?;
        self.deliveries
            .insert(message_id, Arc::new(frame), me, devices.iter().copied());
        for device in &devices {
            self.outbox.push(now, message_id, *device, expires, 0);
        }
        tracing::info!(message = %message_id, room = %id, devices = devices.len(), "queued room message");
        Ok(MessageView::from(&record))
    }

    pub(in crate::node::actor) fn room_typing(
        &mut self,
        room: &str,
    ) -> Result<RoomTypingView, NodeError> {
        let id = self.resolve_room(room)?;
        self.check_can_post(id)?;
        let visible =
            self.chat.presence.update().shown != tincan_core::presence::ShownPresence::Offline;
        let epoch = self.rooms.logs.get(&id).map(|l| l.state().epoch);
        let had_key = epoch.is_some_and(|e| {
            self.rooms
                .keys
                .contains_key(&(id, e, self.identity.device_id()))
        });
        // Without a key the members cannot open it yet: hand the key out
        // (the next notification goes through) and send nothing now.
        let (epoch, key) = self.own_sender_key(id)?;
        if !had_key || !visible || !self.rooms.typing_out.allow(self.now, &id) {
            return Ok(RoomTypingView {
                room: id.to_string(),
                sent: false,
            });
        }
        let uplink = self.uplink_conn();
        let devices: Vec<DeviceId> = self
            .member_certs(id)
            .iter()
            .map(DeviceCert::device_id)
            .filter(|d| {
                self.conns.contains_key(d)
                    || (uplink.is_some() && self.remote.get(d).is_some_and(|r| r.online))
            })
            .collect();
        if devices.is_empty() {
            return Ok(RoomTypingView {
                room: id.to_string(),
                sent: false,
            });
        }
        let envelope = RoomEnvelope::seal(
            &self.identity.device,
            &self.identity.cert,
            id,
            epoch,
            &key,
            devices.clone(),
            MessageId::random(&mut OsEntropy),
            self.now,
            &RoomContent::Typing,
            &mut OsEntropy,
        )
        .map_err(|e| NodeError::Seal(e.to_string()))?;
        let frame = Arc::new(
            wire::encode(&Frame::RoomEnvelope(envelope.clone()))
                .map_err(|e| NodeError::Seal(e.to_string()))?,
        );
        let mut routed = Vec::new();
        for device in devices {
            match self.conns.get(&device).and_then(|c| c.last()) {
                Some(conn) => {
                    tokio::spawn(crate::node::link::deliver_once(conn.clone(), frame.clone()));
                }
                None => routed.push(device),
            }
        }
        if let (false, Some(conn)) = (routed.is_empty(), uplink) {
            let route = tincan_core::route::Route {
                to: routed,
                item: tincan_core::route::Routed::Room(Box::new(envelope)),
            };
            tokio::spawn(async move {
                let _ = crate::node::link::forward(conn, route).await;
            });
        }
        Ok(RoomTypingView {
            room: id.to_string(),
            sent: true,
        })
    }
}
