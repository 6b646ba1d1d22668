//! Views of the messenger features, with stable JSON shapes: own presence
//! (`tincan presence --json`), read (`tincan read`), typing, the block list
//! and search hits (shaped like `history --json` plus `highlight`), a
//! muted conversation and a broadcast.

use serde::{Deserialize, Serialize};

use super::MessageView;

/// This user's presence, as `tincan presence --json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceView {
    /// In effect: `online`, `away`, `busy`, `on-the-phone`, `out-to-lunch`
    /// or `appear-offline` (`away` while auto-away holds).
    pub presence: String,
    /// The note, if any.
    pub note: Option<String>,
    /// Whether away was set automatically after idle time (cleared by the
    /// next activity).
    pub auto_away: bool,
    /// What the user chose (in effect again after auto-away).
    pub chosen: String,
    /// What the others are shown: `offline` for appear-offline.
    pub shown: String,
    /// Seconds since the last activity.
    pub idle_secs: u64,
    /// Idle seconds before auto-away; null: never.
    pub away_after_secs: Option<u64>,
}

/// What `tincan read PEER --json` did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadView {
    /// The peer's user id.
    pub peer: String,
    /// Received messages marked read now.
    pub marked: usize,
    /// Read receipts queued for the senders' devices (0 when read receipts
    /// are off or the peer is blocked).
    pub receipts: usize,
}

/// What `tincan typing PEER --json` did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypingView {
    /// The peer's user id.
    pub peer: String,
    /// Whether a notification went out (false: rate-limited to one per 3 s
    /// per peer, none of their devices reachable, or appearing offline).
    pub sent: bool,
}

/// A blocked user, as `tincan blocked --json` lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedView {
    /// The user id.
    pub user_id: String,
    /// How they were shown when blocked.
    pub name: String,
    /// When, Unix ms.
    pub blocked_at: u64,
}

/// One search result: a message shaped like `history --json`, plus its
/// text with the matches marked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHitView {
    /// The message.
    #[serde(flatten)]
    pub message: MessageView,
    /// The text with every match wrapped in `**`.
    pub highlight: String,
}

/// What `tincan mute|unmute --json` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MuteView {
    /// The conversation: the peer's user id, or the room's id.
    pub peer: String,
    /// Their display name.
    pub name: String,
    /// Whether it is muted now.
    pub muted: bool,
}

/// What `tincan broadcast --json` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastView {
    /// The message (one id for every recipient).
    pub message: MessageView,
    /// The users it went to: user ids.
    pub to: Vec<String>,
    /// Their display names, in the same order.
    pub names: Vec<String>,
}
