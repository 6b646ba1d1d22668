//! Whether an incoming room message is taken: the receiver's rule for a
//! [`RoomEnvelope`] (sealed once with its sender's key of the room epoch),
//! beside [`admit`](super::admit) for pairwise envelopes.
//!
//! # Order of the checks
//! 1. The signature verifies (the sender's certificate and the envelope).
//! 2. This device is one of the recipients.
//! 3. The sending device was not removed by its user.
//! 4. The sender's user is neither revoked by the organisation nor blocked
//!    by this user (both told `Blocked`).
//! 5. The room is known here. A room whose sender already sent this device
//!    its key is being joined (the log is on its way): not yet.
//! 6. The sender was a member in the message's epoch and still is. An
//!    epoch not known yet (its membership op is on its way): not yet.
//! 7. The sender's key of that epoch is here (its own envelope may come
//!    later): not yet.
//! 8. The message opens with that key, and a text is within the limit.
//!
//! "Not yet" is no answer at all, so the sender retries until what was
//! missing has arrived; a refusal is final. Dedupe is the store's, on the
//! verified sender device and the message id, as for pairwise content.

use crate::room::{OpHash, RoomContent, RoomEnvelope, RoomError, RoomLog, SenderKey};
use crate::wire::{RefuseReason, MAX_TEXT_LEN};
use crate::{DeviceId, DeviceKey, OpenError, Receipt, ReceiptKind, RoomId, UserId};

use super::Standing;

pub mod gather;

/// What the receiver knows of its rooms.
pub trait RoomKnowledge {
    /// The membership log of `room`, if this user has it.
    fn log(&self, room: &RoomId) -> Option<&RoomLog>;
    /// `device`'s sender key of `room` in `epoch`, if it arrived.
    fn sender_key(&self, room: &RoomId, epoch: &OpHash, device: &DeviceId) -> Option<&SenderKey>;
    /// Whether `device` sent its key of `room` before the room was known
    /// here (this user is being added).
    fn announced(&self, room: &RoomId, device: &DeviceId) -> bool;
}

/// What to do with an incoming room message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum RoomAdmission {
    /// Store the content (deduped by the store), then answer with
    /// [`room_delivered_receipt`].
    Admitted(RoomContent),
    /// Answer nothing: what it needs is on its way, and the sender retries.
    NotYet(Missing),
    /// Answer with the refusal's [`reason`](RoomRefusal::reason); final.
    Refused(RoomRefusal),
}

/// What a room message waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// The room's log (this user is being added).
    Log,
    /// The membership op that starts the message's epoch.
    Epoch,
    /// The sender's key of the epoch.
    SenderKey,
}

/// Why a room message is refused, in the order the checks run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomRefusal {
    /// The certificate or signature does not verify.
    #[error("room envelope does not verify: {0}")]
    BadSignature(OpenError),
    /// This device is not a recipient.
    #[error("room envelope is not for this device")]
    NotForThisDevice,
    /// The sending device was removed by its user.
    #[error("sending device {0} was removed")]
    DeviceRemoved(DeviceId),
    /// The sender's user is revoked or blocked.
    #[error("sender {0} is revoked or blocked")]
    Blocked(UserId),
    /// The room is not known here and nobody announced it.
    #[error("unknown room {0}")]
    UnknownRoom(RoomId),
    /// The sender may not send in that epoch (not a member, or no longer).
    #[error("{0}")]
    NotAllowed(RoomError),
    /// The content does not open with the sender's key.
    #[error("room message does not open: {0}")]
    Undecryptable(OpenError),
    /// A text over [`MAX_TEXT_LEN`].
    #[error("room text of {0} bytes is too large")]
    TooLarge(usize),
}

impl RoomRefusal {
    /// The reason the sender is told (the words senders already know).
    pub fn reason(&self) -> RefuseReason {
        match self {
            RoomRefusal::BadSignature(_) => RefuseReason::BadSignature,
            RoomRefusal::NotForThisDevice => RefuseReason::NotForThisDevice,
            RoomRefusal::DeviceRemoved(_) => RefuseReason::DeviceRemoved,
            RoomRefusal::Blocked(_) => RefuseReason::Blocked,
            RoomRefusal::UnknownRoom(_) => RefuseReason::Other("room: unknown room".into()),
            RoomRefusal::NotAllowed(e) => RefuseReason::Other(format!("room: {e}")),
            RoomRefusal::Undecryptable(_) => RefuseReason::Undecryptable,
            RoomRefusal::TooLarge(_) => RefuseReason::TooLarge,
        }
    }
}

/// Decides whether `envelope` is taken by the device `me`, asking
/// `standing` about its sender and `rooms` about the room (see the
/// module's order of checks).
pub fn admit_room(
    envelope: &RoomEnvelope,
    me: DeviceId,
    standing: &impl Standing,
    rooms: &impl RoomKnowledge,
) -> RoomAdmission {
    use RoomAdmission::{Admitted, NotYet, Refused};
    if let Err(e) = envelope.verify_signature() {
        return Refused(RoomRefusal::BadSignature(e));
    }
    if !envelope.recipient_devices().any(|d| d == me) {
        return Refused(RoomRefusal::NotForThisDevice);
    }
    let (device, user) = (envelope.sender.device_id(), envelope.sender.user_id());
    if standing.device_removed(&envelope.sender) {
        return Refused(RoomRefusal::DeviceRemoved(device));
    }
    if standing.user_revoked(&user) || standing.user_blocked(&user) {
        return Refused(RoomRefusal::Blocked(user));
    }
    let Some(log) = rooms.log(&envelope.room) else {
        return if rooms.announced(&envelope.room, &device) {
            NotYet(Missing::Log)
        } else {
            Refused(RoomRefusal::UnknownRoom(envelope.room))
        };
    };
    match log.check_sender(&envelope.epoch, &user) {
        Ok(()) => {}
        Err(RoomError::UnknownEpoch) => return NotYet(Missing::Epoch),
        Err(e) => return Refused(RoomRefusal::NotAllowed(e)),
    }
    let Some(key) = rooms.sender_key(&envelope.room, &envelope.epoch, &device) else {
        return NotYet(Missing::SenderKey);
    };
    match envelope.open(key) {
        Ok(RoomContent::Text { text }) if text.len() > MAX_TEXT_LEN => {
            Refused(RoomRefusal::TooLarge(text.len()))
        }
        Ok(content) => Admitted(content),
        Err(e) => Refused(RoomRefusal::Undecryptable(e)),
    }
}

/// What to do with a member device's sender key (it arrives inside a
/// pairwise envelope, so its sender is already verified).
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum KeyAdmission {
    /// Store it (unless this device has it already: a retry).
    Take,
    /// Not yet: the room's log ([`Missing::Log`]; the key overtook it, so
    /// remember that its sender announced the room) or the epoch's op
    /// ([`Missing::Epoch`]) is on its way. Answer nothing; the sender
    /// retries.
    NotYet(Missing),
    /// Its sender or this user was not a member of that epoch: refused.
    Refused(RoomError),
}

/// Decides whether `user`'s key `grant` is taken by this user `me`, with
/// the room's log as this node has it (`None` when it does not).
pub fn admit_key(
    grant: &crate::room::RoomKeyGrant,
    user: &UserId,
    me: &UserId,
    log: Option<&RoomLog>,
) -> KeyAdmission {
    let Some(log) = log else {
        return KeyAdmission::NotYet(Missing::Log);
    };
    let Some(members) = log.members_at(&grant.epoch) else {
        return KeyAdmission::NotYet(Missing::Epoch);
    };
    if !members.contains(user) || !members.contains(me) {
        return KeyAdmission::Refused(RoomError::SenderNotMember);
    }
    KeyAdmission::Take
}

/// What taking new ops of a known room did, and what to answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TakenOps {
    /// Ops newly in the log, in the order they were taken: store them.
    pub new: Vec<OpHash>,
    /// Some op waits for its parents. It is memory only (a crash loses
    /// it), so it must not be acknowledged: the sender retries until the
    /// parents have arrived and it is taken.
    pub held: bool,
    /// The first op refused, if any.
    pub refused: Option<RoomError>,
    /// For each op just taken that adds users and that another user
    /// wrote: the users it added, and the ops of this log it did not build
    /// on. Its author sent the newcomers the log it had; changes made
    /// meanwhile by others would never reach them, so every member that
    /// takes the add sends them what it has of those.
    pub catch_up: Vec<(Vec<UserId>, Vec<crate::room::RoomOp>)>,
}

/// The answer to a batch of room ops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpsVerdict {
    /// Everything is stored: acknowledge.
    Taken,
    /// Something is held, or what is new must be stored first: no
    /// answer, the sender retries (known ops are no-ops the next time).
    Retry,
    /// Nothing new and an op was refused: refuse the envelope.
    Refused(RoomError),
}

impl TakenOps {
    /// What the sender is told.
    pub fn verdict(&self) -> OpsVerdict {
        match (&self.refused, self.new.is_empty(), self.held) {
            (Some(e), true, false) => OpsVerdict::Refused(e.clone()),
            (_, _, true) => OpsVerdict::Retry,
            _ => OpsVerdict::Taken,
        }
    }
}

/// Takes `ops` (from a verified sender) into this user's (`me`) `log` of
/// the room: the rule of the daemon and the simulator.
pub fn take_ops(log: &mut RoomLog, ops: Vec<crate::room::RoomOp>, me: &UserId) -> TakenOps {
    let mut taken = TakenOps::default();
    let hashes: Vec<OpHash> = ops.iter().map(crate::room::RoomOp::hash).collect();
    for op in ops {
        match log.handle_op(op) {
            Ok(applied) => taken.new.extend(applied.new),
            Err(e) => {
                taken.refused.get_or_insert(e);
            }
        }
    }
    taken.held = hashes.iter().any(|h| log.is_held(h));
    for hash in &taken.new {
        if log.is_skipped(hash) {
            continue;
        }
        let Some(op) = log.op(hash) else { continue };
        let crate::room::RoomAction::Add { users } = &op.action else {
            continue;
        };
        if op.author_user() == *me {
            continue;
        }
        let newcomers: Vec<UserId> = users.iter().filter(|u| *u != me).copied().collect();
        let missed = log.not_built_on(hash);
        if !newcomers.is_empty() && !missed.is_empty() {
            taken.catch_up.push((newcomers, missed));
        }
    }
    taken
}

/// Whether a batch of `ops` with `log_len` (the whole log's length, 0 for
/// new ops) is within the bounds a receiver takes; else it is refused as
/// too large.
pub fn ops_batch_fits(ops: &[crate::room::RoomOp], log_len: u32) -> bool {
    !ops.is_empty() && ops.len() <= crate::room::MAX_OPS && log_len as usize <= crate::room::MAX_OPS
}

/// Why the whole log of a room not known here is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WholeLogRefusal {
    /// The log neither adds this user nor lists it as a member or as
    /// removed: a stranger's room (nothing is folded for it).
    #[error("this user is not a member of that room")]
    NotAMember,
    /// The log does not fold, or is of another room.
    #[error("{0}")]
    Invalid(RoomError),
}

/// Takes the gathered whole log (`ops`) of `room`, sent to this user `me`
/// because it was added: the log and the ops it refused, or why it is not
/// taken. A log that does not add `me` costs a scan, never a fold.
pub fn take_whole_log(
    room: RoomId,
    ops: Vec<crate::room::RoomOp>,
    me: &UserId,
) -> Result<(RoomLog, Vec<RoomError>), WholeLogRefusal> {
    use crate::room::RoomAction;
    let adds_me = ops.iter().any(|op| match &op.action {
        RoomAction::Add { users } => users.contains(me),
        RoomAction::Create { .. } => op.author_user() == *me,
        _ => false,
    });
    if !adds_me {
        return Err(WholeLogRefusal::NotAMember);
    }
    let (log, errors) = RoomLog::from_ops(ops).map_err(WholeLogRefusal::Invalid)?;
    if log.id() != room {
        return Err(WholeLogRefusal::Invalid(RoomError::WrongRoom));
    }
    let state = log.state();
    if !(state.members.contains(me) || state.removed.contains(me)) {
        return Err(WholeLogRefusal::NotAMember);
    }
    Ok((log, errors))
}

/// The signed answer to an admitted room message, sent once its content
/// is stored durably.
pub fn room_delivered_receipt(me: &DeviceKey, envelope: &RoomEnvelope, now: u64) -> Receipt {
    Receipt::sign(
        me,
        envelope.id,
        envelope.sender.device_id(),
        ReceiptKind::Delivered,
        now,
    )
}

#[cfg(test)]
mod tests;
