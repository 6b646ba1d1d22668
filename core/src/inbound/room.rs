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
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use super::*;
    use crate::delivery::receipt_proves_delivery;
    use crate::entropy::SeededEntropy;
    use crate::inbound::GoodStanding;
    use crate::room::RoomAction;
    use crate::{DeviceCert, Identity, MessageId};

    /// A room of alice and bob, as bob's node knows it.
    struct Bob {
        logs: HashMap<RoomId, RoomLog>,
        keys: HashMap<(RoomId, OpHash, DeviceId), SenderKey>,
        announced: BTreeSet<(RoomId, DeviceId)>,
    }

    impl RoomKnowledge for Bob {
        fn log(&self, room: &RoomId) -> Option<&RoomLog> {
            self.logs.get(room)
        }
        fn sender_key(
            &self,
            room: &RoomId,
            epoch: &OpHash,
            device: &DeviceId,
        ) -> Option<&SenderKey> {
            self.keys.get(&(*room, *epoch, *device))
        }
        fn announced(&self, room: &RoomId, device: &DeviceId) -> bool {
            self.announced.contains(&(*room, *device))
        }
    }

    struct Blocking(UserId);

    impl Standing for Blocking {
        fn device_removed(&self, _: &DeviceCert) -> bool {
            false
        }
        fn user_revoked(&self, _: &UserId) -> bool {
            false
        }
        fn user_blocked(&self, user: &UserId) -> bool {
            *user == self.0
        }
    }

    struct Setup {
        alice: Identity,
        bob: Identity,
        room: RoomId,
        epoch: OpHash,
        key: SenderKey,
        known: Bob,
        entropy: SeededEntropy,
    }

    fn setup() -> Setup {
        let mut entropy = SeededEntropy::new(7);
        let alice = Identity::generate("alice", 0, &mut entropy);
        let bob = Identity::generate("bob", 0, &mut entropy);
        let (mut log, _) =
            RoomLog::create(&alice.device, &alice.cert, "lunch", 1, &mut entropy).unwrap();
        let add = RoomAction::Add {
            users: vec![bob.user_id()],
        };
        log.author(&alice.device, &alice.cert, add, 2).unwrap();
        let (room, epoch) = (log.id(), log.state().epoch);
        let key = SenderKey::generate(&mut entropy);
        let known = Bob {
            logs: HashMap::from([(room, log)]),
            keys: HashMap::from([((room, epoch, alice.device_id()), key.clone())]),
            announced: BTreeSet::new(),
        };
        Setup {
            alice,
            bob,
            room,
            epoch,
            key,
            known,
            entropy,
        }
    }

    fn seal(s: &mut Setup, text: &str) -> RoomEnvelope {
        let content = RoomContent::Text { text: text.into() };
        RoomEnvelope::seal(
            &s.alice.device,
            &s.alice.cert,
            s.room,
            s.epoch,
            &s.key,
            vec![s.bob.device_id()],
            MessageId::random(&mut s.entropy),
            1_000,
            &content,
            &mut s.entropy,
        )
        .unwrap()
    }

    #[test]
    fn a_members_message_is_taken_and_its_receipt_proves_delivery() {
        let mut s = setup();
        let envelope = seal(&mut s, "hi");
        let admitted = admit_room(&envelope, s.bob.device_id(), &GoodStanding, &s.known);
        assert_eq!(
            admitted,
            RoomAdmission::Admitted(RoomContent::Text { text: "hi".into() })
        );
        let receipt = room_delivered_receipt(&s.bob.device, &envelope, 2_000);
        assert!(receipt_proves_delivery(
            &s.alice.device_id(),
            &envelope.id,
            &s.bob.cert,
            &receipt
        ));
    }

    #[test]
    fn what_is_on_its_way_makes_the_sender_retry_and_the_rest_is_refused_in_order() {
        let mut s = setup();
        let envelope = seal(&mut s, "hi");
        let bob = s.bob.device_id();
        // Not a recipient comes before anything about the sender.
        let other = s.alice.device_id();
        let refused = admit_room(&envelope, other, &Blocking(s.alice.user_id()), &s.known);
        assert_eq!(
            refused,
            RoomAdmission::Refused(RoomRefusal::NotForThisDevice)
        );
        // A blocked sender is refused before the room is looked at.
        let refused = admit_room(&envelope, bob, &Blocking(s.alice.user_id()), &s.known);
        assert_eq!(
            refused.clone(),
            RoomAdmission::Refused(RoomRefusal::Blocked(s.alice.user_id()))
        );
        // The sender's key has not arrived: retry.
        let key = s
            .known
            .keys
            .remove(&(s.room, s.epoch, s.alice.device_id()))
            .unwrap();
        assert_eq!(
            admit_room(&envelope, bob, &GoodStanding, &s.known),
            RoomAdmission::NotYet(Missing::SenderKey)
        );
        s.known
            .keys
            .insert((s.room, s.epoch, s.alice.device_id()), key);
        // The room is not known: refused, unless its sender announced it.
        let log = s.known.logs.remove(&s.room).unwrap();
        let RoomAdmission::Refused(unknown) = admit_room(&envelope, bob, &GoodStanding, &s.known)
        else {
            panic!("an unknown room is refused");
        };
        assert_eq!(
            unknown.reason(),
            RefuseReason::Other("room: unknown room".into())
        );
        s.known.announced.insert((s.room, s.alice.device_id()));
        assert_eq!(
            admit_room(&envelope, bob, &GoodStanding, &s.known),
            RoomAdmission::NotYet(Missing::Log)
        );
        s.known.logs.insert(s.room, log);
        // A tampered envelope does not verify.
        let mut forged = envelope.clone();
        forged.ciphertext[0] ^= 1;
        assert!(matches!(
            admit_room(&forged, bob, &GoodStanding, &s.known),
            RoomAdmission::Refused(RoomRefusal::BadSignature(_))
        ));
    }

    #[test]
    fn a_removed_member_is_refused_and_an_unknown_epoch_waits() {
        let mut s = setup();
        let before = seal(&mut s, "still here?");
        // Bob's log moves on: alice removes herself by leaving.
        let log = s.known.logs.get_mut(&s.room).unwrap();
        log.author(&s.alice.device, &s.alice.cert, RoomAction::Leave, 3)
            .unwrap();
        let refused = admit_room(&before, s.bob.device_id(), &GoodStanding, &s.known);
        assert!(
            matches!(refused, RoomAdmission::Refused(RoomRefusal::NotAllowed(_))),
            "{refused:?}"
        );
        // An epoch bob has not seen yet: its op is on its way.
        s.epoch = OpHash([9; 32]);
        let ahead = seal(&mut s, "new epoch");
        assert_eq!(
            admit_room(&ahead, s.bob.device_id(), &GoodStanding, &s.known),
            RoomAdmission::NotYet(Missing::Epoch)
        );
    }

    #[test]
    fn a_key_waits_for_its_log_and_epoch_and_only_members_keys_are_taken() {
        let s = setup();
        let (alice, bob) = (s.alice.user_id(), s.bob.user_id());
        let grant = crate::room::RoomKeyGrant {
            room: s.room,
            epoch: s.epoch,
            key: s.key.clone(),
        };
        let log = s.known.logs.get(&s.room);
        assert_eq!(admit_key(&grant, &alice, &bob, log), KeyAdmission::Take);
        assert_eq!(
            admit_key(&grant, &alice, &bob, None),
            KeyAdmission::NotYet(Missing::Log)
        );
        let stranger = UserId([9; 20]);
        assert_eq!(
            admit_key(&grant, &stranger, &bob, log),
            KeyAdmission::Refused(RoomError::SenderNotMember)
        );
        assert_eq!(
            admit_key(&grant, &alice, &stranger, log),
            KeyAdmission::Refused(RoomError::SenderNotMember),
            "a key for an epoch this user was not in"
        );
        let ahead = crate::room::RoomKeyGrant {
            epoch: OpHash([9; 32]),
            ..grant
        };
        assert_eq!(
            admit_key(&ahead, &alice, &bob, log),
            KeyAdmission::NotYet(Missing::Epoch)
        );
    }

    #[test]
    fn a_text_over_the_limit_is_refused_as_too_large() {
        let mut s = setup();
        // `seal` refuses it; a modified sender would not.
        let text = RoomContent::Text {
            text: "x".repeat(MAX_TEXT_LEN + 1),
        };
        let envelope = RoomEnvelope::seal_sorted(
            &s.alice.device,
            &s.alice.cert,
            (s.room, s.epoch, &s.key),
            vec![s.bob.device_id()],
            MessageId::random(&mut s.entropy),
            1_000,
            &text,
            &mut s.entropy,
        )
        .unwrap();
        let refused = admit_room(&envelope, s.bob.device_id(), &GoodStanding, &s.known);
        let RoomAdmission::Refused(refusal) = refused else {
            panic!("too large");
        };
        assert_eq!(refusal.reason(), RefuseReason::TooLarge);
    }
}

#[cfg(test)]
mod take_tests {
    use super::*;
    use crate::entropy::SeededEntropy;
    use crate::room::{RoomAction, RoomOp};
    use crate::Identity;

    /// Ann (admin) adds Bob and Cy; each holds a copy of the log.
    fn room() -> (Vec<Identity>, RoomLog) {
        let mut entropy = SeededEntropy::new(3);
        let people: Vec<Identity> = ["ann", "bob", "cy", "dan"]
            .iter()
            .map(|n| Identity::generate(n, 0, &mut entropy))
            .collect();
        let (mut log, _) =
            RoomLog::create(&people[0].device, &people[0].cert, "team", 1, &mut entropy).unwrap();
        let users = vec![people[1].user_id(), people[2].user_id()];
        log.author(
            &people[0].device,
            &people[0].cert,
            RoomAction::Add { users },
            2,
        )
        .unwrap();
        (people, log)
    }

    #[test]
    fn an_add_made_without_a_concurrent_leave_hands_the_newcomer_that_leave() {
        let (p, base) = room();
        // Cy leaves while Ann, not having seen it, adds Dan.
        let (mut ann, mut cy, mut bob) = (base.clone(), base.clone(), base);
        let leave = cy
            .author(&p[2].device, &p[2].cert, RoomAction::Leave, 3)
            .unwrap();
        let add = ann
            .author(
                &p[0].device,
                &p[0].cert,
                RoomAction::Add {
                    users: vec![p[3].user_id()],
                },
                4,
            )
            .unwrap();
        // Bob takes the leave, then the add: he hands Dan the leave.
        let taken = take_ops(&mut bob, vec![leave.clone()], &p[1].user_id());
        assert_eq!(taken.verdict(), OpsVerdict::Taken);
        assert!(taken.catch_up.is_empty(), "a leave adds nobody");
        let taken = take_ops(&mut bob, vec![add.clone()], &p[1].user_id());
        assert_eq!(
            taken.catch_up,
            [(vec![p[3].user_id()], vec![leave.clone()])]
        );
        // Ann wrote the add: she sent Dan all she had, nothing to catch up.
        let taken = take_ops(&mut ann, vec![leave], &p[0].user_id());
        assert!(taken.catch_up.is_empty());
        // An op written on everything its log holds left nothing out.
        let later = bob
            .author(&p[1].device, &p[1].cert, RoomAction::Leave, 5)
            .unwrap();
        assert_eq!(bob.not_built_on(&later.hash()), Vec::<RoomOp>::new());
    }

    #[test]
    fn an_op_held_for_its_parents_is_not_acknowledged_until_it_is_taken() {
        let (p, base) = room();
        let (mut ann, mut bob) = (base.clone(), base);
        let first = ann
            .author(
                &p[0].device,
                &p[0].cert,
                RoomAction::SetTopic { topic: "a".into() },
                3,
            )
            .unwrap();
        let second = ann
            .author(
                &p[0].device,
                &p[0].cert,
                RoomAction::SetTopic { topic: "b".into() },
                4,
            )
            .unwrap();
        // The second overtakes the first: held, so no receipt.
        let taken = take_ops(&mut bob, vec![second.clone()], &p[1].user_id());
        assert_eq!((taken.held, taken.verdict()), (true, OpsVerdict::Retry));
        // Its retry, while still held: still no receipt.
        let taken = take_ops(&mut bob, vec![second.clone()], &p[1].user_id());
        assert_eq!(taken.verdict(), OpsVerdict::Retry);
        // The first arrives and releases it.
        let taken = take_ops(&mut bob, vec![first.clone()], &p[1].user_id());
        assert_eq!(taken.new, [first.hash(), second.hash()]);
        assert_eq!(taken.verdict(), OpsVerdict::Taken);
        // The retry of the second is now a known op: acknowledged.
        assert_eq!(
            take_ops(&mut bob, vec![second], &p[1].user_id()).verdict(),
            OpsVerdict::Taken
        );
    }

    #[test]
    fn a_whole_log_is_taken_only_by_a_user_it_adds() {
        let (p, log) = room();
        let ops = log.ops_in_order();
        let (taken, errors) = take_whole_log(log.id(), ops.clone(), &p[1].user_id()).unwrap();
        assert_eq!((taken.order(), errors), (log.order(), vec![]));
        assert_eq!(
            take_whole_log(log.id(), ops.clone(), &p[3].user_id()).unwrap_err(),
            WholeLogRefusal::NotAMember
        );
        let other = RoomId([7; 16]);
        assert_eq!(
            take_whole_log(other, ops.clone(), &p[1].user_id()).unwrap_err(),
            WholeLogRefusal::Invalid(RoomError::WrongRoom)
        );
        assert!(ops_batch_fits(&ops, 2));
        assert!(!ops_batch_fits(&[], 0));
        assert!(!ops_batch_fits(&ops, crate::room::MAX_OPS as u32 + 1));
    }

    #[test]
    fn a_batch_of_only_refused_ops_is_refused() {
        let (p, base) = room();
        let mut bob = base.clone();
        // Cy (no admin) removing Bob is refused by the log's rules or
        // skipped; a forged room is refused outright.
        let (mut other, _) = RoomLog::create(
            &p[3].device,
            &p[3].cert,
            "elsewhere",
            1,
            &mut SeededEntropy::new(9),
        )
        .unwrap();
        let foreign = other
            .author(
                &p[3].device,
                &p[3].cert,
                RoomAction::SetTopic { topic: "x".into() },
                2,
            )
            .unwrap();
        let taken = take_ops(&mut bob, vec![foreign], &p[1].user_id());
        assert!(
            matches!(taken.verdict(), OpsVerdict::Refused(RoomError::WrongRoom)),
            "{taken:?}"
        );
    }
}
