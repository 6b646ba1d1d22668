//! The relay's SQLite storage (`HOME/relay.db`): mailboxes of offline
//! devices (each item's bytes stored once, however many devices it waits
//! for), every device ever seen, revocation lists and lease epochs.
//!
//! # Invariants
//! - WAL journal with `synchronous=FULL`: a write that returned is on disk,
//!   so the relay may answer `Custody` right after [`Db::put_mail`] returns.
//! - Every method that writes several rows does it in one transaction, so a
//!   killed relay leaves all or nothing of it.
//! - The schema is versioned in `PRAGMA user_version`; `MIGRATIONS` is
//!   append-only and each step commits with its version bump.
//! - Rows that do not decode are skipped with a warning, never a panic.
//!
//! The async side uses [`Store::run`], which executes a closure on the
//! blocking pool with the one connection locked.

mod file;
pub(crate) mod mail;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tincan_core::site::SiteId;
use tincan_core::{DeviceCert, DeviceId, OrgId, Revocations};

pub use file::{BlobKey, PutBlob};
pub use mail::{ExpiredMail, MailKind, MailQuota, MailRow, NewMail, PutOutcome};

/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file could not be opened or configured.
    #[error("cannot open database {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What SQLite reported.
        #[source]
        source: rusqlite::Error,
    },
    /// A migration failed; the database stays at the previous version.
    #[error("migration to schema version {version} failed: {source}")]
    Migration {
        /// The version that could not be applied.
        version: u32,
        /// What SQLite reported.
        #[source]
        source: rusqlite::Error,
    },
    /// Written by a newer relay.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    TooNew {
        /// The version found.
        found: u32,
        /// The newest this build knows.
        supported: u32,
    },
    /// A query failed.
    #[error("database query failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The storage thread panicked or was cancelled.
    #[error("storage task failed: {0}")]
    Task(String),
}

/// One schema step.
struct Migration {
    version: u32,
    sql: &'static str,
}

/// Every schema step, in order (append-only).
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: "
        CREATE TABLE devices (
            org          BLOB    NOT NULL CHECK (length(org) = 20),
            device       BLOB    NOT NULL CHECK (length(device) = 20),
            cert         BLOB    NOT NULL,
            name         TEXT    NOT NULL,
            last_seen_ms INTEGER NOT NULL,
            PRIMARY KEY (org, device)
        ) STRICT;

        -- One row per (destination device, item). `kind` tells envelopes
        -- from delivered/read receipts, which share the message id.
        CREATE TABLE mail (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            org         BLOB    NOT NULL CHECK (length(org) = 20),
            device      BLOB    NOT NULL CHECK (length(device) = 20),
            message_id  BLOB    NOT NULL CHECK (length(message_id) = 16),
            kind        INTEGER NOT NULL,
            sender      BLOB    CHECK (sender IS NULL OR length(sender) = 20),
            item        BLOB    NOT NULL,
            stored_ms   INTEGER NOT NULL,
            expires_ms  INTEGER NOT NULL,
            UNIQUE (device, message_id, kind)
        ) STRICT;
        CREATE INDEX mail_by_device ON mail (device, id);
        CREATE INDEX mail_by_expiry ON mail (expires_ms);

        CREATE TABLE revocations (
            org    BLOB    PRIMARY KEY CHECK (length(org) = 20),
            serial INTEGER NOT NULL,
            list   BLOB    NOT NULL
        ) STRICT;

        CREATE TABLE epochs (
            org   BLOB    NOT NULL CHECK (length(org) = 20),
            site  BLOB    NOT NULL CHECK (length(site) = 16),
            epoch INTEGER NOT NULL,
            PRIMARY KEY (org, site)
        ) STRICT;
    ",
    },
    Migration {
        version: 2,
        sql: "
        -- Dedupe on the item's origin too (the envelope's sender or the
        -- receipt's signer): receipts of several recipients of one message
        -- must not collide, and nobody may suppress another device's item
        -- by reusing its id. Version-1 receipt rows had no sender; they get
        -- an all-zero origin (only their dedupe key is affected).
        CREATE TABLE mail_v2 (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            org         BLOB    NOT NULL CHECK (length(org) = 20),
            device      BLOB    NOT NULL CHECK (length(device) = 20),
            message_id  BLOB    NOT NULL CHECK (length(message_id) = 16),
            kind        INTEGER NOT NULL,
            origin      BLOB    NOT NULL CHECK (length(origin) = 20),
            item        BLOB    NOT NULL,
            stored_ms   INTEGER NOT NULL,
            expires_ms  INTEGER NOT NULL,
            UNIQUE (device, message_id, kind, origin)
        ) STRICT;
        INSERT INTO mail_v2 (id, org, device, message_id, kind, origin, item, stored_ms, expires_ms)
            SELECT id, org, device, message_id, kind, coalesce(sender, zeroblob(20)),
                   item, stored_ms, expires_ms
            FROM mail;
        DROP TABLE mail;
        ALTER TABLE mail_v2 RENAME TO mail;
        CREATE INDEX mail_by_device ON mail (device, id);
        CREATE INDEX mail_by_expiry ON mail (expires_ms);
    ",
    },
    Migration {
        version: 3,
        sql: "
        -- Devices removed by their user (signed by the user key): refused
        -- on Register for ever, never listed, never given mail.
        CREATE TABLE device_revocations (
            org        BLOB NOT NULL CHECK (length(org) = 20),
            device     BLOB NOT NULL CHECK (length(device) = 20),
            revocation BLOB NOT NULL,
            PRIMARY KEY (org, device)
        ) STRICT;
    ",
    },
    Migration {
        version: 4,
        sql: "
        -- Sealed file content of cross-branch transfers, one row per item
        -- (item -1 = the sealed manifest, else the chunk index). The bytes
        -- live in files/ORG/TRANSFER/ITEM; a row is written only after its
        -- file is fsynced, and the org's sum of len is its quota use.
        CREATE TABLE file_blobs (
            org         BLOB    NOT NULL CHECK (length(org) = 20),
            transfer    BLOB    NOT NULL CHECK (length(transfer) = 16),
            item        INTEGER NOT NULL CHECK (item >= -1),
            len         INTEGER NOT NULL CHECK (len >= 0),
            stored_ms   INTEGER NOT NULL,
            expires_ms  INTEGER NOT NULL,
            PRIMARY KEY (org, transfer, item)
        ) STRICT;
        CREATE INDEX file_blobs_by_expiry ON file_blobs (expires_ms);
    ",
    },
    Migration {
        version: 5,
        sql: "
        -- One stored copy of an item, however many devices it waits for:
        -- `mail_bodies` holds the bytes once, `mail` one small row per
        -- destination device pointing at it (`body`) with the item's length
        -- (the device's quota counts it). A body goes with its last row.
        -- Existing mail keeps its ids; identical copies become one body.
        CREATE TABLE mail_bodies (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            org         BLOB    NOT NULL CHECK (length(org) = 20),
            origin      BLOB    NOT NULL CHECK (length(origin) = 20),
            message_id  BLOB    NOT NULL CHECK (length(message_id) = 16),
            kind        INTEGER NOT NULL,
            item        BLOB    NOT NULL,
            len         INTEGER NOT NULL CHECK (len >= 0)
        ) STRICT;
        INSERT INTO mail_bodies (org, origin, message_id, kind, item, len)
            SELECT org, origin, message_id, kind, item, length(item) FROM mail
            GROUP BY org, origin, message_id, kind, item;
        CREATE INDEX mail_bodies_by_key ON mail_bodies (org, origin, message_id, kind);
        CREATE INDEX mail_bodies_by_org ON mail_bodies (org, len);
        CREATE TABLE mail_v5 (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            org         BLOB    NOT NULL CHECK (length(org) = 20),
            device      BLOB    NOT NULL CHECK (length(device) = 20),
            message_id  BLOB    NOT NULL CHECK (length(message_id) = 16),
            kind        INTEGER NOT NULL,
            origin      BLOB    NOT NULL CHECK (length(origin) = 20),
            body        INTEGER NOT NULL,
            len         INTEGER NOT NULL CHECK (len >= 0),
            stored_ms   INTEGER NOT NULL,
            expires_ms  INTEGER NOT NULL,
            UNIQUE (device, message_id, kind, origin)
        ) STRICT;
        INSERT INTO mail_v5 (id, org, device, message_id, kind, origin, body, len, stored_ms, expires_ms)
            SELECT m.id, m.org, m.device, m.message_id, m.kind, m.origin,
                   (SELECT b.id FROM mail_bodies b
                    WHERE b.org = m.org AND b.origin = m.origin AND b.message_id = m.message_id
                      AND b.kind = m.kind AND b.item = m.item),
                   length(m.item), m.stored_ms, m.expires_ms
            FROM mail m;
        DROP TABLE mail;
        ALTER TABLE mail_v5 RENAME TO mail;
        CREATE INDEX mail_by_device ON mail (device, id);
        CREATE INDEX mail_by_expiry ON mail (expires_ms);
        CREATE INDEX mail_by_body ON mail (body);
    ",
    },
];

/// A device as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDevice {
    /// Its organisation.
    pub org: OrgId,
    /// Its certificate.
    pub cert: DeviceCert,
    /// Its display name.
    pub name: String,
    /// When it was last reachable, ms since the Unix epoch.
    pub last_seen_ms: u64,
}

/// The database: one connection, used from one blocking thread at a time.
#[derive(Debug)]
pub struct Db {
    conn: Connection,
}

/// A shareable handle to the [`Db`] for async code.
#[derive(Clone, Debug)]
pub struct Store {
    db: Arc<Mutex<Db>>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            db: Arc::new(Mutex::new(Db::open(path)?)),
        })
    }

    /// Runs `f` with the database on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = db
                .lock()
                .map_err(|_| StoreError::Task("database lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

/// A u64 as a SQLite integer (ms, epochs and serials stay far below 2^63;
/// larger values saturate rather than wrap).
pub(crate) fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A SQLite integer as a u64 (negative values are corrupt; read as 0).
pub(crate) fn uint(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A 20-byte id from a blob.
pub(crate) fn id20(bytes: &[u8]) -> Option<[u8; 20]> {
    bytes.try_into().ok()
}

impl Db {
    /// Opens (creating if needed) the database at `path`: WAL,
    /// `synchronous=FULL`, busy timeout, then migrations.
    pub fn open(path: &Path) -> Result<Db, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        let mut db = Db { conn };
        db.migrate()?;
        Ok(db)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let found: u32 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        let supported = MIGRATIONS.last().map(|m| m.version).unwrap_or(0);
        if found > supported {
            return Err(StoreError::TooNew { found, supported });
        }
        for m in MIGRATIONS.iter().filter(|m| m.version > found) {
            let step = |conn: &mut Connection| -> Result<(), rusqlite::Error> {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                tx.execute_batch(m.sql)?;
                tx.pragma_update(None, "user_version", m.version)?;
                tx.commit()
            };
            step(&mut self.conn).map_err(|source| StoreError::Migration {
                version: m.version,
                source,
            })?;
        }
        Ok(())
    }

    /// The schema version.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Bytes the database uses (its pages minus the free ones): what its
    /// contents cost on disk.
    pub fn used_bytes(&self) -> Result<u64, StoreError> {
        let pages: i64 = self
            .conn
            .pragma_query_value(None, "page_count", |r| r.get(0))?;
        let free: i64 = self
            .conn
            .pragma_query_value(None, "freelist_count", |r| r.get(0))?;
        let size: i64 = self
            .conn
            .pragma_query_value(None, "page_size", |r| r.get(0))?;
        Ok(uint(pages.saturating_sub(free)).saturating_mul(uint(size)))
    }

    /// Records (or refreshes) a device.
    pub fn upsert_device(&mut self, device: &StoredDevice) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO devices (org, device, cert, name, last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (org, device) DO UPDATE SET
                cert = excluded.cert, name = excluded.name,
                last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)",
            params![
                device.org.0.as_slice(),
                device.cert.device_id().0.as_slice(),
                device.cert.to_bytes(),
                device.name,
                int(device.last_seen_ms)
            ],
        )?;
        Ok(())
    }

    /// Every stored device.
    pub fn devices(&self) -> Result<Vec<StoredDevice>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT org, device, cert, name, last_seen_ms FROM devices")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (org, device, cert, name, seen) = row?;
            let decoded = id20(&org).zip(DeviceCert::from_bytes(&cert).ok());
            match decoded {
                Some((org, cert)) if cert.device_id().0.as_slice() == device.as_slice() => out
                    .push(StoredDevice {
                        org: OrgId(org),
                        cert,
                        name,
                        last_seen_ms: uint(seen),
                    }),
                _ => tracing::warn!("skipping a corrupt device row"),
            }
        }
        Ok(out)
    }

    /// Forgets devices of `org` (revoked) together with their mail.
    pub fn remove_devices(&mut self, org: OrgId, devices: &[DeviceId]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for d in devices {
            tx.execute(
                "DELETE FROM devices WHERE org = ?1 AND device = ?2",
                params![org.0.as_slice(), d.0.as_slice()],
            )?;
            tx.execute(
                "DELETE FROM mail WHERE org = ?1 AND device = ?2",
                params![org.0.as_slice(), d.0.as_slice()],
            )?;
        }
        mail::drop_orphan_bodies(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// Stores a device revocation of `org` and forgets the device and its
    /// mail, in one transaction.
    pub fn put_device_revocation(
        &mut self,
        org: OrgId,
        revocation: &tincan_core::DeviceRevocation,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let device = revocation.device.0;
        tx.execute(
            "INSERT OR REPLACE INTO device_revocations (org, device, revocation) VALUES (?1, ?2, ?3)",
            params![org.0.as_slice(), device.as_slice(), revocation.to_bytes()],
        )?;
        tx.execute(
            "DELETE FROM devices WHERE org = ?1 AND device = ?2",
            params![org.0.as_slice(), device.as_slice()],
        )?;
        tx.execute(
            "DELETE FROM mail WHERE org = ?1 AND device = ?2",
            params![org.0.as_slice(), device.as_slice()],
        )?;
        mail::drop_orphan_bodies(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// Every stored device revocation (undecodable rows skipped).
    pub fn device_revocations(
        &self,
    ) -> Result<Vec<(OrgId, tincan_core::DeviceRevocation)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT org, revocation FROM device_revocations")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::new();
        for (org, bytes) in rows {
            match (
                id20(&org),
                tincan_core::DeviceRevocation::from_bytes(&bytes),
            ) {
                (Some(org), Some(r)) => out.push((OrgId(org), r)),
                _ => tracing::warn!("skipping a corrupt device revocation row"),
            }
        }
        Ok(out)
    }

    /// Stores `list` as its organisation's current revocation list, unless
    /// a list with a higher serial is stored already.
    pub fn put_revocations(&mut self, list: &Revocations) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO revocations (org, serial, list) VALUES (?1, ?2, ?3)
             ON CONFLICT (org) DO UPDATE SET serial = excluded.serial, list = excluded.list
             WHERE excluded.serial >= revocations.serial",
            params![
                list.org_id().0.as_slice(),
                int(list.serial),
                list.to_bytes()
            ],
        )?;
        Ok(())
    }

    /// Every stored revocation list.
    pub fn revocations(&self) -> Result<Vec<Revocations>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT list FROM revocations")?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for row in rows {
            match Revocations::from_bytes(&row?) {
                Ok(list) if list.verify().is_ok() => out.push(list),
                _ => tracing::warn!("skipping a corrupt revocation list"),
            }
        }
        Ok(out)
    }

    /// Records the newest epoch of a site (never lowers it).
    pub fn put_epoch(&mut self, org: OrgId, site: SiteId, epoch: u64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO epochs (org, site, epoch) VALUES (?1, ?2, ?3)
             ON CONFLICT (org, site) DO UPDATE SET epoch = max(epoch, excluded.epoch)",
            params![org.0.as_slice(), site.0.as_slice(), int(epoch)],
        )?;
        Ok(())
    }

    /// Forgets the epoch of a site the lease table evicted.
    pub fn delete_epoch(&mut self, org: OrgId, site: SiteId) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM epochs WHERE org = ?1 AND site = ?2",
            params![org.0.as_slice(), site.0.as_slice()],
        )?;
        Ok(())
    }

    /// The stored epoch of one site.
    pub fn epoch(&self, org: OrgId, site: SiteId) -> Result<Option<u64>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT epoch FROM epochs WHERE org = ?1 AND site = ?2",
                params![org.0.as_slice(), site.0.as_slice()],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(uint))
    }

    /// Every stored site epoch.
    pub fn epochs(&self) -> Result<Vec<(OrgId, SiteId, u64)>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT org, site, epoch FROM epochs")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (org, site, epoch) = row?;
            match (id20(&org), <[u8; 16]>::try_from(site.as_slice())) {
                (Some(org), Ok(site)) => out.push((OrgId(org), SiteId(site), uint(epoch))),
                _ => tracing::warn!("skipping a corrupt epoch row"),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
