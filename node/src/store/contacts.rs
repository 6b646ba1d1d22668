//! The contact list (migration 11): requests, accepted contacts outside
//! the organisation, and the user's own names and groups for anyone.
//! Organisation members need no row to be contacts; a row without a state
//! only carries a name or group the user gave them. Muted conversations
//! live here too: muting is the user's own view of a contact or room.

use rusqlite::{params, OptionalExtension};
use tincan_core::{ContactState, UserId};

use super::{column, Store, StoreError};

/// One row of the contact list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactRecord {
    /// The contact.
    pub user: UserId,
    /// How the user calls them (their own name unless renamed).
    pub name: String,
    /// The user's group for them ("" = none).
    pub group: String,
    /// Where the request handshake stands (`None`: no handshake, e.g. an
    /// organisation member the user only put in a group).
    pub state: Option<ContactState>,
    /// The message of their request, when they asked.
    pub message: String,
    /// Last change, ms since the Unix epoch.
    pub updated_at_ms: u64,
}

impl Store {
    /// Inserts or replaces the row of `record.user`.
    pub fn put_contact(&self, record: &ContactRecord) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO contacts (user, name, grp, state, message, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (user) DO UPDATE SET name = excluded.name, grp = excluded.grp,
                     state = excluded.state, message = excluded.message,
                     updated_at_ms = excluded.updated_at_ms",
            )?
            .execute(params![
                &record.user.0[..],
                record.name,
                record.group,
                record.state.map(ContactState::as_str),
                record.message,
                column::int(record.updated_at_ms, "updated_at_ms")?
            ])?;
        Ok(())
    }

    /// The row of `user`, if any.
    pub fn contact(&self, user: &UserId) -> Result<Option<ContactRecord>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT user, name, grp, state, message, updated_at_ms FROM contacts
                 WHERE user = ?1",
            )?
            .query_row(params![&user.0[..]], raw_contact)
            .optional()?
            .map(decode)
            .transpose()
    }

    /// Removes the row of `user`; returns whether there was one.
    pub fn remove_contact(&self, user: &UserId) -> Result<bool, StoreError> {
        let changed = self
            .conn
            .prepare_cached("DELETE FROM contacts WHERE user = ?1")?
            .execute(params![&user.0[..]])?;
        Ok(changed == 1)
    }

    /// Every row, by name. Rows that do not decode are skipped with a
    /// warning.
    pub fn contacts(&self) -> Result<Vec<ContactRecord>, StoreError> {
        let raws = self
            .conn
            .prepare_cached(
                "SELECT user, name, grp, state, message, updated_at_ms FROM contacts
                 ORDER BY name COLLATE NOCASE, user",
            )?
            .query_map([], raw_contact)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(column::decode_all(raws, "contacts", decode))
    }
}

type RawContact = (Vec<u8>, String, String, Option<String>, String, i64);

fn raw_contact(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawContact> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn decode(raw: RawContact) -> Result<ContactRecord, StoreError> {
    let (user, name, group, state, message, updated) = raw;
    Ok(ContactRecord {
        user: column::user(&user, "contacts.user")?,
        name,
        group,
        state: state
            .map(|s| s.parse::<ContactState>().map_err(StoreError::Corrupt))
            .transpose()?,
        message,
        updated_at_ms: column::unsigned(updated, "contacts.updated_at_ms")?,
    })
}

impl Store {
    /// Mutes or unmutes a conversation (a peer's user id or a room id's
    /// bytes); returns whether anything changed.
    pub fn set_muted(
        &self,
        conversation: &[u8],
        muted: bool,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let changed = if muted {
            self.conn
                .prepare_cached(
                    "INSERT INTO muted_conversations (conversation, muted_at_ms) VALUES (?1, ?2)
                     ON CONFLICT (conversation) DO NOTHING",
                )?
                .execute(params![conversation, column::int(now_ms, "muted_at_ms")?])?
        } else {
            self.conn
                .prepare_cached("DELETE FROM muted_conversations WHERE conversation = ?1")?
                .execute(params![conversation])?
        };
        Ok(changed == 1)
    }

    /// Whether a conversation is muted.
    pub fn is_muted(&self, conversation: &[u8]) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM muted_conversations WHERE conversation = ?1)",
            )?
            .query_row(params![conversation], |r| r.get(0))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_util::{temp_store, user};

    #[test]
    fn put_get_list_remove() {
        let (_dir, store) = temp_store();
        let mut record = ContactRecord {
            user: user(3),
            name: "Zoe".into(),
            group: String::new(),
            state: Some(ContactState::Incoming),
            message: "hi".into(),
            updated_at_ms: 5,
        };
        store.put_contact(&record).unwrap();
        record.state = Some(ContactState::Accepted);
        record.group = "Sales".into();
        store.put_contact(&record).unwrap();
        store
            .put_contact(&ContactRecord {
                user: user(4),
                name: "amy".into(),
                state: None,
                ..record.clone()
            })
            .unwrap();
        assert_eq!(store.contact(&user(3)).unwrap(), Some(record.clone()));
        let names: Vec<_> = store
            .contacts()
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["amy", "Zoe"]);
        assert!(store.remove_contact(&user(3)).unwrap());
        assert!(store.set_muted(&user(3).0, true, 1).unwrap());
        assert!(!store.set_muted(&user(3).0, true, 2).unwrap());
        assert!(store.is_muted(&user(3).0).unwrap());
        assert!(store.set_muted(&user(3).0, false, 3).unwrap());
        assert!(!store.is_muted(&user(3).0).unwrap());
        assert!(store.contact(&user(3)).unwrap().is_none());
    }
}
