//! Human-readable and JSON output of CLI commands.

use std::collections::HashMap;

use tincan_node::{MessageView, PeerView, PresenceView, SearchHitView, StatusView, WhoAmI};

use super::when;

/// Prints any value as pretty JSON on stdout.
pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn whoami(who: &WhoAmI, fingerprint: &str) {
    println!("name:        {}", who.name);
    println!("user id:     {}", who.user_id);
    println!("fingerprint: {fingerprint}");
    println!("device id:   {}", who.device_id);
}

pub fn peers(peers: &[PeerView]) {
    if peers.is_empty() {
        println!("no peers yet");
        return;
    }
    for p in peers {
        let dot = if p.online { "●" } else { "○" };
        let note = p
            .note
            .as_deref()
            .map(|n| format!(" “{}”", terminal_safe(n)))
            .unwrap_or_default();
        println!(
            "{dot} {:<24} {:<12} {:<8} {} {}{note}{}",
            p.name,
            p.presence,
            p.via,
            &p.user_id[..8.min(p.user_id.len())],
            p.addrs.join(","),
            if p.blocked { " (blocked)" } else { "" }
        );
    }
}

/// Who wrote what: display names by user id, this user's own id, to
/// print a message's author ("you" for this user's own).
#[derive(Debug, Default)]
pub struct Authors {
    me: String,
    names: HashMap<String, String>,
}

impl Authors {
    /// Authors known from `names` (user id → display name); `me` is this
    /// user's id.
    pub fn new(me: String, names: impl IntoIterator<Item = (String, String)>) -> Self {
        Authors {
            me,
            names: names.into_iter().collect(),
        }
    }

    /// The name to print for `user`: "you", a display name, or the start
    /// of an unknown id.
    pub fn of(&self, user: &str) -> String {
        if user == self.me {
            return "you".to_string();
        }
        match self.names.get(user) {
            Some(name) => terminal_safe(name),
            None => user[..8.min(user.len())].to_string(),
        }
    }
}

/// A conversation as people read it: a line with the day when it changes,
/// then `14:05 Bob: text`, with the delivery state of one's own messages
/// and why one failed.
pub fn history(messages: &[MessageView], authors: &Authors) {
    print!("{}", history_text(messages, authors));
}

fn history_text(messages: &[MessageView], authors: &Authors) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut day = None;
    for m in messages {
        let sent = when::local(m.sent_at);
        if let Some(sent) = sent {
            if day != Some(sent.date_naive()) {
                day = Some(sent.date_naive());
                let _ = writeln!(out, "— {} —", when::day(sent));
            }
        }
        let clock = sent.map(when::clock).unwrap_or_else(|| "--:--".into());
        if m.system {
            let _ = writeln!(out, "{clock} · {}", terminal_safe(&m.text));
            continue;
        }
        if let Some(quote) = &m.reply_to {
            let _ = writeln!(out, "      ↳ re: {}", terminal_safe(&quote.excerpt));
        }
        // Lines after the first sit under the text, so a pasted block
        // (`df -h | tincan send bob -`) does not look like new messages.
        let text = if m.deleted {
            "(message deleted)".to_string()
        } else {
            terminal_safe(&m.text).replace('\n', "\n      ")
        };
        let mut marks = String::new();
        if m.broadcast {
            marks.push_str(" (broadcast)");
        }
        if m.edited_at.is_some() && !m.deleted {
            marks.push_str(" (edited)");
        }
        if m.offline {
            marks.push_str(" (received while offline)");
        }
        if m.direction == "out" {
            marks.push_str(&format!(" [{}]", delivery(m)));
        }
        let _ = writeln!(out, "{clock} {}: {text}{marks}", authors.of(&m.from));
    }
    out
}

/// The delivery state of one's own message in words.
fn delivery(m: &MessageView) -> String {
    match (m.state, &m.error) {
        (tincan_node::MessageState::Failed, Some(why)) => format!("failed: {why}"),
        (tincan_node::MessageState::Sent, _) => "sent, not delivered yet".to_string(),
        (state, _) => state.to_string(),
    }
}

pub fn contacts(list: &[tincan_node::ContactView]) {
    if list.is_empty() {
        println!("no contacts yet (`tincan contact add NAME`)");
    }
    for c in list {
        let group = if c.group.is_empty() { "-" } else { &c.group };
        println!(
            "{:<16} {:<24} {:<10} {:<14} {}",
            terminal_safe(group),
            terminal_safe(&c.name),
            c.state,
            c.presence,
            c.user_id
        );
    }
}

pub fn search(hits: &[SearchHitView]) {
    if hits.is_empty() {
        println!("no matches");
    }
    for h in hits {
        let m = &h.message;
        let (arrow, peer) = if m.direction == "out" {
            ("→", &m.to)
        } else {
            ("←", &m.from)
        };
        println!(
            "{} {arrow} {} {}",
            when::date_time(m.sent_at),
            &peer[..8.min(peer.len())],
            terminal_safe(&h.highlight)
        );
    }
}

pub fn presence(p: &PresenceView) {
    let note = p
        .note
        .as_deref()
        .map(|n| format!(" “{}”", terminal_safe(n)))
        .unwrap_or_default();
    let auto = if p.auto_away {
        format!(" (idle {} s; {} again on activity)", p.idle_secs, p.chosen)
    } else {
        String::new()
    };
    println!("{}{note}{auto}; others see {}", p.presence, p.shown);
}

/// Text from other people, made safe to print on a terminal: control
/// characters (escape sequences could rewrite the screen) are shown as
/// `\u{..}`; newlines and tabs are kept.
pub fn terminal_safe(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                c.escape_unicode().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

pub fn status(s: &StatusView) {
    println!("{} ({}) listening on {}", s.name, s.user_id, s.listen);
    println!(
        "peers online: {} of {} known; outbox: {}; mdns: {}",
        s.peers_online,
        s.peers_known,
        s.outbox,
        if s.mdns { "on" } else { "off" }
    );
    let site = s.site.as_deref().unwrap_or("none");
    println!("role: {}; site: {site}", s.role);
    if let Some(g) = &s.gateway {
        println!("gateway: {} (epoch {})", g.device_id, g.epoch);
    }
    match &s.relay {
        Some(r) => println!(
            "relay: {} ({})",
            r.addr.clone().unwrap_or_else(|| r.addrs.join(",")),
            relay_state(s, r)
        ),
        None => println!("relay: none (LAN only)"),
    }
}

/// How this node reaches the relay, in words: a branch member reaches it
/// through its gateway, which is how it should be, not a fault.
fn relay_state(s: &StatusView, r: &tincan_node::RelayView) -> String {
    let error = r
        .error
        .as_deref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    match (&s.gateway, r.connected) {
        (_, true) => "connected".to_string(),
        (Some(g), false) if s.role == "member" => format!(
            "reached through this branch's gateway {}",
            &g.device_id[..8.min(g.device_id.len())]
        ),
        (None, false) if s.role == "member" => {
            format!("to be reached through this branch's gateway, once one is elected{error}")
        }
        (_, false) => format!("not connected{error}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_error_names_each_cause_once() {
        let os = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let bind = tincan_node::StartError::Bind {
            addr: "127.0.0.1:47070".parse().expect("addr"),
            source: os,
        };
        let e = anyhow::Error::new(bind).context("cannot start the node");
        let text = tincan_core::report::one_line(e.as_ref());
        assert_eq!(text.matches("in use").count(), 1, "{text}");
        assert!(
            text.starts_with("cannot start the node: cannot listen on 127.0.0.1:47070"),
            "{text}"
        );
    }

    #[test]
    fn escape_sequences_are_neutralised() {
        let shown = super::terminal_safe("hi\u{1b}[2Jthere\nline");
        assert!(!shown.contains('\u{1b}'));
        assert!(shown.contains("\\u{1b}"));
        assert!(shown.contains('\n'));
    }

    fn message(from: &str, direction: &str, text: &str) -> tincan_node::MessageView {
        serde_json::from_value(serde_json::json!({
            "id": "00ff", "from": from, "to": "x", "text": text,
            "sent_at": 1_828_122_487_000u64, "state": "delivered", "direction": direction,
        }))
        .expect("a message view")
    }

    #[test]
    fn history_shows_local_times_authors_and_why_a_message_failed() {
        let authors = super::Authors::new("me".into(), [("bob".to_string(), "Bob".to_string())]);
        let mut failed = message("me", "out", "are you there?");
        failed.state = tincan_node::MessageState::Failed;
        failed.error = Some("expired after 7 days undelivered".into());
        let shown = super::history_text(
            &[
                message("bob", "in", "hello"),
                message("me", "out", "hi bob"),
                failed,
                message("carol-id-long", "in", "who am i"),
            ],
            &authors,
        );
        let lines: Vec<&str> = shown.lines().collect();
        assert!(
            lines[0].starts_with("— ") && lines[0].contains("2027"),
            "{shown}"
        );
        assert!(lines[1].ends_with(" Bob: hello"), "{shown}");
        assert!(lines[2].ends_with(" you: hi bob [delivered]"), "{shown}");
        assert!(
            lines[3].ends_with(" you: are you there? [failed: expired after 7 days undelivered]"),
            "{shown}"
        );
        assert!(lines[4].ends_with(" carol-id: who am i"), "{shown}");
        assert!(!shown.contains("1828122487"), "no Unix times: {shown}");
    }

    #[test]
    fn a_message_of_several_lines_stays_under_its_first() {
        let authors = super::Authors::new("me".into(), [("bob".to_string(), "Bob".to_string())]);
        let shown = super::history_text(&[message("bob", "in", "Size Used\n252G 42G")], &authors);
        let lines: Vec<&str> = shown.lines().collect();
        assert!(lines[1].ends_with(" Bob: Size Used"), "{shown}");
        assert_eq!(lines[2], "      252G 42G", "{shown}");
    }

    fn status(role: &str, gateway: bool, connected: bool) -> tincan_node::StatusView {
        tincan_node::StatusView {
            user_id: "u".into(),
            device_id: "d".into(),
            name: "Alice".into(),
            listen: "0.0.0.0:47070".into(),
            peers_online: 0,
            peers_known: 0,
            outbox: 0,
            mdns: true,
            org: Some("Acme".into()),
            role: role.into(),
            site: None,
            gateway: gateway.then(|| tincan_node::GatewayView {
                device_id: "6i5lx27lq2".into(),
                epoch: 1,
            }),
            relay: Some(tincan_node::RelayView {
                addr: connected.then(|| "relay.example:4433".into()),
                addrs: vec!["relay.example:4433".into()],
                fingerprint: "ab".into(),
                connected,
                error: (!connected).then(|| "timed out".into()),
            }),
        }
    }

    #[test]
    fn a_branch_member_reaches_the_relay_through_its_gateway() {
        let relay =
            |s: &tincan_node::StatusView| super::relay_state(s, s.relay.as_ref().expect("relay"));
        assert_eq!(
            relay(&status("member", true, false)),
            "reached through this branch's gateway 6i5lx27l"
        );
        assert_eq!(relay(&status("gateway", true, true)), "connected");
        assert_eq!(
            relay(&status("roaming", false, false)),
            "not connected: timed out"
        );
    }
}
