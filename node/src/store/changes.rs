//! Edits and retractions of stored messages (migration 11).
//!
//! A change names its target by message id and is applied only to rows
//! whose `from_user` is the change's author: the author is the verified
//! sender of the change's envelope, so nobody can change another user's
//! words (and a forged id simply matches nothing of theirs). Every row of
//! the message changes at once (a message to several users has one row per
//! conversation). Edits are last-writer-wins by their own timestamp; a
//! retraction empties the text (the FTS index follows by trigger) and is
//! final.
//!
//! A change may overtake its message on another path; it then waits in
//! `pending_changes` (at most [`MAX_PENDING_PER_AUTHOR`] per author, oldest
//! dropped) until the message is stored.

use rusqlite::{params, OptionalExtension};
use tincan_core::{Change, MessageId, UserId};

use super::messages::{RawMessage, COLUMNS};
use super::{column, Store, StoreError};

/// Fewest hex characters of a message id that `tincan edit`/`delete`/
/// `--reply-to` accept (`history --json` prints the full 32).
pub const MIN_ID_PREFIX: usize = 6;

/// Most changes waiting for their message, per author.
pub const MAX_PENDING_PER_AUTHOR: i64 = 256;

/// What became of a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// The stored rows changed.
    Applied,
    /// The message is known but the change is older than its current
    /// state (an older edit, or anything after a retraction).
    Stale,
    /// No message of this author has that id (yet): kept pending.
    Pending,
}

impl Store {
    /// Applies `change` by `author` made at `at_ms` (the change's own
    /// timestamp).
    pub fn apply_change(
        &self,
        author: &UserId,
        change: &Change,
        at_ms: u64,
    ) -> Result<ChangeOutcome, StoreError> {
        let tx = self.write_tx()?;
        let target = change.target();
        let known: bool = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM messages WHERE id = ?1 AND from_user = ?2)",
            )?
            .query_row(params![&target.0[..], &author.0[..]], |r| r.get(0))?;
        let at = column::int(at_ms, "at_ms")?;
        let outcome = if !known {
            keep_pending(&tx, author, change, at)?;
            ChangeOutcome::Pending
        } else {
            let changed = match change {
                Change::Edit { text, .. } => tx
                    .prepare_cached(
                        "UPDATE messages SET text = ?3, edited_at_ms = ?4
                         WHERE id = ?1 AND from_user = ?2 AND retracted = 0
                           AND (edited_at_ms IS NULL OR edited_at_ms < ?4)",
                    )?
                    .execute(params![&target.0[..], &author.0[..], text, at])?,
                Change::Retract { .. } => tx
                    .prepare_cached(
                        "UPDATE messages SET text = '', retracted = 1, edited_at_ms = ?3
                         WHERE id = ?1 AND from_user = ?2 AND retracted = 0",
                    )?
                    .execute(params![&target.0[..], &author.0[..], at])?,
            };
            if changed > 0 {
                ChangeOutcome::Applied
            } else {
                ChangeOutcome::Stale
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    /// Takes the change waiting for message `id` of `author`, if any, with
    /// its timestamp (call after storing a new message, then apply it).
    pub fn take_pending_change(
        &self,
        author: &UserId,
        id: &MessageId,
    ) -> Result<Option<(Change, u64)>, StoreError> {
        let row: Option<(bool, Option<String>, i64)> = self
            .conn
            .prepare_cached(
                "DELETE FROM pending_changes WHERE author = ?1 AND target = ?2
                 RETURNING retract, text, at_ms",
            )?
            .query_row(params![&author.0[..], &id.0[..]], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let Some((retract, text, at)) = row else {
            return Ok(None);
        };
        let change = if retract {
            Change::Retract { target: *id }
        } else {
            Change::Edit {
                target: *id,
                text: text.unwrap_or_default(),
            }
        };
        Ok(Some((
            change,
            column::unsigned(at, "pending_changes.at_ms")?,
        )))
    }
}

impl Store {
    /// The rows of messages whose id starts with the hex `prefix` (at
    /// least [`MIN_ID_PREFIX`] characters; a full id matches only itself),
    /// optionally only those written by `author`, oldest first.
    pub fn find_messages(
        &self,
        prefix: &str,
        author: Option<&UserId>,
    ) -> Result<Vec<super::MessageRecord>, StoreError> {
        let prefix = prefix.trim().to_ascii_uppercase();
        if prefix.len() < MIN_ID_PREFIX || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(StoreError::BadIdPrefix(prefix.to_ascii_lowercase()));
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM messages
             WHERE substr(hex(id), 1, length(?1)) = ?1 AND (?2 IS NULL OR from_user = ?2)
             ORDER BY seq"
        );
        let raws = self
            .conn
            .prepare_cached(&sql)?
            .query_map(
                params![prefix, author.map(|a| a.0.to_vec())],
                RawMessage::from_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(column::decode_all(raws, "messages", RawMessage::decode))
    }
}

fn keep_pending(
    tx: &rusqlite::Connection,
    author: &UserId,
    change: &Change,
    at: i64,
) -> Result<(), StoreError> {
    let (retract, text) = match change {
        Change::Edit { text, .. } => (false, Some(text.as_str())),
        Change::Retract { .. } => (true, None),
    };
    // A retraction replaces anything; an edit replaces only an older edit.
    tx.prepare_cached(
        "INSERT INTO pending_changes (author, target, retract, text, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (author, target) DO UPDATE SET
             retract = excluded.retract, text = excluded.text, at_ms = excluded.at_ms
         WHERE pending_changes.retract = 0
           AND (excluded.retract = 1 OR excluded.at_ms > pending_changes.at_ms)",
    )?
    .execute(params![
        &author.0[..],
        &change.target().0[..],
        retract,
        text,
        at
    ])?;
    tx.prepare_cached(
        "DELETE FROM pending_changes WHERE author = ?1 AND rowid NOT IN (
             SELECT rowid FROM pending_changes WHERE author = ?1
             ORDER BY at_ms DESC LIMIT ?2)",
    )?
    .execute(params![&author.0[..], MAX_PENDING_PER_AUTHOR])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_util::{message, mid, temp_store, user};
    use crate::store::{Direction, SearchQuery};

    fn edit(n: u8, text: &str) -> Change {
        Change::Edit {
            target: mid(n),
            text: text.into(),
        }
    }

    #[test]
    fn edits_are_last_writer_wins_and_only_by_the_author() {
        let (_dir, store) = temp_store();
        let m = message(1, Direction::In, 100);
        store.insert_message(&m).unwrap();
        let author = m.from_user;
        assert_eq!(
            store
                .apply_change(&author, &edit(1, "second"), 300)
                .unwrap(),
            ChangeOutcome::Applied
        );
        assert_eq!(
            store.apply_change(&author, &edit(1, "first"), 200).unwrap(),
            ChangeOutcome::Stale
        );
        // Another user naming the same id changes nothing of the author's.
        assert_eq!(
            store
                .apply_change(&user(9), &edit(1, "forged"), 400)
                .unwrap(),
            ChangeOutcome::Pending
        );
        let row = store.message(&m.id, &m.from_device).unwrap().unwrap();
        assert_eq!(row.text, "second");
        assert_eq!(row.extras.edited_at_ms, Some(300));
    }

    #[test]
    fn retraction_is_final_and_leaves_the_index() {
        let (_dir, store) = temp_store();
        let mut m = message(1, Direction::In, 100);
        m.text = "secret plans".into();
        store.insert_message(&m).unwrap();
        let retract = Change::Retract { target: m.id };
        assert_eq!(
            store.apply_change(&m.from_user, &retract, 200).unwrap(),
            ChangeOutcome::Applied
        );
        assert_eq!(
            store
                .apply_change(&m.from_user, &edit(1, "back"), 300)
                .unwrap(),
            ChangeOutcome::Stale
        );
        let row = store.message(&m.id, &m.from_device).unwrap().unwrap();
        assert!(row.extras.retracted);
        assert_eq!(row.text, "");
        let hits = store
            .search(&SearchQuery {
                words: "secret".into(),
                ..Default::default()
            })
            .unwrap();
        assert!(hits.is_empty());
    }

    #[test]
    fn find_messages_by_prefix_and_author() {
        let (_dir, store) = temp_store();
        let m = message(1, Direction::In, 100);
        store.insert_message(&m).unwrap();
        let full = m.id.to_string();
        assert_eq!(store.find_messages(&full[..8], None).unwrap().len(), 1);
        assert_eq!(
            store
                .find_messages(&full.to_uppercase(), Some(&m.from_user))
                .unwrap()
                .len(),
            1
        );
        assert!(store
            .find_messages(&full, Some(&user(9)))
            .unwrap()
            .is_empty());
        assert!(store.find_messages("ab", None).is_err());
        assert!(store.find_messages("zzzzzzzz", None).is_err());
    }

    #[test]
    fn a_change_that_overtook_its_message_waits() {
        let (_dir, store) = temp_store();
        let m = message(1, Direction::In, 100);
        let author = m.from_user;
        store.apply_change(&author, &edit(1, "new"), 200).unwrap();
        store.apply_change(&author, &edit(1, "older"), 150).unwrap();
        store
            .apply_change(&author, &Change::Retract { target: mid(1) }, 120)
            .unwrap();
        store.apply_change(&author, &edit(1, "late"), 300).unwrap();
        store.insert_message(&m).unwrap();
        let (change, at) = store.take_pending_change(&author, &m.id).unwrap().unwrap();
        assert_eq!((change, at), (Change::Retract { target: mid(1) }, 120));
        assert!(store.take_pending_change(&author, &m.id).unwrap().is_none());
    }
}
