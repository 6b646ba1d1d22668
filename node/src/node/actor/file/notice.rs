//! Offers and notices arriving end to end (sealed envelopes, already
//! opened and verified): a new offer is stored (a redelivered one is
//! acknowledged again without a second row), and a notice changes the
//! transfer only when it comes from that transfer's peer device.
//!
//! Offers and notices travel independently (outbox retries, relay
//! mailboxes), so a cancel can overtake its offer. A notice for a
//! transfer not known yet is stored ("early notice") and applied when the
//! offer from the same device arrives: a cancelled offer then never shows
//! as `offered`, whatever the order.

use tincan_core::file::{FileAction, FileOffer, TransferId};
use tincan_core::wire::RefuseReason;
use tincan_core::Opened;

use super::Transfer;

/// Most offers from one device that may wait for the user's answer (a
/// colleague sending a folder's files one by one stays far below it).
pub(in crate::node::actor) const MAX_WAITING_OFFERS_PER_DEVICE: usize = 64;
/// Most offers that may wait in all.
pub(in crate::node::actor) const MAX_WAITING_OFFERS: usize = 4_096;
use crate::event::NodeEvent;
use crate::node::actor::inbound::Rejection;
use crate::node::actor::Actor;
use crate::store::{Direction, TransferRecord, TransferState};

impl Actor {
    /// An offer arrived (sealed, verified): remember it, or take it again
    /// (a redelivery) without a second row.
    pub(in crate::node::actor) fn on_file_offer(
        &mut self,
        opened: &Opened,
        offer: FileOffer,
        now: u64,
    ) -> Result<(), Rejection> {
        if offer.validate().is_err() {
            return Err(Rejection::Refuse(RefuseReason::Other(
                "invalid file offer".into(),
            )));
        }
        let key = (offer.transfer, Direction::In);
        let sender = opened.sender.device_id();
        if let Some(t) = self.files.transfers.get(&key) {
            return if t.record.devices.first() == Some(&sender) {
                Ok(())
            } else {
                Err(Rejection::Refuse(RefuseReason::Other(
                    "transfer id in use".into(),
                )))
            };
        }
        // Offers wait for the user, so a peer could otherwise pile them up
        // without end; past the bound the sender is told at once.
        let (from_sender, waiting) = self
            .files
            .transfers
            .iter()
            .filter(|((_, d), t)| *d == Direction::In && t.record.state == TransferState::Offered)
            .fold((0, 0), |(mine, all), (_, t)| {
                let theirs = t.record.devices.first() == Some(&sender);
                (mine + usize::from(theirs), all + 1)
            });
        if from_sender >= MAX_WAITING_OFFERS_PER_DEVICE || waiting >= MAX_WAITING_OFFERS {
            tracing::warn!(transfer = %offer.transfer, from_sender, waiting, "file offer refused: too many waiting for an answer");
            return Err(Rejection::Refuse(RefuseReason::Other(format!(
                "too many file offers are waiting for an answer (at most {MAX_WAITING_OFFERS_PER_DEVICE} from one device)"
            ))));
        }
        let offer_bytes = postcard::to_allocvec(&offer).map_err(|_| Rejection::Retry)?;
        let peer = opened.sender.user_id();
        let record = TransferRecord::offered(
            offer.transfer,
            Direction::In,
            peer,
            vec![sender],
            offer_bytes,
            now,
        );
        if let Err(e) = self.store.insert_transfer(&record) {
            tracing::error!(transfer = %offer.transfer, error = %e, "cannot store file offer");
            return Err(Rejection::Retry);
        }
        tracing::info!(transfer = %offer.transfer, from = %record.peer, files = offer.count, size = offer.size, "file offered");
        self.files
            .transfers
            .insert(key, Transfer::new(record, offer));
        if let Ok(Some(early)) = self.store.take_early_notice(&key.0, &sender) {
            match postcard::from_bytes::<FileAction>(&early) {
                Ok(FileAction::Cancelled) => {
                    tracing::info!(transfer = %key.0, "the sender cancelled this offer before it arrived");
                    self.set_transfer_state(&key, TransferState::Cancelled, None);
                    return Ok(());
                }
                Ok(FileAction::Failed(reason)) => {
                    let reason = format!("the sender failed: {reason}");
                    self.set_transfer_state(&key, TransferState::Failed, Some(reason));
                    return Ok(());
                }
                _ => {}
            }
        }
        if let Some(view) = self.transfer_view(&key) {
            self.emit(NodeEvent::FileOffered { transfer: view });
        }
        if self
            .files
            .config
            .auto_accept
            .contains(&opened.sender.user_id())
        {
            let dest = self.default_downloads();
            if let Err(e) = self.accept_key(key, dest) {
                tracing::warn!(transfer = %key.0, error = %e, "auto-accept failed; the offer waits");
            }
        }
        Ok(())
    }

    /// The other side of a transfer changed it.
    pub(in crate::node::actor) fn on_file_control(
        &mut self,
        opened: &Opened,
        transfer: TransferId,
        action: FileAction,
    ) -> Result<(), Rejection> {
        let sender = opened.sender.device_id();
        let key = [Direction::In, Direction::Out]
            .into_iter()
            .map(|d| (transfer, d))
            .find(|k| {
                self.files
                    .transfers
                    .get(k)
                    .is_some_and(|t| t.record.devices.contains(&sender))
            });
        let Some(key) = key else {
            // Possibly ahead of its offer: keep it for when the offer comes.
            if matches!(action, FileAction::Cancelled | FileAction::Failed(_)) {
                let bytes = postcard::to_allocvec(&action).map_err(|_| Rejection::Retry)?;
                if bytes.len() > crate::store::MAX_EARLY_NOTICE_BYTES {
                    return Err(Rejection::Refuse(RefuseReason::TooLarge));
                }
                if let Err(e) = self
                    .store
                    .put_early_notice(&transfer, &sender, &bytes, self.now)
                {
                    tracing::error!(%transfer, error = %e, "cannot store an early notice");
                    return Err(Rejection::Retry);
                }
                tracing::info!(%transfer, ?action, "notice for a transfer not offered yet; kept for its offer");
            } else {
                tracing::debug!(%transfer, "notice for an unknown transfer ignored");
            }
            return Ok(());
        };
        let state = self.files.transfers[&key].record.state;
        if state.is_final() {
            return Ok(());
        }
        if key.1 == Direction::Out
            && self.recipient_answered(&key, opened.sender.user_id(), &action)
        {
            return Ok(());
        }
        match (key.1, action) {
            (Direction::Out, FileAction::Rejected) => {
                self.set_transfer_state(&key, TransferState::Rejected, None)
            }
            (Direction::Out, FileAction::Done) => {
                if let Some(t) = self.files.transfers.get_mut(&key) {
                    t.record.bytes_done = t.offer.size;
                }
                self.set_transfer_state(&key, TransferState::Done, None)
            }
            (Direction::Out, FileAction::Failed(reason)) => self.set_transfer_state(
                &key,
                TransferState::Failed,
                Some(format!("the recipient failed: {reason}")),
            ),
            (_, FileAction::Cancelled) => self.stop_transfer(&key, TransferState::Cancelled, None),
            (Direction::In, FileAction::Failed(reason)) => self.stop_transfer(
                &key,
                TransferState::Failed,
                Some(format!("the sender failed: {reason}")),
            ),
            (direction, action) => {
                tracing::debug!(%transfer, ?direction, ?action, "notice does not apply")
            }
        }
        Ok(())
    }
}
