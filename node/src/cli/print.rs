//! Human-readable and JSON output of CLI commands.

use tincan_node::{MessageView, PeerView, PresenceView, SearchHitView, StatusView, WhoAmI};

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

pub fn history(messages: &[MessageView]) {
    for m in messages {
        let arrow = if m.direction == "out" { "→" } else { "←" };
        if m.system {
            println!("{} — {}", m.sent_at, terminal_safe(&m.text));
            continue;
        }
        if let Some(quote) = &m.reply_to {
            println!("    ↳ re: {}", terminal_safe(&quote.excerpt));
        }
        let text = if m.deleted {
            "(message deleted)".to_string()
        } else {
            terminal_safe(&m.text)
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
        println!("{} {arrow} {text} [{}]{marks}", m.sent_at, m.state);
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
            m.sent_at,
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
        Some(r) => println!("relay: {} ({})", r.addr, relay_state(s, r)),
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
    fn escape_sequences_are_neutralised() {
        let shown = super::terminal_safe("hi\u{1b}[2Jthere\nline");
        assert!(!shown.contains('\u{1b}'));
        assert!(shown.contains("\\u{1b}"));
        assert!(shown.contains('\n'));
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
                addr: "relay.example:4433#ab".into(),
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
