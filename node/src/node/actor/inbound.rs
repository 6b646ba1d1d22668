//! Incoming envelopes: core's rule decides whether one is taken
//! ([`tincan_core::inbound`]: open, then the sender's standing from this
//! actor's tables); here the admitted content goes to its handler inside
//! one store batch, then gets its receipt. Each kind of content has one
//! handler here (or in a module of its own), so a new kind adds a match
//! arm and a function. Dedupe is the handlers' (in the store, atomically
//! with what they write), after admission.

use tincan_core::inbound::{self, Admission, Refusal, Standing};
use tincan_core::wire::{Frame, RefuseReason, MAX_TEXT_LEN};
use tincan_core::{Content, DeviceCert, DeviceId, Envelope, MessageId, OpenError, Opened, UserId};

use super::sync::MissedCopy;
use super::Actor;
use crate::node::opener::Delivered;

/// Test hook: when set, the daemon aborts right after it committed an
/// incoming message (a post, not control content such as presence) and
/// before it sends the receipt, so a test can show
/// that such a message is neither lost nor shown twice.
pub(crate) const TEST_ABORT_BEFORE_RECEIPT_ENV: &str = "TINCAN_TEST_ABORT_BEFORE_RECEIPT";

fn abort_before_receipt() -> bool {
    static SET: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SET.get_or_init(|| {
        std::env::var_os(TEST_ABORT_BEFORE_RECEIPT_ENV).is_some_and(|v| !v.is_empty())
    })
}

/// Why an opened envelope gets no receipt.
pub(super) enum Rejection {
    /// Tell the sender it will never be accepted (it stops retrying).
    Refuse(RefuseReason),
    /// Could not be stored right now: stay silent so the sender retries.
    Retry,
    /// Part of it is stored (and kept), part waits for something still on
    /// its way: stay silent so the sender retries the rest.
    Unanswered,
}

/// The sender's standing, from the daemon's tables: the devices its users
/// removed, the organisation's revocation list, this user's block list.
impl Standing for Actor {
    fn device_removed(&self, sender: &DeviceCert) -> bool {
        self.devices.known.is_revoked(sender)
    }

    fn user_revoked(&self, user: &UserId) -> bool {
        self.is_revoked(user)
    }

    fn user_blocked(&self, user: &UserId) -> bool {
        self.is_blocked(user)
    }
}

impl Actor {
    /// An envelope a link delivered: opened by a worker (answered on
    /// `LinkEvent::Opened`), or here when the workers are busy.
    pub(super) fn on_delivered(&mut self, delivered: Delivered) {
        if let Err(delivered) = self.opener.submit(delivered) {
            let Delivered {
                device,
                envelope,
                reply,
            } = delivered;
            if let Some(frame) = self.on_envelope(device, *envelope) {
                self.answer(reply, frame);
            }
        }
    }

    /// Handles an envelope a peer delivered: opened, then core decides
    /// whether it is taken ([`inbound::judge`]); an admitted one is
    /// stored, then acknowledged. `None` = no answer: the sender will
    /// retry.
    pub(super) fn on_envelope(&mut self, from: DeviceId, envelope: Envelope) -> Option<Frame> {
        let opened = envelope.open(&self.identity.device);
        self.on_opened(from, envelope.id, opened)
    }

    /// [`Actor::on_envelope`] once the envelope was opened (maybe by a
    /// worker, `node/opener.rs`): core judges the sender's standing now
    /// ([`inbound::judge`]), then the same as there.
    pub(super) fn on_opened(
        &mut self,
        from: DeviceId,
        message_id: MessageId,
        opened: Result<Opened, OpenError>,
    ) -> Option<Frame> {
        let opened = match inbound::judge(message_id, opened, &*self) {
            Admission::Admitted(opened) => opened,
            Admission::Refused(refusal) => {
                self.on_refused(from, &refusal);
                return Some(refusal.frame());
            }
        };
        let now = self.now;
        let is_message = matches!(opened.content, Content::Text { .. } | Content::Post(_));
        match self.on_content_durably(&opened, now) {
            Ok(()) => {
                if is_message && abort_before_receipt() {
                    tracing::error!(message = %message_id, "{TEST_ABORT_BEFORE_RECEIPT_ENV} is set: aborting between the commit and the receipt (test hook)");
                    std::process::abort();
                }
                let receipt = inbound::delivered_receipt(&self.identity.device, &opened, now);
                Some(Frame::Receipt(receipt))
            }
            Err(Rejection::Refuse(reason)) => {
                tracing::warn!(%from, message = %message_id, ?reason, "refused content");
                Some(Frame::Refused { message_id, reason })
            }
            Err(Rejection::Retry | Rejection::Unanswered) => None,
        }
    }

    /// Logs a refused envelope, and lets a blocked device's presence ask
    /// have its answer (see [`Actor::on_blocked_content`]).
    fn on_refused(&mut self, from: DeviceId, refusal: &Refusal) {
        let message_id = refusal.message_id();
        match refusal {
            Refusal::Unopened { error, .. } => {
                tracing::warn!(%from, message = %message_id, %error, "refused envelope");
            }
            Refusal::DeviceRemoved { device, .. } => {
                tracing::warn!(%from, message = %message_id, %device, "refused a message from a removed device");
            }
            Refusal::UserRevoked { user, .. } => {
                tracing::warn!(%from, message = %message_id, %user, "refused a message from a revoked user");
            }
            Refusal::Blocked(opened) => {
                // Not stored, shown or notified; the sender's outbox stops.
                tracing::info!(%from, message = %message_id, user = %opened.sender.user_id(), "refused a message from a blocked user");
                self.on_blocked_content(opened);
            }
            other => {
                tracing::warn!(%from, message = %message_id, error = %other, "refused envelope");
            }
        }
    }

    /// [`Actor::on_content`] in one store batch: the content and all it
    /// implies (history row, pending change applied, copies queued for
    /// this user's other devices) commit together, and the commit is on
    /// disk before this returns `Ok`, so a receipt sent afterwards never
    /// promises what a crash could take back. A refusal keeps what its
    /// handler stored (as a refusal always did); a retry keeps nothing, the
    /// sender sends it all again.
    fn on_content_durably(&mut self, opened: &Opened, now: u64) -> Result<(), Rejection> {
        if let Err(e) = self.store.begin_batch() {
            tracing::error!(message = %opened.id, error = %e, "cannot begin storing a message; not acknowledged");
            return Err(Rejection::Retry);
        }
        let outcome = self.on_content(opened, now);
        let finished = match outcome {
            Err(Rejection::Retry) => self.store.rollback_batch(),
            _ => self.store.commit_batch(),
        };
        if let Err(e) = finished {
            tracing::error!(error = %e, "cannot commit an incoming message; not acknowledged");
            // A failed COMMIT may leave the transaction open.
            if let Err(e) = self.store.rollback_batch() {
                tracing::error!(error = %e, "cannot roll back an incoming message");
            }
            return Err(Rejection::Retry);
        }
        outcome
    }

    /// Dispatches verified content to its handler. Dedupe happens in the
    /// handlers, after the signature check done by `open`, so nobody can
    /// suppress a message by replaying its id.
    fn on_content(&mut self, opened: &Opened, now: u64) -> Result<(), Rejection> {
        match opened.content.clone() {
            Content::Text { text } => self.on_text(opened, text, now),
            Content::FileOffer(offer) => self.on_file_offer(opened, offer, now),
            Content::FileControl { transfer, action } => {
                self.on_file_control(opened, transfer, action)
            }
            Content::Presence(update) => self.on_presence(opened, update),
            Content::Typing => self.on_typing(opened, now),
            Content::Receipts(list) => self.on_read_receipts(opened, list, now),
            Content::Post(post) => self.on_post(opened, post, now),
            Content::Change(change) => self.on_change(opened, change),
            Content::Contact(note) => self.on_contact_note(opened, note),
            Content::OwnCopy {
                message,
                to,
                content,
            } => self.on_own_copy(opened, message, to, *content),
            Content::ReadSync { peer, up_to_ms } => self.on_read_sync(opened, peer, up_to_ms),
            Content::MissedCopy {
                message,
                from,
                from_name,
                sent_at_ms,
                content,
            } => {
                let copy = MissedCopy {
                    message,
                    from,
                    from_name,
                    sent_at_ms,
                };
                self.on_missed_copy(opened, copy, *content, now)
            }
            Content::RoomOps { room, ops, log_len } => self.on_room_ops(opened, room, ops, log_len),
            Content::RoomKey(grant) => self.on_room_key(opened, grant),
            Content::RoomJoinRequest { room, secret } => {
                self.on_room_join_request(opened, room, secret)
            }
            #[allow(unreachable_patterns)]
            _ => Err(Rejection::Refuse(RefuseReason::Other(
                "unsupported content".into(),
            ))),
        }
    }

    fn on_text(&mut self, opened: &Opened, text: String, now: u64) -> Result<(), Rejection> {
        if text.len() > MAX_TEXT_LEN {
            return Err(Rejection::Refuse(RefuseReason::TooLarge));
        }
        self.on_post(opened, tincan_core::Post::text(text), now)
    }
}
