//! Message history: one row per message, in and out.
//!
//! A message's identity is `(from_device, id)`: ids are random per sender, and
//! the same message may arrive more than once (direct and via a gateway, or
//! after a redelivery), so inserting a known pair is a no-op. A message's
//! state only moves forward (see [`MessageState::can_advance_to`]), so a late
//! or duplicated receipt cannot undo a newer one.

use rusqlite::{params, Connection, OptionalExtension};
use tincan_core::{DeviceId, MessageId, RoomId, UserId};

use super::{column, outbox, OutboxEntry, Store, StoreError};

pub use tincan_core::delivery::{MessageState, ParseStateError};

/// Whether a message was received or sent by this node's user.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Received from `peer`.
    In,
    /// Sent to `peer` (from this or another of our devices).
    Out,
}

impl Direction {
    /// The lowercase name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "in" => Ok(Direction::In),
            "out" => Ok(Direction::Out),
            other => Err(StoreError::Corrupt(format!("unknown direction {other:?}"))),
        }
    }
}

/// One stored message of a 1:1 conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRecord {
    /// Random id chosen by the sending device.
    pub id: MessageId,
    /// Received or sent.
    pub direction: Direction,
    /// The other party of the 1:1 conversation.
    pub peer: UserId,
    /// The author.
    pub from_user: UserId,
    /// The author's device; with `id` it identifies the message.
    pub from_device: DeviceId,
    /// The addressee.
    pub to_user: UserId,
    /// The message body.
    pub text: String,
    /// When it was sent, by the sender's clock (ms since the Unix epoch).
    pub sent_at_ms: u64,
    /// When this node received it, by our clock; `None` for our own messages.
    pub received_at_ms: Option<u64>,
    /// Delivery state.
    pub state: MessageState,
    /// Why it failed, when `state` is `Failed`.
    pub error: Option<String>,
    /// The room, for a room message or membership line (then `peer` is
    /// the author); `None` in a 1:1 conversation.
    pub room: Option<RoomId>,
    /// A membership line of a room (who joined, left, set the topic).
    pub system: bool,
    /// Reply, mentions, broadcast mark, edits and retraction.
    pub extras: MessageExtras,
}

/// What a message carries beyond its text (migration 11).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageExtras {
    /// The message this one replies to.
    pub reply_to: Option<tincan_core::Quote>,
    /// Users it @mentions.
    pub mentions: Vec<UserId>,
    /// Sent as a broadcast.
    pub broadcast: bool,
    /// When its author last edited it (the edit's timestamp, author's clock).
    pub edited_at_ms: Option<u64>,
    /// Its author took it back; the text is gone.
    pub retracted: bool,
}

impl MessageExtras {
    /// The extras of a received or sent [`tincan_core::Post`].
    pub fn of_post(post: &tincan_core::Post) -> Self {
        MessageExtras {
            reply_to: post.reply_to.clone(),
            mentions: post.mentions.clone(),
            broadcast: post.broadcast,
            edited_at_ms: None,
            retracted: false,
        }
    }
}

/// Which part of a conversation a history request returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// At most this many messages, the newest ones matching; `None` is all.
    pub limit: Option<u32>,
    /// Only messages with `sent_at_ms < before_ms` (paging backwards).
    pub before_ms: Option<u64>,
    /// Only messages with `sent_at_ms >= since_ms`.
    pub since_ms: Option<u64>,
}

pub(super) const COLUMNS: &str = "id, from_device, direction, peer, from_user, to_user, text, \
                       sent_at_ms, received_at_ms, state, error, reply_id, reply_author, \
                       reply_excerpt, mentions, broadcast, edited_at_ms, retracted, room, system";

/// How many columns [`COLUMNS`] lists (the next index is free for a
/// query's own column).
pub(super) const COLUMN_COUNT: usize = 20;

/// A row as SQLite returned it, before any decoding can fail.
pub(super) struct RawMessage {
    id: Vec<u8>,
    from_device: Vec<u8>,
    direction: String,
    peer: Vec<u8>,
    from_user: Vec<u8>,
    to_user: Vec<u8>,
    text: String,
    sent_at_ms: i64,
    received_at_ms: Option<i64>,
    state: String,
    error: Option<String>,
    reply_id: Option<Vec<u8>>,
    reply_author: Option<Vec<u8>>,
    reply_excerpt: Option<String>,
    mentions: Vec<u8>,
    broadcast: bool,
    edited_at_ms: Option<i64>,
    retracted: bool,
    room: Option<Vec<u8>>,
    system: i64,
}

impl RawMessage {
    /// Reads the columns listed in [`COLUMNS`], in order.
    pub(super) fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawMessage {
            id: row.get(0)?,
            from_device: row.get(1)?,
            direction: row.get(2)?,
            peer: row.get(3)?,
            from_user: row.get(4)?,
            to_user: row.get(5)?,
            text: row.get(6)?,
            sent_at_ms: row.get(7)?,
            received_at_ms: row.get(8)?,
            state: row.get(9)?,
            error: row.get(10)?,
            reply_id: row.get(11)?,
            reply_author: row.get(12)?,
            reply_excerpt: row.get(13)?,
            mentions: row.get(14)?,
            broadcast: row.get(15)?,
            edited_at_ms: row.get(16)?,
            retracted: row.get(17)?,
            room: row.get(18)?,
            system: row.get(19)?,
        })
    }

    pub(super) fn decode(self) -> Result<MessageRecord, StoreError> {
        Ok(MessageRecord {
            id: column::message_id(&self.id, "messages.id")?,
            direction: Direction::parse(&self.direction)?,
            peer: column::user(&self.peer, "messages.peer")?,
            from_user: column::user(&self.from_user, "messages.from_user")?,
            from_device: column::device(&self.from_device, "messages.from_device")?,
            to_user: column::user(&self.to_user, "messages.to_user")?,
            text: self.text,
            sent_at_ms: column::unsigned(self.sent_at_ms, "messages.sent_at_ms")?,
            received_at_ms: column::opt_unsigned(self.received_at_ms, "messages.received_at_ms")?,
            state: self
                .state
                .parse()
                .map_err(|e: ParseStateError| StoreError::Corrupt(e.to_string()))?,
            error: self.error,
            extras: MessageExtras {
                reply_to: match (self.reply_id, self.reply_author) {
                    (Some(id), Some(author)) => Some(tincan_core::Quote {
                        id: column::message_id(&id, "messages.reply_id")?,
                        author: column::user(&author, "messages.reply_author")?,
                        excerpt: self.reply_excerpt.unwrap_or_default(),
                    }),
                    _ => None,
                },
                mentions: self
                    .mentions
                    .chunks(20)
                    .map(|id| column::user(id, "messages.mentions"))
                    .collect::<Result<_, _>>()?,
                broadcast: self.broadcast,
                edited_at_ms: column::opt_unsigned(self.edited_at_ms, "messages.edited_at_ms")?,
                retracted: self.retracted,
            },
            room: self
                .room
                .map(|r| {
                    <[u8; 16]>::try_from(r.as_slice())
                        .map(RoomId)
                        .map_err(|_| StoreError::Corrupt("messages.room".into()))
                })
                .transpose()?,
            system: self.system != 0,
        })
    }
}

/// The `mentions` column: the ids back to back.
fn mention_bytes(mentions: &[UserId]) -> Vec<u8> {
    mentions.iter().flat_map(|u| u.0).collect()
}

/// Inserts `m`; with `ignore_duplicate` a known `(from_device, id)` is a
/// no-op returning false, otherwise it is a constraint error.
fn insert(
    conn: &Connection,
    m: &MessageRecord,
    ignore_duplicate: bool,
) -> Result<bool, StoreError> {
    let conflict = if ignore_duplicate {
        "ON CONFLICT (from_device, id, peer) DO NOTHING"
    } else {
        ""
    };
    let sql = format!(
        "INSERT INTO messages ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
         ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20) {conflict}"
    );
    let changed = conn.prepare_cached(&sql)?.execute(params![
        &m.id.0[..],
        &m.from_device.0[..],
        m.direction.as_str(),
        &m.peer.0[..],
        &m.from_user.0[..],
        &m.to_user.0[..],
        m.text,
        column::int(m.sent_at_ms, "sent_at_ms")?,
        column::opt_int(m.received_at_ms, "received_at_ms")?,
        m.state.as_str(),
        m.error,
        m.extras.reply_to.as_ref().map(|q| q.id.0.to_vec()),
        m.extras.reply_to.as_ref().map(|q| q.author.0.to_vec()),
        m.extras.reply_to.as_ref().map(|q| q.excerpt.as_str()),
        mention_bytes(&m.extras.mentions),
        m.extras.broadcast,
        column::opt_int(m.extras.edited_at_ms, "edited_at_ms")?,
        m.extras.retracted,
        m.room.map(|r| r.0.to_vec()),
        i64::from(m.system),
    ])?;
    Ok(changed == 1)
}

/// Inserts `m` unless `(from_device, id, peer)` is known (in a caller's
/// transaction); returns whether it was new.
pub(super) fn insert_ignoring_duplicates(
    conn: &Connection,
    m: &MessageRecord,
) -> Result<bool, StoreError> {
    insert(conn, m, true)
}

/// Query bounds saturate at `i64::MAX` (SQLite's largest integer), so a
/// caller may pass `u64::MAX` to mean "no bound".
fn bound(ms: Option<u64>) -> Option<i64> {
    ms.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

impl Store {
    /// Inserts a message; returns false (and changes nothing) when
    /// `(from_device, id)` already exists.
    pub fn insert_message(&self, m: &MessageRecord) -> Result<bool, StoreError> {
        insert(&self.conn, m, true)
    }

    /// Inserts an outgoing message and its outbox entries in one transaction,
    /// so a kill between them cannot lose or half-queue it. Fails, changing
    /// nothing, if the message or any `(message_id, device)` entry already
    /// exists. (The daemon queues with `queue_outgoing_many`.)
    #[cfg(test)]
    pub fn queue_outgoing(
        &self,
        m: &MessageRecord,
        entries: &[OutboxEntry],
    ) -> Result<(), StoreError> {
        self.queue_outgoing_many(std::slice::from_ref(m), entries)
    }

    /// [`Store::queue_outgoing`] for a message to several users: one history
    /// row per conversation (same id), all rows and entries in one
    /// transaction.
    pub fn queue_outgoing_many(
        &self,
        records: &[MessageRecord],
        entries: &[OutboxEntry],
    ) -> Result<(), StoreError> {
        // `&self` API on a single-threaded actor; the transaction borrows the
        // connection for its whole life, so nothing else can interleave.
        let tx = self.write_tx()?;
        for m in records {
            insert(&tx, m, false)?;
        }
        for entry in entries {
            outbox::insert_entry(&tx, entry)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Queues outbox entries that carry no history row (control content such
    /// as receipts or membership changes), all or none.
    pub fn queue_control(&self, entries: &[OutboxEntry]) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        for entry in entries {
            outbox::insert_entry(&tx, entry)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Updates the state of a message (by `id` + `from_device`); never moves a
    /// state backwards (see [`MessageState::can_advance_to`]). `error` is
    /// stored with an accepted change. Returns the resulting state, or `None`
    /// if there is no such message.
    pub fn set_message_state(
        &self,
        id: &MessageId,
        from_device: &DeviceId,
        state: MessageState,
        error: Option<&str>,
    ) -> Result<Option<MessageState>, StoreError> {
        // IMMEDIATE: read-then-write must not race another writer between
        // the check and the update.
        let tx = self.write_tx()?;
        let current: Option<String> = tx
            .prepare_cached("SELECT state FROM messages WHERE from_device = ?1 AND id = ?2")?
            .query_row(params![&from_device.0[..], &id.0[..]], |r| r.get(0))
            .optional()?;
        let Some(current) = current else {
            return Ok(None);
        };
        let current: MessageState = current
            .parse()
            .map_err(|e: ParseStateError| StoreError::Corrupt(e.to_string()))?;
        if !current.can_advance_to(state) {
            tracing::debug!(%id, from = %current, to = %state, "ignoring state regression");
            return Ok(Some(current));
        }
        tx.prepare_cached(
            "UPDATE messages SET state = ?3, error = ?4 WHERE from_device = ?1 AND id = ?2",
        )?
        .execute(params![
            &from_device.0[..],
            &id.0[..],
            state.as_str(),
            error
        ])?;
        tx.commit()?;
        Ok(Some(state))
    }

    /// The message `(from_device, id)`, if stored.
    pub fn message(
        &self,
        id: &MessageId,
        from_device: &DeviceId,
    ) -> Result<Option<MessageRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM messages WHERE from_device = ?1 AND id = ?2");
        self.conn
            .prepare_cached(&sql)?
            .query_row(params![&from_device.0[..], &id.0[..]], RawMessage::from_row)
            .optional()?
            .map(RawMessage::decode)
            .transpose()
    }

    /// The conversation with `peer` (a user), oldest first: at most `limit`
    /// of the newest matching rows, optionally only rows with
    /// `sent_at_ms < before_ms` and/or `sent_at_ms >= since_ms`. Equal
    /// timestamps keep insertion order. Rows that do not decode are skipped
    /// with a warning.
    pub fn history(
        &self,
        peer: &UserId,
        query: &HistoryQuery,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        self.page("peer = ?1 AND room IS NULL", &peer.0, query)
    }

    /// A room's messages and membership lines, oldest first, like
    /// [`Store::history`].
    pub fn room_history(
        &self,
        room: &RoomId,
        query: &HistoryQuery,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        self.page("room = ?1", &room.0, query)
    }

    /// One page of the conversation that `filter` (an SQL condition on
    /// `?1` = `key`) selects, oldest first.
    fn page(
        &self,
        filter: &str,
        key: &[u8],
        query: &HistoryQuery,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        // Newest first so LIMIT keeps the newest page, then reversed.
        let sql = format!(
            "SELECT {COLUMNS} FROM messages
             WHERE {filter}
               AND (?2 IS NULL OR sent_at_ms < ?2)
               AND (?3 IS NULL OR sent_at_ms >= ?3)
             ORDER BY sent_at_ms DESC, seq DESC
             LIMIT ?4"
        );
        // A negative LIMIT means no limit in SQLite.
        let limit = query.limit.map_or(-1, i64::from);
        let raws = self
            .conn
            .prepare_cached(&sql)?
            .query_map(
                params![key, bound(query.before_ms), bound(query.since_ms), limit],
                RawMessage::from_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out = column::decode_all(raws, "messages", RawMessage::decode);
        out.reverse();
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
