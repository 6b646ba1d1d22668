//! Read state: marking a conversation's received messages read on this
//! device (`tincan read`), and a sent message read by one recipient when
//! their signed Read receipt arrives. States only move forward (see
//! [`MessageState::can_advance_to`]); a receipt from one recipient of a
//! message sent to several users moves only that conversation's row.

use rusqlite::{params, OptionalExtension};
use tincan_core::{DeviceId, MessageId, UserId};

use super::{column, MessageState, ParseStateError, Store, StoreError};

/// A received message that was just marked read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewlyRead {
    /// The message id.
    pub id: MessageId,
    /// The device that sent it (the Read receipt goes there).
    pub from_device: DeviceId,
}

impl Store {
    /// Marks every received message of the conversation with `peer` that
    /// is not read yet as read; returns them, oldest first.
    pub fn mark_conversation_read(&self, peer: &UserId) -> Result<Vec<NewlyRead>, StoreError> {
        let tx = self.write_tx()?;
        let raws = tx
            .prepare_cached(
                "SELECT id, from_device FROM messages
                 WHERE peer = ?1 AND room IS NULL AND direction = 'in' AND state = 'delivered'
                 ORDER BY sent_at_ms, seq",
            )?
            .query_map(params![&peer.0[..]], |row| {
                Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, Vec<u8>>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        tx.prepare_cached(
            "UPDATE messages SET state = 'read'
             WHERE peer = ?1 AND room IS NULL AND direction = 'in' AND state = 'delivered'",
        )?
        .execute(params![&peer.0[..]])?;
        tx.commit()?;
        Ok(column::decode_all(raws, "messages", |(id, device)| {
            Ok(NewlyRead {
                id: column::message_id(&id, "messages.id")?,
                from_device: column::device(&device, "messages.from_device")?,
            })
        }))
    }

    /// `peer` read our message `(from_device, id)`: its row in that
    /// conversation becomes `read` if it may advance. Returns whether it
    /// changed now (false: already read, or no such message there).
    pub fn mark_read_by(
        &self,
        id: &MessageId,
        from_device: &DeviceId,
        peer: &UserId,
    ) -> Result<bool, StoreError> {
        let tx = self.write_tx()?;
        let current: Option<String> = tx
            .prepare_cached(
                "SELECT state FROM messages
                 WHERE from_device = ?1 AND id = ?2 AND peer = ?3 AND direction = 'out'",
            )?
            .query_row(params![&from_device.0[..], &id.0[..], &peer.0[..]], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(current) = current else {
            return Ok(false);
        };
        let current: MessageState = current
            .parse()
            .map_err(|e: ParseStateError| StoreError::Corrupt(e.to_string()))?;
        if !current.can_advance_to(MessageState::Read) {
            return Ok(false);
        }
        tx.prepare_cached(
            "UPDATE messages SET state = 'read', error = NULL
             WHERE from_device = ?1 AND id = ?2 AND peer = ?3 AND direction = 'out'",
        )?
        .execute(params![&from_device.0[..], &id.0[..], &peer.0[..]])?;
        tx.commit()?;
        Ok(true)
    }

    /// Every user this node has a conversation with, in the order the
    /// conversations started.
    pub fn conversation_peers(&self) -> Result<Vec<UserId>, StoreError> {
        let raws = self
            .conn
            .prepare_cached(
                "SELECT peer FROM messages WHERE room IS NULL GROUP BY peer ORDER BY min(seq)",
            )?
            .query_map([], |row| row.get::<_, Vec<u8>>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(column::decode_all(raws, "messages", |peer| {
            column::user(&peer, "messages.peer")
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_util::{device, message, temp_store, user};
    use crate::store::Direction;

    #[test]
    fn reading_a_conversation_marks_only_unread_incoming_rows() {
        let (_dir, store) = temp_store();
        let first = message(1, Direction::In, 100);
        let second = message(2, Direction::In, 200);
        let mine = message(3, Direction::Out, 150);
        for m in [&second, &first, &mine] {
            store.insert_message(m).unwrap();
        }
        let read = store.mark_conversation_read(&user(2)).unwrap();
        assert_eq!(
            read,
            [
                NewlyRead {
                    id: first.id,
                    from_device: first.from_device
                },
                NewlyRead {
                    id: second.id,
                    from_device: second.from_device
                }
            ],
            "oldest first"
        );
        let history = store.history(&user(2), &Default::default()).unwrap();
        let states: Vec<MessageState> = history.iter().map(|m| m.state).collect();
        assert_eq!(
            states,
            [MessageState::Read, MessageState::Queued, MessageState::Read]
        );
        assert!(store.mark_conversation_read(&user(2)).unwrap().is_empty());
        assert_eq!(store.conversation_peers().unwrap(), [user(2)]);
    }

    #[test]
    fn a_read_receipt_moves_only_its_conversation() {
        let (_dir, store) = temp_store();
        let mut to_bob = message(1, Direction::Out, 100);
        to_bob.state = MessageState::Delivered;
        let mut to_carol = to_bob.clone();
        to_carol.peer = user(8);
        to_carol.to_user = user(8);
        store.insert_message(&to_bob).unwrap();
        store.insert_message(&to_carol).unwrap();
        assert!(store
            .mark_read_by(&to_bob.id, &device(1), &user(2))
            .unwrap());
        assert!(
            !store
                .mark_read_by(&to_bob.id, &device(1), &user(2))
                .unwrap(),
            "already read"
        );
        let carol = store.history(&user(8), &Default::default()).unwrap();
        assert_eq!(carol[0].state, MessageState::Delivered);
        // Unknown conversation, or an incoming message with that id: nothing.
        assert!(!store
            .mark_read_by(&to_bob.id, &device(1), &user(9))
            .unwrap());
        assert_eq!(store.conversation_peers().unwrap(), [user(2), user(8)]);
    }
}
