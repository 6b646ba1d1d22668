//! Showing desktop notifications (the I/O half of `tincan_core::notify`).
//!
//! The node decides (by the core rule) and always reports the decision as
//! a [`crate::NodeEvent::Notification`], so clients and tests see exactly
//! what would pop up. It shows it on the desktop itself only where there is
//! one: a graphical session (`DISPLAY` or `WAYLAND_DISPLAY`) with a D-Bus
//! session bus, and `TINCAN_NO_NOTIFICATIONS` unset (the tests set it).
//! Showing never blocks the node: it runs on a blocking thread, and a
//! failure is one warning in the log.

/// Set (to anything) to keep a node from showing desktop notifications.
pub const NO_DESKTOP_ENV: &str = "TINCAN_NO_NOTIFICATIONS";

/// Whether this process can show desktop notifications.
pub fn desktop_available() -> bool {
    let has = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    !has(NO_DESKTOP_ENV)
        && (has("DISPLAY") || has("WAYLAND_DISPLAY"))
        && has("DBUS_SESSION_BUS_ADDRESS")
}

/// Shows one notification on the desktop, off the caller's thread.
pub fn show(title: String, body: String, mention: bool) {
    tokio::task::spawn_blocking(move || {
        let mut note = notify_rust::Notification::new();
        note.appname("tincan").summary(&title).body(&body);
        if mention {
            note.urgency(notify_rust::Urgency::Critical);
        }
        if let Err(e) = note.show() {
            tracing::warn!(error = %e, "cannot show a desktop notification");
        }
    });
}

/// The body of a notification: the start of `text`, on one line.
pub fn body_of(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    tincan_core::post::excerpt(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_one_short_line() {
        assert_eq!(body_of("lunch\n  at\t12?"), "lunch at 12?");
        assert!(body_of(&"word ".repeat(200)).chars().count() <= 281);
    }
}
