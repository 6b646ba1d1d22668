//! The one line at the bottom of the window that says how this node is
//! connected: LAN only, via the branch gateway NAME, direct to the relay,
//! or offline — and whether this machine is the gateway.

use crate::backend::Mode;
use crate::session::Session;

/// How good the connection is, for the dot colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// Everything that is configured works.
    Good,
    /// Working, with a caveat (relay configured but not in use, ...).
    Warning,
    /// Nothing reachable.
    Offline,
    /// Not known yet.
    Unknown,
}

/// The status line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusLine {
    /// What the dot shows.
    pub tone: Tone,
    /// The sentence.
    pub text: String,
    /// Whether this machine is its branch's gateway.
    pub is_gateway: bool,
}

/// Describes the session's status in one line.
pub fn describe(session: &Session) -> StatusLine {
    let line = |tone, text: String| StatusLine {
        tone,
        text,
        is_gateway: false,
    };
    if let Some(why) = &session.ended {
        return line(Tone::Offline, format!("Offline — {why}"));
    }
    let Some(status) = &session.status else {
        return match &session.status_error {
            Some(e) => line(Tone::Offline, format!("Offline — {e}")),
            None => line(Tone::Unknown, "Connecting to the node…".into()),
        };
    };
    let colleagues = match status.peers_online {
        0 => "nobody else online".to_string(),
        1 => "1 device online".to_string(),
        n => format!("{n} devices online"),
    };
    let relay_problem = status
        .relay
        .as_ref()
        .and_then(|r| r.error.clone())
        .unwrap_or_else(|| "connecting…".into());
    let relay_up = status.relay.as_ref().is_some_and(|r| r.connected);
    let mut result = match status.role.as_str() {
        "gateway" => StatusLine {
            tone: if relay_up { Tone::Good } else { Tone::Warning },
            text: if relay_up {
                format!(
                    "This machine is the branch gateway · connected to the relay · {colleagues}"
                )
            } else {
                format!("This machine is the branch gateway · relay unreachable: {relay_problem}")
            },
            is_gateway: true,
        },
        "member" => {
            let gateway = status
                .gateway
                .as_ref()
                .map(|g| {
                    session
                        .device_name(&g.device_id)
                        .map(str::to_string)
                        .unwrap_or_else(|| short(&g.device_id))
                })
                .unwrap_or_else(|| "(electing)".into());
            line(
                Tone::Good,
                format!("Other branches via gateway {gateway} · {colleagues}"),
            )
        }
        "roaming" if relay_up => line(
            Tone::Good,
            format!("Direct to the relay (no gateway on this network) · {colleagues}"),
        ),
        "roaming" => line(
            Tone::Offline,
            format!("Offline — relay unreachable: {relay_problem}"),
        ),
        _ => match &status.relay {
            // Standalone with a relay configured: it says why it is unused.
            Some(relay) if relay.error.is_some() => line(
                Tone::Warning,
                format!("LAN only · relay not in use: {relay_problem} · {colleagues}"),
            ),
            _ if status.peers_online == 0 => {
                line(Tone::Warning, format!("LAN only · {colleagues}"))
            }
            _ => line(Tone::Good, format!("LAN only · {colleagues}")),
        },
    };
    if status.outbox > 0 {
        result
            .text
            .push_str(&format!(" · {} waiting to be delivered", status.outbox));
    }
    if session.mode == Mode::Attached {
        result
            .text
            .push_str(" · using the tincan daemon running for this home");
    }
    result
}

fn short(id: &str) -> String {
    id.chars().take(8).collect()
}
