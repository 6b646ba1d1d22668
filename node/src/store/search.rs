//! Full-text search over message texts (SQLite FTS5, migration 6).
//!
//! The index is an external-content FTS5 table over `messages.text`, kept
//! in step by triggers, so every stored message is searchable at once and
//! after any restart. What the user types is never passed to FTS5 as query
//! syntax: each word becomes a quoted prefix term (`"lunc"*`), all of which
//! must match, so quotes, `AND`, `NEAR` or stray parentheses are just text.
//! Results come best first (FTS5's bm25 rank), newest first among equals.

use rusqlite::params;
use tincan_core::UserId;

use super::messages::{RawMessage, COLUMNS, COLUMN_COUNT};
use super::{column, MessageRecord, Store, StoreError};

/// The markers [`SearchHit::highlight`] puts around each matching term.
pub const HIGHLIGHT_START: &str = "**";
/// See [`HIGHLIGHT_START`].
pub const HIGHLIGHT_END: &str = "**";

/// What to look for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// The words, as the user typed them.
    pub words: String,
    /// Only this conversation (1:1 messages with this user).
    pub peer: Option<UserId>,
    /// Only this room.
    pub room: Option<tincan_core::RoomId>,
    /// At most this many hits; `None` is all.
    pub limit: Option<u32>,
}

/// One matching message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchHit {
    /// The message.
    pub record: MessageRecord,
    /// Its text with every match wrapped in [`HIGHLIGHT_START`] /
    /// [`HIGHLIGHT_END`].
    pub highlight: String,
}

/// The FTS5 query for `words`: every word that holds a letter or digit as
/// a quoted prefix term; `None` if there is no such word.
pub fn fts_query(words: &str) -> Option<String> {
    let terms: Vec<String> = words
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

impl Store {
    /// Messages whose text holds every word of `query` (prefixes match),
    /// best first. An empty query is [`StoreError::EmptySearch`].
    pub fn search(&self, query: &SearchQuery) -> Result<Vec<SearchHit>, StoreError> {
        let fts = fts_query(&query.words).ok_or(StoreError::EmptySearch)?;
        let sql = format!(
            "SELECT {COLUMNS}, hit.marked FROM messages
             JOIN (SELECT rowid AS row,
                          highlight(messages_fts, 0, ?2, ?3) AS marked,
                          bm25(messages_fts) AS score
                   FROM messages_fts WHERE messages_fts MATCH ?1) AS hit
               ON messages.seq = hit.row
             WHERE (?4 IS NULL OR (peer = ?4 AND room IS NULL))
               AND (?6 IS NULL OR room = ?6)
             ORDER BY hit.score, sent_at_ms DESC, seq DESC
             LIMIT ?5"
        );
        let peer = query.peer.map(|p| p.0.to_vec());
        let limit = query.limit.map_or(-1, i64::from);
        let room = query.room.map(|r| r.0.to_vec());
        let raws = self
            .conn
            .prepare_cached(&sql)?
            .query_map(
                params![fts, HIGHLIGHT_START, HIGHLIGHT_END, peer, limit, room],
                |row| {
                    Ok((
                        RawMessage::from_row(row)?,
                        row.get::<_, String>(COLUMN_COUNT)?,
                    ))
                },
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(column::decode_all(raws, "messages", |(raw, highlight)| {
            Ok(SearchHit {
                record: raw.decode()?,
                highlight,
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_util::{message, temp_store, user};
    use crate::store::Direction;

    fn with_text(n: u8, text: &str, at: u64) -> MessageRecord {
        let mut m = message(n, Direction::In, at);
        m.text = text.into();
        m
    }

    fn words(w: &str) -> SearchQuery {
        SearchQuery {
            words: w.into(),
            ..Default::default()
        }
    }

    fn texts(hits: &[SearchHit]) -> Vec<&str> {
        hits.iter().map(|h| h.record.text.as_str()).collect()
    }

    #[test]
    fn user_words_are_quoted_prefix_terms() {
        assert_eq!(fts_query("lunch"), Some("\"lunch\"*".into()));
        assert_eq!(
            fts_query(" a \"b  NEAR( "),
            Some("\"a\"* \"\"\"b\"* \"NEAR(\"*".into())
        );
        assert_eq!(fts_query("  ( ) \" * "), None);
    }

    #[test]
    fn finds_ranks_and_highlights() {
        let (_dir, store) = temp_store();
        store
            .insert_message(&with_text(1, "lunch at noon?", 100))
            .unwrap();
        store
            .insert_message(&with_text(2, "the budget meeting", 200))
            .unwrap();
        store
            .insert_message(&with_text(3, "lunch lunch lunch, any lunch", 300))
            .unwrap();
        store
            .insert_message(&with_text(4, "Café downstairs", 400))
            .unwrap();

        let hits = store.search(&words("LUNCH")).unwrap();
        assert_eq!(
            texts(&hits),
            ["lunch lunch lunch, any lunch", "lunch at noon?"],
            "more matches rank first"
        );
        assert_eq!(hits[1].highlight, "**lunch** at noon?");
        // Prefixes and every word must match.
        assert_eq!(
            texts(&store.search(&words("budg meet")).unwrap()),
            ["the budget meeting"]
        );
        assert!(store.search(&words("budget lunch")).unwrap().is_empty());
        // Diacritics fold.
        assert_eq!(
            texts(&store.search(&words("cafe")).unwrap()),
            ["Café downstairs"]
        );
        // FTS syntax in user input is just text.
        assert!(store.search(&words("\"noon OR budget")).unwrap().is_empty());
        assert!(matches!(
            store.search(&words("  ")),
            Err(StoreError::EmptySearch)
        ));
        // Limit and conversation filter.
        let q = SearchQuery {
            limit: Some(1),
            ..words("lunch")
        };
        assert_eq!(store.search(&q).unwrap().len(), 1);
        let q = SearchQuery {
            peer: Some(user(9)),
            ..words("lunch")
        };
        assert!(store.search(&q).unwrap().is_empty());
    }

    #[test]
    fn survives_reopening() {
        let (dir, store) = temp_store();
        store
            .insert_message(&with_text(1, "remember the milk", 100))
            .unwrap();
        drop(store);
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        assert_eq!(
            texts(&store.search(&words("milk")).unwrap()),
            ["remember the milk"]
        );
    }
}
