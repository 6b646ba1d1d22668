//! What the app knows about the running node: contacts (users, grouped from
//! their devices), conversations, unread counts and the last status. Pure
//! data with no I/O: `update` feeds it node answers and events, `view`
//! reads it.

use std::collections::{BTreeMap, HashMap};

use tincan_node::{MessageView, NodeEvent, PeerView, StatusView, WhoAmI};

use crate::backend::Mode;

/// Whether a contact can be reached now.
///
/// Only online/offline for now: the presence states of the presence issue
/// (away, busy / do not disturb, on the phone, out to lunch, appear
/// offline, with a note) get their own variants here, and the dot colour
/// and label follow from [`Presence::label`] in the views.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// At least one device has a live connection (or the relay says so).
    Online,
    /// No device reachable.
    Offline,
}

impl Presence {
    /// The word shown next to the dot.
    pub fn label(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
        }
    }
}

/// Where a contact is, for grouping the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// On this LAN (found by mDNS, configured, or remembered from it).
    Lan,
    /// Reached through the branch gateway or the relay.
    OtherBranch,
}

impl Group {
    /// The heading of the group.
    pub fn title(self) -> &'static str {
        match self {
            Self::Lan => "On this LAN",
            Self::OtherBranch => "Other branches",
        }
    }

    /// Where the contact is, in a sentence.
    pub fn phrase(self) -> &'static str {
        match self {
            Self::Lan => "on this LAN",
            Self::OtherBranch => "in another branch",
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

    /// Online if any device is.
    pub fn presence(&self) -> Presence {
        if self.devices.values().any(|d| d.online) {
            Presence::Online
        } else {
            Presence::Offline
        }
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

/// The messages with one contact.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conversation {
    /// Oldest first, unique by id.
    pub messages: Vec<MessageView>,
    /// Whether the history was loaded from the node.
    pub loaded: bool,
    /// Why loading failed, if it did.
    pub error: Option<String>,
}

impl Conversation {
    /// Inserts or replaces `message` (by id), keeping the order by time.
    fn upsert(&mut self, message: MessageView) {
        if let Some(old) = self.messages.iter_mut().find(|m| m.id == message.id) {
            // Never step a state back (an old history answer racing an event).
            if old.state.can_advance_to(message.state) || old.state == message.state {
                *old = message;
            }
            return;
        }
        let at = self
            .messages
            .partition_point(|m| (m.sent_at, &m.id) <= (message.sent_at, &message.id));
        self.messages.insert(at, message);
    }
}

/// What an event means for the rest of the app.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Ask the node for its status again (role or peers changed).
    pub refresh_status: bool,
    /// A new message arrived (for attention/notification later).
    pub new_message: bool,
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

    /// The history of `user_id`, merged with what events brought meanwhile.
    pub fn apply_history(&mut self, user_id: &str, history: Result<Vec<MessageView>, String>) {
        let conversation = self.conversations.entry(user_id.to_string()).or_default();
        match history {
            Ok(messages) => {
                for message in messages {
                    conversation.upsert(message);
                }
                conversation.loaded = true;
                conversation.error = None;
            }
            Err(e) => conversation.error = Some(e),
        }
        let last = conversation.messages.last().map(|m| m.sent_at);
        if let Some(contact) = self.contacts.get_mut(user_id) {
            contact.last_message_at = contact.last_message_at.max(last);
        }
    }

    /// A message this node just queued.
    pub fn apply_sent(&mut self, message: MessageView) {
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

    /// One event from the node.
    pub fn apply_event(&mut self, event: NodeEvent) -> Effects {
        let mut effects = Effects::default();
        match event {
            // Rooms have no view in the app yet (`tincan room` on the CLI);
            // a room message must not land in the 1:1 chat with its author.
            NodeEvent::MessageReceived { message, .. } if message.room.is_some() => {}
            NodeEvent::MessageReceived { message, from_name } => {
                let from = message.from.clone();
                let at = message.sent_at;
                let is_open = self.open.as_deref() == Some(from.as_str());
                let contact = self.contact(&from, &from_name);
                contact.last_message_at = contact.last_message_at.max(Some(at));
                if !is_open {
                    contact.unread += 1;
                }
                self.conversations.entry(from).or_default().upsert(message);
                effects.new_message = true;
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
            NodeEvent::PeerOnline { peer } | NodeEvent::PeerOffline { peer } => {
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
                (a.presence() != Presence::Online)
                    .cmp(&(b.presence() != Presence::Online))
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

    /// Unread messages over all contacts.
    pub fn total_unread(&self) -> usize {
        self.contacts.values().map(|c| c.unread).sum()
    }
}
