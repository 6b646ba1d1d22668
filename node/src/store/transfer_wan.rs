//! The cross-branch parts of transfers (migration 8): the sender's upload
//! bitmap, the per-recipient outcomes of a transfer offered to several
//! users, and notices that arrived before their offer.

use rusqlite::{params, OptionalExtension};
use tincan_core::transfer::TransferId;
use tincan_core::DeviceId;

use super::{column, Store, StoreError};

impl Store {
    /// The upload bitmap of an outgoing transfer.
    pub fn transfer_uploaded(&self, id: &TransferId) -> Result<Vec<u8>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT uploaded FROM transfers WHERE id = ?1 AND direction = 'out'")?
            .query_row(params![&id.0[..]], |r| r.get(0))
            .optional()?
            .unwrap_or_default())
    }

    /// Writes the upload bitmap of an outgoing transfer.
    pub fn set_transfer_uploaded(&self, id: &TransferId, bitmap: &[u8]) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE transfers SET uploaded = ?2 WHERE id = ?1 AND direction = 'out'",
            )?
            .execute(params![&id.0[..], bitmap])?;
        Ok(())
    }

    /// The recipients JSON of an outgoing transfer (none for one user).
    pub fn transfer_recipients(&self, id: &TransferId) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT recipients FROM transfers WHERE id = ?1 AND direction = 'out'")?
            .query_row(params![&id.0[..]], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten())
    }

    /// Writes the recipients JSON of an outgoing transfer.
    pub fn set_transfer_recipients(&self, id: &TransferId, json: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE transfers SET recipients = ?2 WHERE id = ?1 AND direction = 'out'",
            )?
            .execute(params![&id.0[..], json])?;
        Ok(())
    }

    /// Remembers a notice for a transfer whose offer has not arrived.
    pub fn put_early_notice(
        &self,
        transfer: &TransferId,
        device: &DeviceId,
        action: &[u8],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO early_file_notices (transfer, device, action, received_at_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (transfer, device) DO UPDATE SET action = excluded.action",
            )?
            .execute(params![
                &transfer.0[..],
                &device.0[..],
                action,
                column::int(now_ms, "received_at_ms")?
            ])?;
        Ok(())
    }

    /// Takes (and deletes) the early notice of `device` for `transfer`.
    pub fn take_early_notice(
        &self,
        transfer: &TransferId,
        device: &DeviceId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let action = self
            .conn
            .prepare_cached(
                "DELETE FROM early_file_notices WHERE transfer = ?1 AND device = ?2
                 RETURNING action",
            )?
            .query_row(params![&transfer.0[..], &device.0[..]], |r| r.get(0))
            .optional()?;
        Ok(action)
    }

    /// Forgets early notices received before `before_ms` (their offers
    /// would have expired in the sender's outbox by now).
    pub fn purge_early_notices(&self, before_ms: u64) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .prepare_cached("DELETE FROM early_file_notices WHERE received_at_ms < ?1")?
            .execute(params![column::int(before_ms, "before_ms")?])?)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::test_util::{device, temp_store};
    use tincan_core::transfer::TransferId;

    #[test]
    fn early_notices_are_taken_once_and_purged() {
        let (_dir, store) = temp_store();
        let t = TransferId([1; 16]);
        store
            .put_early_notice(&t, &device(2), b"cancel", 100)
            .unwrap();
        assert_eq!(store.take_early_notice(&t, &device(3)).unwrap(), None);
        assert_eq!(
            store.take_early_notice(&t, &device(2)).unwrap(),
            Some(b"cancel".to_vec())
        );
        assert_eq!(store.take_early_notice(&t, &device(2)).unwrap(), None);
        store
            .put_early_notice(&t, &device(2), b"cancel", 100)
            .unwrap();
        assert_eq!(store.purge_early_notices(101).unwrap(), 1);
    }
}
