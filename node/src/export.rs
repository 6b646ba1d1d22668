//! `tincan export`: conversations as JSON that reads back into the same
//! values ([`ExportView`], every message shaped like `history --json`) or
//! as a self-contained HTML page in which everything a person typed is
//! escaped, so an exported message can never inject markup or script.

use serde::{Deserialize, Serialize};

use crate::event::MessageView;

/// The `format` of an export file.
pub const EXPORT_FORMAT: &str = "tincan-export";
/// The `version` this build writes.
pub const EXPORT_VERSION: u32 = 1;

/// An export: who exported what, when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportView {
    /// Always `"tincan-export"`.
    pub format: String,
    /// The format's version (1).
    pub version: u32,
    /// When, Unix ms.
    pub exported_at: u64,
    /// The exporting user's id.
    pub user_id: String,
    /// Their display name.
    pub name: String,
    /// The conversations, in the order they started.
    pub conversations: Vec<ExportConversation>,
    /// The rooms (in a full export), in the order they were created here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rooms: Vec<ExportRoom>,
}

/// One room: its messages and membership lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRoom {
    /// The room id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its current members (for the names of the authors).
    pub members: Vec<crate::event::RoomMemberView>,
    /// Every message and membership line, oldest first, as `room history
    /// --json` shows them.
    pub messages: Vec<MessageView>,
}

/// One 1:1 conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportConversation {
    /// The other user's id.
    pub peer: String,
    /// Their display name.
    pub name: String,
    /// Every message, oldest first, as `history --json` shows them.
    pub messages: Vec<MessageView>,
}

impl ExportView {
    /// A standalone HTML page of the export.
    pub fn to_html(&self) -> String {
        let mut html = String::new();
        let title = format!("tincan export of {}", self.name);
        html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        html.push_str(&format!("<title>{}</title>\n", escape(&title)));
        html.push_str(
            "<style>body{font-family:sans-serif;max-width:50em;margin:auto}\
             .out{text-align:right}.meta{color:#666;font-size:small}\
             .text{white-space:pre-wrap}</style>\n</head>\n<body>\n",
        );
        html.push_str(&format!(
            "<h1>{}</h1>\n<p class=\"meta\">exported {} UTC</p>\n",
            escape(&title),
            utc(self.exported_at)
        ));
        for conversation in &self.conversations {
            html.push_str(&format!(
                "<section>\n<h2>{}</h2>\n",
                escape(&conversation.name)
            ));
            for m in &conversation.messages {
                let (class, who) = if m.direction == "out" {
                    ("out", self.name.as_str())
                } else {
                    ("in", conversation.name.as_str())
                };
                html.push_str(&format!(
                    "<div class=\"{class}\"><p class=\"meta\">{} · {} UTC · {}{}</p><p class=\"text\">{}</p></div>\n",
                    escape(who),
                    utc(m.sent_at),
                    escape(m.state.as_str()),
                    if m.offline { " · received while offline" } else { "" },
                    escape(&m.text)
                ));
            }
            html.push_str("</section>\n");
        }
        for room in &self.rooms {
            html.push_str(&format!("<section>\n<h2># {}</h2>\n", escape(&room.name)));
            for m in &room.messages {
                let who = room
                    .members
                    .iter()
                    .find(|p| p.user_id == m.from)
                    .map_or(m.from.as_str(), |p| p.name.as_str());
                let class = if m.direction == "out" { "out" } else { "in" };
                html.push_str(&format!(
                    "<div class=\"{class}\"><p class=\"meta\">{} · {} UTC</p><p class=\"text\">{}</p></div>\n",
                    escape(who),
                    utc(m.sent_at),
                    escape(&m.text)
                ));
            }
            html.push_str("</section>\n");
        }
        html.push_str("</body>\n</html>\n");
        html
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // HTML forbids most control characters, even as references:
            // show them as visible escapes, as the CLI does.
            c if c.is_control() && c != '\n' && c != '\t' => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS` of Unix ms, UTC (days to civil date after
/// Howard Hinnant's algorithm).
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MessageState;

    fn sample() -> ExportView {
        ExportView {
            format: EXPORT_FORMAT.into(),
            version: EXPORT_VERSION,
            exported_at: 1_700_000_000_000,
            user_id: "me".into(),
            name: "Ann <admin>".into(),
            conversations: vec![ExportConversation {
                peer: "bob".into(),
                name: "Bob".into(),
                messages: vec![MessageView {
                    id: "01".into(),
                    from: "bob".into(),
                    to: "me".into(),
                    text: "<script>alert('x')</script> & \"more\"\u{1b}[2J".into(),
                    sent_at: 1_700_000_000_000,
                    state: MessageState::Read,
                    direction: "in".into(),
                    error: None,
                    received_at: Some(1_700_000_100_000),
                    offline: true,
                    reply_to: None,
                    mentions: Vec::new(),
                    broadcast: false,
                    edited_at: None,
                    deleted: false,
                    room: None,
                    system: false,
                }],
            }],
            rooms: Vec::new(),
        }
    }

    #[test]
    fn json_round_trips() {
        let export = sample();
        let json = serde_json::to_string(&export).unwrap();
        assert_eq!(serde_json::from_str::<ExportView>(&json).unwrap(), export);
    }

    #[test]
    fn html_escapes_everything_typed() {
        let html = sample().to_html();
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<admin>"));
        assert!(!html.contains('\u{1b}'));
        assert!(html.contains(
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;\\u{1b}[2J"
        ));
        assert!(html.contains("2023-11-14 22:13:20 UTC"));
        assert!(html.contains("received while offline"));
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(utc(1_709_251_199_000), "2024-02-29 23:59:59");
    }
}
