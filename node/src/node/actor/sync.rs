//! Keeping a user's devices in step: what one device sends shows as
//! outgoing on the others ([`Content::OwnCopy`]), a message another user
//! sealed before it knew all of this user's devices reaches the ones it
//! missed ([`Content::MissedCopy`]), and a conversation read on one is
//! read on the others ([`Content::ReadSync`]), without a second read
//! receipt to the peer. All three travel sealed to the user's other
//! devices through the durable outbox, so an offline device catches up,
//! and are taken only from a device of the same user.

use tincan_core::wire::{RefuseReason, MAX_TEXT_LEN};
use tincan_core::{Content, DeviceCert, MessageId, Opened, Post, UserId};

use super::inbound::Rejection;
use super::Actor;
use crate::event::{MessageView, NodeEvent};
use crate::keystore::OsEntropy;
use crate::store::{Direction, MessageExtras, MessageRecord, MessageState};

/// The envelope of a [`Content::MissedCopy`], without its content.
pub(super) struct MissedCopy {
    /// The original message id.
    pub message: MessageId,
    /// The original sender's device certificate.
    pub from: DeviceCert,
    /// The sender's name as the passing device knows it.
    pub from_name: String,
    /// When the original sender wrote it.
    pub sent_at_ms: u64,
}

fn refuse(why: &str) -> Rejection {
    Rejection::Refuse(RefuseReason::Other(why.into()))
}

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

    /// `opened`, a new post from another user, was not sealed for some of
    /// this user's devices (its sender had not heard of them yet): queue a
    /// copy for those.
    pub(super) fn copy_to_missed_devices(&mut self, opened: &Opened, post: Post, now: u64) {
        let me = self.identity.user_id();
        if opened.sender.user_id() == me {
            return;
        }
        let missed: Vec<DeviceCert> = self
            .own_other_devices()
            .into_iter()
            .filter(|c| !opened.sealed_for.contains(&c.device_id()))
            .collect();
        if missed.is_empty() {
            return;
        }
        let copy = Content::MissedCopy {
            message: opened.id,
            from: opened.sender.clone(),
            from_name: self.book.display_name(&opened.sender.user_id()),
            sent_at_ms: opened.created_at_ms,
            content: Box::new(Content::Post(post)),
        };
        let copy_id = MessageId::random(&mut OsEntropy);
        match self.queue_envelope(copy_id, now, &copy, me, &missed, &[]) {
            Ok(()) => tracing::info!(
                message = %opened.id,
                devices = missed.len(),
                "copying a message to own devices its sender did not know"
            ),
            Err(e) => {
                tracing::warn!(message = %opened.id, error = %e, "cannot queue the copy for own devices")
            }
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

    /// Another device of this user passed on a message from another user
    /// that was not sealed for this device: take it as if it had come
    /// straight from its sender (deduped by the original id), and remember
    /// the sender's device so the conversation can be answered.
    pub(super) fn on_missed_copy(
        &mut self,
        opened: &Opened,
        copy: MissedCopy,
        content: Content,
        now: u64,
    ) -> Result<(), Rejection> {
        self.check_own_device(opened)?;
        let post = match content {
            Content::Text { text } => Post::text(text),
            Content::Post(post) => post,
            _ => return Err(refuse("only messages are passed on to own devices")),
        };
        let from = &copy.from;
        if from.verify().is_err() {
            return Err(refuse(
                "the passed-on message's sender certificate is invalid",
            ));
        }
        let author = from.user_id();
        if author == self.identity.user_id() {
            return Err(refuse("a passed-on message must come from another user"));
        }
        if self.devices.known.is_revoked(from)
            || self.is_revoked(&author)
            || self.is_blocked(&author)
        {
            tracing::info!(message = %copy.message, from = %author, "dropped a passed-on message from a removed, revoked or blocked sender");
            return Ok(());
        }
        self.remember_vouched_peer(from, &copy.from_name);
        self.take_post(copy.message, from, copy.sent_at_ms, &post, now)?;
        Ok(())
    }

    /// Learns `cert` (named `name` by one of this user's devices) unless it
    /// is already known here.
    fn remember_vouched_peer(&mut self, cert: &DeviceCert, name: &str) {
        let device = cert.device_id();
        if self.book.device(&device).is_some() {
            return;
        }
        if crate::keystore::validate_name(name).ok().as_deref() != Some(name) {
            tracing::warn!(%device, "passed-on sender with an invalid name not remembered");
            return;
        }
        self.remember_device(cert, name.to_string());
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
