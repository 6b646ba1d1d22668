//! Schema migrations.
//!
//! [`MIGRATIONS`] is append-only: a released entry is never edited, because
//! databases in the field have already run it. Versions start at 1 and
//! increase (consecutive once branches are merged: a gap is the version
//! another branch adds); `PRAGMA user_version` records the last one
//! applied (0 is an empty file). Each migration and its version bump commit in one
//! transaction, so a crash mid-upgrade leaves the previous version intact and
//! the next open retries.
//!
//! Tables are `STRICT` so SQLite rejects a value of the wrong type instead of
//! storing it, and ids carry `CHECK`s on their byte length.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// One schema step: the version it produces and the SQL that gets there.
pub(crate) struct Migration {
    /// The `user_version` after this step.
    pub(crate) version: u32,
    /// Statements run in one transaction.
    pub(crate) sql: &'static str,
}

/// Every schema step, in order.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: "
            -- `seq` is an explicit INTEGER PRIMARY KEY because VACUUM may
            -- renumber an implicit rowid, and history relies on it to keep
            -- insertion order among equal timestamps.
            CREATE TABLE messages (
                seq            INTEGER PRIMARY KEY,
                id             BLOB    NOT NULL CHECK (length(id) = 16),
                from_device    BLOB    NOT NULL CHECK (length(from_device) = 20),
                direction      TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
                peer           BLOB    NOT NULL CHECK (length(peer) = 20),
                from_user      BLOB    NOT NULL CHECK (length(from_user) = 20),
                to_user        BLOB    NOT NULL CHECK (length(to_user) = 20),
                text           TEXT    NOT NULL,
                sent_at_ms     INTEGER NOT NULL CHECK (sent_at_ms >= 0),
                received_at_ms INTEGER CHECK (received_at_ms >= 0),
                state          TEXT    NOT NULL
                    CHECK (state IN ('queued', 'sent', 'delivered', 'read', 'failed')),
                error          TEXT,
                -- A sender picks message ids at random per device, so the
                -- pair is the identity used for dedupe of redelivered copies.
                UNIQUE (from_device, id)
            ) STRICT;

            CREATE TABLE outbox (
                seq             INTEGER PRIMARY KEY,
                message_id      BLOB    NOT NULL CHECK (length(message_id) = 16),
                device          BLOB    NOT NULL CHECK (length(device) = 20),
                envelope        BLOB    NOT NULL,
                created_at_ms   INTEGER NOT NULL CHECK (created_at_ms >= 0),
                expires_at_ms   INTEGER NOT NULL CHECK (expires_at_ms >= 0),
                attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                last_attempt_ms INTEGER CHECK (last_attempt_ms >= 0),
                UNIQUE (message_id, device)
            ) STRICT;
        ",
    },
    Migration {
        version: 2,
        sql: "
            -- History is always read per conversation, newest page first;
            -- the index ends in the implicit rowid (= seq), which is the
            -- tie-breaker of the ORDER BY.
            CREATE INDEX messages_by_peer ON messages (peer, sent_at_ms);

            CREATE TABLE peers (
                device       BLOB    PRIMARY KEY CHECK (length(device) = 20),
                user         BLOB    NOT NULL CHECK (length(user) = 20),
                name         TEXT    NOT NULL,
                cert         BLOB    NOT NULL,
                addrs        TEXT    NOT NULL, -- JSON array of strings
                last_seen_ms INTEGER NOT NULL CHECK (last_seen_ms >= 0)
            ) STRICT;

            -- `name` is the normalised (trimmed, lowercased) display name.
            CREATE TABLE name_pins (
                name TEXT PRIMARY KEY,
                user BLOB NOT NULL CHECK (length(user) = 20)
            ) STRICT;
        ",
    },
    Migration {
        version: 3,
        sql: "
            -- A relay took custody: no more retries, the row waits for the
            -- end-to-end receipt (or expiry).
            ALTER TABLE outbox ADD COLUMN held INTEGER NOT NULL DEFAULT 0
                CHECK (held IN (0, 1));

            -- Small node facts that must survive restarts (site id, the
            -- highest gateway epoch seen).
            CREATE TABLE node_state (
                key   TEXT PRIMARY KEY,
                value TEXT NOT NULL
            ) STRICT;
        ",
    },
    Migration {
        version: 4,
        sql: "
            -- One message to several users (`send bob,carol`) is one id
            -- with a history row in each conversation, so the identity of a
            -- row becomes (from_device, id, peer). Incoming rows have the
            -- sender as peer, so their dedupe on (from_device, id) is
            -- unchanged. SQLite cannot alter a constraint: rebuild.
            CREATE TABLE messages_v4 (
                seq            INTEGER PRIMARY KEY,
                id             BLOB    NOT NULL CHECK (length(id) = 16),
                from_device    BLOB    NOT NULL CHECK (length(from_device) = 20),
                direction      TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
                peer           BLOB    NOT NULL CHECK (length(peer) = 20),
                from_user      BLOB    NOT NULL CHECK (length(from_user) = 20),
                to_user        BLOB    NOT NULL CHECK (length(to_user) = 20),
                text           TEXT    NOT NULL,
                sent_at_ms     INTEGER NOT NULL CHECK (sent_at_ms >= 0),
                received_at_ms INTEGER CHECK (received_at_ms >= 0),
                state          TEXT    NOT NULL
                    CHECK (state IN ('queued', 'sent', 'delivered', 'read', 'failed')),
                error          TEXT,
                UNIQUE (from_device, id, peer)
            ) STRICT;
            INSERT INTO messages_v4 SELECT * FROM messages;
            DROP TABLE messages;
            ALTER TABLE messages_v4 RENAME TO messages;
            CREATE INDEX messages_by_peer ON messages (peer, sent_at_ms);
        ",
    },
    Migration {
        version: 5,
        sql: "
            -- File transfers, in and out. `offer` is the postcard FileOffer
            -- (with the content key: the home is 0700); `have` is the
            -- verified-chunk bitmap (in) or the served-chunk bitmap (out);
            -- `bytes_total` counts every chunk byte received (in) or sent
            -- (out), repeats included. `devices` holds 20-byte device ids
            -- back to back: the recipients (out) or the sender (in).
            CREATE TABLE transfers (
                seq           INTEGER PRIMARY KEY,
                id            BLOB    NOT NULL CHECK (length(id) = 16),
                direction     TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
                peer          BLOB    NOT NULL CHECK (length(peer) = 20),
                devices       BLOB    NOT NULL CHECK (length(devices) % 20 = 0),
                offer         BLOB    NOT NULL,
                state         TEXT    NOT NULL CHECK (state IN ('offered', 'accepted',
                    'transferring', 'paused', 'done', 'failed', 'rejected', 'cancelled')),
                bytes_done    INTEGER NOT NULL DEFAULT 0 CHECK (bytes_done >= 0),
                bytes_total   INTEGER NOT NULL DEFAULT 0 CHECK (bytes_total >= 0),
                have          BLOB    NOT NULL DEFAULT x'',
                dest          TEXT,   -- in: the destination folder
                staging       TEXT,   -- in: JSON {top-level name: staging name}
                saved         TEXT,   -- in: JSON [final paths], once done
                error         TEXT,
                created_at_ms INTEGER NOT NULL CHECK (created_at_ms >= 0),
                updated_at_ms INTEGER NOT NULL CHECK (updated_at_ms >= 0),
                UNIQUE (direction, id)
            ) STRICT;

            -- The big, write-once parts, apart so that progress updates of
            -- the row above stay small: the encoded manifest and (out) the
            -- JSON list of source files [{path, size, mtime_ns}].
            CREATE TABLE transfer_manifests (
                transfer INTEGER PRIMARY KEY REFERENCES transfers (seq) ON DELETE CASCADE,
                manifest BLOB NOT NULL,
                sources  TEXT
            ) STRICT;
        ",
    },
    Migration {
        version: 6,
        sql: "
            -- Full-text search over message texts (`tincan search`). An
            -- external-content FTS5 table: the text lives once, in
            -- `messages`; triggers keep the index in step, and `rebuild`
            -- indexes the rows of the file being upgraded. Diacritics are
            -- folded, so `cafe` finds `café`.
            CREATE VIRTUAL TABLE messages_fts USING fts5(
                text,
                content = 'messages',
                content_rowid = 'seq',
                tokenize = 'unicode61 remove_diacritics 2'
            );
            CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
                INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text);
            END;
            CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
                INSERT INTO messages_fts (messages_fts, rowid, text)
                    VALUES ('delete', old.seq, old.text);
            END;
            CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
                INSERT INTO messages_fts (messages_fts, rowid, text)
                    VALUES ('delete', old.seq, old.text);
                INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text);
            END;
            INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
        ",
    },
    Migration {
        version: 7,
        sql: "
            -- Users whose envelopes this node refuses (`tincan block`);
            -- `name` is how they were shown when blocked.
            CREATE TABLE blocked_users (
                user          BLOB    PRIMARY KEY CHECK (length(user) = 20),
                name          TEXT    NOT NULL,
                blocked_at_ms INTEGER NOT NULL CHECK (blocked_at_ms >= 0)
            ) STRICT;
        ",
    },
    Migration {
        version: 8,
        sql: "
            -- Cross-branch transfers. `uploaded` (out): bitmap of the items
            -- the relay has stored (chunks, then one bit for the manifest),
            -- so a restarted sender resumes its upload. `recipients` (out):
            -- JSON {user_id: null | state} of a transfer offered to several
            -- users, each of whom answers on their own.
            ALTER TABLE transfers ADD COLUMN uploaded BLOB NOT NULL DEFAULT x'';
            ALTER TABLE transfers ADD COLUMN recipients TEXT;

            -- A notice (cancel, ...) that arrived before its transfer's offer
            -- (they travel independently and may overtake each other); it is
            -- applied when the offer from that device arrives.
            CREATE TABLE early_file_notices (
                transfer       BLOB    NOT NULL CHECK (length(transfer) = 16),
                device         BLOB    NOT NULL CHECK (length(device) = 20),
                action         BLOB    NOT NULL,
                received_at_ms INTEGER NOT NULL CHECK (received_at_ms >= 0),
                PRIMARY KEY (transfer, device)
            ) STRICT;
        ",
    },
    Migration {
        version: 9,
        sql: "
            -- Rooms (`tincan room`). A room message or membership line is a
            -- row of `messages` with `room` set (the 1:1 queries skip such
            -- rows); `peer` is its author. `system` marks membership lines.
            ALTER TABLE messages ADD COLUMN room BLOB
                CHECK (room IS NULL OR length(room) = 16);
            ALTER TABLE messages ADD COLUMN system INTEGER NOT NULL DEFAULT 0
                CHECK (system IN (0, 1));
            CREATE INDEX messages_by_room ON messages (room, sent_at_ms)
                WHERE room IS NOT NULL;

            -- One row per room this node knows. `log` is the postcard list
            -- of signed ops, the source of truth; the other columns are its
            -- fold, kept for inspection (`members`/`admins`: JSON arrays of
            -- user ids). `link` is the secret of this node's join link.
            CREATE TABLE rooms (
                id            BLOB    PRIMARY KEY CHECK (length(id) = 16),
                name          TEXT    NOT NULL,
                topic         TEXT    NOT NULL,
                members       TEXT    NOT NULL,
                admins        TEXT    NOT NULL,
                disabled      INTEGER NOT NULL CHECK (disabled IN (0, 1)),
                log           BLOB    NOT NULL,
                created_at_ms INTEGER NOT NULL CHECK (created_at_ms >= 0),
                updated_at_ms INTEGER NOT NULL CHECK (updated_at_ms >= 0)
            ) STRICT;

            -- Sender keys per room epoch and device (ours and the members').
            CREATE TABLE room_keys (
                room   BLOB NOT NULL CHECK (length(room) = 16),
                epoch  BLOB NOT NULL CHECK (length(epoch) = 32),
                device BLOB NOT NULL CHECK (length(device) = 20),
                key    BLOB NOT NULL CHECK (length(key) = 32),
                PRIMARY KEY (room, epoch, device)
            ) STRICT;
        ",
    },
    Migration {
        version: 10,
        sql: "
            -- Devices removed by their user (`tincan device remove`): the
            -- signed revocation, kept for ever so a removed device can
            -- never come back, and passed on to every peer.
            CREATE TABLE device_revocations (
                device        BLOB    PRIMARY KEY CHECK (length(device) = 20),
                user          BLOB    NOT NULL CHECK (length(user) = 20),
                revocation    BLOB    NOT NULL,
                revoked_at_ms INTEGER NOT NULL CHECK (revoked_at_ms >= 0)
            ) STRICT;
            -- This user's own devices (`tincan device list`): the label a
            -- device was paired under and when. Certificates live in
            -- `peers` like any other device's.
            CREATE TABLE own_devices (
                device      BLOB    PRIMARY KEY CHECK (length(device) = 20),
                label       TEXT    NOT NULL,
                added_at_ms INTEGER NOT NULL CHECK (added_at_ms >= 0)
            ) STRICT;
        ",
    },
    Migration {
        version: 11,
        sql: "
            -- Replies, mentions, broadcasts, edits and retractions
            -- (`tincan send --reply-to`, `broadcast`, `edit`, `delete`).
            -- `mentions` is the mentioned user ids, 20 bytes each.
            ALTER TABLE messages ADD COLUMN reply_id BLOB
                CHECK (reply_id IS NULL OR length(reply_id) = 16);
            ALTER TABLE messages ADD COLUMN reply_author BLOB
                CHECK (reply_author IS NULL OR length(reply_author) = 20);
            ALTER TABLE messages ADD COLUMN reply_excerpt TEXT;
            ALTER TABLE messages ADD COLUMN mentions BLOB NOT NULL DEFAULT x''
                CHECK (length(mentions) % 20 = 0);
            ALTER TABLE messages ADD COLUMN broadcast INTEGER NOT NULL DEFAULT 0
                CHECK (broadcast IN (0, 1));
            ALTER TABLE messages ADD COLUMN edited_at_ms INTEGER
                CHECK (edited_at_ms IS NULL OR edited_at_ms >= 0);
            ALTER TABLE messages ADD COLUMN retracted INTEGER NOT NULL DEFAULT 0
                CHECK (retracted IN (0, 1));

            -- A change that arrived before the message it changes (another
            -- path was faster); applied when the message arrives. One per
            -- message: a retraction beats an edit, a newer edit an older.
            CREATE TABLE pending_changes (
                author      BLOB    NOT NULL CHECK (length(author) = 20),
                target      BLOB    NOT NULL CHECK (length(target) = 16),
                retract     INTEGER NOT NULL CHECK (retract IN (0, 1)),
                text        TEXT,
                at_ms       INTEGER NOT NULL CHECK (at_ms >= 0),
                PRIMARY KEY (author, target)
            ) STRICT;

            -- The contact list (`tincan contact`): organisation members are
            -- contacts without a row; a row is a request or an accepted
            -- contact outside the organisation, or a group or name set by
            -- the user for anyone.
            CREATE TABLE contacts (
                user          BLOB    PRIMARY KEY CHECK (length(user) = 20),
                name          TEXT    NOT NULL,
                grp           TEXT    NOT NULL DEFAULT '',
                state         TEXT
                    CHECK (state IS NULL OR state IN
                        ('requested', 'incoming', 'accepted', 'rejected', 'declined')),
                message       TEXT    NOT NULL DEFAULT '',
                updated_at_ms INTEGER NOT NULL CHECK (updated_at_ms >= 0)
            ) STRICT;

            -- Muted conversations (`tincan mute`): a peer user id (20
            -- bytes) or a room id (16). Mentions still notify.
            CREATE TABLE muted_conversations (
                conversation BLOB    PRIMARY KEY
                    CHECK (length(conversation) IN (16, 20)),
                muted_at_ms  INTEGER NOT NULL CHECK (muted_at_ms >= 0)
            ) STRICT;
        ",
    },
];

/// The newest schema version this build knows.
pub(crate) const LATEST: u32 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// Reads `PRAGMA user_version`.
pub(crate) fn user_version(conn: &Connection) -> Result<u32, StoreError> {
    let raw: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    u32::try_from(raw).map_err(|_| StoreError::Corrupt(format!("negative user_version {raw}")))
}

/// Brings the database to [`LATEST`]; returns the resulting version.
pub(crate) fn run(conn: &mut Connection) -> Result<u32, StoreError> {
    run_up_to(conn, LATEST)
}

/// Applies every migration newer than the file's version up to `target`.
/// Split from [`run`] so tests can build an old-version file.
pub(crate) fn run_up_to(conn: &mut Connection, target: u32) -> Result<u32, StoreError> {
    let mut current = user_version(conn)?;
    if current > LATEST {
        return Err(StoreError::TooNew {
            found: current,
            supported: LATEST,
        });
    }
    let start = current;
    let pending = MIGRATIONS
        .iter()
        .filter(|m| m.version > start && m.version <= target);
    for m in pending {
        let fail = |source| StoreError::Migration {
            version: m.version,
            source,
        };
        // IMMEDIATE takes the write lock up front, so a concurrent opener
        // waits (busy timeout) instead of both starting the same migration.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        // Another process may have migrated while we waited for the lock.
        let now = user_version(&tx)?;
        if now >= m.version {
            current = now;
            continue;
        }
        tx.execute_batch(m.sql).map_err(fail)?;
        // user_version lives in the database header, so setting it inside
        // the transaction commits atomically with the schema change.
        tx.pragma_update(None, "user_version", m.version)
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
        tracing::info!(version = m.version, "applied storage migration");
        current = m.version;
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_util::{message, user};
    use crate::store::{Direction, MessageState, Store};

    #[test]
    fn versions_start_at_one_and_increase() {
        // Gaps are the versions other branches reserved (see the module
        // doc); they close when the branches are merged.
        assert_eq!(MIGRATIONS[0].version, 1);
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].version < pair[1].version);
        }
    }

    /// Inserts `m` with the v1 column layout, as a v1 to v10 build would.
    fn insert_v1_row(conn: &Connection, m: &crate::store::MessageRecord) {
        conn.execute(
            "INSERT INTO messages (id, from_device, direction, peer, from_user,
                 to_user, text, sent_at_ms, received_at_ms, state, error)
             VALUES (?1, ?2, 'in', ?3, ?4, ?5, ?6, ?7, ?8, 'delivered', NULL)",
            rusqlite::params![
                &m.id.0[..],
                &m.from_device.0[..],
                &m.peer.0[..],
                &m.from_user.0[..],
                &m.to_user.0[..],
                m.text,
                m.sent_at_ms as i64,
                m.received_at_ms.map(|t| t as i64),
            ],
        )
        .unwrap();
    }

    #[test]
    fn upgrades_a_v1_file_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let m = message(1, Direction::In, 1_000);
        {
            let mut conn = Connection::open(&path).unwrap();
            assert_eq!(run_up_to(&mut conn, 1).unwrap(), 1);
            insert_v1_row(&conn, &m);
            // The v2 tables do not exist yet.
            assert!(conn.prepare("SELECT * FROM peers").is_err());
        }

        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), LATEST);
        let got = store.message(&m.id, &m.from_device).unwrap().unwrap();
        assert_eq!(got.text, m.text);
        assert_eq!(got.state, MessageState::Delivered);
        assert_eq!(
            store.history(&m.peer, &Default::default()).unwrap().len(),
            1
        );
        // A v2 table works after the upgrade.
        assert_eq!(store.pin_name("Ann", &user(1)).unwrap(), user(1));
    }

    #[test]
    fn upgrading_a_v4_file_indexes_its_messages_for_search() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v4.db");
        let mut old = message(1, Direction::In, 1_000);
        old.text = "the quarterly figures are ready".into();
        {
            let mut conn = Connection::open(&path).unwrap();
            assert_eq!(run_up_to(&mut conn, 4).unwrap(), 4);
            insert_v1_row(&conn, &old);
            assert!(conn.prepare("SELECT * FROM messages_fts").is_err());
            assert!(conn.prepare("SELECT * FROM blocked_users").is_err());
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), LATEST);
        let query = crate::store::SearchQuery {
            words: "quarterly".into(),
            ..Default::default()
        };
        let hits = store.search(&query).unwrap();
        assert_eq!(hits.len(), 1, "the message from before the upgrade");
        assert_eq!(hits[0].record, old);
        assert_eq!(hits[0].highlight, "the **quarterly** figures are ready");
        // New rows are indexed by the triggers, and the block list works.
        let mut new = message(2, Direction::In, 2_000);
        new.text = "quarterly party".into();
        store.insert_message(&new).unwrap();
        assert_eq!(store.search(&query).unwrap().len(), 2);
        let blocked = crate::store::BlockedRecord {
            user: user(5),
            name: "Eve".into(),
            blocked_at_ms: 3,
        };
        assert!(store.block_user(&blocked).unwrap());
    }

    #[test]
    fn rerunning_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(run(&mut conn).unwrap(), LATEST);
        assert_eq!(run(&mut conn).unwrap(), LATEST);
    }

    #[test]
    fn refuses_a_newer_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", LATEST + 1)
                .unwrap();
        }
        match Store::open(&path) {
            Err(StoreError::TooNew { found, supported }) => {
                assert_eq!((found, supported), (LATEST + 1, LATEST));
            }
            other => panic!("expected TooNew, got {other:?}"),
        }
    }

    #[test]
    fn failed_migration_leaves_previous_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        run_up_to(&mut conn, 1).unwrap();
        // Make migration 2 collide with an existing object.
        conn.execute_batch("CREATE TABLE peers (x INTEGER)")
            .unwrap();
        match run(&mut conn) {
            Err(StoreError::Migration { version: 2, .. }) => {}
            other => panic!("expected Migration error, got {other:?}"),
        }
        assert_eq!(user_version(&conn).unwrap(), 1);
        // The index from the failed step was rolled back with it.
        let idx: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'messages_by_peer'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(idx, 0);
    }
}
