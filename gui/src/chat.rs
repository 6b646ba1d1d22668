//! The main screen: the contact list on the left (own presence picker and
//! note, search box, presence dots and notes, unread counts, grouped by LAN
//! / other branches, then rooms), the open conversation or room on the right (bubbles, day
//! separators, delivery ticks, file transfers, typing indicator, older
//! pages on scrolling up) with its composer and "send file" button, and
//! the status line at the bottom.
//!
//! The component owns its [`Message`]s; `update` turns them into an
//! [`Action`] for the app (open a conversation, send a text, ...), which
//! owns the backend. Views only read state.

mod file_view;
mod room_view;
mod view;

use std::path::PathBuf;

use iced::widget::text_editor;
use iced::widget::Id;

use crate::presence::Choice;
use crate::session::Session;

/// Largest text a message may carry (the node refuses more).
pub const MAX_TEXT_BYTES: usize = tincan_core::wire::MAX_TEXT_LEN;

/// The search box, so Ctrl+F and the app can focus it.
pub const SEARCH_ID: Id = Id::new("search");
/// The composer, focused when a conversation opens.
pub const COMPOSER_ID: Id = Id::new("composer");
/// The message list, scrolled to the end when a message arrives.
pub const MESSAGES_ID: Id = Id::new("messages");

/// The main screen's own state (what is not in the [`Session`]).
#[derive(Debug, Default)]
pub struct Chat {
    /// The search box's text.
    pub search: String,
    /// What is being typed.
    pub composer: text_editor::Content,
    /// Why the last send failed, shown above the composer.
    pub error: Option<String>,
    /// The presence note being edited.
    pub note: String,
    /// The note was edited since the node's last answer.
    pub note_edited: bool,
    /// Why the last presence change was refused.
    pub presence_error: Option<String>,
    /// Files are dragged over the window.
    pub drop_hover: bool,
}

/// The presence note field, so tests and the keyboard can reach it.
pub const NOTE_ID: Id = Id::new("presence-note");

/// What the user did on the main screen.
#[derive(Clone, Debug)]
pub enum Message {
    /// The search text changed.
    Search(String),
    /// Enter in the search box: open the first match (colleague, else room).
    SearchSubmit,
    /// A contact was clicked.
    Open(String),
    /// The composer was edited.
    Edit(text_editor::Action),
    /// Enter in the composer, or the Send button.
    Send,
    /// The settings button.
    OpenSettings,
    /// "Reconnect" after the node went away.
    Reconnect,
    /// Alt+Down / Alt+Up: the next or previous contact in the list.
    Step(i32),
    /// A presence state was picked in the header.
    PresencePicked(Choice),
    /// The note field changed.
    NoteInput(String),
    /// Enter in the note field: set it.
    NoteSubmit,
    /// The "send file" button.
    AttachFiles,
    /// Accept an incoming offer (transfer id).
    FileAccept(String),
    /// Decline an incoming offer.
    FileReject(String),
    /// Cancel a transfer.
    FileCancel(String),
    /// "Open folder" on a finished transfer.
    OpenFolder(String),
    /// "Load older messages", or scrolled to the top.
    LoadOlder,
    /// The message list scrolled; whether it is near its top.
    Scrolled {
        /// Within a few lines of the oldest message shown.
        near_top: bool,
    },
    /// A room was clicked (its id).
    OpenRoom(String),
}

/// What the app must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond the state change.
    None,
    /// Open the conversation with this user id.
    Open(String),
    /// Queue `text` for the user id `peer`.
    Send {
        /// The recipient's user id.
        peer: String,
        /// The text.
        text: String,
    },
    /// Show the settings screen.
    OpenSettings,
    /// Open the home again (the node went away).
    Reconnect,
    /// Set this user's presence (a `presence` word) and, if `Some`, note.
    SetPresence {
        /// The state.
        presence: String,
        /// The note (`Some("")` clears it, `None` keeps it).
        note: Option<String>,
    },
    /// The user typed in the conversation with this user id.
    Typing(String),
    /// Pick files to offer to this user id.
    PickFiles(String),
    /// Accept this offer.
    FileAccept(String),
    /// Decline this offer.
    FileReject(String),
    /// Cancel this transfer.
    FileCancel(String),
    /// Show this folder in the file manager.
    OpenFolder(PathBuf),
    /// Load the page before the oldest message with this user id.
    LoadOlder(String),
    /// Open the room with this id.
    OpenRoom(String),
    /// Send `text` to the room with id `room`.
    RoomSend {
        /// The room's id.
        room: String,
        /// The text.
        text: String,
    },
}

impl Chat {
    /// Handles one message.
    pub fn update(&mut self, session: &Session, message: Message) -> Action {
        match message {
            Message::Search(text) => {
                self.search = text;
                Action::None
            }
            Message::SearchSubmit => {
                let first = session
                    .visible_contacts(&self.search)
                    .into_iter()
                    .flat_map(|(_, contacts)| contacts)
                    .next()
                    .map(|c| c.user_id.clone());
                // Colleagues come first in the list, then rooms.
                let room = || {
                    session
                        .visible_rooms(&self.search)
                        .first()
                        .map(|r| r.id().to_string())
                };
                match (first, room()) {
                    (Some(user_id), _) => {
                        self.search.clear();
                        Action::Open(user_id)
                    }
                    (None, Some(room)) => {
                        self.search.clear();
                        Action::OpenRoom(room)
                    }
                    (None, None) => Action::None,
                }
            }
            Message::Open(user_id) => Action::Open(user_id),
            Message::Edit(action) => {
                let edit = action.is_edit();
                if edit {
                    self.error = None;
                }
                self.composer.perform(action);
                match &session.open {
                    Some(peer) if edit && !self.composer.text().trim().is_empty() => {
                        Action::Typing(peer.clone())
                    }
                    _ => Action::None,
                }
            }
            Message::Send => self.send(session),
            Message::OpenSettings => Action::OpenSettings,
            Message::Reconnect => Action::Reconnect,
            Message::Step(delta) => {
                let order: Vec<String> = session
                    .visible_contacts(&self.search)
                    .into_iter()
                    .flat_map(|(_, contacts)| contacts)
                    .map(|c| c.user_id.clone())
                    .collect();
                if order.is_empty() {
                    return Action::None;
                }
                let current = session
                    .open
                    .as_ref()
                    .and_then(|open| order.iter().position(|id| id == open));
                let len = order.len() as i64;
                let next = match current {
                    Some(i) => (i as i64 + i64::from(delta)).rem_euclid(len),
                    None if delta < 0 => len - 1,
                    None => 0,
                };
                usize::try_from(next)
                    .ok()
                    .and_then(|i| order.get(i))
                    .map_or(Action::None, |id| Action::Open(id.clone()))
            }
            Message::PresencePicked(choice) => {
                self.presence_error = None;
                Action::SetPresence {
                    presence: choice.0.as_str().to_string(),
                    note: None,
                }
            }
            Message::NoteInput(note) => {
                self.note = note;
                self.note_edited = true;
                self.presence_error = None;
                Action::None
            }
            Message::NoteSubmit => {
                let chosen = session
                    .presence
                    .as_ref()
                    .map_or("online", |p| p.chosen.as_str())
                    .to_string();
                Action::SetPresence {
                    presence: chosen,
                    note: Some(self.note.trim().to_string()),
                }
            }
            Message::AttachFiles => match &session.open {
                Some(peer) => Action::PickFiles(peer.clone()),
                None => Action::None,
            },
            Message::FileAccept(id) => Action::FileAccept(id),
            Message::FileReject(id) => Action::FileReject(id),
            Message::FileCancel(id) => Action::FileCancel(id),
            Message::OpenFolder(id) => session
                .transfers
                .get(&id)
                .and_then(crate::file::folder_of)
                .map_or(Action::None, Action::OpenFolder),
            Message::LoadOlder | Message::Scrolled { near_top: true } => match &session.open {
                Some(peer) => Action::LoadOlder(peer.clone()),
                None => Action::None,
            },
            Message::Scrolled { near_top: false } => Action::None,
            Message::OpenRoom(room) => Action::OpenRoom(room),
        }
    }

    /// The node answered a presence change (or the app asked for it):
    /// the note field follows unless the user is editing it.
    pub fn presence_known(&mut self, note: Option<&str>) {
        if !self.note_edited {
            self.note = note.unwrap_or_default().to_string();
        }
    }

    /// The node took the note: editing is over.
    pub fn note_saved(&mut self, note: Option<&str>) {
        self.note_edited = false;
        self.presence_known(note);
    }

    fn send(&mut self, session: &Session) -> Action {
        let (peer, room) = (session.open.clone(), session.open_room.clone());
        if peer.is_none() && room.is_none() {
            return Action::None;
        }
        let text = self.composer.text();
        let text = text.trim();
        if text.is_empty() {
            return Action::None;
        }
        if text.len() > MAX_TEXT_BYTES {
            self.error = Some(format!(
                "This message is {} KiB, over the {} KiB limit for text. \
                 Shorten it, or save it to a file and use “Send file…”.",
                text.len().div_ceil(1024),
                MAX_TEXT_BYTES / 1024
            ));
            return Action::None;
        }
        let text = text.to_string();
        self.composer = text_editor::Content::new();
        self.error = None;
        match (room, peer) {
            (Some(room), _) => Action::RoomSend { room, text },
            (None, Some(peer)) => Action::Send { peer, text },
            (None, None) => Action::None,
        }
    }

    /// A send failed: say why and give the text back if nothing new was typed.
    pub fn send_failed(&mut self, text: &str, error: &str) {
        self.error = Some(format!("Not sent: {error}"));
        if self.composer.text().trim().is_empty() {
            self.composer = text_editor::Content::with_text(text);
        }
    }
}

impl Chat {
    /// The main screen for `session`.
    pub fn view<'a>(&'a self, session: &'a Session) -> iced::Element<'a, Message> {
        view::view(self, session)
    }
}
