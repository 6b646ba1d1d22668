//! What a chat message can carry beyond its text, and how a sender changes
//! a message it already sent.
//!
//! - A [`Post`] is a text with an optional [`Quote`] of the message it
//!   replies to, the users it @mentions, and whether it is a broadcast (the
//!   classic LAN-messenger "message to everyone online / to a group").
//! - A [`Change`] edits or retracts one earlier message of the same user.
//!   The receiver applies it only to a message whose author is the user who
//!   signed the change (the envelope's verified sender), so nobody can edit
//!   someone else's words; edits are last-writer-wins by the edit's own
//!   timestamp, and a retraction is final (later edits are ignored).
//!
//! Everything here travels inside sealed envelopes: hops never see quotes,
//! mentions or edits.
//!
//! ```
//! use tincan_core::post::{mention_tokens, Post};
//! let post = Post::text("lunch? @bob @Carol.");
//! assert_eq!(mention_tokens(&post.text), vec!["bob", "Carol"]);
//! assert!(post.validate().is_ok());
//! ```

use serde::{Deserialize, Serialize};

use crate::wire::MAX_TEXT_LEN;
use crate::{MessageId, UserId};

/// Longest quoted excerpt a reply carries, in bytes (cut at a character
/// boundary by [`excerpt`]).
pub const MAX_QUOTE_LEN: usize = 280;

/// Most users one post may mention.
pub const MAX_MENTIONS: usize = 64;

/// The message a reply answers: enough to show it even if the recipient
/// never had the original (a late joiner, a cleared history).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// The quoted message's id.
    pub id: MessageId,
    /// Who wrote the quoted message.
    pub author: UserId,
    /// The start of its text (at most [`MAX_QUOTE_LEN`] bytes).
    pub excerpt: String,
}

/// A chat message with its extras.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    /// The text (at most [`MAX_TEXT_LEN`] bytes).
    pub text: String,
    /// The message this one replies to.
    pub reply_to: Option<Quote>,
    /// Users mentioned with `@name` (they are notified even where they
    /// muted the conversation).
    pub mentions: Vec<UserId>,
    /// Sent as a broadcast to many users at once.
    pub broadcast: bool,
}

/// A sender's change of a message it sent earlier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// Replace the text of `target`.
    Edit {
        /// The message being edited.
        target: MessageId,
        /// Its new text.
        text: String,
    },
    /// Take `target` back: its text is removed everywhere; final.
    Retract {
        /// The message being retracted.
        target: MessageId,
    },
}

/// Why a post or change is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PostError {
    /// The text is empty or only whitespace.
    #[error("the text is empty")]
    Empty,
    /// The text is longer than [`MAX_TEXT_LEN`].
    #[error("text of {len} bytes exceeds {max} bytes")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The quoted excerpt is longer than [`MAX_QUOTE_LEN`].
    #[error("quoted excerpt of {0} bytes exceeds {MAX_QUOTE_LEN} bytes")]
    QuoteTooLong(usize),
    /// More than [`MAX_MENTIONS`] mentions.
    #[error("{0} mentions exceed the limit of {MAX_MENTIONS}")]
    TooManyMentions(usize),
}

/// Checks a message text: not blank, not over [`MAX_TEXT_LEN`].
pub fn validate_text(text: &str) -> Result<(), PostError> {
    if text.trim().is_empty() {
        return Err(PostError::Empty);
    }
    if text.len() > MAX_TEXT_LEN {
        return Err(PostError::TooLong {
            len: text.len(),
            max: MAX_TEXT_LEN,
        });
    }
    Ok(())
}

impl Post {
    /// A plain post of `text`: no reply, no mentions, not a broadcast.
    pub fn text(text: impl Into<String>) -> Self {
        Post {
            text: text.into(),
            reply_to: None,
            mentions: Vec::new(),
            broadcast: false,
        }
    }

    /// Checks every limit (senders before sealing, receivers after opening).
    pub fn validate(&self) -> Result<(), PostError> {
        validate_text(&self.text)?;
        if let Some(quote) = &self.reply_to {
            if quote.excerpt.len() > MAX_QUOTE_LEN {
                return Err(PostError::QuoteTooLong(quote.excerpt.len()));
            }
        }
        if self.mentions.len() > MAX_MENTIONS {
            return Err(PostError::TooManyMentions(self.mentions.len()));
        }
        Ok(())
    }

    /// Whether `user` is mentioned.
    pub fn mentions(&self, user: &UserId) -> bool {
        self.mentions.contains(user)
    }
}

impl Change {
    /// The message the change is about.
    pub fn target(&self) -> MessageId {
        match self {
            Change::Edit { target, .. } | Change::Retract { target } => *target,
        }
    }

    /// Checks the limits of an edit's new text.
    pub fn validate(&self) -> Result<(), PostError> {
        match self {
            Change::Edit { text, .. } => validate_text(text),
            Change::Retract { .. } => Ok(()),
        }
    }
}

/// The first [`MAX_QUOTE_LEN`] bytes of `text`, cut at a character
/// boundary, with an ellipsis when something was cut.
pub fn excerpt(text: &str) -> String {
    if text.len() <= MAX_QUOTE_LEN {
        return text.to_string();
    }
    let ellipsis = '…';
    let mut end = MAX_QUOTE_LEN - ellipsis.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = text[..end].to_string();
    out.push(ellipsis);
    out
}

/// Whether `text` mentions the user named `name` in a room: an `@` token
/// that is the whole name without spaces or its first word, in any case
/// (`@Ada`, `@adalovelace` for "Ada Lovelace").
///
/// ```
/// use tincan_core::post::mentions_name;
/// assert!(mentions_name("lunch, @ada?", "Ada Lovelace"));
/// assert!(mentions_name("@AdaLovelace see this", "Ada Lovelace"));
/// assert!(!mentions_name("ada@example.com", "Ada Lovelace"));
/// ```
pub fn mentions_name(text: &str, name: &str) -> bool {
    let whole = name.trim().to_lowercase();
    let first = whole.split_whitespace().next().unwrap_or("").to_string();
    let joined = whole.replace(' ', "");
    mention_tokens(text).iter().any(|token| {
        let token = token.to_lowercase();
        token == joined || (!first.is_empty() && token == first)
    })
}

/// The names written as `@name` in `text`, in order, without the `@` and
/// without trailing punctuation. A name is letters, digits, `_`, `-` and
/// `.` (dots only inside), so an e-mail address is not a mention.
pub fn mention_tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices('@') {
        // `bob@example.com`: the @ must start a word.
        let starts_word = at == 0
            || text[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_whitespace() || "([{,;:".contains(c));
        if !starts_word {
            continue;
        }
        let rest = &text[at + 1..];
        let len = rest
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.')))
            .map_or(rest.len(), |(i, _)| i);
        let name = rest[..len].trim_end_matches(['.', '-']);
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mention_tokens_find_names_not_addresses() {
        assert_eq!(
            mention_tokens("@bob, ask @Ana-Maria. mail x@y.org (@carol) @bob"),
            vec!["bob", "Ana-Maria", "carol"]
        );
        assert!(mention_tokens("no mentions @ all").is_empty());
        assert_eq!(mention_tokens("@zoë!"), vec!["zoë"]);
    }

    #[test]
    fn excerpt_cuts_at_char_boundary() {
        let long = "é".repeat(400);
        let cut = excerpt(&long);
        assert!(cut.len() <= MAX_QUOTE_LEN);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt("short"), "short");
    }

    #[test]
    fn validate_enforces_limits() {
        assert_eq!(Post::text("  ").validate(), Err(PostError::Empty));
        let mut post = Post::text("hi");
        post.reply_to = Some(Quote {
            id: MessageId([1; 16]),
            author: UserId([2; 20]),
            excerpt: "x".repeat(MAX_QUOTE_LEN + 1),
        });
        assert!(matches!(post.validate(), Err(PostError::QuoteTooLong(_))));
        let mut post = Post::text("hi");
        post.mentions = vec![UserId([3; 20]); MAX_MENTIONS + 1];
        assert!(matches!(
            post.validate(),
            Err(PostError::TooManyMentions(_))
        ));
        let edit = Change::Edit {
            target: MessageId([1; 16]),
            text: "x".repeat(MAX_TEXT_LEN + 1),
        };
        assert!(matches!(edit.validate(), Err(PostError::TooLong { .. })));
        assert!(Change::Retract {
            target: MessageId([1; 16])
        }
        .validate()
        .is_ok());
    }
}
