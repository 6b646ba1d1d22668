//! Rooms on the [`NodeHandle`]: create, invite, join (a room left, or a
//! join link), leave, list, send, history, topic, admin, remove, disable,
//! typing. One [`Command::Room`] carries them to the actor
//! (`actor/rooms.rs`).

use tokio::sync::oneshot;

use super::{Command, NodeError, NodeHandle};
use crate::event::{MessageView, RoomJoinView, RoomLinkView, RoomTypingView, RoomView};
use crate::store::HistoryQuery;

type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// A change of a room's membership log an admin or member asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RoomChange {
    Invite(Vec<String>),
    Leave,
    Topic(String),
    Rename(String),
    Admin(String),
    Remove(String),
    Disable,
}

/// Requests of [`Command::Room`].
pub(crate) enum RoomCommand {
    Create {
        name: String,
        with: Vec<String>,
        reply: Reply<RoomView>,
    },
    Change {
        room: String,
        change: RoomChange,
        reply: Reply<RoomView>,
    },
    Join {
        room: String,
        reply: Reply<RoomJoinView>,
    },
    Link {
        room: String,
        reply: Reply<RoomLinkView>,
    },
    List(Reply<Vec<RoomView>>),
    Send {
        room: String,
        text: String,
        reply: Reply<MessageView>,
    },
    History {
        room: String,
        query: HistoryQuery,
        reply: Reply<Vec<MessageView>>,
    },
    Typing {
        room: String,
        reply: Reply<RoomTypingView>,
    },
}

impl NodeHandle {
    async fn room<T>(&self, make: impl FnOnce(Reply<T>) -> RoomCommand) -> Result<T, NodeError> {
        self.ask(|reply| Command::Room(make(reply))).await?
    }

    async fn change(&self, room: &str, change: RoomChange) -> Result<RoomView, NodeError> {
        let room = room.to_string();
        self.room(|reply| RoomCommand::Change {
            room,
            change,
            reply,
        })
        .await
    }

    /// Creates a room named `name` with this user as its admin, adding
    /// the users `with` (names or id prefixes) at once.
    pub async fn room_create(&self, name: &str, with: &[String]) -> Result<RoomView, NodeError> {
        let (name, with) = (name.to_string(), with.to_vec());
        self.room(|reply| RoomCommand::Create { name, with, reply })
            .await
    }

    /// Adds users to a room (admins only); they are members at once.
    pub async fn room_invite(&self, room: &str, users: &[String]) -> Result<RoomView, NodeError> {
        self.change(room, RoomChange::Invite(users.to_vec())).await
    }

    /// Joins a room: one this user left (by id or name), or one a join
    /// link (`room_link`) names.
    pub async fn room_join(&self, room: &str) -> Result<RoomJoinView, NodeError> {
        let room = room.to_string();
        self.room(|reply| RoomCommand::Join { room, reply }).await
    }

    /// A join link for a room (admins only).
    pub async fn room_link(&self, room: &str) -> Result<RoomLinkView, NodeError> {
        let room = room.to_string();
        self.room(|reply| RoomCommand::Link { room, reply }).await
    }

    /// Leaves a room (it stays readable here).
    pub async fn room_leave(&self, room: &str) -> Result<RoomView, NodeError> {
        self.change(room, RoomChange::Leave).await
    }

    /// Every room this node knows.
    pub async fn room_list(&self) -> Result<Vec<RoomView>, NodeError> {
        self.room(RoomCommand::List).await
    }

    /// Sends a text to a room (sealed once with this device's room key).
    pub async fn room_send(&self, room: &str, text: &str) -> Result<MessageView, NodeError> {
        let (room, text) = (room.to_string(), text.to_string());
        self.room(|reply| RoomCommand::Send { room, text, reply })
            .await
    }

    /// A room's messages and membership lines, oldest first.
    pub async fn room_history(
        &self,
        room: &str,
        query: HistoryQuery,
    ) -> Result<Vec<MessageView>, NodeError> {
        let room = room.to_string();
        self.room(|reply| RoomCommand::History { room, query, reply })
            .await
    }

    /// Sets a room's topic (admins only; empty clears it).
    pub async fn room_topic(&self, room: &str, topic: &str) -> Result<RoomView, NodeError> {
        self.change(room, RoomChange::Topic(topic.to_string()))
            .await
    }

    /// Renames a room (admins only).
    pub async fn room_rename(&self, room: &str, name: &str) -> Result<RoomView, NodeError> {
        self.change(room, RoomChange::Rename(name.to_string()))
            .await
    }

    /// Makes a member an admin (admins only).
    pub async fn room_admin(&self, room: &str, user: &str) -> Result<RoomView, NodeError> {
        self.change(room, RoomChange::Admin(user.to_string())).await
    }

    /// Removes a member (admins only); they get no later messages.
    pub async fn room_remove(&self, room: &str, user: &str) -> Result<RoomView, NodeError> {
        self.change(room, RoomChange::Remove(user.to_string()))
            .await
    }

    /// Disables a room (admins only): readable, refuses new messages.
    pub async fn room_disable(&self, room: &str) -> Result<RoomView, NodeError> {
        self.change(room, RoomChange::Disable).await
    }

    /// Tells the room's members this user is typing (at most once per 3 s).
    pub async fn room_typing(&self, room: &str) -> Result<RoomTypingView, NodeError> {
        let room = room.to_string();
        self.room(|reply| RoomCommand::Typing { room, reply }).await
    }
}
