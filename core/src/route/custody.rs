//! The relay's custody rule: for each destination device of a routed item,
//! whether it is handed over now or held in the device's mailbox (and what
//! the sender is told), and what a flush of a mailbox settles once the
//! device answers. The relay (SQLite mailboxes) and the simulator
//! (in-memory mailboxes) both ask these, so the simulator's relay holds
//! and hands over exactly as the real one does.
//!
//! # Rules
//! - A device the relay can locate (a live gateway of its site, or its own
//!   connection) gets the item now, one copy per location
//!   ([`plan_route`]). A hop's `Receipt`, `Refused` or `Accepted` for a
//!   device settles it ([`settles`]); anything else (a failure, no answer,
//!   no location) leaves the item to custody.
//! - Custody is per device and deduped on [`MailKey`] (device, message id,
//!   kind, origin), so a sender retrying after a lost `Custody` answer
//!   never has a second copy held, receipts of several recipients of one
//!   message never collide, and no device can suppress another's item by
//!   reusing its id ([`put_outcome`]).
//! - A device's mailbox is capped in items and bytes, an organisation's
//!   storage in bytes of stored bodies; over either nothing is stored and
//!   the sender is told ([`PutOutcome::answer`]): a full mailbox is final,
//!   a full organisation is retried. Only a stored (or already stored)
//!   item answers `Custody`: the sender then stops retrying.
//! - A flush hands a held item to its device and keeps it until the device
//!   answers ([`after_flush`]): a valid receipt replaces it by that receipt
//!   held for the original sender (which is flushed by the same rules), an
//!   acceptance or refusal deletes it, and anything else keeps it for the
//!   next round. Nothing held is dropped on a failure.

use std::collections::BTreeMap;

use crate::receipt::{Receipt, ReceiptKind};
use crate::wire::RefuseReason;
use crate::{DeviceId, MessageId};

use super::{Answer, Routed};

/// The refusal text when an organisation's mail storage is full.
pub const ORG_FULL: &str =
    "the relay's mail storage for this organisation is full; the message stays queued and is retried";

/// What a held item is (part of the dedupe key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MailKind {
    /// A sealed envelope (pairwise or room).
    Envelope,
    /// A delivered receipt travelling back to its sender.
    Delivered,
    /// A read receipt travelling back to its sender.
    Read,
}

impl MailKind {
    /// The kind of a routed item.
    pub fn of(item: &Routed) -> MailKind {
        match item {
            Routed::Envelope(_) | Routed::Room(_) => MailKind::Envelope,
            Routed::Receipt(r) => match r.kind {
                ReceiptKind::Delivered => MailKind::Delivered,
                ReceiptKind::Read => MailKind::Read,
            },
        }
    }
}

/// The device an item comes from: an envelope's sender (its receipt goes
/// back there), a receipt's signer.
pub fn origin(item: &Routed) -> DeviceId {
    match item {
        Routed::Envelope(e) => e.sender.device_id(),
        Routed::Receipt(r) => r.recipient_device,
        Routed::Room(e) => e.sender.device_id(),
    }
}

/// What a held copy is deduped on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MailKey {
    /// The destination device.
    pub device: DeviceId,
    /// The item's message id.
    pub message_id: MessageId,
    /// The item's kind.
    pub kind: MailKind,
    /// The envelope's sender or the receipt's signer.
    pub origin: DeviceId,
}

impl MailKey {
    /// The key of `item` held for `device`.
    pub fn new(item: &Routed, device: DeviceId) -> MailKey {
        MailKey {
            device,
            message_id: item.message_id(),
            kind: MailKind::of(item),
            origin: origin(item),
        }
    }
}

/// The limits [`put_outcome`] enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MailQuota {
    /// Most items held per device.
    pub items: u64,
    /// Most bytes of items held per device (each counted in full: what the
    /// device will have to download).
    pub bytes: u64,
    /// Most bytes of stored bodies per organisation (each stored once,
    /// however many devices it waits for: what the disk holds).
    pub org_bytes: u64,
}

/// What a device's mailbox holds now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailboxUsage {
    /// Items held.
    pub items: u64,
    /// Their bytes, each counted in full.
    pub bytes: u64,
}

/// What became of one device's copy when the relay took custody.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// Stored now.
    Stored,
    /// Already stored before (a retry).
    Duplicate,
    /// The device's mailbox is over quota; nothing stored.
    Full,
    /// The organisation's storage quota is reached; nothing stored.
    OrgFull,
}

impl PutOutcome {
    /// What the sender is told for this device.
    pub fn answer(self) -> Answer {
        match self {
            PutOutcome::Stored | PutOutcome::Duplicate => Answer::Custody,
            PutOutcome::Full => Answer::Refused(RefuseReason::MailboxFull),
            // Not the device's fault and not for good: `Other` is retried
            // by senders, who keep the message queued.
            PutOutcome::OrgFull => Answer::Refused(RefuseReason::Other(ORG_FULL.into())),
        }
    }
}

/// Whether one device's copy of an item of `size` bytes is stored: `held`
/// says its [`MailKey`] is held already, `usage` what the device's mailbox
/// holds, and `org_bytes` the organisation's stored bytes when the item's
/// body is not stored yet (`None` when it is, so it costs nothing more).
///
/// ```
/// use tincan_core::route::custody::{put_outcome, MailQuota, MailboxUsage, PutOutcome};
///
/// let quota = MailQuota { items: 2, bytes: 1_000, org_bytes: 10_000 };
/// let empty = MailboxUsage::default();
/// assert_eq!(put_outcome(false, empty, 10, Some(0), &quota), PutOutcome::Stored);
/// assert_eq!(put_outcome(true, empty, 10, Some(0), &quota), PutOutcome::Duplicate);
/// let two = MailboxUsage { items: 2, bytes: 20 };
/// assert_eq!(put_outcome(false, two, 10, Some(0), &quota), PutOutcome::Full);
/// ```
pub fn put_outcome(
    held: bool,
    usage: MailboxUsage,
    size: u64,
    org_bytes: Option<u64>,
    quota: &MailQuota,
) -> PutOutcome {
    if held {
        return PutOutcome::Duplicate;
    }
    if usage.items >= quota.items || usage.bytes.saturating_add(size) > quota.bytes {
        return PutOutcome::Full;
    }
    match org_bytes {
        Some(bytes) if bytes.saturating_add(size) > quota.org_bytes => PutOutcome::OrgFull,
        _ => PutOutcome::Stored,
    }
}

/// Where the devices of one routed item go from the relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutePlan<L> {
    /// One copy per location (a site's gateway, or a device's own
    /// connection), naming the devices there.
    pub forward: BTreeMap<L, Vec<DeviceId>>,
    /// Devices with no location now: the item goes to their mailboxes.
    pub custody: Vec<DeviceId>,
}

/// Plans a checked item for `to`; `locate` says where a device is
/// reachable now, if anywhere. Devices named twice count once.
pub fn plan_route<L: Ord>(
    to: impl IntoIterator<Item = DeviceId>,
    mut locate: impl FnMut(&DeviceId) -> Option<L>,
) -> RoutePlan<L> {
    let mut plan = RoutePlan {
        forward: BTreeMap::new(),
        custody: Vec::new(),
    };
    for device in to {
        match locate(&device) {
            Some(location) => {
                let devices = plan.forward.entry(location).or_default();
                if !devices.contains(&device) {
                    devices.push(device);
                }
            }
            None if !plan.custody.contains(&device) => plan.custody.push(device),
            None => {}
        }
    }
    plan
}

/// Whether a hop's answer for a forwarded device settles it (the answer
/// goes back to the sender); anything else leaves the item to custody.
pub fn settles(answer: &Answer) -> bool {
    matches!(
        answer,
        Answer::Receipt(_) | Answer::Refused(_) | Answer::Accepted
    )
}

/// What the relay does with a held copy after a flush handed it over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flushed {
    /// Delivered: replace the copy, in one write, by this receipt held for
    /// the item's origin (the sender), then flush the sender.
    Settle(Receipt),
    /// Done with (taken, refused, or a receipt answer that cannot be for a
    /// receipt): delete the copy.
    Delete,
    /// Not answered or not proven: keep it for the next round.
    Keep,
}

/// What the answer `answer` of `device` to held `item` settles. `verifies`
/// checks a receipt's signature against the device's known certificate.
pub fn after_flush(
    item: &Routed,
    device: DeviceId,
    answer: Option<&Answer>,
    verifies: impl FnOnce(&Receipt) -> bool,
) -> Flushed {
    match answer {
        Some(Answer::Receipt(receipt)) => {
            let for_item = match item {
                Routed::Envelope(e) => receipt.message_id == e.id,
                Routed::Room(e) => receipt.message_id == e.id,
                Routed::Receipt(_) => false,
            };
            if for_item && receipt.recipient_device == device && verifies(receipt) {
                Flushed::Settle(receipt.clone())
            } else if MailKind::of(item) != MailKind::Envelope {
                // A held receipt answered with a receipt: a confused
                // device; nothing will ever settle it.
                Flushed::Delete
            } else {
                Flushed::Keep
            }
        }
        Some(Answer::Accepted | Answer::Refused(_)) => Flushed::Delete,
        Some(Answer::Failed(_) | Answer::Custody) | None => Flushed::Keep,
    }
}

#[cfg(test)]
mod tests;
