//! Rooms as the app shows them: the node's view of each room (name, topic,
//! members), its conversation and its unread count. Room messages are kept
//! apart from the 1:1 conversations (a room message is not a chat with its
//! author).

use std::collections::BTreeMap;

use tincan_node::api::{MessageView, RoomView};

use super::{Conversation, Session};

/// One room in the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Room {
    /// The node's view of it.
    pub view: RoomView,
    /// Messages received while it was not open.
    pub unread: usize,
    /// The newest message in it, Unix ms (for ordering).
    pub last_message_at: Option<u64>,
}

impl Room {
    /// The room's id.
    pub fn id(&self) -> &str {
        &self.view.id
    }

    /// Whether `query` (already lowercased) matches the name or topic.
    pub fn matches(&self, query: &str) -> bool {
        query.is_empty()
            || self.view.name.to_lowercase().contains(query)
            || self.view.topic.to_lowercase().contains(query)
    }

    /// `3 members`, and whether this user left or the room is disabled.
    pub fn summary(&self) -> String {
        let members = match self.view.members.len() {
            1 => "1 member".to_string(),
            n => format!("{n} members"),
        };
        if self.view.disabled {
            format!("{members} · disabled")
        } else if !self.view.joined {
            format!("{members} · you left")
        } else {
            members
        }
    }
}

/// The rooms of a session and their conversations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rooms {
    /// By room id.
    pub list: BTreeMap<String, Room>,
    /// By room id.
    pub conversations: BTreeMap<String, Conversation>,
}

impl Session {
    /// Every room the node knows, replacing what was known (unread counts
    /// stay; rooms the node forgot go).
    pub fn apply_rooms(&mut self, rooms: Vec<RoomView>) {
        let mut old = std::mem::take(&mut self.rooms.list);
        for view in rooms {
            let room = match old.remove(&view.id) {
                Some(mut room) => {
                    room.view = view;
                    room
                }
                None => Room {
                    view,
                    unread: 0,
                    last_message_at: None,
                },
            };
            self.rooms.list.insert(room.view.id.clone(), room);
        }
    }

    /// A history page of `room` (see `Conversation::apply_page`).
    pub fn apply_room_history(
        &mut self,
        room: &str,
        before: Option<u64>,
        limit: u32,
        history: Result<Vec<MessageView>, String>,
    ) {
        let conversation = self
            .rooms
            .conversations
            .entry(room.to_string())
            .or_default();
        conversation.apply_page(before, limit, history);
        let last = conversation.messages.last().map(|m| m.sent_at);
        if let Some(room) = self.rooms.list.get_mut(room) {
            room.last_message_at = room.last_message_at.max(last);
        }
    }

    /// A room message: one this node sent, or one that arrived (`true`
    /// when it is new; counted unread when the room is not open).
    /// Returns whether the room is unknown (the list needs a reload), and
    /// whether the message is news (incoming, new, room not open).
    pub fn apply_room_message(&mut self, message: MessageView, incoming: bool) -> (bool, bool) {
        let Some(id) = message.room.clone() else {
            return (false, false);
        };
        let at = message.sent_at;
        let new = self
            .rooms
            .conversations
            .entry(id.clone())
            .or_default()
            .upsert(message);
        let is_open = self.open_room.as_deref() == Some(id.as_str());
        let unknown = !self.rooms.list.contains_key(&id);
        // A room this app has not listed yet (just made by a colleague):
        // it shows under a stand-in name until the reload names it, and
        // its unread count is kept.
        let room = self.rooms.list.entry(id.clone()).or_insert_with(|| Room {
            view: RoomView {
                id: id.clone(),
                name: "New room".into(),
                topic: String::new(),
                members: Vec::new(),
                disabled: false,
                joined: true,
                admin: false,
            },
            unread: 0,
            last_message_at: None,
        });
        room.last_message_at = room.last_message_at.max(Some(at));
        let news = incoming && new && !is_open;
        if news {
            room.unread += 1;
        }
        (unknown, news)
    }

    /// Opens `room` (closing any 1:1 conversation); returns whether its
    /// history must be loaded.
    pub fn open_room(&mut self, room: &str) -> bool {
        self.open = None;
        self.open_room = Some(room.to_string());
        if let Some(room) = self.rooms.list.get_mut(room) {
            room.unread = 0;
        }
        !self.rooms.conversations.get(room).is_some_and(|c| c.loaded)
    }

    /// The open room.
    pub fn open_room_view(&self) -> Option<&Room> {
        self.open_room
            .as_ref()
            .and_then(|id| self.rooms.list.get(id))
    }

    /// Rooms matching `query`, the most recent conversation first, then
    /// by name.
    pub fn visible_rooms(&self, query: &str) -> Vec<&Room> {
        let query = query.trim().to_lowercase();
        let mut rooms: Vec<&Room> = self
            .rooms
            .list
            .values()
            .filter(|r| r.matches(&query))
            .collect();
        rooms.sort_by(|a, b| {
            b.last_message_at
                .cmp(&a.last_message_at)
                .then(a.view.name.to_lowercase().cmp(&b.view.name.to_lowercase()))
        });
        rooms
    }

    /// The name to show for `user_id` in a room: its member name, a
    /// contact's, this user's, or the start of the id.
    pub fn name_in_room(&self, room: &Room, user_id: &str) -> String {
        if user_id == self.me.user_id {
            return self.me.name.clone();
        }
        room.view
            .members
            .iter()
            .find(|m| m.user_id == user_id)
            .map(|m| m.name.clone())
            .or_else(|| self.contacts.get(user_id).map(|c| c.name.clone()))
            .unwrap_or_else(|| user_id.chars().take(8).collect())
    }
}
