//! The actor's side of the node's command language: every
//! [`Request`] is dispatched here, in one match, to the actor method that
//! does it; this is the one place an operation meets the actor. Requests
//! that need more than one turn (`send` with `wait`) or none (`whoami`)
//! are finished by the handle (`node/handle.rs`); this answers the turn.

use std::path::PathBuf;

use tincan_core::contact::ContactAction;
use tincan_core::post::Change;
use tincan_core::PresenceState;

use super::rooms::RoomChange;
use super::Actor;
use crate::node::{NodeError, Responder};
use crate::request::{Reloaded, Request, Response};
use crate::store::HistoryQuery;

impl Actor {
    /// Answers one request on `reply` (a `file_send` later, once its files
    /// are hashed off the actor). One flat match, so that adding a
    /// [`Request`] variant fails to compile until it is dispatched here.
    pub(super) fn on_request(&mut self, request: Request, reply: Responder) {
        if counts_as_activity(&request) {
            self.note_activity();
        }
        let answer = match request {
            Request::Whoami => Ok(self.whoami().into()),
            Request::Status => Ok(self.status_view().into()),
            Request::Peers => Ok(self.peer_views().into()),
            Request::Send {
                peer,
                text,
                reply_to: None,
                ..
            } => self.send_text(&peer, text).map(Response::from),
            Request::Send {
                peer,
                text,
                reply_to: Some(to),
                ..
            } => self.send_reply(&peer, &text, &to).map(Response::from),
            Request::History {
                peer,
                limit,
                before,
                since,
            } => self
                .history(&peer, &query(limit, before, since))
                .map(Response::from),
            Request::Watch => Err(NodeError::WatchIsAStream),
            Request::ReloadOrg => self.reload_org().map(|()| Response::Reloaded(Reloaded)),
            Request::FileSend { peer, paths } => {
                let paths = paths.into_iter().map(PathBuf::from).collect();
                return self.file_send(&peer, paths, reply);
            }
            Request::FileAccept { id, to } => {
                self.accept(&id, to.map(PathBuf::from)).map(Response::from)
            }
            Request::FileReject { id } => self.reject(&id).map(Response::from),
            Request::FileCancel { id } => self.cancel(&id).map(Response::from),
            Request::FileList => Ok(self.transfer_views().into()),
            Request::Presence | Request::Activity => Ok(self.presence_view().into()),
            Request::SetPresence { presence, note } => presence
                .parse::<PresenceState>()
                .map_err(NodeError::from)
                .and_then(|state| self.set_presence(state, note))
                .map(Response::from),
            Request::Read { peer } => self.read_conversation(&peer).map(Response::from),
            Request::Typing { peer } => self.send_typing(&peer).map(Response::from),
            Request::Block { user } => self.block(&user).map(Response::from),
            Request::Unblock { user } => self.unblock(&user).map(Response::from),
            Request::Blocked => self.blocked_views().map(Response::from),
            Request::Search { words, peer, limit } => self
                .search(&words, peer.as_deref(), limit)
                .map(Response::from),
            Request::Export { peer } => self.export(peer.as_deref()).map(Response::from),
            Request::Edit { id, text } => self
                .change_own(&id, |target| Change::Edit { target, text })
                .map(Response::from),
            Request::Delete { id } => self
                .change_own(&id, |target| Change::Retract { target })
                .map(Response::from),
            Request::Broadcast { text, group } => {
                self.broadcast(&text, group.as_deref()).map(Response::from)
            }
            Request::Focus { focused } => {
                self.chat.focused = focused;
                Ok(Response::Focus(focused))
            }
            Request::Mute { peer, muted } => self.mute(&peer, muted).map(Response::from),
            Request::Contacts => self.contact_views().map(Response::from),
            Request::ContactAdd {
                user,
                group,
                name,
                message,
            } => self
                .contact_add(&user, group, name, message)
                .map(Response::from),
            Request::ContactAccept { user } => self
                .contact_answer(&user, ContactAction::Accept)
                .map(Response::from),
            Request::ContactReject { user } => self
                .contact_answer(&user, ContactAction::Reject)
                .map(Response::from),
            Request::ContactRemove { user } => self.contact_remove(&user).map(Response::from),
            Request::DevicePair => self.start_pairing().map(Response::from),
            Request::DeviceList => self.device_list().map(Response::from),
            Request::DeviceRemove { device } => self.remove_device(&device).map(Response::from),
            Request::PeerForget { peer } => self.forget_user(&peer).map(Response::from),
            Request::NameSet { name } => self.set_own_name(&name).map(Response::from),
            Request::RoomCreate { name, with } => {
                self.room_create(&name, &with).map(Response::from)
            }
            Request::RoomInvite { room, users } => self.change(&room, RoomChange::Invite(users)),
            Request::RoomJoin { room } => self.room_join(&room).map(Response::from),
            Request::RoomLink { room } => self.room_link(&room).map(Response::from),
            Request::RoomLeave { room } => self.change(&room, RoomChange::Leave),
            Request::RoomList => Ok(self.room_views().into()),
            Request::RoomSend { room, text } => self.room_send(&room, text).map(Response::from),
            Request::RoomHistory {
                room,
                limit,
                before,
                since,
            } => self
                .room_history(&room, &query(limit, before, since))
                .map(Response::from),
            Request::RoomTopic { room, topic } => self.change(&room, RoomChange::Topic(topic)),
            Request::RoomRename { room, name } => self.change(&room, RoomChange::Rename(name)),
            Request::RoomAdmin { room, user } => self.change(&room, RoomChange::Admin(user)),
            Request::RoomRemove { room, user } => self.change(&room, RoomChange::Remove(user)),
            Request::RoomDisable { room } => self.change(&room, RoomChange::Disable),
            Request::RoomTyping { room } => self.room_typing(&room).map(Response::from),
        };
        self.answer(reply, answer);
    }

    /// A change of a room's membership log, answered with the room.
    fn change(&mut self, room: &str, change: RoomChange) -> Result<Response, NodeError> {
        self.room_change(room, change).map(Response::from)
    }
}

/// A history page as the request gives it.
fn query(limit: Option<u32>, before: Option<u64>, since: Option<u64>) -> HistoryQuery {
    HistoryQuery {
        limit,
        before_ms: before,
        since_ms: since,
    }
}

/// Whether a request counts as the user being active (it clears
/// auto-away): writing, reading, searching, typing and anything in a room
/// do; looking at status, lists and settings does not. No wildcard arm,
/// so a new request must choose.
fn counts_as_activity(request: &Request) -> bool {
    match request {
        Request::Send { .. }
        | Request::History { .. }
        | Request::Activity
        | Request::Read { .. }
        | Request::Typing { .. }
        | Request::Search { .. }
        | Request::Export { .. }
        | Request::Edit { .. }
        | Request::Delete { .. }
        | Request::Broadcast { .. }
        | Request::RoomCreate { .. }
        | Request::RoomInvite { .. }
        | Request::RoomJoin { .. }
        | Request::RoomLink { .. }
        | Request::RoomLeave { .. }
        | Request::RoomList
        | Request::RoomSend { .. }
        | Request::RoomHistory { .. }
        | Request::RoomTopic { .. }
        | Request::RoomRename { .. }
        | Request::RoomAdmin { .. }
        | Request::RoomRemove { .. }
        | Request::RoomDisable { .. }
        | Request::RoomTyping { .. } => true,
        Request::Whoami
        | Request::Status
        | Request::Peers
        | Request::Watch
        | Request::ReloadOrg
        | Request::FileSend { .. }
        | Request::FileAccept { .. }
        | Request::FileReject { .. }
        | Request::FileCancel { .. }
        | Request::FileList
        | Request::Presence
        | Request::SetPresence { .. }
        | Request::Block { .. }
        | Request::Unblock { .. }
        | Request::Blocked
        | Request::Focus { .. }
        | Request::Mute { .. }
        | Request::Contacts
        | Request::ContactAdd { .. }
        | Request::ContactAccept { .. }
        | Request::ContactReject { .. }
        | Request::ContactRemove { .. }
        | Request::DevicePair
        | Request::DeviceList
        | Request::DeviceRemove { .. }
        | Request::PeerForget { .. }
        | Request::NameSet { .. } => false,
    }
}
