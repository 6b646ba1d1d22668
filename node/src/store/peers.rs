//! Known peer devices and display-name pins.
//!
//! Peers are remembered so a restarted node still knows whom it can queue
//! messages for while they are offline. A device belongs to one user for
//! ever (its id is bound to the user's key by its certificate), so an upsert
//! that changes the user is refused. A device's `last_seen_ms` never moves
//! backwards.
//!
//! Name pins are the anti-spoofing rule: the first user seen under a display
//! name keeps it, compared trimmed and case-insensitively (Unicode
//! lowercase); pins are never replaced.

use rusqlite::{params, OptionalExtension};
use tincan_core::{DeviceId, UserId};

use super::{column, Store, StoreError};

/// A peer device this node has seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRecord {
    /// The device; the key of the record.
    pub device: DeviceId,
    /// The user the device belongs to.
    pub user: UserId,
    /// The display name it announced.
    pub name: String,
    /// Its certificate, opaque here (DER).
    pub cert: Vec<u8>,
    /// Addresses it was reachable at (`ip:port` strings).
    pub addrs: Vec<String>,
    /// When it was last seen (ms since the Unix epoch).
    pub last_seen_ms: u64,
}

/// A row as SQLite returned it, before any decoding can fail.
struct RawPeer {
    device: Vec<u8>,
    user: Vec<u8>,
    name: String,
    cert: Vec<u8>,
    addrs: String,
    last_seen_ms: i64,
}

impl RawPeer {
    fn decode(self) -> Result<PeerRecord, StoreError> {
        let addrs = serde_json::from_str(&self.addrs)
            .map_err(|e| StoreError::Corrupt(format!("peers.addrs is not a JSON list: {e}")))?;
        Ok(PeerRecord {
            device: column::device(&self.device, "peers.device")?,
            user: column::user(&self.user, "peers.user")?,
            name: self.name,
            cert: self.cert,
            addrs,
            last_seen_ms: column::unsigned(self.last_seen_ms, "peers.last_seen_ms")?,
        })
    }
}

/// The key a display name is pinned under: its confusable skeleton, so
/// look-alike names share one pin.
fn normalize_name(name: &str) -> String {
    tincan_core::name::pin_key(name)
}

/// Re-keys every name pin with the current [`normalize_name`], in one
/// transaction, when any stored key differs from it: databases written
/// before pins used skeletons (keys were trimmed lower case), or before an
/// update of the Unicode confusable tables. Where two old keys now share
/// one, the older pin (lower rowid) keeps the name, as it would have had
/// the new rule applied when they were made. Rows whose user does not
/// decode are left to [`Store::pins`] to skip.
pub(super) fn rekey_pins(conn: &mut rusqlite::Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let rows = tx
        .prepare("SELECT name, user FROM name_pins ORDER BY rowid")?
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if rows.iter().all(|(name, _)| normalize_name(name) == *name) {
        return Ok(());
    }
    tx.execute("DELETE FROM name_pins", [])?;
    {
        let mut insert =
            tx.prepare("INSERT OR IGNORE INTO name_pins (name, user) VALUES (?1, ?2)")?;
        for (name, user) in &rows {
            let key = normalize_name(name);
            if !key.is_empty() {
                insert.execute(params![key, user])?;
            }
        }
    }
    tx.commit()?;
    tracing::info!(
        pins = rows.len(),
        "name pins re-keyed by confusable skeleton"
    );
    Ok(())
}

impl Store {
    /// Inserts or updates the peer `p.device`: name, addresses, certificate
    /// and `last_seen_ms` (kept at the newest seen). Fails with
    /// [`StoreError::DeviceUserMismatch`], changing nothing, if the device is
    /// stored under another user.
    pub fn upsert_peer(&self, p: &PeerRecord) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        let stored: Option<Vec<u8>> = tx
            .prepare_cached("SELECT user FROM peers WHERE device = ?1")?
            .query_row(params![&p.device.0[..]], |r| r.get(0))
            .optional()?;
        if let Some(stored) = stored {
            let stored = column::user(&stored, "peers.user")?;
            if stored != p.user {
                return Err(StoreError::DeviceUserMismatch {
                    device: p.device,
                    stored,
                    offered: p.user,
                });
            }
        }
        // `Value`'s Display cannot fail, unlike `serde_json::to_string`.
        let addrs = serde_json::Value::from(p.addrs.clone()).to_string();
        tx.prepare_cached(
            "INSERT INTO peers (device, user, name, cert, addrs, last_seen_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (device) DO UPDATE SET
                 name = excluded.name,
                 cert = excluded.cert,
                 addrs = excluded.addrs,
                 last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)",
        )?
        .execute(params![
            &p.device.0[..],
            &p.user.0[..],
            p.name,
            p.cert,
            addrs,
            column::int(p.last_seen_ms, "last_seen_ms")?,
        ])?;
        tx.commit()?;
        Ok(())
    }

    /// Every known peer device, by name then device id. Rows that do not
    /// decode are skipped with a warning.
    pub fn peers(&self) -> Result<Vec<PeerRecord>, StoreError> {
        let raws = self
            .conn
            .prepare_cached(
                "SELECT device, user, name, cert, addrs, last_seen_ms
                 FROM peers ORDER BY name, device",
            )?
            .query_map([], |row| {
                Ok(RawPeer {
                    device: row.get(0)?,
                    user: row.get(1)?,
                    name: row.get(2)?,
                    cert: row.get(3)?,
                    addrs: row.get(4)?,
                    last_seen_ms: row.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(column::decode_all(raws, "peers", RawPeer::decode))
    }

    /// Pins `name` (case-insensitive, trimmed) to `user` if unpinned; returns
    /// the user the name is pinned to after the call. An empty name is
    /// [`StoreError::EmptyName`].
    pub fn pin_name(&self, name: &str, user: &UserId) -> Result<UserId, StoreError> {
        let key = normalize_name(name);
        if key.is_empty() {
            return Err(StoreError::EmptyName);
        }
        let pinned: Vec<u8> = self
            .conn
            .prepare_cached(
                // The no-op update makes RETURNING yield the existing row
                // when the name is already pinned, in one atomic statement.
                "INSERT INTO name_pins (name, user) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET user = user
                 RETURNING user",
            )?
            .query_row(params![key, &user.0[..]], |r| r.get(0))?;
        column::user(&pinned, "name_pins.user")
    }

    /// Every pin as (normalised name, user), by name. Rows that do not
    /// decode are skipped with a warning.
    pub fn pins(&self) -> Result<Vec<(String, UserId)>, StoreError> {
        let raws = self
            .conn
            .prepare_cached("SELECT name, user FROM name_pins ORDER BY name")?
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(column::decode_all(raws, "name_pins", |(name, user)| {
            Ok((name, column::user(&user, "name_pins.user")?))
        }))
    }
}

impl Store {
    /// Users with stored devices who could be forgotten without losing
    /// anything: no message in either direction, not a contact, no message
    /// waiting in the outbox for one of their devices. Least recently seen
    /// first, at most `limit`. The caller adds what the store does not know
    /// (online, organisation member).
    pub fn forgettable_users(&self, limit: usize) -> Result<Vec<UserId>, StoreError> {
        let raws = self
            .conn
            .prepare_cached(
                "SELECT p.user FROM peers p
                 WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.peer = p.user)
                   AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.user = p.user)
                   AND NOT EXISTS (SELECT 1 FROM outbox o JOIN peers q ON q.device = o.device
                                   WHERE q.user = p.user)
                 GROUP BY p.user ORDER BY max(p.last_seen_ms), p.user LIMIT ?1",
            )?
            .query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
                row.get::<_, Vec<u8>>(0)
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(column::decode_all(raws, "peers", |user| {
            column::user(&user, "peers.user")
        }))
    }

    /// Forgets a user: their device rows and name pins, in one transaction.
    pub fn forget_user(&self, user: &UserId) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        tx.prepare_cached("DELETE FROM peers WHERE user = ?1")?
            .execute(params![&user.0[..]])?;
        tx.prepare_cached("DELETE FROM name_pins WHERE user = ?1")?
            .execute(params![&user.0[..]])?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_util::{device, temp_store, user};

    fn peer(d: u8, u: u8, name: &str, seen: u64) -> PeerRecord {
        PeerRecord {
            device: device(d),
            user: user(u),
            name: name.into(),
            cert: vec![d; 8],
            addrs: vec![format!("192.168.1.{d}:4433")],
            last_seen_ms: seen,
        }
    }

    #[test]
    fn upsert_inserts_then_updates() {
        let (_dir, store) = temp_store();
        let a = peer(1, 1, "Ann", 100);
        store.upsert_peer(&a).unwrap();
        store.upsert_peer(&peer(2, 2, "Bob", 100)).unwrap();
        assert_eq!(store.peers().unwrap().len(), 2);

        let mut moved = a.clone();
        moved.name = "Ann B".into();
        moved.addrs = vec!["10.0.0.5:4433".into(), "[fe80::1]:4433".into()];
        moved.cert = vec![9; 4];
        moved.last_seen_ms = 200;
        store.upsert_peer(&moved).unwrap();
        let peers = store.peers().unwrap();
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[0], moved);

        // A stale sighting does not move last_seen backwards.
        let mut stale = moved.clone();
        stale.last_seen_ms = 150;
        store.upsert_peer(&stale).unwrap();
        assert_eq!(store.peers().unwrap()[0].last_seen_ms, 200);
    }

    #[test]
    fn device_cannot_change_user() {
        let (_dir, store) = temp_store();
        store.upsert_peer(&peer(1, 1, "Ann", 100)).unwrap();
        match store.upsert_peer(&peer(1, 5, "Mallory", 300)) {
            Err(StoreError::DeviceUserMismatch {
                stored, offered, ..
            }) => assert_eq!((stored, offered), (user(1), user(5))),
            other => panic!("expected DeviceUserMismatch, got {other:?}"),
        }
        assert_eq!(store.peers().unwrap(), [peer(1, 1, "Ann", 100)]);
    }

    #[test]
    fn peers_survive_reopen_and_bad_rows_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let store = Store::open(&path).unwrap();
            store.upsert_peer(&peer(1, 1, "Ann", 100)).unwrap();
            store.upsert_peer(&peer(2, 2, "Bob", 100)).unwrap();
            store
                .conn
                .execute("UPDATE peers SET addrs = 'not json' WHERE name = 'Bob'", [])
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.peers().unwrap(), [peer(1, 1, "Ann", 100)]);
    }

    #[test]
    fn first_pin_wins_case_insensitively() {
        let (_dir, store) = temp_store();
        assert_eq!(store.pin_name("Ann", &user(1)).unwrap(), user(1));
        assert_eq!(store.pin_name("  ANN ", &user(2)).unwrap(), user(1));
        assert_eq!(store.pin_name("ann", &user(1)).unwrap(), user(1));
        // Unicode case folding, not just ASCII.
        assert_eq!(store.pin_name("Ärzte", &user(3)).unwrap(), user(3));
        assert_eq!(store.pin_name("ÄRZTE", &user(4)).unwrap(), user(3));
        assert_eq!(store.pin_name("Bob", &user(2)).unwrap(), user(2));
        assert!(matches!(
            store.pin_name("   ", &user(2)),
            Err(StoreError::EmptyName)
        ));
        assert_eq!(
            store.pins().unwrap(),
            [
                ("ann".to_owned(), user(1)),
                ("a\u{308}rzte".to_owned(), user(3)),
                ("bob".to_owned(), user(2)),
            ]
        );
    }

    #[test]
    fn look_alike_names_share_one_pin() {
        let (_dir, store) = temp_store();
        assert_eq!(store.pin_name("Bob", &user(1)).unwrap(), user(1));
        for (n, alike) in ["B\u{043E}b", "Bob\u{200B}", "\u{202E}Bob", "B\u{2060}ob"]
            .into_iter()
            .enumerate()
        {
            let n = u8::try_from(n).unwrap() + 2;
            assert_eq!(
                store.pin_name(alike, &user(n)).unwrap(),
                user(1),
                "{alike:?}"
            );
        }
        assert!(matches!(
            store.pin_name("\u{200B}", &user(9)),
            Err(StoreError::EmptyName)
        ));
        assert_eq!(store.pins().unwrap(), [("bob".to_owned(), user(1))]);
    }

    #[test]
    fn pins_stored_under_old_keys_are_rekeyed_older_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let store = Store::open(&path).unwrap();
            // Keys as the trimmed-lower-case rule stored them: the real
            // Bob first, then a Cyrillic-о Bob who got a pin of his own.
            for (key, u) in [("bob", 1), ("b\u{043E}b", 2), ("ärzte", 3)] {
                store
                    .conn
                    .execute(
                        "INSERT INTO name_pins (name, user) VALUES (?1, ?2)",
                        params![key, &user(u).0[..]],
                    )
                    .unwrap();
            }
        }
        let store = Store::open(&path).unwrap();
        let expected = [
            ("a\u{308}rzte".to_owned(), user(3)),
            ("bob".to_owned(), user(1)),
        ];
        assert_eq!(store.pins().unwrap(), expected);
        assert_eq!(store.pin_name("B\u{043E}b", &user(2)).unwrap(), user(1));
        drop(store);
        // Reopening finds nothing to change.
        assert_eq!(Store::open(&path).unwrap().pins().unwrap(), expected);
    }

    #[test]
    fn only_users_without_history_contacts_or_mail_are_forgettable_oldest_first() {
        let (_dir, store) = temp_store();
        store.upsert_peer(&peer(1, 1, "Ann", 300)).unwrap();
        store.upsert_peer(&peer(2, 2, "Bo", 100)).unwrap();
        store.upsert_peer(&peer(3, 3, "Cy", 200)).unwrap();
        store.upsert_peer(&peer(4, 4, "Di", 50)).unwrap();
        store.pin_name("Bo", &user(2)).unwrap();
        // Ann has a conversation; Di has mail waiting.
        let mut m = crate::store::test_util::message(1, crate::store::Direction::In, 10);
        m.peer = user(1);
        store.insert_message(&m).unwrap();
        let mut e = crate::store::test_util::entry(2, 4, 10);
        e.device = device(4);
        store.queue_control(std::slice::from_ref(&e)).unwrap();
        assert_eq!(store.forgettable_users(10).unwrap(), vec![user(2), user(3)]);
        assert_eq!(store.forgettable_users(1).unwrap(), vec![user(2)]);
        store.forget_user(&user(2)).unwrap();
        assert!(store.peers().unwrap().iter().all(|p| p.user != user(2)));
        assert!(store.pins().unwrap().iter().all(|(_, u)| *u != user(2)));
        assert_eq!(store.forgettable_users(10).unwrap(), vec![user(3)]);
    }
}
