//! One signed change of a room's membership log.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{RoomError, RoomId};
use crate::identity::{verify_signature, DeviceCert, DeviceKey, Signature};
use crate::{Entropy, UserId};

/// Context of an op's signature and hash.
const OP_CONTEXT: &[u8] = b"tincan room op v1\0";
/// Derive-key context of a room id from its genesis hash.
const ROOM_ID_CONTEXT: &str = "tincan room id v1";

/// The blake3 hash of an op's signed body: its name in the log.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OpHash(pub [u8; 32]);

impl fmt::Display for OpHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
    }
}

impl fmt::Debug for OpHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpHash({})", &self.to_string()[..12])
    }
}

/// What an op changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RoomAction {
    /// Starts a room; the author's user is its first member and admin.
    Create {
        /// The room's name.
        name: String,
        /// Random bytes, so equal names at equal times give distinct rooms.
        nonce: [u8; 16],
    },
    /// An admin adds users (they are members at once; they may leave).
    Add {
        /// The users added.
        users: Vec<UserId>,
    },
    /// A user who left comes back by themself.
    Join,
    /// The author's user leaves.
    Leave,
    /// An admin removes a member.
    Remove {
        /// The member removed.
        user: UserId,
    },
    /// An admin makes a member an admin.
    Promote {
        /// The member.
        user: UserId,
    },
    /// An admin takes a member's admin right away.
    Demote {
        /// The admin.
        user: UserId,
    },
    /// An admin sets the topic (empty clears it).
    SetTopic {
        /// The topic.
        topic: String,
    },
    /// An admin renames the room.
    SetName {
        /// The new name.
        name: String,
    },
    /// An admin disables the room: it stays readable and takes nothing new.
    Disable,
    /// A member starts a new key epoch without changing who is a member:
    /// one of their devices was removed, and must not read what follows.
    Rekey,
}

impl RoomAction {
    /// Whether this action starts a new key epoch: it changes who is a
    /// member, or (`Rekey`) which devices are.
    pub fn changes_membership(&self) -> bool {
        matches!(
            self,
            RoomAction::Create { .. }
                | RoomAction::Add { .. }
                | RoomAction::Join
                | RoomAction::Leave
                | RoomAction::Remove { .. }
                | RoomAction::Rekey
        )
    }
}

/// A signed entry of a room's membership log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomOp {
    /// The room; `None` only in the `Create` op, whose hash defines it.
    pub room: Option<RoomId>,
    /// The heads of the log the author saw (empty only for `Create`).
    pub parents: Vec<OpHash>,
    /// The author device's certificate.
    pub author: DeviceCert,
    /// When it was written, by the author's clock (ms since the Unix epoch).
    pub at_ms: u64,
    /// The change.
    pub action: RoomAction,
    /// The author device's signature over everything above.
    pub signature: Signature,
}

#[derive(Serialize)]
struct Body<'a> {
    room: &'a Option<RoomId>,
    parents: &'a [OpHash],
    author: &'a DeviceCert,
    at_ms: u64,
    action: &'a RoomAction,
}

impl RoomOp {
    /// Signs a new op with `device` (described by `cert`).
    pub fn sign(
        device: &DeviceKey,
        cert: &DeviceCert,
        room: Option<RoomId>,
        parents: Vec<OpHash>,
        at_ms: u64,
        action: RoomAction,
    ) -> RoomOp {
        let mut op = RoomOp {
            room,
            parents,
            author: cert.clone(),
            at_ms,
            action,
            signature: Signature([0u8; 64]),
        };
        op.signature = device.sign(&op.signed_bytes());
        op
    }

    /// A `Create` op for a room named `name` (already validated).
    pub fn create(
        device: &DeviceKey,
        cert: &DeviceCert,
        name: String,
        at_ms: u64,
        entropy: &mut dyn Entropy,
    ) -> RoomOp {
        let mut nonce = [0u8; 16];
        entropy.fill(&mut nonce);
        Self::sign(
            device,
            cert,
            None,
            Vec::new(),
            at_ms,
            RoomAction::Create { name, nonce },
        )
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let body = Body {
            room: &self.room,
            parents: &self.parents,
            author: &self.author,
            at_ms: self.at_ms,
            action: &self.action,
        };
        // Plain data: postcard cannot fail on it.
        let encoded = postcard::to_allocvec(&body).unwrap_or_default();
        [OP_CONTEXT, &encoded].concat()
    }

    /// The op's hash (of the signed body, so a re-encoded signature cannot
    /// make a second name for the same op).
    pub fn hash(&self) -> OpHash {
        OpHash(*blake3::hash(&self.signed_bytes()).as_bytes())
    }

    /// The user who wrote it.
    pub fn author_user(&self) -> UserId {
        self.author.user_id()
    }

    /// Checks the author's certificate and the signature.
    pub fn verify(&self) -> Result<(), RoomError> {
        self.author.verify().map_err(|_| RoomError::BadCert)?;
        if verify_signature(
            &self.author.device_key,
            &self.signed_bytes(),
            &self.signature,
        ) {
            Ok(())
        } else {
            Err(RoomError::BadSignature)
        }
    }

    /// The room a `Create` op starts (for other ops, their `room`).
    pub fn room_id(&self) -> Option<RoomId> {
        match (&self.action, self.room) {
            (RoomAction::Create { .. }, None) => Some(room_id_of(&self.hash())),
            (_, room) => room,
        }
    }
}

/// The room id belonging to a genesis op hash.
pub(super) fn room_id_of(genesis: &OpHash) -> RoomId {
    let mut hasher = blake3::Hasher::new_derive_key(ROOM_ID_CONTEXT);
    hasher.update(&genesis.0);
    let mut id = [0u8; 16];
    id.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    RoomId(id)
}
