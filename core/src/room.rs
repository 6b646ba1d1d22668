//! Rooms: persistent group chats with a signed, ordered membership log and
//! per-sender room keys (Signal's "sender keys").
//!
//! # Membership log
//! A room is a set of [`RoomOp`]s forming a hash-linked DAG. Each op is
//! signed by a device (its [`crate::DeviceCert`] travels inside) and names
//! the heads of the log its author saw as `parents`; its [`OpHash`] is the
//! blake3 hash of the signed body. The first op is `Create` (no parents);
//! the [`RoomId`] is derived from its hash, so nobody can forge a second
//! genesis for an existing room.
//!
//! **Authorisation** is checked against the state the author could see:
//! the fold of the op's ancestors. Admins may add, remove, promote, demote,
//! set the name or topic and disable; any member may leave; a user who
//! left (never one who was removed) may join again by themself. An op that
//! fails this check is refused with a precise [`RoomError`] and not stored.
//!
//! **Order rule.** Every replica orders the same set of ops the same way:
//! by causal depth (one more than the deepest parent), then by
//! [`OpHash`]. The room state is the fold of the ops in that order, where
//! an op that is not valid at its place is skipped.
//!
//! **Removal wins.** An op whose author is removed (or, for admin
//! rights, demoted or gone) by a concurrent op is void wherever it sorts,
//! and a removal or demotion stands even when its own author is removed
//! concurrently (so two admins removing each other at once are both
//! removed). A removed admin who signs an op on parents older than their
//! removal therefore gains nothing from its hash or its place: no op
//! anyone can sign gives a removed or demoted user a right back, and the
//! key epoch never returns to a member set that lists them. The log
//! converges once every member holds the same ops.
//!
//! **Bounded work.** An op may lag at most [`LAG`] layers behind the
//! deepest op and must descend from every op [`LAG`] layers below it; a
//! layer holds at most [`MAX_WIDTH`] ops. Older ops are folded once;
//! each new op costs a bounded refold (nothing when it sorts last).
//!
//! # Keys
//! Every membership change (create, add, join, leave, remove) starts a new
//! **epoch**, named by the hash of that op. Each member device draws a
//! random 32-byte [`SenderKey`] per room epoch the first time it sends in
//! it, and distributes it to the member devices of that epoch inside a
//! normal pairwise-sealed envelope ([`crate::Content::RoomKey`]). A room
//! message ([`RoomEnvelope`]) is then sealed ONCE with a key derived from
//! the sender key (HKDF-SHA256, salt = message id) under ChaCha20-Poly1305
//! and signed by the sender device, with no per-device key wrapping; its
//! `to` lists the member devices, and the route carries one copy per hop
//! (per site). Because keys rotate with membership, a removed or departed
//! member never receives the keys of later epochs and cannot read later
//! messages; a new member cannot read earlier ones.
//!
//! # What hops see
//! Room name, topic, membership ops and message texts travel only inside
//! sealed content. A relay or gateway sees routing data: the room id (an
//! opaque hash), the epoch hash, the sender's certificate, the list of
//! destination devices, sizes and times.

mod key;
mod log;
mod op;
#[cfg(test)]
mod revoke_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod work_tests;

pub use key::{RoomContent, RoomEnvelope, RoomKeyGrant, SenderKey, ROOM_ENVELOPE_VERSION};
pub use log::{Applied, RoomLog, RoomState, LAG, MAX_WIDTH};
pub use op::{OpHash, RoomAction, RoomOp};

crate::id::random_id!(
    /// A room: derived from the hash of its `Create` op (printed as hex).
    RoomId
);

/// Longest room name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest topic, in characters.
pub const MAX_TOPIC_CHARS: usize = 1_000;
/// Most members a room may have.
pub const MAX_MEMBERS: usize = 1_000;
/// Most users one `Add` op may name.
pub const MAX_ADD: usize = 256;
/// Most ops a room log may hold (a bound on memory and on what a peer can
/// make us store).
pub const MAX_OPS: usize = 20_000;
/// Most ops held while their parents are missing.
pub const MAX_PENDING_OPS: usize = 1_000;

/// Why a room op, name or message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomError {
    /// The op's signature does not verify under its author's device key.
    #[error("room op signature is invalid")]
    BadSignature,
    /// The author's device certificate is invalid.
    #[error("room op author certificate is invalid")]
    BadCert,
    /// The op belongs to another room.
    #[error("room op belongs to another room")]
    WrongRoom,
    /// A room log must start with exactly one `Create`.
    #[error("room log has no valid create op")]
    NoGenesis,
    /// A `Create` that is not the room's genesis.
    #[error("a create op can only start a room")]
    NotGenesis,
    /// The author is not a member of the room.
    #[error("{0} is not a member of the room")]
    NotAMember(crate::UserId),
    /// The author needs to be an admin for this change.
    #[error("{0} is not an admin of the room")]
    NotAnAdmin(crate::UserId),
    /// The room is disabled: readable, but nothing new is taken.
    #[error("the room is disabled")]
    Disabled,
    /// The user is already a member.
    #[error("{0} is already a member")]
    AlreadyMember(crate::UserId),
    /// The user is already an admin.
    #[error("{0} is already an admin")]
    AlreadyAdmin(crate::UserId),
    /// Only a user who left by themself may join without an admin.
    #[error("{0} was not a member who left; ask an admin to invite them")]
    NotInvited(crate::UserId),
    /// An admin removes others; members leave.
    #[error("use leave to leave a room")]
    RemoveSelf,
    /// A bad room name.
    #[error("room name is invalid: {0}")]
    BadName(&'static str),
    /// A bad topic.
    #[error("room topic is invalid: {0}")]
    BadTopic(&'static str),
    /// Too many members, users in one op, or ops.
    #[error("room limit exceeded: {0}")]
    TooMany(&'static str),
    /// An `Add` with no users.
    #[error("nobody to add")]
    NobodyToAdd,
    /// The op's parents are not all known (yet).
    #[error("room op refers to ops not known here")]
    MissingParents,
    /// A room message from a device whose user is not a member of its epoch.
    #[error("sender is not a member of the room in that epoch")]
    SenderNotMember,
    /// The room message names an epoch this log does not know (yet).
    #[error("unknown room epoch")]
    UnknownEpoch,
    /// The op's parents are too far behind the log's heads (more than
    /// [`LAG`] layers), or it does not descend from every op that far
    /// below it: a late op like that could reorder the settled log.
    #[error("room op is too far behind the log's heads")]
    TooFarBehind,
}

/// Checks a room name: trimmed, 1..=[`MAX_NAME_CHARS`] characters, no
/// control characters. Returns the trimmed name.
pub fn validate_name(name: &str) -> Result<String, RoomError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(RoomError::BadName("empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(RoomError::BadName("longer than 100 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(RoomError::BadName("control characters"));
    }
    Ok(name.to_string())
}

/// Checks a topic: at most [`MAX_TOPIC_CHARS`] characters, no control
/// characters except newlines. Returns it trimmed (empty clears it).
pub fn validate_topic(topic: &str) -> Result<String, RoomError> {
    let topic = topic.trim();
    if topic.chars().count() > MAX_TOPIC_CHARS {
        return Err(RoomError::BadTopic("longer than 1000 characters"));
    }
    if topic.chars().any(|c| c.is_control() && c != '\n') {
        return Err(RoomError::BadTopic("control characters"));
    }
    Ok(topic.to_string())
}
