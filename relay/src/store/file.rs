//! Rows of the sealed file content the relay keeps for cross-branch
//! transfers (the bytes are files under `HOME/files`, see
//! `crate::file`). A row exists only once its file is fsynced; the sum
//! of `len` per organisation is what counts against its quota, checked in
//! the same transaction that adds the row.

use rusqlite::{params, OptionalExtension, TransactionBehavior};
use tincan_core::file::TransferId;
use tincan_core::OrgId;

use super::{int, uint, Db, StoreError};

/// One stored item: (organisation, transfer, item), item `None` = the
/// sealed manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlobKey {
    /// The organisation whose devices uploaded it (and may fetch it).
    pub org: OrgId,
    /// The transfer.
    pub transfer: TransferId,
    /// `None` = the manifest, else the chunk index.
    pub item: Option<u64>,
}

impl BlobKey {
    fn item_code(&self) -> i64 {
        self.item.map_or(-1, int)
    }
}

/// What [`Db::put_blob`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutBlob {
    /// Stored now.
    Stored,
    /// It was there already (a retried upload); nothing changed.
    Exists,
    /// The organisation's quota would be exceeded; nothing stored.
    OverQuota {
        /// Bytes the organisation stores now.
        used: u64,
    },
}

impl Db {
    /// The length of a stored, unexpired item.
    pub fn blob_len(&self, key: &BlobKey, now_ms: u64) -> Result<Option<u64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT len FROM file_blobs
                 WHERE org = ?1 AND transfer = ?2 AND item = ?3 AND expires_ms > ?4",
            )?
            .query_row(
                params![
                    &key.org.0[..],
                    &key.transfer.0[..],
                    key.item_code(),
                    int(now_ms)
                ],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(uint))
    }

    /// Bytes of file content an organisation stores.
    pub fn blob_bytes(&self, org: &OrgId) -> Result<u64, StoreError> {
        let sum: i64 = self.conn.query_row(
            "SELECT coalesce(sum(len), 0) FROM file_blobs WHERE org = ?1",
            params![&org.0[..]],
            |r| r.get(0),
        )?;
        Ok(uint(sum))
    }

    /// Bytes of file content per organisation (those that store any).
    pub fn blob_bytes_by_org(&self) -> Result<Vec<(OrgId, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT org, sum(len) FROM file_blobs GROUP BY org")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (org, sum) = row?;
            if let Ok(org) = <[u8; 20]>::try_from(org.as_slice()) {
                out.push((OrgId(org), uint(sum)));
            }
        }
        Ok(out)
    }

    /// Adds the row of an item whose file is in place, unless it exists or
    /// the organisation would go over `quota` bytes.
    pub fn put_blob(
        &mut self,
        key: &BlobKey,
        len: u64,
        now_ms: u64,
        expires_ms: u64,
        quota: u64,
    ) -> Result<PutBlob, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM file_blobs WHERE org = ?1 AND transfer = ?2 AND item = ?3",
                params![&key.org.0[..], &key.transfer.0[..], key.item_code()],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Ok(PutBlob::Exists);
        }
        let used: i64 = tx.query_row(
            "SELECT coalesce(sum(len), 0) FROM file_blobs WHERE org = ?1",
            params![&key.org.0[..]],
            |r| r.get(0),
        )?;
        let used = uint(used);
        if used.saturating_add(len) > quota {
            return Ok(PutBlob::OverQuota { used });
        }
        tx.execute(
            "INSERT INTO file_blobs (org, transfer, item, len, stored_ms, expires_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                &key.org.0[..],
                &key.transfer.0[..],
                key.item_code(),
                int(len),
                int(now_ms),
                int(expires_ms)
            ],
        )?;
        tx.commit()?;
        Ok(PutBlob::Stored)
    }

    /// Deletes the rows of items expired at `now_ms` and returns their
    /// keys (the caller removes the files).
    pub fn expire_blobs(&mut self, now_ms: u64) -> Result<Vec<BlobKey>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let keys = {
            let mut stmt = tx.prepare_cached(
                "SELECT org, transfer, item FROM file_blobs WHERE expires_ms <= ?1",
            )?;
            let rows = stmt.query_map(params![int(now_ms)], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            let mut keys = Vec::new();
            for row in rows {
                let (org, transfer, item) = row?;
                let (Ok(org), Ok(transfer)) = (
                    <[u8; 20]>::try_from(org.as_slice()),
                    <[u8; 16]>::try_from(transfer.as_slice()),
                ) else {
                    tracing::warn!("file_blobs row with a malformed key skipped");
                    continue;
                };
                keys.push(BlobKey {
                    org: OrgId(org),
                    transfer: TransferId(transfer),
                    item: u64::try_from(item).ok(),
                });
            }
            keys
        };
        tx.execute(
            "DELETE FROM file_blobs WHERE expires_ms <= ?1",
            params![int(now_ms)],
        )?;
        tx.commit()?;
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_count_against_the_quota_and_expire() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut db = Db::open(&dir.path().join("relay.db")).expect("open");
        let org = OrgId([1; 20]);
        let key = |item| BlobKey {
            org,
            transfer: TransferId([2; 16]),
            item,
        };
        assert_eq!(
            db.put_blob(&key(None), 100, 1, 50, 250).unwrap(),
            PutBlob::Stored
        );
        assert_eq!(
            db.put_blob(&key(None), 100, 1, 50, 250).unwrap(),
            PutBlob::Exists
        );
        assert_eq!(
            db.put_blob(&key(Some(0)), 100, 1, 60, 250).unwrap(),
            PutBlob::Stored
        );
        assert_eq!(
            db.put_blob(&key(Some(1)), 100, 1, 60, 250).unwrap(),
            PutBlob::OverQuota { used: 200 }
        );
        assert_eq!(db.blob_bytes(&org).unwrap(), 200);
        assert_eq!(db.blob_bytes_by_org().unwrap(), vec![(org, 200)]);
        assert_eq!(db.blob_len(&key(Some(0)), 10).unwrap(), Some(100));
        assert_eq!(db.blob_len(&key(Some(1)), 10).unwrap(), None);
        // Another organisation has its own quota and cannot see these.
        let other = BlobKey {
            org: OrgId([3; 20]),
            ..key(Some(0))
        };
        assert_eq!(db.blob_len(&other, 10).unwrap(), None);
        assert_eq!(db.expire_blobs(55).unwrap(), vec![key(None)]);
        assert_eq!(db.blob_bytes(&org).unwrap(), 100);
        assert_eq!(db.blob_len(&key(None), 10).unwrap(), None);
    }
}
