//! Read receipts: `tincan read PEER` marks the conversation read here and
//! sends the senders' devices signed `ReceiptKind::Read` receipts, sealed
//! in one envelope per device (a batch of up to `MAX_RECEIPTS`) and queued
//! in the durable outbox like any message, so they survive restarts, are
//! routed to other sites and held by the relay for offline devices. The
//! sender takes only receipts signed by the device that sent the envelope,
//! for its own messages, and moves only that reader's conversation row to
//! `read` (a read also proves delivery to that device).

use std::collections::BTreeMap;

use tincan_core::outbox::AttemptOutcome;
use tincan_core::receipt::MAX_RECEIPTS;
use tincan_core::wire::RefuseReason;
use tincan_core::{Content, DeviceId, MessageId, Opened, Receipt, ReceiptKind};

use super::inbound::Rejection;
use super::Actor;
use crate::event::ReadView;
use crate::keystore::OsEntropy;
use crate::node::NodeError;
use crate::store::MessageState;

impl Actor {
    pub(super) fn read_conversation(&mut self, peer: &str) -> Result<ReadView, NodeError> {
        let user = self.book.resolve(peer)?;
        let newly = self.store.mark_conversation_read(&user)?;
        let mut receipts = 0;
        if self.chat.read_receipts && !self.is_blocked(&user) {
            let now = self.now;
            let mut by_device: BTreeMap<DeviceId, Vec<MessageId>> = BTreeMap::new();
            for read in &newly {
                by_device.entry(read.from_device).or_default().push(read.id);
            }
            for (device, ids) in by_device {
                let Some(cert) = self.certs.get(&device).cloned() else {
                    tracing::warn!(%device, "no certificate of the sending device; read receipts not sent");
                    continue;
                };
                for chunk in ids.chunks(MAX_RECEIPTS) {
                    let list: Vec<Receipt> = chunk
                        .iter()
                        .map(|id| {
                            Receipt::sign(
                                &self.identity.device,
                                *id,
                                device,
                                ReceiptKind::Read,
                                now,
                            )
                        })
                        .collect();
                    let id = MessageId::random(&mut OsEntropy);
                    let content = Content::Receipts(list);
                    match self.queue_envelope(
                        id,
                        now,
                        &content,
                        cert.user_id(),
                        std::slice::from_ref(&cert),
                        &[],
                    ) {
                        Ok(()) => receipts += chunk.len(),
                        Err(e) => {
                            tracing::error!(%device, error = %e, "cannot queue read receipts")
                        }
                    }
                }
            }
        }
        if !newly.is_empty() {
            self.sync_read(user, self.now);
        }
        tracing::info!(peer = %user, marked = newly.len(), receipts, "conversation read");
        Ok(ReadView {
            peer: user.to_string(),
            marked: newly.len(),
            receipts,
        })
    }

    /// Read receipts from the device that sent the envelope.
    pub(super) fn on_read_receipts(
        &mut self,
        opened: &Opened,
        list: Vec<Receipt>,
        now: u64,
    ) -> Result<(), Rejection> {
        if list.len() > MAX_RECEIPTS {
            return Err(Rejection::Refuse(RefuseReason::TooLarge));
        }
        let reader = opened.sender.user_id();
        let device = opened.sender.device_id();
        let me = self.identity.device_id();
        for receipt in list {
            if receipt.kind != ReceiptKind::Read
                || receipt.recipient_device != device
                || receipt.sender_device != me
                || receipt.verify(&opened.sender).is_err()
            {
                tracing::warn!(%device, message = %receipt.message_id, "invalid read receipt ignored");
                continue;
            }
            match self.store.mark_read_by(&receipt.message_id, &me, &reader) {
                Ok(true) => {
                    tracing::info!(message = %receipt.message_id, %device, "read");
                    self.emit_state(receipt.message_id, reader, MessageState::Read, None);
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot store read state; not acknowledged");
                    return Err(Rejection::Retry);
                }
            }
            // Read on that device proves it got the message.
            self.outbox
                .handle_outcome(now, receipt.message_id, device, AttemptOutcome::Delivered);
        }
        Ok(())
    }
}
