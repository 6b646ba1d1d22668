//! The node's SQLite storage: message history, the outbox, known peers and
//! name pins.
//!
//! # Layout
//! - `migrations`: the ordered list of schema versions and the runner that
//!   applies them (one transaction each, tracked in `PRAGMA user_version`).
//! - `column`: decoding of raw column values into core types; a value that
//!   does not decode is [`StoreError::Corrupt`], never a panic.
//! - `messages`: history rows, dedupe on `(from_device, id)`, state updates
//!   (tests in `messages/tests.rs`).
//! - `outbox`: one row per (message, destination device) still to deliver.
//! - `peers`: known peer devices and display-name pins.
//! - `transfers`: file transfers (state, progress bitmap, manifest, paths).
//! - `search`: full-text search (FTS5) over message texts.
//! - `read`: read state of conversations and of sent messages.
//! - `blocked`: the block list.
//! - `changes`: edits and retractions, and changes waiting for their message.
//! - `contacts`: the contact list and requests.
//! - `devices`: device revocations, this user's own devices, read sync.
//!
//! # Invariants
//! - A [`Store`] owns one connection and is used from one thread (the storage
//!   actor); every method that writes more than one row does so in a single
//!   transaction, so a killed process leaves either all or none of it.
//! - Ids are stored as BLOBs of their exact byte length (checked by the schema
//!   and again when decoding); timestamps are milliseconds as non-negative
//!   INTEGERs.
//! - Single-row lookups return [`StoreError::Corrupt`] for a row that does not
//!   decode; list queries skip such a row with a `tracing::warn!`, so one bad
//!   row cannot hide the rest of the history.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

mod blocked;
mod changes;
mod column;
mod contacts;
mod devices;
mod messages;
mod migrations;
mod outbox;
mod peers;
mod read;
mod rooms;
mod search;
mod transfer_wan;
mod transfers;
mod tx;

pub use blocked::BlockedRecord;
pub use changes::ChangeOutcome;
pub use contacts::ContactRecord;
pub use devices::OwnDeviceRecord;
pub use messages::{
    Direction, HistoryQuery, MessageExtras, MessageRecord, MessageState, ParseStateError,
};
pub use outbox::OutboxEntry;
pub use peers::PeerRecord;
pub use rooms::{RoomKeyRecord, RoomRecord};
pub use search::SearchQuery;
pub use transfer_wan::MAX_EARLY_NOTICE_BYTES;
pub use transfers::{TransferManifest, TransferRecord, TransferState};

/// How long a statement waits for a lock held by another connection (for
/// example a `sqlite3` shell left open) before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Size a WAL is cut back to when it starts over after a checkpoint
/// (with [`Store::defer_sync`]).
pub const WAL_SIZE_LIMIT: u64 = 1024 * 1024;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file could not be opened or configured.
    #[error("cannot open database {}", path.display())]
    Open {
        /// The file that was being opened.
        path: PathBuf,
        /// What SQLite reported.
        #[source]
        source: rusqlite::Error,
    },
    /// Applying a schema migration failed; the database stays at the previous
    /// version because each migration runs in its own transaction.
    #[error("migration to schema version {version} failed")]
    Migration {
        /// The version that could not be applied.
        version: u32,
        /// What SQLite reported.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer tincan; opening it with this build
    /// could misread rows, so it is refused rather than downgraded.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    TooNew {
        /// The `user_version` found in the file.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// A database opened read-only is of another schema version than this
    /// build's; a node started once brings an older one up to date.
    #[error("database schema version {found} is not this build's ({supported}): a newer tincan wrote it, or an older one that starting the node (`tincan run`) brings up to date")]
    OtherVersion {
        /// The `user_version` found in the file.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A device is already known under a different user. Device ids are bound
    /// to one user key, so this is a bug or a forged certificate; the stored
    /// record is kept.
    #[error("device {device} is stored for user {stored}, not {offered}")]
    DeviceUserMismatch {
        /// The device being upserted.
        device: tincan_core::DeviceId,
        /// The user stored for it.
        stored: tincan_core::UserId,
        /// The user in the rejected record.
        offered: tincan_core::UserId,
    },
    /// A number in a record does not fit SQLite's signed 64-bit integers.
    #[error("{field} = {value} does not fit in a database integer")]
    OutOfRange {
        /// The record field.
        field: &'static str,
        /// The rejected value.
        value: u64,
    },
    /// A display name that is empty after trimming cannot be pinned.
    #[error("cannot pin an empty display name")]
    EmptyName,
    /// A query or statement failed.
    #[error("database query failed")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored row does not decode (wrong id length, unknown state, bad JSON).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A search without a single word to look for.
    #[error("nothing to search for: give at least one word")]
    EmptySearch,
    /// A message id (prefix) that is not at least six hex characters.
    #[error(
        "{0:?} is not a message id: give at least 6 hex characters of an id from `history --json`"
    )]
    BadIdPrefix(String),
}

/// The node's database. Cheap methods, one connection; see the module docs
/// for the transaction guarantees.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path`: WAL journal,
    /// `synchronous=FULL`, foreign keys on, busy timeout 5 s, then runs
    /// migrations.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        configure(&conn, true).map_err(open_err)?;
        Self::migrated(conn)
    }

    /// Opens the database at `path` read-only, to read while no node runs:
    /// no migration and no write. A file of another schema version is
    /// refused, since its rows may not decode; a missing one is an error.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        use rusqlite::OpenFlags;
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let found = migrations::user_version(&conn)?;
        if found != migrations::LATEST {
            return Err(StoreError::OtherVersion {
                found,
                supported: migrations::LATEST,
            });
        }
        Ok(Store { conn })
    }

    /// Opens a fresh database that lives only as long as the returned store
    /// (for tests).
    #[cfg(test)]
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: PathBuf::from(":memory:"),
            source,
        };
        let conn = Connection::open_in_memory().map_err(open_err)?;
        configure(&conn, false).map_err(open_err)?;
        Self::migrated(conn)
    }

    /// Stops syncing at every commit, for a driver that syncs the WAL
    /// itself off its event loop (`node::durable`): WAL commits become
    /// `synchronous=NORMAL` (written to the log, not waited for; a killed
    /// process still loses nothing), this connection no longer
    /// checkpoints (a checkpoint syncs), and a WAL folded back by someone
    /// else's checkpoint is cut to [`WAL_SIZE_LIMIT`] when it starts over.
    /// Returns the WAL file to sync, or `None` when the store has none (in
    /// memory, or a filesystem that refused WAL): then every commit keeps
    /// syncing itself and nothing changes.
    pub fn defer_sync(&self) -> Result<Option<PathBuf>, StoreError> {
        let mode: String = self
            .conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))?;
        let Some(path) = self.conn.path().filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        if !mode.eq_ignore_ascii_case("wal") {
            return Ok(None);
        }
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let _: i64 = self.conn.pragma_update_and_check(
            None,
            "journal_size_limit",
            WAL_SIZE_LIMIT as i64,
            |row| row.get(0),
        )?;
        Ok(Some(PathBuf::from(format!("{path}-wal"))))
    }

    /// A mark that grows with every row this connection writes: a write
    /// made before another has a mark no greater. What is on disk is
    /// tracked by these marks (`node::durable`).
    pub fn write_mark(&self) -> u64 {
        self.conn.total_changes()
    }

    /// The schema version after migrations (`PRAGMA user_version`).
    #[cfg(test)]
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        migrations::user_version(&self.conn)
    }

    fn migrated(mut conn: Connection) -> Result<Store, StoreError> {
        migrations::run(&mut conn)?;
        peers::rekey_pins(&mut conn)?;
        Ok(Store { conn })
    }
}

/// Sets the connection pragmas every store relies on.
fn configure(conn: &Connection, file: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Foreign keys are off by default in SQLite and must be enabled per
    // connection; later migrations may rely on them.
    conn.pragma_update(None, "foreign_keys", true)?;
    if file {
        // WAL lets the GUI or a `sqlite3` shell read while the daemon writes,
        // and a commit is one append to the log instead of a rewrite.
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Some filesystems (network mounts) cannot host WAL; the rollback
            // journal still gives atomic commits, only with less concurrency.
            tracing::warn!(%mode, "sqlite refused WAL journal mode");
        }
    }
    // In WAL mode, FULL syncs the log at every commit, so a commit that
    // returned survives an OS crash or power loss, not only a killed
    // process. The node tells a sender "delivered" (a signed receipt) right
    // after it commits a message, and a receipt is a promise: with NORMAL
    // the last commits could roll back after a power cut and the message be
    // gone while its sender shows it delivered. Incoming messages commit in
    // one batch with everything they imply, so the cost is one sync each.
    // The daemon keeps the promise with the sync moved off its event loop
    // (`Store::defer_sync`, `node::durable`): its receipts wait for it.
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

/// Fixtures shared by the store tests: a conversation between us (user 1,
/// device 1) and a peer (user 2, device 2).
#[cfg(test)]
mod test_util {
    use tincan_core::{DeviceId, MessageId, UserId};

    use super::{Direction, MessageRecord, MessageState, OutboxEntry, Store};

    pub(crate) fn user(n: u8) -> UserId {
        UserId([n; 20])
    }

    pub(crate) fn device(n: u8) -> DeviceId {
        DeviceId([n; 20])
    }

    pub(crate) fn mid(n: u8) -> MessageId {
        MessageId([n; 16])
    }

    /// Message `n` of the conversation with user 2, sent at `sent_at_ms`.
    pub(crate) fn message(n: u8, direction: Direction, sent_at_ms: u64) -> MessageRecord {
        let (from, to, from_device, received_at_ms, state) = match direction {
            Direction::In => (2, 1, 2, Some(sent_at_ms + 5), MessageState::Delivered),
            Direction::Out => (1, 2, 1, None, MessageState::Queued),
        };
        MessageRecord {
            id: mid(n),
            direction,
            peer: user(2),
            from_user: user(from),
            from_device: device(from_device),
            to_user: user(to),
            text: format!("message {n}"),
            sent_at_ms,
            received_at_ms,
            state,
            error: None,
            extras: Default::default(),
            room: None,
            system: false,
        }
    }

    /// The outbox entry of message `n` for device `d`.
    pub(crate) fn entry(n: u8, d: u8, created_at_ms: u64) -> OutboxEntry {
        OutboxEntry {
            message_id: mid(n),
            device: device(d),
            envelope: vec![n, d, 0xff],
            created_at_ms,
            expires_at_ms: created_at_ms + 86_400_000,
            attempts: 0,
            last_attempt_ms: None,
            held: false,
        }
    }

    /// A file-backed store in a fresh temporary directory (kept alive by the
    /// returned guard).
    pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        (dir, store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_sets_pragmas_and_latest_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        assert_eq!(store.schema_version().unwrap(), migrations::LATEST);
        let mode: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = store
            .conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(
            sync, 2,
            "FULL: a commit is on disk before a receipt says delivered"
        );
        let fk: bool = store
            .conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert!(fk);
    }

    #[test]
    fn in_memory_is_migrated() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.schema_version().unwrap(), migrations::LATEST);
    }

    #[test]
    fn open_reports_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("t.db");
        match Store::open(&path) {
            Err(StoreError::Open { path: p, .. }) => assert_eq!(p, path),
            other => panic!("expected Open error, got {other:?}"),
        }
    }
}
