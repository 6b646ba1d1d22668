//! The messages with one contact, loaded page by page from the newest
//! backwards: merging answers and events by id, never stepping a state
//! back, and knowing whether older pages remain.

use tincan_node::api::MessageView;

/// How many messages one history page holds.
pub const PAGE: u32 = 100;

/// The messages with one contact.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conversation {
    /// Oldest first, unique by id.
    pub messages: Vec<MessageView>,
    /// Whether the newest page was loaded from the node.
    pub loaded: bool,
    /// Whether the node may hold older messages than the first shown.
    pub has_older: bool,
    /// An older page is being loaded.
    pub loading_older: bool,
    /// Why loading failed, if it did.
    pub error: Option<String>,
}

impl Conversation {
    /// Inserts or replaces `message` (by id), keeping the order by time.
    /// Returns whether it was new.
    pub(super) fn upsert(&mut self, message: MessageView) -> bool {
        if let Some(old) = self.messages.iter_mut().find(|m| m.id == message.id) {
            // Never step a state back (an old history answer racing an event).
            if old.state.can_advance_to(message.state) || old.state == message.state {
                *old = message;
            }
            return false;
        }
        let at = self
            .messages
            .partition_point(|m| (m.sent_at, &m.id) <= (message.sent_at, &message.id));
        self.messages.insert(at, message);
        true
    }

    /// Where the next older page ends: one millisecond past the oldest
    /// shown, so messages sharing its millisecond are not skipped (the
    /// repeats merge by id).
    pub fn older_than(&self) -> Option<u64> {
        self.messages.first().map(|m| m.sent_at.saturating_add(1))
    }

    /// Merges a page that ended before `before` (`None`: the newest page)
    /// and asked for at most `limit`.
    pub(super) fn apply_page(
        &mut self,
        before: Option<u64>,
        limit: u32,
        page: Result<Vec<MessageView>, String>,
    ) {
        match page {
            Ok(messages) => {
                let full = messages.len() >= limit as usize;
                if before.is_none() && full {
                    // A full newest page (a reload after missed events or
                    // a restart) may not reach back to what is shown: drop
                    // what is older than it, paging brings it back in
                    // order, so no gap can stay hidden above.
                    if let Some(cut) = messages.iter().map(|m| m.sent_at).min() {
                        self.messages.retain(|m| m.sent_at >= cut);
                    }
                }
                let mut new = 0;
                for message in messages {
                    new += usize::from(self.upsert(message));
                }
                if before.is_none() {
                    self.loaded = true;
                    self.has_older = full;
                } else {
                    self.loading_older = false;
                    // A full page of repeats means nothing older is left
                    // that this paging could reach.
                    self.has_older = full && new > 0;
                }
                self.error = None;
            }
            Err(e) => {
                self.loading_older = false;
                self.error = Some(e);
            }
        }
    }
}
