//! Showing desktop notifications (the I/O half of `tincan_core::notify`).
//!
//! The node decides (by the core rule) and always reports the decision as
//! a [`crate::NodeEvent::Notification`], so clients and tests see exactly
//! what would pop up. It shows it on the desktop itself only where there is
//! one: a graphical session (`DISPLAY` or `WAYLAND_DISPLAY`) with a D-Bus
//! session bus, and `TINCAN_NO_NOTIFICATIONS` unset (the tests set it).
//! Showing never blocks the node: it runs on a blocking thread, and a
//! failure is one warning in the log.
//!
//! Notification servers may render the body as markup (the freedesktop
//! `body-markup` capability: `<a href>`, `<img src>`, `<b>`), so a body is
//! escaped just before it goes to the desktop: what a peer typed is shown
//! as text, never as a link or an image. Events keep the plain text.

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
        if let Err(e) = desktop_note(&title, &body, mention).show() {
            tracing::warn!(error = %e, "cannot show a desktop notification");
        }
    });
}

/// The desktop notification for a message: `title` as the summary (plain
/// text by the specification), `body` escaped as markup text.
pub fn desktop_note(title: &str, body: &str, mention: bool) -> notify_rust::Notification {
    let mut note = notify_rust::Notification::new();
    note.appname("tincan")
        .summary(title)
        .body(&markup_escaped(body));
    if mention {
        note.urgency(notify_rust::Urgency::Critical);
    }
    note
}

/// `text` escaped for a notification body (`&`, `<`, `>`: the characters
/// that start markup in element text), which freedesktop servers may parse
/// as markup. The summary is plain text by the specification.
pub fn markup_escaped(text: &str) -> String {
    html_escape::encode_text(text).into_owned()
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

    #[test]
    fn markup_in_a_body_is_shown_as_text() {
        let typed = r#"<a href="https://evil.example">pay</a> <img src="file:///x"> & 'q'"#;
        let note = desktop_note("Mallory <b>", &body_of(typed), false);
        let shown = note.body;
        assert_eq!(note.summary, "Mallory <b>");
        assert_eq!(
            shown,
            "&lt;a href=\"https://evil.example\"&gt;pay&lt;/a&gt; \
             &lt;img src=\"file:///x\"&gt; &amp; 'q'"
        );
        assert!(!shown.contains('<') && !shown.contains('>'));
        // Plain text passes unchanged.
        assert_eq!(
            desktop_note("Ann", "lunch at 12?", true).body,
            "lunch at 12?"
        );
    }
}
