//! The node's command language: one [`Request`] per operation a client
//! can ask of a node, answered by one [`Response`]. Every client speaks it:
//! the control socket reads it as JSON lines (`crate::control`), an
//! embedder passes it to [`crate::NodeHandle::request`], and the desktop
//! app does either, depending on where its node runs. An operation is
//! declared here once and dispatched once, in the actor
//! (`node/actor/request.rs`), so no client can drift from another.
//!
//! # Format
//! A request is a JSON object tagged by `cmd` (`{"cmd":"send","peer":"bob",
//! "text":"hi"}`); its answer is the JSON of the view it holds (a
//! [`Response`] serialises as its inner view). The shapes are pinned by
//! `node/golden/control_lines.txt` and `node/golden/json_shapes.txt`.

mod response;

use serde::{Deserialize, Serialize};

pub use response::{Reloaded, Response, UnexpectedResponse};

/// One operation a client asks of a node (on the control socket, one
/// JSON line).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Request {
    /// `{"cmd":"whoami"}`
    Whoami,
    /// `{"cmd":"status"}`
    Status,
    /// `{"cmd":"peers"}`
    Peers,
    /// `{"cmd":"send","peer":"bob","text":"hi","wait":false}`
    Send {
        /// Name or user-id prefix.
        peer: String,
        /// The text.
        text: String,
        /// Answer only once delivered (or failed).
        #[serde(default)]
        wait: bool,
        /// With `wait`: give up waiting after this many seconds (the message stays queued).
        #[serde(default)]
        timeout_secs: Option<u64>,
        /// Reply to this message (id or a prefix of at least 6 hex characters).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<String>,
    },
    /// `{"cmd":"history","peer":"bob","limit":50}`
    History {
        /// Name or user-id prefix.
        peer: String,
        /// At most this many (newest) messages.
        #[serde(default)]
        limit: Option<u32>,
        /// Only messages sent before this Unix ms.
        #[serde(default)]
        before: Option<u64>,
        /// Only messages sent at or after this Unix ms.
        #[serde(default)]
        since: Option<u64>,
    },
    /// `{"cmd":"watch"}`: stream events as lines.
    Watch,
    /// `{"cmd":"reload_org"}`: re-read the home's organisation files (a new
    /// revocation list is applied and spread).
    ReloadOrg,
    /// `{"cmd":"file_send","peer":"bob","paths":["/abs/report.pdf"]}`:
    /// offer files and folders (absolute paths); answers the transfer.
    FileSend {
        /// Name or user-id prefix.
        peer: String,
        /// Absolute paths of files and folders.
        paths: Vec<String>,
    },
    /// `{"cmd":"file_accept","id":"3fa2","to":"/abs/dir"}`: accept an offer
    /// (`to` defaults to the download folder).
    FileAccept {
        /// Transfer id or unique prefix.
        id: String,
        /// Absolute destination folder.
        #[serde(default)]
        to: Option<String>,
    },
    /// `{"cmd":"file_reject","id":"3fa2"}`: decline an offer.
    FileReject {
        /// Transfer id or unique prefix.
        id: String,
    },
    /// `{"cmd":"file_cancel","id":"3fa2"}`: cancel a transfer, in or out.
    FileCancel {
        /// Transfer id or unique prefix.
        id: String,
    },
    /// `{"cmd":"file_list"}`: every transfer.
    FileList,
    /// `{"cmd":"presence"}`: this user's presence.
    Presence,
    /// `{"cmd":"set_presence","presence":"busy","note":"in a meeting"}`; a
    /// missing `note` keeps the current one, `""` clears it.
    SetPresence {
        /// `online`, `away`, `busy`, `on-the-phone`, `out-to-lunch` or
        /// `appear-offline`.
        presence: String,
        /// The note (at most 256 characters, no control characters).
        #[serde(default)]
        note: Option<String>,
    },
    /// `{"cmd":"activity"}`: the user is active (a GUI's input): clears
    /// auto-away. Sending, reading, searching and typing count too.
    Activity,
    /// `{"cmd":"read","peer":"bob"}`: mark the conversation read and send
    /// read receipts (unless turned off).
    Read {
        /// Name or user-id prefix.
        peer: String,
    },
    /// `{"cmd":"typing","peer":"bob"}`: tell bob this user is typing (at
    /// most once per 3 s per peer; never stored).
    Typing {
        /// Name or user-id prefix.
        peer: String,
    },
    /// `{"cmd":"block","user":"mallory"}`
    Block {
        /// Name, user-id prefix or full user id.
        user: String,
    },
    /// `{"cmd":"unblock","user":"mallory"}`
    Unblock {
        /// Name (as blocked), user-id prefix or full user id.
        user: String,
    },
    /// `{"cmd":"blocked"}`: the block list.
    Blocked,
    /// `{"cmd":"search","words":"lunch friday","limit":20}`: full-text
    /// search, best first; hits are shaped like `history` plus `highlight`.
    Search {
        /// The words (every one must match, as a prefix).
        words: String,
        /// Only the conversation with this peer.
        #[serde(default)]
        peer: Option<String>,
        /// At most this many hits (default 100).
        #[serde(default)]
        limit: Option<u32>,
    },
    /// `{"cmd":"export","peer":"bob"}`: every conversation (or one) as an
    /// export document.
    Export {
        /// Only the conversation with this peer.
        #[serde(default)]
        peer: Option<String>,
    },
    /// `{"cmd":"edit","id":"3fa2c1","text":"12:30, not 12"}`: change the
    /// text of one of your messages for everyone it went to.
    Edit {
        /// Message id or a prefix of at least 6 hex characters.
        id: String,
        /// The new text.
        text: String,
    },
    /// `{"cmd":"delete","id":"3fa2c1"}`: retract one of your messages.
    Delete {
        /// Message id or a prefix of at least 6 hex characters.
        id: String,
    },
    /// `{"cmd":"broadcast","text":"fire drill at 3","group":"Sales"}`: one
    /// message to everyone online, or to a contact group.
    Broadcast {
        /// The text.
        text: String,
        /// Only the contacts of this group.
        #[serde(default)]
        group: Option<String>,
    },
    /// `{"cmd":"focus","focused":true}`: a client window gained or lost
    /// the focus (no desktop notifications while focused).
    Focus {
        /// Whether it has the focus.
        focused: bool,
    },
    /// `{"cmd":"mute","peer":"bob","muted":true}`: no notifications from
    /// that conversation except mentions.
    Mute {
        /// Name or user-id prefix.
        peer: String,
        /// Mute (true) or unmute (false).
        muted: bool,
    },
    /// `{"cmd":"contacts"}`: the contact list.
    Contacts,
    /// `{"cmd":"contact_add","user":"zoe","group":"Suppliers","message":"hi"}`
    ContactAdd {
        /// Name, user-id prefix or full user id.
        user: String,
        /// Put them in this group.
        #[serde(default)]
        group: Option<String>,
        /// Call them this.
        #[serde(default)]
        name: Option<String>,
        /// A message with the request.
        #[serde(default)]
        message: String,
    },
    /// `{"cmd":"contact_accept","user":"zoe"}`
    ContactAccept {
        /// Contact name, peer name or user id.
        user: String,
    },
    /// `{"cmd":"contact_reject","user":"zoe"}`
    ContactReject {
        /// Contact name, peer name or user id.
        user: String,
    },
    /// `{"cmd":"contact_remove","user":"zoe"}`
    ContactRemove {
        /// Contact name, peer name or user id.
        user: String,
    },
    /// `{"cmd":"device_pair"}`: show a pairing code for a new device of
    /// this user; the outcome comes as a `device_paired` or
    /// `pairing_failed` event.
    DevicePair,
    /// `{"cmd":"device_list"}`: this user's devices.
    DeviceList,
    /// `{"cmd":"device_remove","device":"3fa2c1"}`: remove one of this
    /// user's devices (id prefix or label).
    DeviceRemove {
        /// Device id, unique prefix (4+ characters) or label.
        device: String,
    },
    /// `{"cmd":"peer_forget","peer":"root"}`: forget a user who is offline
    /// (all their devices); answers `{"user_id","name","devices"}`.
    PeerForget {
        /// Name or user-id prefix, as `send` takes it.
        peer: String,
    },
    /// `{"cmd":"name_set","name":"Alice Example"}`: rename this user;
    /// answers `whoami`'s data with the new name.
    NameSet {
        /// The new display name (checked as at `init`).
        name: String,
    },
    /// `{"cmd":"room_create","name":"Lunch","with":["bob","carol"]}`:
    /// a room with this user as admin and `with` added at once.
    RoomCreate {
        /// The room's name (at most 100 characters).
        name: String,
        /// Users to add at once (names or user-id prefixes).
        #[serde(default)]
        with: Vec<String>,
    },
    /// `{"cmd":"room_invite","room":"Lunch","users":["dave"]}` (admins).
    RoomInvite {
        /// Room id, id prefix or unique name.
        room: String,
        /// Users to add.
        users: Vec<String>,
    },
    /// `{"cmd":"room_join","room":"tincan-room:..."}`: a join link, or a
    /// room this user left.
    RoomJoin {
        /// A join link, or a room id or name.
        room: String,
    },
    /// `{"cmd":"room_link","room":"Lunch"}`: a join link (admins).
    RoomLink {
        /// Room id, id prefix or unique name.
        room: String,
    },
    /// `{"cmd":"room_leave","room":"Lunch"}`
    RoomLeave {
        /// Room id, id prefix or unique name.
        room: String,
    },
    /// `{"cmd":"room_list"}`
    RoomList,
    /// `{"cmd":"room_send","room":"Lunch","text":"hi all"}`
    RoomSend {
        /// Room id, id prefix or unique name.
        room: String,
        /// The text.
        text: String,
    },
    /// `{"cmd":"room_history","room":"Lunch","limit":50}`
    RoomHistory {
        /// Room id, id prefix or unique name.
        room: String,
        /// At most this many (newest) messages.
        #[serde(default)]
        limit: Option<u32>,
        /// Only messages sent before this Unix ms.
        #[serde(default)]
        before: Option<u64>,
        /// Only messages sent at or after this Unix ms.
        #[serde(default)]
        since: Option<u64>,
    },
    /// `{"cmd":"room_topic","room":"Lunch","topic":"Fridays"}` (admins).
    RoomTopic {
        /// Room id, id prefix or unique name.
        room: String,
        /// The topic; empty clears it.
        topic: String,
    },
    /// `{"cmd":"room_rename","room":"Lunch","name":"Brunch"}` (admins).
    RoomRename {
        /// Room id, id prefix or unique name.
        room: String,
        /// The new name.
        name: String,
    },
    /// `{"cmd":"room_admin","room":"Lunch","user":"bob"}` (admins).
    RoomAdmin {
        /// Room id, id prefix or unique name.
        room: String,
        /// The member to make an admin.
        user: String,
    },
    /// `{"cmd":"room_remove","room":"Lunch","user":"bob"}` (admins).
    RoomRemove {
        /// Room id, id prefix or unique name.
        room: String,
        /// The member to remove.
        user: String,
    },
    /// `{"cmd":"room_disable","room":"Lunch"}` (admins).
    RoomDisable {
        /// Room id, id prefix or unique name.
        room: String,
    },
    /// `{"cmd":"room_typing","room":"Lunch"}`
    RoomTyping {
        /// Room id, id prefix or unique name.
        room: String,
    },
}

impl Request {
    /// Parses one request line as the control socket reads it (surrounding
    /// whitespace, the newline included, is ignored). The socket answers an
    /// error with `bad request: {error}` and keeps reading.
    pub fn parse_line(line: &str) -> Result<Request, serde_json::Error> {
        serde_json::from_str(line.trim())
    }
}
