//! Write transactions that nest: a store method that writes several rows
//! takes a [`WriteTx`], and when the caller already holds a batch
//! ([`Store::begin_batch`]) it becomes a savepoint inside that batch
//! instead of failing with "cannot start a transaction within a
//! transaction". That is what lets the node take an incoming message and
//! everything it implies (history row, pending change, copies for the
//! user's other devices) in one commit, and send the signed receipt only
//! after that commit is on disk.

use std::ops::Deref;

use rusqlite::Connection;

use super::{Store, StoreError};

/// The savepoint name of nested writes (SQLite resolves a repeated name to
/// the innermost one, so nesting deeper is fine too).
const SAVEPOINT: &str = "tincan_write";

/// A write transaction on the store's connection: rolled back when dropped
/// without [`WriteTx::commit`].
pub(super) struct WriteTx<'a> {
    conn: &'a Connection,
    nested: bool,
    done: bool,
}

impl<'a> WriteTx<'a> {
    /// Begins a write: `BEGIN IMMEDIATE` when the connection is idle (the
    /// write lock up front, so it cannot fail half way with `SQLITE_BUSY`),
    /// a savepoint inside the caller's batch otherwise.
    pub(super) fn begin(conn: &'a Connection) -> rusqlite::Result<WriteTx<'a>> {
        let nested = !conn.is_autocommit();
        if nested {
            conn.execute_batch(&format!("SAVEPOINT {SAVEPOINT}"))?;
        } else {
            conn.execute_batch("BEGIN IMMEDIATE")?;
        }
        Ok(WriteTx {
            conn,
            nested,
            done: false,
        })
    }

    /// Makes the writes permanent (or, nested, part of the batch).
    pub(super) fn commit(mut self) -> rusqlite::Result<()> {
        self.done = true;
        if self.nested {
            self.conn.execute_batch(&format!("RELEASE {SAVEPOINT}"))
        } else {
            self.conn.execute_batch("COMMIT")
        }
    }
}

impl Deref for WriteTx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let undo = if self.nested {
            format!("ROLLBACK TO {SAVEPOINT}; RELEASE {SAVEPOINT}")
        } else {
            "ROLLBACK".to_string()
        };
        if let Err(e) = self.conn.execute_batch(&undo) {
            tracing::error!(error = %e, "cannot roll back a failed write");
        }
    }
}

impl Store {
    /// Begins a write transaction (a savepoint inside an open batch).
    pub(super) fn write_tx(&self) -> Result<WriteTx<'_>, StoreError> {
        Ok(WriteTx::begin(&self.conn)?)
    }

    /// Opens a batch: every write until [`Store::commit_batch`] or
    /// [`Store::rollback_batch`] is one transaction, so a killed process
    /// keeps all of it or none. Fails if a batch is already open.
    pub fn begin_batch(&self) -> Result<(), StoreError> {
        if !self.conn.is_autocommit() {
            return Err(StoreError::Corrupt(
                "a store batch is already open".to_string(),
            ));
        }
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    /// Commits the open batch. With `synchronous=FULL` (see
    /// [`Store::open`]) it is on disk when this returns.
    pub fn commit_batch(&self) -> Result<(), StoreError> {
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    /// Undoes every write of the open batch.
    pub fn rollback_batch(&self) -> Result<(), StoreError> {
        if !self.conn.is_autocommit() {
            self.conn.execute_batch("ROLLBACK")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::test_util::{device, entry, message, mid, temp_store};
    use crate::store::{Direction, Store};

    /// Whether message `n` from device `d` is stored.
    fn stored(store: &Store, n: u8, d: u8) -> bool {
        store.message(&mid(n), &device(d)).unwrap().is_some()
    }

    #[test]
    fn a_rolled_back_batch_keeps_nothing_of_its_nested_writes() {
        let (_dir, store) = temp_store();
        store.begin_batch().unwrap();
        store
            .queue_outgoing(&message(1, Direction::Out, 10), &[entry(1, 2, 10)])
            .unwrap();
        store
            .insert_message(&message(2, Direction::In, 20))
            .unwrap();
        store.rollback_batch().unwrap();
        assert!(store.outbox_entries().unwrap().is_empty());
        assert!(!stored(&store, 2, 2));
    }

    #[test]
    fn a_committed_batch_keeps_its_nested_writes_and_a_failed_one_undoes_only_itself() {
        let (_dir, store) = temp_store();
        store.begin_batch().unwrap();
        store
            .queue_outgoing(&message(1, Direction::Out, 10), &[entry(1, 2, 10)])
            .unwrap();
        // The same entry again fails inside the batch; its savepoint is
        // rolled back and the batch goes on.
        assert!(store
            .queue_outgoing(&message(3, Direction::Out, 30), &[entry(1, 2, 10)])
            .is_err());
        store.commit_batch().unwrap();
        assert_eq!(store.outbox_entries().unwrap().len(), 1);
        assert!(!stored(&store, 3, 1));
    }

    #[test]
    fn a_second_batch_is_refused_while_one_is_open() {
        let (_dir, store) = temp_store();
        store.begin_batch().unwrap();
        assert!(store.begin_batch().is_err());
        store.commit_batch().unwrap();
        store.begin_batch().unwrap();
        store.rollback_batch().unwrap();
    }
}
