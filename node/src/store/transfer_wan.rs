//! The cross-branch parts of transfers (migration 8): the sender's upload
//! bitmap, the per-recipient outcomes of a transfer offered to several
//! users, and notices that arrived before their offer.

use rusqlite::{params, OptionalExtension};
use tincan_core::file::TransferId;
use tincan_core::DeviceId;

use super::{column, Store, StoreError};

/// Most notices kept from one device for transfers not offered yet (a real
/// sender cancels a handful of offers at a time).
pub const MAX_EARLY_NOTICES_PER_DEVICE: usize = 32;
/// Most notices kept in all (room for every device of a large office to
/// have a few in flight).
pub const MAX_EARLY_NOTICES: usize = 8192;
/// Largest encoded notice kept (a cancel or a failure with its reason).
pub const MAX_EARLY_NOTICE_BYTES: usize = 1024;

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

    /// Remembers a notice for a transfer whose offer has not arrived. Any
    /// peer can send notices for made-up transfers, so they are bounded:
    /// at most [`MAX_EARLY_NOTICES_PER_DEVICE`] per sending device and
    /// [`MAX_EARLY_NOTICES`] in all, the oldest evicted first (a notice
    /// whose offer never came is the least likely to matter), and an action
    /// over [`MAX_EARLY_NOTICE_BYTES`] is refused.
    pub fn put_early_notice(
        &self,
        transfer: &TransferId,
        device: &DeviceId,
        action: &[u8],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let bounds = (MAX_EARLY_NOTICES_PER_DEVICE, MAX_EARLY_NOTICES);
        self.put_early_notice_within(transfer, device, action, now_ms, bounds)
    }

    /// [`Store::put_early_notice`] with the bounds `(per device, in all)`.
    fn put_early_notice_within(
        &self,
        transfer: &TransferId,
        device: &DeviceId,
        action: &[u8],
        now_ms: u64,
        (per_device, in_all): (usize, usize),
    ) -> Result<(), StoreError> {
        if action.len() > MAX_EARLY_NOTICE_BYTES {
            return Err(StoreError::OutOfRange {
                field: "early file notice bytes",
                value: action.len() as u64,
            });
        }
        let tx = self.write_tx()?;
        tx.prepare_cached(
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
        // One insert can pass a bound by one row at most, so evicting the
        // single oldest row (by arrival, then insert order) keeps it.
        let of_device: i64 = tx
            .prepare_cached("SELECT count(*) FROM early_file_notices WHERE device = ?1")?
            .query_row(params![&device.0[..]], |r| r.get(0))?;
        if of_device as usize > per_device {
            tx.prepare_cached(
                "DELETE FROM early_file_notices WHERE rowid = (
                     SELECT rowid FROM early_file_notices WHERE device = ?1
                     ORDER BY received_at_ms, rowid LIMIT 1)",
            )?
            .execute(params![&device.0[..]])?;
        }
        let all: i64 = tx
            .prepare_cached("SELECT count(*) FROM early_file_notices")?
            .query_row([], |r| r.get(0))?;
        if all as usize > in_all {
            tx.prepare_cached(
                "DELETE FROM early_file_notices WHERE rowid = (
                     SELECT rowid FROM early_file_notices
                     ORDER BY received_at_ms, rowid LIMIT 1)",
            )?
            .execute([])?;
        }
        tx.commit()?;
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
    use super::{MAX_EARLY_NOTICES_PER_DEVICE, MAX_EARLY_NOTICE_BYTES};
    use crate::store::test_util::{device, temp_store};
    use tincan_core::file::TransferId;

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

    fn count(store: &crate::store::Store) -> usize {
        store
            .conn
            .query_row("SELECT count(*) FROM early_file_notices", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap() as usize
    }

    #[test]
    fn one_device_keeps_at_most_its_share_of_early_notices_newest_first() {
        let (_dir, store) = temp_store();
        let n = MAX_EARLY_NOTICES_PER_DEVICE as u16 + 10;
        for i in 0..n {
            let t = TransferId([
                (i % 256) as u8,
                (i / 256) as u8,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ]);
            store
                .put_early_notice(&t, &device(2), b"cancel", u64::from(i))
                .unwrap();
        }
        store
            .put_early_notice(&TransferId([9; 16]), &device(3), b"cancel", 0)
            .unwrap();
        assert_eq!(count(&store), MAX_EARLY_NOTICES_PER_DEVICE + 1);
        // The oldest of device 2 went; its newest and device 3's stayed.
        let first = TransferId([0; 16]);
        assert_eq!(store.take_early_notice(&first, &device(2)).unwrap(), None);
        let last = n - 1;
        let newest = TransferId([
            (last % 256) as u8,
            (last / 256) as u8,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ]);
        assert!(store
            .take_early_notice(&newest, &device(2))
            .unwrap()
            .is_some());
        assert!(store
            .take_early_notice(&TransferId([9; 16]), &device(3))
            .unwrap()
            .is_some());
    }

    #[test]
    fn early_notices_are_bounded_in_all_and_oversize_ones_refused() {
        let (_dir, store) = temp_store();
        // Small bounds, same code: 3 per device, 10 in all.
        for d in 0..5u8 {
            for i in 0..3u8 {
                let t = TransferId([i; 16]);
                store
                    .put_early_notice_within(
                        &t,
                        &device(d),
                        b"cancel",
                        u64::from(d * 10 + i),
                        (3, 10),
                    )
                    .unwrap();
            }
        }
        assert_eq!(count(&store), 10);
        // Devices 0 and 1 (the oldest notices) lost theirs first.
        assert_eq!(
            store
                .take_early_notice(&TransferId([0; 16]), &device(0))
                .unwrap(),
            None
        );
        assert!(store
            .take_early_notice(&TransferId([2; 16]), &device(4))
            .unwrap()
            .is_some());
        let big = vec![0u8; MAX_EARLY_NOTICE_BYTES + 1];
        assert!(store
            .put_early_notice(&TransferId([1; 16]), &device(2), &big, 0)
            .is_err());
    }
}
