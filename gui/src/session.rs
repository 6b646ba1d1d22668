//! What the app knows about the running node: contacts (users, grouped from
//! their devices, with presence and notes), conversations, rooms, unread counts,
//! who is typing, file transfers, this user's presence and the last status.
//! Pure data with no I/O and no clock (`now` comes in): `update` feeds it
//! node answers and events, `view` reads it.

mod conversation;
mod rooms;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use tincan_node::api::TransferState;
use tincan_node::api::{
    MessageView, NodeEvent, PeerView, PresenceView, StatusView, TransferView, WhoAmI,
};

use crate::backend::Mode;
pub use crate::presence::Presence;
pub use conversation::{Conversation, PAGE};
pub use rooms::{Room, Rooms};

/// How long "X is typing…" shows after their last typing event (they
/// send one at most every 3 s while typing).
pub const TYPING_SHOWN: Duration = Duration::from_secs(6);

/// A heading of the contact list, in this order: colleagues by where they
/// are, then rooms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// On this LAN (found by mDNS, configured, or remembered from it).
    Lan,
    /// Reached through the branch gateway or the relay.
    OtherBranch,
    /// Rooms (group conversations); never a contact's group.
    Rooms,
}

impl Group {
    /// The heading of the group.
    pub fn title(self) -> &'static str {
        match self {
            Self::Lan => "On this LAN",
            Self::OtherBranch => "Other branches",
            Self::Rooms => "Rooms",
        }
    }

    /// Where the contact is, in a sentence.
    pub fn phrase(self) -> &'static str {
        match self {
            Self::Lan => "on this LAN",
            Self::OtherBranch => "in another branch",
            Self::Rooms => "in a room",
        }
    }
}

/// One colleague: a user with one or more devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// Their user id (the key of everything else).
    pub user_id: String,
    /// Their display name (as the node shows it: `Bob (abcd-efgh)` when spoofed).
    pub name: String,
    /// Their devices, by device id.
    pub devices: BTreeMap<String, PeerView>,
    /// Messages received while their conversation was not open.
    pub unread: usize,
    /// The newest message with them, Unix ms (for ordering).
    pub last_message_at: Option<u64>,
}

impl Contact {
    fn new(user_id: &str, name: &str) -> Self {
        Self {
            user_id: user_id.to_string(),
            name: name.to_string(),
            devices: BTreeMap::new(),
            unread: 0,
            last_message_at: None,
        }
    }

    /// The best presence over their devices (online beats busy beats away).
    pub fn presence(&self) -> Presence {
        self.devices
            .values()
            .map(|d| Presence::from_shown(&d.presence, d.online))
            .min()
            .unwrap_or(Presence::Offline)
    }

    /// Their presence note, from a device shown online.
    pub fn note(&self) -> Option<&str> {
        self.devices
            .values()
            .filter(|d| d.online)
            .find_map(|d| d.note.as_deref().filter(|n| !n.trim().is_empty()))
    }

    /// Other branch when every device is reached through the gateway or
    /// the relay; LAN otherwise.
    pub fn group(&self) -> Group {
        let remote = |d: &PeerView| matches!(d.via.as_str(), "gateway" | "relay");
        if !self.devices.is_empty() && self.devices.values().all(remote) {
            Group::OtherBranch
        } else {
            Group::Lan
        }
    }

    /// Whether `query` (already lowercased) matches the name or user id.
    pub fn matches(&self, query: &str) -> bool {
        query.is_empty()
            || self.name.to_lowercase().contains(query)
            || self.user_id.to_lowercase().starts_with(query)
    }
}

/// What an event means for the rest of the app.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Ask the node for its status again (role or peers changed).
    pub refresh_status: bool,
    /// Something arrived that may deserve a notification.
    pub alert: Option<Alert>,
    /// Ask the node for its rooms again (a message of an unknown room).
    pub refresh_rooms: bool,
}

/// A new message or file offer, for notifications and read marks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// The sender's user id.
    pub from: String,
    /// The notification's title (the sender's name).
    pub title: String,
    /// Its body (the text, or what is offered).
    pub body: String,
    /// Whether it is in the open conversation.
    pub in_open: bool,
    /// Whether it @mentions this user.
    pub mentioned: bool,
}

/// Everything known about the node the app is connected to.
#[derive(Clone, Debug)]
pub struct Session {
    /// Who we are.
    pub me: WhoAmI,
    /// Embedded or attached.
    pub mode: Mode,
    /// The last status, once known.
    pub status: Option<StatusView>,
    /// Why the status could not be read, if it could not.
    pub status_error: Option<String>,
    /// Set when the node's event stream ended.
    pub ended: Option<String>,
    /// Contacts by user id.
    pub contacts: BTreeMap<String, Contact>,
    /// Conversations by user id.
    pub conversations: HashMap<String, Conversation>,
    /// The open conversation.
    pub open: Option<String>,
    /// This user's presence, once known.
    pub presence: Option<PresenceView>,
    /// Who is typing to us: user id → (name, when it stops showing).
    pub typing: HashMap<String, (String, Instant)>,
    /// File transfers by id, in and out.
    pub transfers: BTreeMap<String, TransferView>,
    /// Rooms and their conversations.
    pub rooms: Rooms,
    /// The open room's id (then no 1:1 conversation is open).
    pub open_room: Option<String>,
}

impl Session {
    /// A session for the node `me`.
    pub fn new(me: WhoAmI, mode: Mode) -> Self {
        Self {
            me,
            mode,
            status: None,
            status_error: None,
            ended: None,
            contacts: BTreeMap::new(),
            conversations: HashMap::new(),
            open: None,
            presence: None,
            typing: HashMap::new(),
            transfers: BTreeMap::new(),
            rooms: Rooms::default(),
            open_room: None,
        }
    }

    /// The contact with this user id, creating it (named `name`) if needed.
    fn contact(&mut self, user_id: &str, name: &str) -> &mut Contact {
        self.contacts
            .entry(user_id.to_string())
            .or_insert_with(|| Contact::new(user_id, name))
    }

    /// The devices the node knows, replacing what was known.
    pub fn apply_peers(&mut self, peers: Vec<PeerView>) {
        for contact in self.contacts.values_mut() {
            contact.devices.clear();
        }
        for peer in peers {
            if peer.user_id == self.me.user_id {
                continue; // our own other devices are not a contact
            }
            let contact = self.contact(&peer.user_id, &peer.name);
            contact.name = peer.name.clone();
            contact.devices.insert(peer.device_id.clone(), peer);
        }
    }

    /// The node's status.
    pub fn apply_status(&mut self, status: Result<StatusView, String>) {
        match status {
            Ok(status) => {
                self.status = Some(status);
                self.status_error = None;
            }
            Err(e) => self.status_error = Some(e),
        }
    }

    /// A history page of `user_id` (see `Conversation::apply_page`),
    /// merged with what events brought meanwhile.
    pub fn apply_history(
        &mut self,
        user_id: &str,
        before: Option<u64>,
        limit: u32,
        history: Result<Vec<MessageView>, String>,
    ) {
        let conversation = self.conversations.entry(user_id.to_string()).or_default();
        conversation.apply_page(before, limit, history);
        let last = conversation.messages.last().map(|m| m.sent_at);
        if let Some(contact) = self.contacts.get_mut(user_id) {
            contact.last_message_at = contact.last_message_at.max(last);
        }
    }

    /// Starts loading the page before the oldest message with `user_id`;
    /// returns where it ends, or `None` when there is nothing to load (or a
    /// load is already running).
    pub fn begin_older(&mut self, user_id: &str) -> Option<u64> {
        let conversation = self.conversations.get_mut(user_id)?;
        if !conversation.has_older || conversation.loading_older {
            return None;
        }
        let before = conversation.older_than()?;
        conversation.loading_older = true;
        Some(before)
    }

    /// This user's presence, as the node answered.
    pub fn apply_presence(&mut self, presence: PresenceView) {
        self.presence = Some(presence);
    }

    /// Every transfer, as `file list` answered.
    pub fn apply_transfers(&mut self, transfers: Vec<TransferView>) {
        self.transfers = transfers.into_iter().map(|t| (t.id.clone(), t)).collect();
    }

    /// One transfer, as a command answered or an event reported.
    pub fn apply_transfer(&mut self, transfer: TransferView) {
        self.transfers.insert(transfer.id.clone(), transfer);
    }

    /// The transfers with `user_id`, oldest first.
    pub fn transfers_with(&self, user_id: &str) -> Vec<&TransferView> {
        let mut list: Vec<_> = self
            .transfers
            .values()
            .filter(|t| t.peer == user_id)
            .collect();
        list.sort_by_key(|t| (t.created_at, t.id.clone()));
        list
    }

    /// Counts a message in the open conversation as unread (the window is
    /// not focused, so nobody has seen it).
    pub fn mark_unread(&mut self, user_id: &str) {
        if let Some(contact) = self.contacts.get_mut(user_id) {
            contact.unread += 1;
        }
    }

    /// The window got focus: the open conversation counts as seen.
    /// Returns its user id when there was something unread in it.
    pub fn seen_open(&mut self) -> Option<String> {
        let open = self.open.clone()?;
        let contact = self.contacts.get_mut(&open)?;
        (std::mem::take(&mut contact.unread) > 0).then_some(open)
    }

    /// Who is typing in the conversation with `user_id`, if anyone.
    pub fn typing_name(&self, user_id: &str) -> Option<&str> {
        self.typing.get(user_id).map(|(name, _)| name.as_str())
    }

    /// Forgets typing indicators that ran out by `now`.
    pub fn expire_typing(&mut self, now: Instant) {
        self.typing.retain(|_, (_, until)| *until > now);
    }

    /// A message this node just queued.
    pub fn apply_sent(&mut self, message: MessageView) {
        if message.room.is_some() {
            let _ = self.apply_room_message(message, false);
            return;
        }
        let to = message.to.clone();
        let at = message.sent_at;
        self.conversations
            .entry(to.clone())
            .or_default()
            .upsert(message);
        if let Some(contact) = self.contacts.get_mut(&to) {
            contact.last_message_at = contact.last_message_at.max(Some(at));
        }
    }

    /// One event from the node, at `now` (for typing indicators).
    pub fn apply_event(&mut self, event: NodeEvent, now: Instant) -> Effects {
        let mut effects = Effects::default();
        match event {
            // A room message goes to its room, not the 1:1 chat with its
            // author.
            NodeEvent::MessageReceived { message, from_name } if message.room.is_some() => {
                let from = message.from.clone();
                let body = message.text.clone();
                let mentioned = message.mentions.contains(&self.me.user_id);
                let room = message.room.clone().unwrap_or_default();
                let system = message.system;
                let (unknown, news) = self.apply_room_message(message, true);
                effects.refresh_rooms = unknown;
                if news && !system && from != self.me.user_id {
                    let room_name = self
                        .rooms
                        .list
                        .get(&room)
                        .map(|r| r.view.name.clone())
                        .unwrap_or_default();
                    // Not in the open conversation: it only notifies (read
                    // marks are for 1:1 chats).
                    effects.alert = Some(Alert {
                        from,
                        title: format!("{from_name} in {room_name}"),
                        body,
                        in_open: false,
                        mentioned,
                    });
                }
            }
            NodeEvent::MessageReceived { message, from_name } => {
                let from = message.from.clone();
                let at = message.sent_at;
                let is_open = self.open.as_deref() == Some(from.as_str());
                let body = message.text.clone();
                let mentioned = message.mentions.contains(&self.me.user_id);
                let new = self
                    .conversations
                    .entry(from.clone())
                    .or_default()
                    .upsert(message);
                let contact = self.contact(&from, &from_name);
                contact.last_message_at = contact.last_message_at.max(Some(at));
                // A repeat (at-least-once delivery) is neither unread nor news.
                if new && !is_open {
                    contact.unread += 1;
                }
                // They sent what they typed.
                self.typing.remove(&from);
                if new {
                    effects.alert = Some(Alert {
                        from,
                        title: from_name,
                        body,
                        in_open: is_open,
                        mentioned,
                    });
                }
            }
            NodeEvent::MessageState {
                id,
                to,
                state,
                error,
            } => {
                if let Some(message) = self
                    .conversations
                    .get_mut(&to)
                    .and_then(|c| c.messages.iter_mut().find(|m| m.id == id))
                {
                    if message.state.can_advance_to(state) {
                        message.state = state;
                        message.error = error;
                    }
                }
                effects.refresh_status = true; // the outbox count changed
            }
            NodeEvent::PeerOnline { peer }
            | NodeEvent::PeerOffline { peer }
            | NodeEvent::Presence { peer } => {
                if peer.user_id != self.me.user_id {
                    let contact = self.contact(&peer.user_id, &peer.name);
                    contact.name = peer.name.clone();
                    contact.devices.insert(peer.device_id.clone(), peer);
                }
                effects.refresh_status = true;
            }
            NodeEvent::RoleChanged { role, gateway } => {
                if let Some(status) = &mut self.status {
                    status.role = role;
                    status.gateway = gateway;
                }
                effects.refresh_status = true;
            }
            NodeEvent::Typing {
                from, from_name, ..
            } => {
                if from != self.me.user_id {
                    self.typing.insert(from, (from_name, now + TYPING_SHOWN));
                }
            }
            NodeEvent::FileOffered { transfer } => {
                let is_open = self.open.as_deref() == Some(transfer.peer.as_str());
                if transfer.direction == "in" && transfer.state == TransferState::Offered {
                    effects.alert = Some(Alert {
                        from: transfer.peer.clone(),
                        title: transfer.peer_name.clone(),
                        body: format!("offers {}", transfer.name),
                        in_open: is_open,
                        mentioned: false,
                    });
                }
                self.apply_transfer(transfer);
            }
            NodeEvent::FileState { transfer } => self.apply_transfer(transfer),
            // Name conflicts are resolved by the node (the claimant shows
            // as `name (fingerprint)` in the next peer list).
            _ => effects.refresh_status = true,
        }
        effects
    }

    /// Opens the conversation with `user_id`; returns whether its history
    /// must be loaded.
    pub fn open(&mut self, user_id: &str) -> bool {
        self.open = Some(user_id.to_string());
        self.open_room = None;
        if let Some(contact) = self.contacts.get_mut(user_id) {
            contact.unread = 0;
        }
        !self.conversations.get(user_id).is_some_and(|c| c.loaded)
    }

    /// Contacts matching `query`, by group, then online first, then the
    /// most recent conversation, then name.
    pub fn visible_contacts(&self, query: &str) -> Vec<(Group, Vec<&Contact>)> {
        let query = query.trim().to_lowercase();
        let mut groups: BTreeMap<Group, Vec<&Contact>> = BTreeMap::new();
        for contact in self.contacts.values().filter(|c| c.matches(&query)) {
            groups.entry(contact.group()).or_default().push(contact);
        }
        for list in groups.values_mut() {
            list.sort_by(|a, b| {
                (!a.presence().is_online())
                    .cmp(&!b.presence().is_online())
                    .then(b.last_message_at.cmp(&a.last_message_at))
                    .then(a.name.to_lowercase().cmp(&b.name.to_lowercase()))
            });
        }
        groups.into_iter().collect()
    }

    /// The name of the device `device_id` (a gateway), if it is a peer's.
    pub fn device_name(&self, device_id: &str) -> Option<&str> {
        self.contacts
            .values()
            .find(|c| c.devices.contains_key(device_id))
            .map(|c| c.name.as_str())
    }

    /// The open contact.
    pub fn open_contact(&self) -> Option<&Contact> {
        self.open.as_ref().and_then(|id| self.contacts.get(id))
    }

    /// Unread messages over all contacts and rooms.
    pub fn total_unread(&self) -> usize {
        self.contacts.values().map(|c| c.unread).sum::<usize>()
            + self.rooms.list.values().map(|r| r.unread).sum::<usize>()
    }
}
