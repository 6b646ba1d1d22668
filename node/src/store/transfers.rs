//! File transfers: one row per transfer and direction (migration 5).
//!
//! The row holds what changes (state, progress bitmap, counters, paths);
//! the manifest and the sender's source list are written once into
//! `transfer_manifests`, so a progress update after every chunk rewrites a
//! few hundred bytes, not the manifest. An outgoing offer is inserted
//! together with its outbox entries ([`Store::queue_offer`]): a kill can
//! never leave an offer sent without its transfer, or the reverse.

use rusqlite::{params, OptionalExtension};
pub use tincan_core::file::TransferState;
use tincan_core::file::{ParseTransferStateError, TransferId};
use tincan_core::{DeviceId, UserId};

use super::{column, outbox, Direction, OutboxEntry, Store, StoreError};

/// One transfer as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferRecord {
    /// The transfer id.
    pub id: TransferId,
    /// `In` = we receive, `Out` = we send.
    pub direction: Direction,
    /// The other user.
    pub peer: UserId,
    /// Out: the recipient devices; in: the sending device.
    pub devices: Vec<DeviceId>,
    /// The postcard-encoded offer.
    pub offer: Vec<u8>,
    /// The state.
    pub state: TransferState,
    /// Verified (in) or served (out) distinct bytes.
    pub bytes_done: u64,
    /// All chunk bytes received (in) or sent (out), repeats included.
    pub bytes_total: u64,
    /// Verified (in) or served (out) chunk bitmap.
    pub have: Vec<u8>,
    /// In: the destination folder.
    pub dest: Option<String>,
    /// In: JSON map of top-level names to staging names.
    pub staging: Option<String>,
    /// In: JSON list of the final paths, once done.
    pub saved: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was created (ms).
    pub created_at_ms: u64,
    /// When it last changed (ms).
    pub updated_at_ms: u64,
}

impl TransferRecord {
    /// A transfer just offered (either way), with nothing moved yet.
    pub fn offered(
        id: TransferId,
        direction: Direction,
        peer: UserId,
        devices: Vec<DeviceId>,
        offer: Vec<u8>,
        now: u64,
    ) -> Self {
        Self {
            id,
            direction,
            peer,
            devices,
            offer,
            state: TransferState::Offered,
            bytes_done: 0,
            bytes_total: 0,
            have: Vec::new(),
            dest: None,
            staging: None,
            saved: None,
            error: None,
            created_at_ms: now,
            updated_at_ms: now,
        }
    }
}

/// The write-once parts of a transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferManifest {
    /// The encoded manifest.
    pub manifest: Vec<u8>,
    /// Out: JSON list of source files.
    pub sources: Option<String>,
}

const COLUMNS: &str = "id, direction, peer, devices, offer, state, bytes_done, bytes_total,
    have, dest, staging, saved, error, created_at_ms, updated_at_ms";

fn devices_blob(devices: &[DeviceId]) -> Vec<u8> {
    devices.iter().flat_map(|d| d.0).collect()
}

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRecord> {
    Ok(RawRecord {
        id: row.get(0)?,
        direction: row.get(1)?,
        peer: row.get(2)?,
        devices: row.get(3)?,
        offer: row.get(4)?,
        state: row.get(5)?,
        bytes_done: row.get(6)?,
        bytes_total: row.get(7)?,
        have: row.get(8)?,
        dest: row.get(9)?,
        staging: row.get(10)?,
        saved: row.get(11)?,
        error: row.get(12)?,
        created_at_ms: row.get(13)?,
        updated_at_ms: row.get(14)?,
    })
}

struct RawRecord {
    id: Vec<u8>,
    direction: String,
    peer: Vec<u8>,
    devices: Vec<u8>,
    offer: Vec<u8>,
    state: String,
    bytes_done: i64,
    bytes_total: i64,
    have: Vec<u8>,
    dest: Option<String>,
    staging: Option<String>,
    saved: Option<String>,
    error: Option<String>,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl RawRecord {
    fn decode(self) -> Result<TransferRecord, StoreError> {
        let id = <[u8; 16]>::try_from(self.id.as_slice())
            .map(TransferId)
            .map_err(|_| StoreError::Corrupt("transfers.id has the wrong length".into()))?;
        let devices = self
            .devices
            .chunks(20)
            .map(|c| column::device(c, "transfers.devices"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TransferRecord {
            id,
            direction: match self.direction.as_str() {
                "in" => Direction::In,
                "out" => Direction::Out,
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "unknown transfer direction {other:?}"
                    )))
                }
            },
            peer: column::user(&self.peer, "transfers.peer")?,
            devices,
            offer: self.offer,
            state: self
                .state
                .parse()
                .map_err(|e: ParseTransferStateError| StoreError::Corrupt(e.to_string()))?,
            bytes_done: column::unsigned(self.bytes_done, "transfers.bytes_done")?,
            bytes_total: column::unsigned(self.bytes_total, "transfers.bytes_total")?,
            have: self.have,
            dest: self.dest,
            staging: self.staging,
            saved: self.saved,
            error: self.error,
            created_at_ms: column::unsigned(self.created_at_ms, "transfers.created_at_ms")?,
            updated_at_ms: column::unsigned(self.updated_at_ms, "transfers.updated_at_ms")?,
        })
    }
}

impl Store {
    fn insert_transfer_in(
        conn: &rusqlite::Connection,
        r: &TransferRecord,
        manifest: Option<&TransferManifest>,
    ) -> Result<bool, StoreError> {
        let inserted = conn
            .prepare_cached(&format!(
                "INSERT INTO transfers ({COLUMNS}) VALUES
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
                 ON CONFLICT (direction, id) DO NOTHING"
            ))?
            .execute(params![
                &r.id.0[..],
                r.direction.as_str(),
                &r.peer.0[..],
                devices_blob(&r.devices),
                r.offer,
                r.state.as_str(),
                column::int(r.bytes_done, "bytes_done")?,
                column::int(r.bytes_total, "bytes_total")?,
                r.have,
                r.dest,
                r.staging,
                r.saved,
                r.error,
                column::int(r.created_at_ms, "created_at_ms")?,
                column::int(r.updated_at_ms, "updated_at_ms")?,
            ])?;
        if inserted == 1 {
            if let Some(m) = manifest {
                conn.prepare_cached(
                    "INSERT INTO transfer_manifests (transfer, manifest, sources)
                     VALUES (last_insert_rowid(), ?1, ?2)",
                )?
                .execute(params![m.manifest, m.sources])?;
            }
        }
        Ok(inserted == 1)
    }

    /// Inserts a transfer; returns false (changing nothing) when one with
    /// the same id and direction exists.
    pub fn insert_transfer(&self, r: &TransferRecord) -> Result<bool, StoreError> {
        Self::insert_transfer_in(&self.conn, r, None)
    }

    /// Inserts an outgoing transfer with its manifest and the outbox
    /// entries of its offer, in one transaction.
    pub fn queue_offer(
        &self,
        r: &TransferRecord,
        manifest: &TransferManifest,
        entries: &[OutboxEntry],
    ) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        if !Self::insert_transfer_in(&tx, r, Some(manifest))? {
            return Err(StoreError::Corrupt(format!("transfer {} exists", r.id)));
        }
        for entry in entries {
            outbox::insert_entry(&tx, entry)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every transfer, oldest first; undecodable rows are skipped.
    pub fn transfers(&self) -> Result<Vec<TransferRecord>, StoreError> {
        let raws = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM transfers ORDER BY seq"))?
            .query_map([], row_to_record)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(column::decode_all(raws, "transfers", RawRecord::decode))
    }

    /// One transfer.
    #[cfg(test)]
    pub fn transfer(
        &self,
        id: &TransferId,
        direction: Direction,
    ) -> Result<Option<TransferRecord>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM transfers WHERE id = ?1 AND direction = ?2"
            ))?
            .query_row(params![&id.0[..], direction.as_str()], row_to_record)
            .optional()?
            .map(RawRecord::decode)
            .transpose()
    }

    /// The manifest (and sources) of a transfer, once known.
    pub fn transfer_manifest(
        &self,
        id: &TransferId,
        direction: Direction,
    ) -> Result<Option<TransferManifest>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT m.manifest, m.sources FROM transfer_manifests m
                 JOIN transfers t ON t.seq = m.transfer
                 WHERE t.id = ?1 AND t.direction = ?2",
            )?
            .query_row(params![&id.0[..], direction.as_str()], |row| {
                Ok(TransferManifest {
                    manifest: row.get(0)?,
                    sources: row.get(1)?,
                })
            })
            .optional()?)
    }

    /// Stores the manifest of an incoming transfer (once).
    pub fn set_transfer_manifest(
        &self,
        id: &TransferId,
        direction: Direction,
        manifest: &[u8],
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO transfer_manifests (transfer, manifest)
                 SELECT seq, ?3 FROM transfers WHERE id = ?1 AND direction = ?2
                 ON CONFLICT (transfer) DO UPDATE SET manifest = excluded.manifest",
            )?
            .execute(params![&id.0[..], direction.as_str(), manifest])?;
        Ok(())
    }

    /// Writes the changing columns of `r` (state, progress, paths, error).
    pub fn update_transfer(&self, r: &TransferRecord) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE transfers SET state = ?3, bytes_done = ?4, bytes_total = ?5, have = ?6,
                     dest = ?7, staging = ?8, saved = ?9, error = ?10, updated_at_ms = ?11
                 WHERE id = ?1 AND direction = ?2",
            )?
            .execute(params![
                &r.id.0[..],
                r.direction.as_str(),
                r.state.as_str(),
                column::int(r.bytes_done, "bytes_done")?,
                column::int(r.bytes_total, "bytes_total")?,
                r.have,
                r.dest,
                r.staging,
                r.saved,
                r.error,
                column::int(r.updated_at_ms, "updated_at_ms")?,
            ])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_util::{device, entry, temp_store, user};

    fn record(n: u8, direction: Direction) -> TransferRecord {
        let devices = vec![device(2), device(3)];
        TransferRecord::offered(
            TransferId([n; 16]),
            direction,
            user(2),
            devices,
            vec![1, 2, 3],
            100,
        )
    }

    #[test]
    fn transfers_round_trip_and_update() {
        let (_dir, store) = temp_store();
        let r = record(1, Direction::In);
        assert!(store.insert_transfer(&r).unwrap());
        assert!(!store.insert_transfer(&r).unwrap(), "duplicate offer");
        // The same id the other way is another transfer.
        assert!(store.insert_transfer(&record(1, Direction::Out)).unwrap());
        assert_eq!(
            store.transfer(&r.id, Direction::In).unwrap(),
            Some(r.clone())
        );
        assert_eq!(store.transfer_manifest(&r.id, Direction::In).unwrap(), None);
        store
            .set_transfer_manifest(&r.id, Direction::In, b"manifest")
            .unwrap();
        assert_eq!(
            store
                .transfer_manifest(&r.id, Direction::In)
                .unwrap()
                .unwrap()
                .manifest,
            b"manifest"
        );
        let mut r2 = r.clone();
        r2.state = TransferState::Transferring;
        r2.have = vec![0b101];
        r2.bytes_done = 2048;
        r2.bytes_total = 4096;
        r2.dest = Some("/tmp/x".into());
        r2.error = Some("e".into());
        store.update_transfer(&r2).unwrap();
        assert_eq!(store.transfer(&r.id, Direction::In).unwrap(), Some(r2));
        assert_eq!(store.transfers().unwrap().len(), 2);
    }

    #[test]
    fn an_offer_is_queued_with_its_outbox_entries() {
        let (_dir, store) = temp_store();
        let r = record(4, Direction::Out);
        let m = TransferManifest {
            manifest: vec![9; 10],
            sources: Some("[]".into()),
        };
        store.queue_offer(&r, &m, &[entry(4, 2, 100)]).unwrap();
        assert_eq!(store.outbox_entries().unwrap().len(), 1);
        assert_eq!(
            store.transfer_manifest(&r.id, Direction::Out).unwrap(),
            Some(m.clone())
        );
        // A second queue of the same transfer changes nothing.
        assert!(store.queue_offer(&r, &m, &[entry(5, 2, 100)]).is_err());
        assert_eq!(store.outbox_entries().unwrap().len(), 1);
    }

    #[test]
    fn states_parse() {
        for s in TransferState::ALL {
            assert_eq!(s.as_str().parse::<TransferState>().unwrap(), s);
        }
        assert!("nope".parse::<TransferState>().is_err());
        assert!(TransferState::Done.is_final() && !TransferState::Paused.is_final());
    }
}
