//! Keeping a user's devices in step: what one device sends shows as
//! outgoing on the others ([`Content::OwnCopy`]), and a conversation read
//! on one is read on the others ([`Content::ReadSync`]), without a second
//! read receipt to the peer. Both travel sealed to the user's other
//! devices through the durable outbox, so an offline device catches up;
//! both are taken only from a device of the same user.

use tincan_core::wire::{RefuseReason, MAX_TEXT_LEN};
use tincan_core::{Content, MessageId, Opened, UserId};

use super::inbound::Rejection;
use super::Actor;
use crate::event::{MessageView, NodeEvent};
use crate::keystore::OsEntropy;
use crate::store::{Direction, MessageExtras, MessageRecord, MessageState};

impl Actor {
    /// Queues a copy of message `id` (sent to `to`) for this user's other
    /// devices.
    pub(super) fn sync_sent(&mut self, id: MessageId, now: u64, to: &[UserId], content: Content) {
        let own = self.own_other_devices();
        if own.is_empty() {
            return;
        }
        let copy = Content::OwnCopy {
            message: id,
            to: to.to_vec(),
            content: Box::new(content),
        };
        let copy_id = MessageId::random(&mut OsEntropy);
        let me = self.identity.user_id();
        if let Err(e) = self.queue_envelope(copy_id, now, &copy, me, &own, &[]) {
            tracing::warn!(message = %id, error = %e, "cannot queue the copy for own devices");
        }
    }

    /// Tells this user's other devices that the conversation with `peer`
    /// was read here.
    pub(super) fn sync_read(&mut self, peer: UserId, now: u64) {
        let own = self.own_other_devices();
        if own.is_empty() {
            return;
        }
        let up_to_ms = match self.store.latest_incoming_ms(&peer) {
            Ok(Some(at)) => at,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the conversation's newest message");
                return;
            }
        };
        let content = Content::ReadSync { peer, up_to_ms };
        let id = MessageId::random(&mut OsEntropy);
        let me = self.identity.user_id();
        if let Err(e) = self.queue_envelope(id, now, &content, me, &own, &[]) {
            tracing::warn!(error = %e, "cannot queue read sync for own devices");
        }
    }

    fn check_own_device(&self, opened: &Opened) -> Result<(), Rejection> {
        if opened.sender.user_id() == self.identity.user_id() {
            Ok(())
        } else {
            Err(Rejection::Refuse(RefuseReason::Other(
                "only the user's own devices may send that".into(),
            )))
        }
    }

    /// Another device of this user sent `content` to `to`: store it as
    /// outgoing in each of those conversations (deduped like any message).
    pub(super) fn on_own_copy(
        &mut self,
        opened: &Opened,
        message: MessageId,
        to: Vec<UserId>,
        content: Content,
    ) -> Result<(), Rejection> {
        self.check_own_device(opened)?;
        let post = match content {
            Content::Text { text } => tincan_core::Post::text(text),
            Content::Post(post) => post,
            // Other kinds of content have no history row: nothing to show.
            _ => return Ok(()),
        };
        if post.text.len() > MAX_TEXT_LEN || to.len() > tincan_core::envelope::MAX_RECIPIENTS {
            return Err(Rejection::Refuse(RefuseReason::TooLarge));
        }
        if let Err(e) = post.validate() {
            return Err(Rejection::Refuse(RefuseReason::Other(e.to_string())));
        }
        let text = post.text.clone();
        let sender = &opened.sender;
        for user in to {
            let record = MessageRecord {
                id: message,
                direction: Direction::Out,
                peer: user,
                from_user: sender.user_id(),
                from_device: sender.device_id(),
                to_user: user,
                text: text.clone(),
                sent_at_ms: opened.created_at_ms,
                received_at_ms: None,
                state: MessageState::Sent,
                error: None,
                room: None,
                system: false,
                extras: MessageExtras::of_post(&post),
            };
            match self.store.insert_message(&record) {
                Ok(true) => {
                    tracing::info!(%message, to = %user, "message sent from another own device");
                    self.emit(NodeEvent::SentElsewhere {
                        message: MessageView::from(&record),
                    });
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(%message, error = %e, "cannot store own copy; not acknowledged");
                    return Err(Rejection::Retry);
                }
            }
        }
        Ok(())
    }

    /// Another device of this user read the conversation with `peer`.
    pub(super) fn on_read_sync(
        &mut self,
        opened: &Opened,
        peer: UserId,
        up_to_ms: u64,
    ) -> Result<(), Rejection> {
        self.check_own_device(opened)?;
        match self.store.mark_read_up_to(&peer, up_to_ms) {
            Ok(marked) => {
                tracing::info!(%peer, marked, "conversation read on another own device");
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot store read sync; not acknowledged");
                Err(Rejection::Retry)
            }
        }
    }
}
