//! Joining rooms: rejoining a room this user left (a self-signed `Join`
//! op), and join links. A link carries the room id, the admin's user id
//! and a secret derived from the admin's device key (a deterministic
//! signature, so nothing is stored); the joiner's node sends it sealed to
//! the admin's devices, and the admin's node adds whoever brings it while
//! that admin still may (`inbound.rs`).

use tincan_core::room::RoomAction;
use tincan_core::{Content, RoomId, UserId};

use super::super::Actor;
use crate::event::{RoomJoinView, RoomLinkView};
use crate::node::NodeError;

/// Prefix of a join link.
const LINK_PREFIX: &str = "tincan-room:";
/// Context of the signature a join link's secret comes from.
const LINK_CONTEXT: &[u8] = b"tincan room join link v1\0";

impl Actor {
    pub(in crate::node::actor) fn room_join(
        &mut self,
        text: &str,
    ) -> Result<RoomJoinView, NodeError> {
        if let Some(link) = text.trim().strip_prefix(LINK_PREFIX) {
            return self.join_by_link(link);
        }
        let id = self.resolve_room(text)?;
        self.author_op(id, RoomAction::Join)?;
        Ok(RoomJoinView {
            room: id.to_string(),
            joined: true,
            requested: false,
        })
    }

    /// `ROOM:ADMIN_USER:SECRET` → a join request to the admin's devices.
    fn join_by_link(&mut self, link: &str) -> Result<RoomJoinView, NodeError> {
        let bad = || NodeError::BadLink(format!("{LINK_PREFIX}{link}"));
        let mut parts = link.split(':');
        let (Some(room), Some(admin), Some(secret), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let room: RoomId = room.parse().map_err(|_| bad())?;
        let admin: UserId = admin.parse().map_err(|_| bad())?;
        let secret: [u8; 16] = data_encoding::HEXLOWER_PERMISSIVE
            .decode(secret.as_bytes())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        if let Some(log) = self.rooms.logs.get(&room) {
            if log.state().members.contains(&self.identity.user_id()) {
                return Ok(RoomJoinView {
                    room: room.to_string(),
                    joined: true,
                    requested: false,
                });
            }
        }
        let certs = self.user_certs(&admin);
        if certs.is_empty() {
            return Err(NodeError::NoDevices(self.book.display_name(&admin)));
        }
        self.queue_control_content(&Content::RoomJoinRequest { room, secret }, &certs)?;
        tracing::info!(%room, %admin, "room join requested");
        Ok(RoomJoinView {
            room: room.to_string(),
            joined: false,
            requested: true,
        })
    }

    /// This device's join-link secret for a room.
    pub(super) fn link_secret(&self, room: &RoomId) -> [u8; 16] {
        let signature = self
            .identity
            .device
            .sign(&[LINK_CONTEXT, &room.0[..]].concat());
        let mut secret = [0u8; 16];
        secret.copy_from_slice(&signature.0[..16]);
        secret
    }

    pub(in crate::node::actor) fn room_link(
        &mut self,
        room: &str,
    ) -> Result<RoomLinkView, NodeError> {
        let id = self.resolve_room(room)?;
        let me = self.identity.user_id();
        let state = self.rooms.logs.get(&id).map(|l| l.state().clone());
        let Some(state) = state else {
            return Err(NodeError::UnknownRoom(room.into()));
        };
        if state.disabled {
            return Err(tincan_core::RoomError::Disabled.into());
        }
        if !state.admins.contains(&me) {
            return Err(NodeError::NotRoomAdmin(state.name.clone()));
        }
        let secret = data_encoding::HEXLOWER.encode(&self.link_secret(&id));
        Ok(RoomLinkView {
            room: id.to_string(),
            link: format!("{LINK_PREFIX}{id}:{me}:{secret}"),
        })
    }
}
