//! Whether a new message deserves a desktop notification and the window's
//! attention, and delivering one. The decision is pure ([`decide`]): only
//! when the window is not focused, never in Busy (do not disturb), never
//! when turned off in Settings. Delivery ([`Delivery`]) is off wherever
//! there is no graphical session or `TINCAN_NO_NOTIFICATIONS` is set
//! (tests, headless runs), so nothing ever pops up from a test.

use tincan_node::api::PresenceView;

use crate::session::Alert;
use tincan_core::notify::{NotifyInput, NotifyRule};
use tincan_core::PresenceState;

/// Set (to anything) to never show desktop notifications.
pub const NO_NOTIFICATIONS_ENV: &str = tincan_node::notifier::NO_DESKTOP_ENV;

/// Longest body shown in a notification, in characters.
const MAX_BODY_CHARS: usize = 200;

/// Why a new message stays quiet, or that it should not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Desktop notification and window attention.
    Notify,
    /// The window has focus: the user sees it (unread badge otherwise).
    Focused,
    /// Busy / do not disturb.
    DoNotDisturb,
    /// Notifications are turned off in Settings.
    TurnedOff,
}

/// Decides about `alert` given the window focus, this user's presence and
/// the setting, by the same rule the node applies
/// (`tincan_core::notify::NotifyRule`). While the window runs it holds the
/// node's `focus`, so the node leaves notifications to it.
pub fn decide(
    alert: &Alert,
    focused: bool,
    presence: Option<&PresenceView>,
    enabled: bool,
) -> Decision {
    if !enabled {
        return Decision::TurnedOff;
    }
    let presence = presence
        .and_then(|p| p.presence.parse::<PresenceState>().ok())
        .unwrap_or(PresenceState::Online);
    let input = NotifyInput {
        presence,
        window_focused: false,
        muted: false,
        mentioned: alert.mentioned,
        own: false,
    };
    if NotifyRule::default().decide(&input).is_none() {
        Decision::DoNotDisturb
    } else if focused {
        Decision::Focused
    } else {
        Decision::Notify
    }
}

/// Where notifications go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// To the desktop's notification service (D-Bus on Linux).
    Desktop,
    /// Nowhere: decided and recorded only.
    Off,
}

impl Delivery {
    /// Desktop when a graphical session is there and the environment does
    /// not say otherwise.
    pub fn detect() -> Self {
        if std::env::var_os(NO_NOTIFICATIONS_ENV).is_some() {
            return Self::Off;
        }
        #[cfg(all(unix, not(target_os = "macos")))]
        if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
            return Self::Off;
        }
        Self::Desktop
    }
}

/// Shows `alert` on the desktop. Blocking (a D-Bus round trip): run it on
/// the blocking pool. A desktop without a notification service is no
/// error worth more than a log line.
pub fn show(alert: &Alert) {
    let mut body: String = alert.body.chars().take(MAX_BODY_CHARS).collect();
    if alert.body.chars().count() > MAX_BODY_CHARS {
        body.push('…');
    }
    // Servers may render the body as markup: escape it, as the daemon does.
    if let Err(e) = notify_rust::Notification::new()
        .appname("tincan")
        .summary(&alert.title)
        .body(&tincan_node::notifier::markup_escaped(&body))
        .show()
    {
        tracing::debug!(error = %e, "no desktop notification");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(word: &str) -> PresenceView {
        PresenceView {
            presence: word.into(),
            note: None,
            auto_away: false,
            chosen: word.into(),
            shown: word.into(),
            idle_secs: 0,
            away_after_secs: None,
        }
    }

    #[test]
    fn quiet_when_focused_busy_or_off() {
        let alert = Alert {
            from: "u".into(),
            title: "Berta".into(),
            body: "hi".into(),
            in_open: false,
            mentioned: false,
        };
        let online = presence("online");
        assert_eq!(decide(&alert, false, Some(&online), true), Decision::Notify);
        assert_eq!(decide(&alert, true, Some(&online), true), Decision::Focused);
        assert_eq!(
            decide(&alert, false, Some(&presence("busy")), true),
            Decision::DoNotDisturb
        );
        assert_eq!(
            decide(&alert, false, Some(&presence("away")), true),
            Decision::Notify
        );
        assert_eq!(
            decide(&alert, false, Some(&online), false),
            Decision::TurnedOff
        );
    }
}
