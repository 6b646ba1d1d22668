//! Whether an incoming envelope is taken: the receiver's rule, the same in
//! the daemon and the simulator.
//!
//! [`admit`] opens the envelope (decrypt + verify) and asks the caller's
//! [`Standing`] about the verified sender; it answers either
//! [`Admission::Admitted`] with the content to store, or
//! [`Admission::Refused`] with the [`Refusal`] whose
//! [`frame`](Refusal::frame) the sender gets back (a refusal is final: the
//! sender's outbox stops retrying). After the content is stored durably,
//! [`delivered_receipt`] signs the answer.
//!
//! # Order of the checks
//! 1. The envelope opens: addressed to this device, decrypts, the sender's
//!    certificate and signature verify ([`crate::Envelope::open`]). Nothing
//!    about the sender is looked up before, since until then the claimed
//!    sender is only a claim.
//! 2. The sending device was not removed by its user.
//! 3. The sender's user was not revoked by the organisation.
//! 4. The sender's user is not blocked by this user.
//!
//! The first that fails decides the reason; [`Refusal::reason`] keeps the
//! mapping onto [`RefuseReason`] that senders already understand (a revoked
//! user is told `Blocked`, as before the organisation had its own word).
//!
//! # Dedupe stays with the store
//! A copy that arrives again (a retry after a lost receipt) is admitted
//! again and answered with a receipt again, so the retry repairs the lost
//! receipt; only its effects must not repeat. Dedupe is not a type here
//! because each kind of content dedupes on its own key, atomically with
//! its effects: a post on `(sender device, id)` in the same `INSERT … ON
//! CONFLICT DO NOTHING` that stores it, a missed copy on its original
//! sender and id, a file offer on its transfer, room lines on theirs. A
//! separate "seen?" lookup in core would add a second source of truth and
//! a window between the check and the write. What core does fix is the
//! order: dedupe only ever sees the [`Opened`] content of an
//! [`Admission::Admitted`], keyed on the *verified* sender device, so
//! nobody can suppress a message by replaying its id.
//!
//! # Example
//! ```
//! use tincan_core::entropy::SeededEntropy;
//! use tincan_core::inbound::{admit, delivered_receipt, Admission, GoodStanding};
//! use tincan_core::delivery::receipt_proves_delivery;
//! use tincan_core::{Content, Envelope, Identity, MessageId};
//!
//! let mut entropy = SeededEntropy::new(1);
//! let alice = Identity::generate("alice", 0, &mut entropy);
//! let bob = Identity::generate("bob", 0, &mut entropy);
//! let id = MessageId::random(&mut entropy);
//! let hi = Content::Text { text: "hi".into() };
//! let envelope = Envelope::seal(
//!     &alice.device, &alice.cert, &[bob.cert.clone()], id, 1_000, &hi, &mut entropy,
//! )
//! .unwrap();
//! let Admission::Admitted(opened) = admit(&envelope, &bob.device, &GoodStanding) else {
//!     panic!("alice is in good standing");
//! };
//! assert_eq!(opened.content, hi);
//! // … stored durably, then:
//! let receipt = delivered_receipt(&bob.device, &opened, 2_000);
//! assert!(receipt_proves_delivery(&alice.device_id(), &id, &bob.cert, &receipt));
//! ```

use crate::wire::{Frame, RefuseReason};
use crate::{
    DeviceCert, DeviceId, DeviceKey, Envelope, MessageId, OpenError, Opened, Receipt, ReceiptKind,
    UserId,
};

/// What the receiver knows of a verified sender, from its own tables
/// (device revocations, the organisation's revocation list, its block
/// list). Asked only after the envelope opened, in the order of the
/// module's checks, and only as far as needed.
pub trait Standing {
    /// Whether `sender`'s device was removed by the user that certified it.
    fn device_removed(&self, sender: &DeviceCert) -> bool;
    /// Whether the organisation revoked `user`.
    fn user_revoked(&self, user: &UserId) -> bool;
    /// Whether this user blocked `user`.
    fn user_blocked(&self, user: &UserId) -> bool;
}

/// Every sender is in good standing: for a driver that models no device
/// removal, revocation or blocking (the simulator).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GoodStanding;

impl Standing for GoodStanding {
    fn device_removed(&self, _: &DeviceCert) -> bool {
        false
    }

    fn user_revoked(&self, _: &UserId) -> bool {
        false
    }

    fn user_blocked(&self, _: &UserId) -> bool {
        false
    }
}

/// What to do with an incoming envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Admission {
    /// Opened, verified, from a sender in good standing: store the content
    /// (deduped by the store), then answer with [`delivered_receipt`].
    /// When it cannot be stored right now, answer nothing, so the sender
    /// retries.
    Admitted(Opened),
    /// Not taken: answer with [`Refusal::frame`] and store nothing.
    Refused(Refusal),
}

/// Why an incoming envelope is refused, in the order the checks run.
// A refusal is matched right after `admit` and dropped, never kept in a
// collection, so `Blocked` stays unboxed like `Admitted` rather than cost
// an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The envelope did not open or verify.
    #[error("envelope does not open: {error}")]
    Unopened {
        /// The refused message (as the envelope claims it).
        message_id: MessageId,
        /// Why it did not open.
        #[source]
        error: OpenError,
    },
    /// The sending device was removed by its user.
    #[error("sending device {device} was removed")]
    DeviceRemoved {
        /// The refused message.
        message_id: MessageId,
        /// The removed device.
        device: DeviceId,
    },
    /// The organisation revoked the sender's user. Whatever path the
    /// envelope took (a stale mailbox, a hop that has not heard yet), a
    /// revoked user's messages are not taken.
    #[error("sender {user} was revoked")]
    UserRevoked {
        /// The refused message.
        message_id: MessageId,
        /// The revoked user.
        user: UserId,
    },
    /// This user blocked the sender's user: nothing is stored, shown or
    /// notified. The opened content is handed over all the same because
    /// a blocked device that restarted still asks for presence, and the
    /// receiver answers that ask with "offline" (so the blocked user sees
    /// nothing more than that).
    #[error("sender {} is blocked", .0.sender.user_id())]
    Blocked(Opened),
}

impl Refusal {
    /// The refused message.
    pub fn message_id(&self) -> MessageId {
        match self {
            Refusal::Unopened { message_id, .. }
            | Refusal::DeviceRemoved { message_id, .. }
            | Refusal::UserRevoked { message_id, .. } => *message_id,
            Refusal::Blocked(opened) => opened.id,
        }
    }

    /// The reason the sender is told. A sender that cannot be verified is
    /// told `BadSignature` whichever of its certificate or signature
    /// failed; every other way of not opening is `Undecryptable`.
    pub fn reason(&self) -> RefuseReason {
        match self {
            Refusal::Unopened { error, .. } => match error {
                OpenError::NotForThisDevice => RefuseReason::NotForThisDevice,
                OpenError::BadSignature | OpenError::SenderCert(_) => RefuseReason::BadSignature,
                _ => RefuseReason::Undecryptable,
            },
            Refusal::DeviceRemoved { .. } => RefuseReason::DeviceRemoved,
            Refusal::UserRevoked { .. } | Refusal::Blocked(_) => RefuseReason::Blocked,
        }
    }

    /// The answer to send back.
    pub fn frame(&self) -> Frame {
        Frame::Refused {
            message_id: self.message_id(),
            reason: self.reason(),
        }
    }
}

/// Decides whether `envelope` is taken by the device holding `me`, asking
/// `standing` about its verified sender (see the module's order of checks).
pub fn admit(envelope: &Envelope, me: &DeviceKey, standing: &impl Standing) -> Admission {
    judge(envelope.id, envelope.open(me), standing)
}

/// [`admit`] after the opening: what `standing` makes of envelope
/// `message_id` opened (or not) by [`Envelope::open`]. Opening is the
/// expensive part (a signature check and an X25519 agreement) and needs
/// nothing but this device's key, so a driver may run it on another
/// thread and judge here with the tables of the moment.
pub fn judge(
    message_id: MessageId,
    opened: Result<Opened, OpenError>,
    standing: &impl Standing,
) -> Admission {
    let opened = match opened {
        Ok(opened) => opened,
        Err(error) => return Admission::Refused(Refusal::Unopened { message_id, error }),
    };
    let message_id = opened.id;
    let user = opened.sender.user_id();
    let refusal = if standing.device_removed(&opened.sender) {
        Refusal::DeviceRemoved {
            message_id,
            device: opened.sender.device_id(),
        }
    } else if standing.user_revoked(&user) {
        Refusal::UserRevoked { message_id, user }
    } else if standing.user_blocked(&user) {
        Refusal::Blocked(opened)
    } else {
        return Admission::Admitted(opened);
    };
    Admission::Refused(refusal)
}

/// The receipt that answers an admitted envelope once its content is
/// stored (or found to be a duplicate): signed by this device (`me`) for
/// the verified sender device, at `now` (ms since the Unix epoch). The
/// sender checks it with [`crate::delivery::receipt_proves_delivery`].
pub fn delivered_receipt(me: &DeviceKey, opened: &Opened, now: u64) -> Receipt {
    Receipt::sign(
        me,
        opened.id,
        opened.sender.device_id(),
        ReceiptKind::Delivered,
        now,
    )
}

pub mod room;

#[cfg(test)]
mod tests;
