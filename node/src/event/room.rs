//! Views of rooms, with stable JSON shapes (`tincan room list --json`,
//! `room create --json`, `room link --json`, `room join --json`,
//! `room typing --json`).

use serde::{Deserialize, Serialize};

/// A member of a room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomMemberView {
    /// The user id.
    pub user_id: String,
    /// The display name.
    pub name: String,
    /// Whether they are an admin.
    pub admin: bool,
}

/// A room as this node knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomView {
    /// The room id (hex).
    pub id: String,
    /// The name.
    pub name: String,
    /// The topic; empty when none is set.
    pub topic: String,
    /// Current members.
    pub members: Vec<RoomMemberView>,
    /// Disabled rooms stay readable and take nothing new.
    pub disabled: bool,
    /// Whether this user is a member now (false after leaving or being
    /// removed: the room stays readable here).
    pub joined: bool,
    /// Whether this user is an admin.
    pub admin: bool,
}

/// `tincan room link --json`: a join link for people not in the room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomLinkView {
    /// The room id.
    pub room: String,
    /// The link to pass on (`tincan room join LINK`).
    pub link: String,
}

/// `tincan room join --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomJoinView {
    /// The room id.
    pub room: String,
    /// Already a member now (a room rejoined); false while a join request
    /// waits for the admin who made the link.
    pub joined: bool,
    /// A join request was sent to the link's admin.
    pub requested: bool,
}

/// `tincan room typing --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomTypingView {
    /// The room id.
    pub room: String,
    /// False when rate-limited, nobody reachable, appearing offline, or
    /// this device had not handed out its key of the room's current
    /// epoch yet (it does so now; the next notification goes through).
    pub sent: bool,
}
