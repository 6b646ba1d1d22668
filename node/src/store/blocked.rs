//! The block list (migration 7): users whose envelopes this node refuses
//! (`tincan block`). One row per user, with the name they were shown under
//! when blocked, so `tincan blocked` can list them even if they are no
//! longer in the peer list.

use rusqlite::params;
use tincan_core::UserId;

use super::{column, Store, StoreError};

/// A blocked user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockedRecord {
    /// The user.
    pub user: UserId,
    /// How they were shown when blocked.
    pub name: String,
    /// When, ms since the Unix epoch.
    pub blocked_at_ms: u64,
}

impl Store {
    /// Blocks a user; returns false (and keeps the first row) if they
    /// already were.
    pub fn block_user(&self, record: &BlockedRecord) -> Result<bool, StoreError> {
        let changed = self
            .conn
            .prepare_cached(
                "INSERT INTO blocked_users (user, name, blocked_at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user) DO NOTHING",
            )?
            .execute(params![
                &record.user.0[..],
                record.name,
                column::int(record.blocked_at_ms, "blocked_at_ms")?
            ])?;
        Ok(changed == 1)
    }

    /// Unblocks a user; returns whether they were blocked.
    pub fn unblock_user(&self, user: &UserId) -> Result<bool, StoreError> {
        let changed = self
            .conn
            .prepare_cached("DELETE FROM blocked_users WHERE user = ?1")?
            .execute(params![&user.0[..]])?;
        Ok(changed == 1)
    }

    /// Every blocked user, in the order they were blocked. Rows that do
    /// not decode are skipped with a warning.
    pub fn blocked_users(&self) -> Result<Vec<BlockedRecord>, StoreError> {
        let raws = self
            .conn
            .prepare_cached(
                "SELECT user, name, blocked_at_ms FROM blocked_users
                 ORDER BY blocked_at_ms, rowid",
            )?
            .query_map([], column::blob_text_int)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(column::decode_all(
            raws,
            "blocked_users",
            |(user, name, at)| {
                Ok(BlockedRecord {
                    user: column::user(&user, "blocked_users.user")?,
                    name,
                    blocked_at_ms: column::unsigned(at, "blocked_users.blocked_at_ms")?,
                })
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_util::{temp_store, user};

    #[test]
    fn block_unblock_and_survive_reopening() {
        let (dir, store) = temp_store();
        let bob = BlockedRecord {
            user: user(2),
            name: "Bob".into(),
            blocked_at_ms: 10,
        };
        assert!(store.block_user(&bob).unwrap());
        let again = BlockedRecord {
            name: "Robert".into(),
            blocked_at_ms: 20,
            ..bob.clone()
        };
        assert!(!store.block_user(&again).unwrap(), "already blocked");
        let carol = BlockedRecord {
            user: user(3),
            name: "Carol".into(),
            blocked_at_ms: 15,
        };
        store.block_user(&carol).unwrap();
        drop(store);
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        assert_eq!(store.blocked_users().unwrap(), [bob, carol.clone()]);
        assert!(store.unblock_user(&user(2)).unwrap());
        assert!(!store.unblock_user(&user(2)).unwrap());
        assert_eq!(store.blocked_users().unwrap(), [carol]);
    }
}
