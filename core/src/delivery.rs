//! A sent message's delivery, across all the devices it was sealed to: the
//! rules that decide what a recipient's answer proves, and how the answers
//! of several devices add up to the one state a user sees next to the
//! message (`queued → sent → delivered → read`, or `failed` with a reason).
//!
//! The [`crate::outbox::Outbox`] decides *when* to try each device again;
//! [`Deliveries`] decides what the outcomes *mean* for the message:
//! delivered as soon as one device acknowledged it, failed only once every
//! device failed, with the last reason kept for the user. It hands the
//! driver [`DeliveryEffect`]s — rows to write, in the order that keeps a
//! kill harmless — and never touches storage itself.
//!
//! # Example
//! ```
//! use tincan_core::delivery::{Deliveries, DeliveryEffect, MessageState};
//! use tincan_core::outbox::OutboxEvent;
//! use tincan_core::{DeviceId, MessageId, UserId};
//!
//! let (id, bob, phone, laptop) = (
//!     MessageId([1; 16]),
//!     UserId([2; 20]),
//!     DeviceId([3; 20]),
//!     DeviceId([4; 20]),
//! );
//! let mut deliveries = Deliveries::new();
//! deliveries.insert(id, "sealed frame", bob, [phone, laptop]);
//! deliveries.handle_outbox_event(OutboxEvent::Delivered { message_id: id, device: phone });
//! assert_eq!(
//!     deliveries.poll_effect(),
//!     Some(DeliveryEffect::State { id, to: bob, state: MessageState::Delivered, error: None })
//! );
//! assert_eq!(deliveries.poll_effect(), Some(DeliveryEffect::Settled { id, device: phone }));
//! assert!(deliveries.frame(&id).is_some(), "the laptop still waits for it");
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::str::FromStr;

use crate::outbox::{AttemptOutcome, OutboxEvent};
use crate::wire::{Frame, RefuseReason};
use crate::{DeviceCert, DeviceId, MessageId, Receipt, UserId};

/// Delivery state of a message, as stored and shown (`--json` `state`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum MessageState {
    /// Stored locally, not yet handed to any recipient device.
    Queued,
    /// Accepted by at least one recipient device or a relay.
    Sent,
    /// The recipient acknowledged it.
    Delivered,
    /// The recipient displayed it.
    Read,
    /// Given up (expired or rejected); see the message's `error`.
    Failed,
}

impl MessageState {
    /// Every state, in their forward order (then `failed`).
    pub const ALL: [MessageState; 5] = [
        MessageState::Queued,
        MessageState::Sent,
        MessageState::Delivered,
        MessageState::Read,
        MessageState::Failed,
    ];

    /// The lowercase name stored in the database and used on the control API.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::Sent => "sent",
            MessageState::Delivered => "delivered",
            MessageState::Read => "read",
            MessageState::Failed => "failed",
        }
    }

    /// Whether a message in this state may move to `next`.
    ///
    /// `queued < sent < delivered < read` only move forward; `failed` is
    /// reachable only from `queued` or `sent`. A failed message may still
    /// become `delivered` or `read`, because a receipt is proof of delivery
    /// that overrides an earlier give-up (e.g. an expiry racing the ack).
    /// Staying in the same state is not an advance.
    pub fn can_advance_to(self, next: MessageState) -> bool {
        use MessageState::*;
        match (self, next) {
            (Queued | Sent, Failed) => true,
            (_, Failed) => false,
            (Failed, Delivered | Read) => true,
            (Failed, _) => false,
            // Declaration order is the forward order of the other states.
            (current, next) => next > current,
        }
    }
}

impl fmt::Display for MessageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of `queued`, `sent`, `delivered`, `read`,
/// `failed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown message state {0:?}")]
pub struct ParseStateError(pub String);

impl FromStr for MessageState {
    type Err = ParseStateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "queued" => MessageState::Queued,
            "sent" => MessageState::Sent,
            "delivered" => MessageState::Delivered,
            "read" => MessageState::Read,
            "failed" => MessageState::Failed,
            other => return Err(ParseStateError(other.to_owned())),
        })
    }
}

/// The failure reason of an attempt answered by a receipt that proves
/// nothing (wrong message, wrong sender, bad signature): the driver may
/// want to log it, as it points at a bug or an attack.
pub const INVALID_RECEIPT: &str = "invalid receipt";

/// Whether `receipt` proves that the device of `recipient` got message
/// `message_id` from this device (`me`): it must name both and carry the
/// recipient's valid signature. Anything else proves nothing, whoever
/// relayed it.
pub fn receipt_proves_delivery(
    me: &DeviceId,
    message_id: &MessageId,
    recipient: &DeviceCert,
    receipt: &Receipt,
) -> bool {
    receipt.message_id == *message_id
        && receipt.sender_device == *me
        && receipt.recipient_device == recipient.device_id()
        && receipt.verify(recipient).is_ok()
}

/// What one attempt to hand message `message_id` to a device achieved,
/// judged from the device's (or a relay's) answer: a valid receipt is
/// delivery; a refusal is final, with a reason a user can act on; anything
/// else is worth another try. `recipient` is `None` when the device's
/// certificate is unknown, so no receipt can prove anything.
pub fn judge_answer(
    me: &DeviceId,
    message_id: &MessageId,
    recipient: Option<&DeviceCert>,
    answer: Result<Frame, String>,
) -> AttemptOutcome {
    match answer {
        Ok(Frame::Receipt(receipt)) => match recipient {
            None => AttemptOutcome::Failed("receipt from an unknown device".into()),
            Some(cert) if receipt_proves_delivery(me, message_id, cert, &receipt) => {
                AttemptOutcome::Delivered
            }
            Some(_) => AttemptOutcome::Failed(INVALID_RECEIPT.into()),
        },
        Ok(Frame::Refused { reason, .. }) => refusal(reason),
        Ok(_) => AttemptOutcome::Failed("unexpected answer".into()),
        Err(e) => AttemptOutcome::Failed(e),
    }
}

/// A refusal in the words the sender's history shows.
fn refusal(reason: RefuseReason) -> AttemptOutcome {
    match reason {
        // Free text from a hop: not known to be final.
        RefuseReason::Other(text) => AttemptOutcome::Failed(text),
        RefuseReason::MailboxFull => AttemptOutcome::Refused(
            "the relay's mailbox for this offline device is full (quota reached); it will take messages again once the device has fetched its mail".into(),
        ),
        RefuseReason::UnknownDevice => AttemptOutcome::Refused(
            "the relay does not know this device in your organisation".into(),
        ),
        permanent => AttemptOutcome::Refused(format!("refused by recipient: {permanent:?}")),
    }
}

/// What the driver does for a delivery, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryEffect {
    /// Move the message's row to `state` (only forward, see
    /// [`MessageState::can_advance_to`]) and tell watchers if it moved.
    State {
        /// The message.
        id: MessageId,
        /// Its recipient user (the conversation).
        to: UserId,
        /// The new state.
        state: MessageState,
        /// Why, when failed.
        error: Option<String>,
    },
    /// A relay holds the message for the offline device: mark its outbox
    /// row held (no more retries; the receipt comes later).
    Held {
        /// The message.
        id: MessageId,
        /// The device it waits for.
        device: DeviceId,
    },
    /// The device is done with, delivered or failed for good: drop its
    /// outbox row. Always after the state it led to, so a kill in between
    /// re-sends (deduped by the receiver) instead of leaving a delivered
    /// message shown as sent.
    Settled {
        /// The message.
        id: MessageId,
        /// The device.
        device: DeviceId,
    },
}

/// One message still being delivered to some of its devices.
#[derive(Debug)]
struct Delivery<F> {
    frame: F,
    to: UserId,
    remaining: BTreeSet<DeviceId>,
    delivered: bool,
    last_error: Option<String>,
}

/// The sent messages still on their way, with what each needs (`F` is the
/// sealed frame the driver sends; core does not look into it).
#[derive(Debug)]
pub struct Deliveries<F> {
    pending: BTreeMap<MessageId, Delivery<F>>,
    effects: VecDeque<DeliveryEffect>,
}

impl<F> Default for Deliveries<F> {
    fn default() -> Self {
        Self {
            pending: BTreeMap::new(),
            effects: VecDeque::new(),
        }
    }
}

impl<F> Deliveries<F> {
    /// No message on its way.
    pub fn new() -> Self {
        Self::default()
    }

    /// Message `id` to user `to`, sealed as `frame` for `devices`, is on its
    /// way (just queued, or restored from the store at start).
    pub fn insert(
        &mut self,
        id: MessageId,
        frame: F,
        to: UserId,
        devices: impl IntoIterator<Item = DeviceId>,
    ) {
        self.pending.insert(
            id,
            Delivery {
                frame,
                to,
                remaining: devices.into_iter().collect(),
                delivered: false,
                last_error: None,
            },
        );
    }

    /// Adds `device` to message `id`, as the outbox rows come back from the
    /// store at start (one row per device); `frame` makes the sealed frame
    /// when the message is not known yet.
    pub fn restore(
        &mut self,
        id: MessageId,
        to: UserId,
        device: DeviceId,
        frame: impl FnOnce() -> F,
    ) {
        self.pending
            .entry(id)
            .or_insert_with(|| Delivery {
                frame: frame(),
                to,
                remaining: BTreeSet::new(),
                delivered: false,
                last_error: None,
            })
            .remaining
            .insert(device);
    }

    /// The messages still waiting for `device`.
    pub fn waiting_for(&self, device: &DeviceId) -> Vec<MessageId> {
        self.pending
            .iter()
            .filter(|(_, d)| d.remaining.contains(device))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The sealed frame of a message on its way.
    pub fn frame(&self, id: &MessageId) -> Option<&F> {
        self.pending.get(id).map(|d| &d.frame)
    }

    /// The recipient user of a message on its way.
    pub fn recipient(&self, id: &MessageId) -> Option<UserId> {
        self.pending.get(id).map(|d| d.to)
    }

    /// How many messages are on their way.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no message is on its way.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Takes what the outbox reported about one device of a message.
    pub fn handle_outbox_event(&mut self, event: OutboxEvent) {
        let (id, device, failure) = match event {
            OutboxEvent::Held { message_id, device } => {
                self.effects.push_back(DeliveryEffect::Held {
                    id: message_id,
                    device,
                });
                if let Some(to) = self.recipient(&message_id) {
                    self.push_state(message_id, to, MessageState::Sent, None);
                }
                return;
            }
            OutboxEvent::Delivered { message_id, device } => (message_id, device, None),
            OutboxEvent::Failed {
                message_id,
                device,
                reason,
            } => (message_id, device, Some(reason)),
        };
        if let Some(delivery) = self.pending.get_mut(&id) {
            delivery.remaining.remove(&device);
            let (to, done) = (delivery.to, delivery.remaining.is_empty());
            match failure {
                None => {
                    delivery.delivered = true;
                    self.push_state(id, to, MessageState::Delivered, None);
                }
                Some(reason) => {
                    delivery.last_error = Some(reason);
                    if done && !delivery.delivered {
                        let error = delivery.last_error.clone();
                        self.push_state(id, to, MessageState::Failed, error);
                    }
                }
            }
            if done {
                self.pending.remove(&id);
            }
        }
        self.effects
            .push_back(DeliveryEffect::Settled { id, device });
    }

    /// A copy of message `id` left this device: written to a peer's link
    /// or taken into a relay's custody. Shown as sent until a receipt.
    pub fn handle_handed_over(&mut self, id: MessageId) {
        if let Some(to) = self.recipient(&id) {
            self.push_state(id, to, MessageState::Sent, None);
        }
    }

    fn push_state(
        &mut self,
        id: MessageId,
        to: UserId,
        state: MessageState,
        error: Option<String>,
    ) {
        self.effects.push_back(DeliveryEffect::State {
            id,
            to,
            state,
            error,
        });
    }

    /// The next thing the driver must do, in order.
    #[must_use]
    pub fn poll_effect(&mut self) -> Option<DeliveryEffect> {
        self.effects.pop_front()
    }
}

#[cfg(test)]
mod tests;
