//! Whether a new message deserves a desktop notification.
//!
//! One rule for every client, so the daemon and the window agree:
//! - never when notifications are off, or for one's own messages;
//! - never in Busy / Do-not-disturb (that is what the state is for), nor
//!   while appearing offline; a mention does not break through either;
//! - never while a client window of this user has the focus (the user is
//!   looking at it);
//! - in a muted conversation only when the message @mentions the user.
//!
//! ```
//! use tincan_core::notify::{NotifyInput, NotifyRule};
//! use tincan_core::PresenceState;
//! let input = NotifyInput { presence: PresenceState::Online, ..NotifyInput::default() };
//! assert!(NotifyRule::default().decide(&input).is_some());
//! let busy = NotifyInput { presence: PresenceState::Busy, ..input };
//! assert!(NotifyRule::default().decide(&busy).is_none());
//! ```

use crate::PresenceState;

/// The facts the decision depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotifyInput {
    /// This user's presence as they chose it (auto-away counts as away).
    pub presence: PresenceState,
    /// A client window of this node has the keyboard focus.
    pub window_focused: bool,
    /// The conversation is muted.
    pub muted: bool,
    /// The message mentions this user.
    pub mentioned: bool,
    /// The message is this user's own (sent from another of their devices).
    pub own: bool,
}

impl Default for NotifyInput {
    fn default() -> Self {
        NotifyInput {
            presence: PresenceState::Online,
            window_focused: false,
            muted: false,
            mentioned: false,
            own: false,
        }
    }
}

/// How loud a notification should be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    /// An ordinary new message.
    Normal,
    /// The user was mentioned.
    Mention,
}

/// The user's notification settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotifyRule {
    /// Notifications are on.
    pub enabled: bool,
}

impl Default for NotifyRule {
    fn default() -> Self {
        NotifyRule { enabled: true }
    }
}

impl NotifyRule {
    /// `Some(urgency)` when the message should raise a notification.
    pub fn decide(&self, input: &NotifyInput) -> Option<Urgency> {
        if !self.enabled || input.own || input.window_focused {
            return None;
        }
        if matches!(
            input.presence,
            PresenceState::Busy | PresenceState::AppearOffline
        ) {
            return None;
        }
        match (input.muted, input.mentioned) {
            (_, true) => Some(Urgency::Mention),
            (true, false) => None,
            (false, false) => Some(Urgency::Normal),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_table() {
        let rule = NotifyRule::default();
        let base = NotifyInput::default();
        assert_eq!(rule.decide(&base), Some(Urgency::Normal));
        for presence in [
            PresenceState::Away,
            PresenceState::OnThePhone,
            PresenceState::OutToLunch,
        ] {
            let input = NotifyInput { presence, ..base };
            assert_eq!(rule.decide(&input), Some(Urgency::Normal), "{presence:?}");
        }
        for presence in [PresenceState::Busy, PresenceState::AppearOffline] {
            let input = NotifyInput {
                presence,
                mentioned: true,
                ..base
            };
            assert_eq!(rule.decide(&input), None, "{presence:?}");
        }
        let muted = NotifyInput {
            muted: true,
            ..base
        };
        assert_eq!(rule.decide(&muted), None);
        let mention = NotifyInput {
            mentioned: true,
            ..muted
        };
        assert_eq!(rule.decide(&mention), Some(Urgency::Mention));
        let focused = NotifyInput {
            window_focused: true,
            ..mention
        };
        assert_eq!(rule.decide(&focused), None);
        let own = NotifyInput { own: true, ..base };
        assert_eq!(rule.decide(&own), None);
        assert_eq!(NotifyRule { enabled: false }.decide(&base), None);
    }
}
