//! What a room looks like to the user: its view, and the membership line
//! each op leaves in the room's history.

use tincan_core::room::{RoomAction, RoomOp};
use tincan_core::{MessageId, RoomId, RoomLog};

use super::super::Actor;
use crate::event::{RoomMemberView, RoomView};
use crate::store::{Direction, MessageRecord, MessageState};

impl Actor {
    pub(in crate::node::actor) fn room_view(&self, log: &RoomLog) -> RoomView {
        let state = log.state();
        let me = self.identity.user_id();
        RoomView {
            id: log.id().to_string(),
            name: state.name.clone(),
            topic: state.topic.clone(),
            members: state
                .members
                .iter()
                .map(|u| RoomMemberView {
                    user_id: u.to_string(),
                    name: self.user_name(u),
                    admin: state.admins.contains(u),
                })
                .collect(),
            disabled: state.disabled,
            joined: state.members.contains(&me),
            admin: state.admins.contains(&me),
        }
    }

    /// The membership line of `op` (none for ops that show nothing).
    pub(in crate::node::actor) fn room_line(
        &self,
        room: RoomId,
        op: &RoomOp,
        now: u64,
    ) -> Option<MessageRecord> {
        let author = op.author_user();
        let who = self.user_name(&author);
        let names = |users: &[tincan_core::UserId]| {
            users
                .iter()
                .map(|u| self.user_name(u))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let text = match &op.action {
            RoomAction::Create { name, .. } => {
                format!("{who} created the room \u{201c}{name}\u{201d}")
            }
            RoomAction::Add { users } => format!("{who} added {}", names(users)),
            RoomAction::Join => format!("{who} joined"),
            RoomAction::Leave => format!("{who} left"),
            RoomAction::Remove { user } => format!("{who} removed {}", self.user_name(user)),
            RoomAction::Promote { user } => {
                format!("{who} made {} an admin", self.user_name(user))
            }
            RoomAction::Demote { user } => {
                format!("{who} took admin from {}", self.user_name(user))
            }
            RoomAction::SetTopic { topic } if topic.is_empty() => {
                format!("{who} cleared the topic")
            }
            RoomAction::SetTopic { topic } => format!("{who} set the topic: {topic}"),
            RoomAction::SetName { name } => {
                format!("{who} renamed the room \u{201c}{name}\u{201d}")
            }
            RoomAction::Disable => format!("{who} disabled the room"),
            _ => return None,
        };
        let hash = op.hash();
        let mut id = [0u8; 16];
        id.copy_from_slice(&hash.0[..16]);
        let mine = author == self.identity.user_id();
        Some(MessageRecord {
            id: MessageId(id),
            direction: if mine { Direction::Out } else { Direction::In },
            peer: author,
            from_user: author,
            from_device: op.author.device_id(),
            to_user: self.identity.user_id(),
            text,
            sent_at_ms: op.at_ms,
            received_at_ms: (!mine).then_some(now),
            state: MessageState::Delivered,
            error: None,
            room: Some(room),
            system: true,
            extras: Default::default(),
        })
    }
}
