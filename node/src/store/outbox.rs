//! The persistent outbox: one row per (message, destination device) still to
//! deliver.
//!
//! Rows are created only together with their message
//! ([`Store::queue_outgoing`]) and removed when the device acknowledges (or
//! the daemon gives up). The envelope is the already-encrypted frame, opaque
//! here, so a restart can resend without re-encrypting. `(message_id,
//! device)` is unique.

use rusqlite::{params, Connection};
use tincan_core::{DeviceId, MessageId};

use super::{column, Store, StoreError};

/// One pending delivery of a message to one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The message being delivered.
    pub message_id: MessageId,
    /// The destination device.
    pub device: DeviceId,
    /// Encoded frame bytes, sent as is.
    pub envelope: Vec<u8>,
    /// When it was queued (ms since the Unix epoch).
    pub created_at_ms: u64,
    /// When to give up on it.
    pub expires_at_ms: u64,
    /// How many sends were tried.
    pub attempts: u32,
    /// When the last send was tried.
    pub last_attempt_ms: Option<u64>,
    /// A relay holds it for the device; waiting for the receipt only.
    pub held: bool,
}

impl OutboxEntry {
    /// A delivery of `envelope` (message `message_id`) to `device`, queued
    /// at `now` and given up at `expires_at_ms`, not tried yet.
    pub fn fresh(
        message_id: MessageId,
        device: DeviceId,
        envelope: Vec<u8>,
        now: u64,
        expires_at_ms: u64,
    ) -> Self {
        Self {
            message_id,
            device,
            envelope,
            created_at_ms: now,
            expires_at_ms,
            attempts: 0,
            last_attempt_ms: None,
            held: false,
        }
    }
}

/// A row as SQLite returned it, before any decoding can fail.
struct RawEntry {
    message_id: Vec<u8>,
    device: Vec<u8>,
    envelope: Vec<u8>,
    created_at_ms: i64,
    expires_at_ms: i64,
    attempts: i64,
    last_attempt_ms: Option<i64>,
    held: i64,
}

impl RawEntry {
    fn decode(self) -> Result<OutboxEntry, StoreError> {
        Ok(OutboxEntry {
            message_id: column::message_id(&self.message_id, "outbox.message_id")?,
            device: column::device(&self.device, "outbox.device")?,
            envelope: self.envelope,
            created_at_ms: column::unsigned(self.created_at_ms, "outbox.created_at_ms")?,
            expires_at_ms: column::unsigned(self.expires_at_ms, "outbox.expires_at_ms")?,
            attempts: column::unsigned(self.attempts, "outbox.attempts")?,
            last_attempt_ms: column::opt_unsigned(self.last_attempt_ms, "outbox.last_attempt_ms")?,
            held: self.held != 0,
        })
    }
}

/// Inserts one entry; a duplicate `(message_id, device)` is a constraint
/// error, which aborts the caller's transaction.
pub(super) fn insert_entry(conn: &Connection, e: &OutboxEntry) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO outbox (message_id, device, envelope, created_at_ms, expires_at_ms,
                             attempts, last_attempt_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        &e.message_id.0[..],
        &e.device.0[..],
        e.envelope,
        column::int(e.created_at_ms, "created_at_ms")?,
        column::int(e.expires_at_ms, "expires_at_ms")?,
        e.attempts,
        column::opt_int(e.last_attempt_ms, "last_attempt_ms")?,
    ])?;
    Ok(())
}

impl Store {
    /// Every pending entry, oldest first (by creation time, then insertion).
    /// Rows that do not decode are skipped with a warning.
    pub fn outbox_entries(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let raws = self
            .conn
            .prepare_cached(
                "SELECT message_id, device, envelope, created_at_ms, expires_at_ms,
                        attempts, last_attempt_ms, held
                 FROM outbox ORDER BY created_at_ms, seq",
            )?
            .query_map([], |row| {
                Ok(RawEntry {
                    message_id: row.get(0)?,
                    device: row.get(1)?,
                    envelope: row.get(2)?,
                    created_at_ms: row.get(3)?,
                    expires_at_ms: row.get(4)?,
                    attempts: row.get(5)?,
                    last_attempt_ms: row.get(6)?,
                    held: row.get(7)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(column::decode_all(raws, "outbox", RawEntry::decode))
    }

    /// Removes the entry for `message_id` to `device`; returns whether it
    /// existed.
    pub fn outbox_remove(
        &self,
        message_id: &MessageId,
        device: &DeviceId,
    ) -> Result<bool, StoreError> {
        let removed = self
            .conn
            .prepare_cached("DELETE FROM outbox WHERE message_id = ?1 AND device = ?2")?
            .execute(params![&message_id.0[..], &device.0[..]])?;
        Ok(removed == 1)
    }

    /// Marks the entry as held by a relay (custody): it is not sent again.
    pub fn outbox_mark_held(
        &self,
        message_id: &MessageId,
        device: &DeviceId,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE outbox SET held = 1 WHERE message_id = ?1 AND device = ?2")?
            .execute(params![&message_id.0[..], &device.0[..]])?;
        Ok(())
    }

    /// A persisted node fact (see migration 3), if set.
    pub fn node_state(&self, key: &str) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM node_state WHERE key = ?1")?
            .query_row(params![key], |row| row.get(0))
            .optional()?)
    }

    /// Sets a persisted node fact.
    pub fn set_node_state(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO node_state (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![key, value])?;
        Ok(())
    }

    /// Counts a send attempt at `at_ms`. A missing entry (already removed by
    /// an ack that raced the attempt) is not an error.
    pub fn outbox_record_attempt(
        &self,
        message_id: &MessageId,
        device: &DeviceId,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, last_attempt_ms = ?3
                 WHERE message_id = ?1 AND device = ?2",
            )?
            .execute(params![
                &message_id.0[..],
                &device.0[..],
                column::int(at_ms, "at_ms")?
            ])?;
        if changed == 0 {
            tracing::debug!(%message_id, %device, "attempt for an entry no longer queued");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_util::{device, entry, message, mid, temp_store};
    use crate::store::Direction;

    #[test]
    fn entries_are_oldest_first() {
        let (_dir, store) = temp_store();
        store
            .queue_outgoing(
                &message(1, Direction::Out, 500),
                &[entry(1, 2, 500), entry(1, 3, 500)],
            )
            .unwrap();
        store
            .queue_outgoing(&message(2, Direction::Out, 100), &[entry(2, 2, 100)])
            .unwrap();
        let got: Vec<_> = store
            .outbox_entries()
            .unwrap()
            .into_iter()
            .map(|e| (e.message_id.0[0], e.device.0[0]))
            .collect();
        assert_eq!(got, [(2, 2), (1, 2), (1, 3)]);
    }

    #[test]
    fn record_attempt_and_remove() {
        let (_dir, store) = temp_store();
        let e = entry(1, 2, 100);
        store
            .queue_outgoing(
                &message(1, Direction::Out, 100),
                &[e.clone(), entry(1, 3, 100)],
            )
            .unwrap();
        store
            .outbox_record_attempt(&e.message_id, &e.device, 150)
            .unwrap();
        store
            .outbox_record_attempt(&e.message_id, &e.device, 170)
            .unwrap();
        let got = store.outbox_entries().unwrap();
        assert_eq!((got[0].attempts, got[0].last_attempt_ms), (2, Some(170)));
        assert_eq!((got[1].attempts, got[1].last_attempt_ms), (0, None));

        assert!(store.outbox_remove(&e.message_id, &e.device).unwrap());
        assert!(!store.outbox_remove(&e.message_id, &e.device).unwrap());
        // Recording an attempt for a removed entry is harmless.
        store
            .outbox_record_attempt(&e.message_id, &e.device, 200)
            .unwrap();
        store
            .outbox_record_attempt(&mid(9), &device(9), 200)
            .unwrap();
        let left = store.outbox_entries().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].device, device(3));
        // The message itself stays in history.
        assert!(store.message(&e.message_id, &device(1)).unwrap().is_some());
    }

    #[test]
    fn entries_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let e = entry(1, 2, 100);
        {
            let store = Store::open(&path).unwrap();
            store
                .queue_outgoing(&message(1, Direction::Out, 100), std::slice::from_ref(&e))
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.outbox_entries().unwrap(), [e]);
    }
}
