//! What the actor rebuilds from its store when the node starts: pins and
//! known peers, then the outbox with each message's delivery state, so
//! that a restart (or a crash) resumes every delivery where it stood.

use std::sync::Arc;

use tincan_core::DeviceCert;

use super::Actor;
use crate::node::offline;
use crate::store::StoreError;

impl Actor {
    /// Reloads pins, known peers and the outbox after a restart.
    pub(super) fn restore(&mut self) -> Result<(), StoreError> {
        let (book, certs) = offline::stored_book(&self.store)?;
        self.book = book;
        self.certs.extend(certs);
        let now = self.now;
        for entry in self.store.outbox_entries()? {
            let to = self
                .book
                .device(&entry.device)
                .map(|d| d.user)
                .or_else(|| self.certs.get(&entry.device).map(DeviceCert::user_id));
            let Some(to) = to else {
                tracing::warn!(message = %entry.message_id, "outbox entry for an unknown device kept");
                continue;
            };
            let envelope = &entry.envelope;
            self.deliveries
                .restore(entry.message_id, to, entry.device, || {
                    Arc::new(envelope.clone())
                });
            self.outbox.push(
                now,
                entry.message_id,
                entry.device,
                entry.expires_at_ms,
                entry.attempts,
            );
            if entry.held {
                self.outbox.handle_outcome(
                    now,
                    entry.message_id,
                    entry.device,
                    tincan_core::outbox::AttemptOutcome::Custody,
                );
            }
        }
        if !self.outbox.is_empty() {
            tracing::info!(entries = self.outbox.len(), "restored outbox");
        }
        Ok(())
    }
}
