//! Control requests of rooms (`room_*`). Each is one [`NodeHandle`] call.

use super::protocol::{Reply, Request};
use crate::node::NodeHandle;
use crate::store::HistoryQuery;

/// Answers one of the `room_*` requests.
pub(super) async fn handle(node: &NodeHandle, request: Request) -> Reply {
    match request {
        Request::RoomCreate { name, with } => {
            Reply::from_result(node.room_create(&name, &with).await)
        }
        Request::RoomInvite { room, users } => {
            Reply::from_result(node.room_invite(&room, &users).await)
        }
        Request::RoomJoin { room } => Reply::from_result(node.room_join(&room).await),
        Request::RoomLink { room } => Reply::from_result(node.room_link(&room).await),
        Request::RoomLeave { room } => Reply::from_result(node.room_leave(&room).await),
        Request::RoomList => Reply::from_result(node.room_list().await),
        Request::RoomSend { room, text } => Reply::from_result(node.room_send(&room, &text).await),
        Request::RoomHistory {
            room,
            limit,
            before,
            since,
        } => {
            let query = HistoryQuery {
                limit,
                before_ms: before,
                since_ms: since,
            };
            Reply::from_result(node.room_history(&room, query).await)
        }
        Request::RoomTopic { room, topic } => {
            Reply::from_result(node.room_topic(&room, &topic).await)
        }
        Request::RoomRename { room, name } => {
            Reply::from_result(node.room_rename(&room, &name).await)
        }
        Request::RoomAdmin { room, user } => {
            Reply::from_result(node.room_admin(&room, &user).await)
        }
        Request::RoomRemove { room, user } => {
            Reply::from_result(node.room_remove(&room, &user).await)
        }
        Request::RoomDisable { room } => Reply::from_result(node.room_disable(&room).await),
        Request::RoomTyping { room } => Reply::from_result(node.room_typing(&room).await),
        other => Reply::err(format!("unsupported request {other:?}")),
    }
}
