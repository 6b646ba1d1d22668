//! What a node reports: the event stream and the data views that the CLI,
//! the control socket (bot API) and the GUI all share, with stable JSON shapes.
//! The views of presence, receipts, typing, blocking and search are in
//! `event/chat.rs`.

mod chat;
mod device;
mod room;

use serde::{Deserialize, Serialize};

pub use chat::{
    BlockedView, BroadcastView, MuteView, PresenceView, ReadView, SearchHitView, TypingView,
};
pub use device::{DeviceView, ForgottenView, JoinedView, PairingView};
pub use room::{RoomJoinView, RoomLinkView, RoomMemberView, RoomTypingView, RoomView};

use crate::store::{MessageRecord, MessageState};

/// A received message counts as received while offline (`offline` in
/// [`MessageView`]) when it arrived this long after it was sent: it waited
/// in the sender's outbox or the relay's mailbox while this device (or the
/// way to it) was offline. A live delivery takes well under a second.
pub const OFFLINE_AFTER_MS: u64 = 10_000;

/// One device of a peer, as `tincan peers --json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    /// Display name; `name (abcd-efgh)` when another user holds the plain name.
    pub name: String,
    /// The peer's user id.
    pub user_id: String,
    /// The peer's device id.
    pub device_id: String,
    /// Addresses it was reachable at.
    pub addrs: Vec<String>,
    /// Whether an authenticated connection is live.
    pub online: bool,
    /// How it was found: `lan` (mDNS), `static` (configured), `remembered`.
    pub via: String,
    /// What the peer shows: `online`, `away`, `busy`, `on-the-phone`,
    /// `out-to-lunch`, or `offline` whenever `online` is false (an
    /// appear-offline user is shown exactly like one whose device is off).
    #[serde(default = "offline")]
    pub presence: String,
    /// The peer's presence note, if it set one and is shown online.
    #[serde(default)]
    pub note: Option<String>,
    /// Whether this node blocked the peer's user.
    #[serde(default)]
    pub blocked: bool,
}

fn offline() -> String {
    "offline".into()
}

/// One message, as `tincan history --json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    /// Message id (hex).
    pub id: String,
    /// Sender user id.
    pub from: String,
    /// Recipient user id.
    pub to: String,
    /// The text.
    pub text: String,
    /// When the sender sent it, Unix milliseconds (sender's clock).
    pub sent_at: u64,
    /// `queued`, `sent`, `delivered`, `read` or `failed`.
    pub state: MessageState,
    /// `in` or `out`, from this node's point of view.
    pub direction: String,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When this node received it, Unix ms (its clock); null for our own.
    #[serde(default)]
    pub received_at: Option<u64>,
    /// Received while offline: it arrived more than [`OFFLINE_AFTER_MS`]
    /// after it was sent (held by the sender or the relay meanwhile).
    #[serde(default)]
    pub offline: bool,
    /// The message this one replies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<QuoteView>,
    /// User ids it @mentions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<String>,
    /// Sent as a broadcast (`tincan broadcast`).
    #[serde(default)]
    pub broadcast: bool,
    /// When its author last edited it, Unix ms (author's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<u64>,
    /// Its author retracted it (`text` is then empty).
    #[serde(default)]
    pub deleted: bool,
    /// The room (hex id), for a room message; absent in 1:1 history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// A room's membership line (joined, left, topic...): `text` says
    /// what happened; absent for messages people wrote.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub system: bool,
}

/// The quoted message of a reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteView {
    /// The quoted message's id.
    pub id: String,
    /// Its author's user id.
    pub from: String,
    /// The start of its text.
    pub excerpt: String,
}

impl From<&MessageRecord> for MessageView {
    fn from(m: &MessageRecord) -> Self {
        Self {
            id: m.id.to_string(),
            from: m.from_user.to_string(),
            to: m.to_user.to_string(),
            text: m.text.clone(),
            sent_at: m.sent_at_ms,
            state: m.state,
            direction: match m.direction {
                crate::store::Direction::In => "in",
                crate::store::Direction::Out => "out",
            }
            .to_string(),
            error: m.error.clone(),
            received_at: m.received_at_ms,
            offline: m.direction == crate::store::Direction::In
                && m.received_at_ms
                    .is_some_and(|at| at.saturating_sub(m.sent_at_ms) > OFFLINE_AFTER_MS),
            reply_to: m.extras.reply_to.as_ref().map(|q| QuoteView {
                id: q.id.to_string(),
                from: q.author.to_string(),
                excerpt: q.excerpt.clone(),
            }),
            mentions: m.extras.mentions.iter().map(ToString::to_string).collect(),
            broadcast: m.extras.broadcast,
            edited_at: m.extras.edited_at_ms,
            deleted: m.extras.retracted,
            room: m.room.map(|r| r.to_string()),
            system: m.system,
        }
    }
}

/// `tincan whoami --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    /// This user's id.
    pub user_id: String,
    /// This device's id.
    pub device_id: String,
    /// The display name.
    pub name: String,
}

/// `tincan status --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    /// This user's id.
    pub user_id: String,
    /// This device's id.
    pub device_id: String,
    /// The display name.
    pub name: String,
    /// The QUIC listen address.
    pub listen: String,
    /// Peer devices with a live connection.
    pub peers_online: usize,
    /// Peer devices known.
    pub peers_known: usize,
    /// Deliveries still waiting in the outbox.
    pub outbox: usize,
    /// Whether mDNS discovery runs.
    pub mdns: bool,
    /// The organisation joined, if any.
    pub org: Option<String>,
    /// `gateway`, `member`, `roaming` or `standalone`.
    pub role: String,
    /// This node's site id, once it has one.
    pub site: Option<String>,
    /// The site's gateway as this node knows it.
    pub gateway: Option<GatewayView>,
    /// The relay, if configured.
    pub relay: Option<RelayView>,
}

/// A site's gateway: device and lease epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayView {
    /// The gateway's device id.
    pub device_id: String,
    /// Its lease epoch.
    pub epoch: u64,
}

/// The relay connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayView {
    /// `HOST:PORT` of the relay node this device is connected to now
    /// (`None` when it is not).
    pub addr: Option<String>,
    /// `HOST:PORT` of every configured relay node (several for a relay
    /// cluster).
    pub addrs: Vec<String>,
    /// The pinned relay fingerprint (one for every node of a cluster).
    pub fingerprint: String,
    /// Whether this node holds a live connection to it now.
    pub connected: bool,
    /// Why the last attempt failed, if it did.
    pub error: Option<String>,
}

/// Something that happened, as `tincan watch` prints it (one JSON line each).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NodeEvent {
    /// A new message arrived (duplicates are never reported twice).
    MessageReceived {
        /// The message.
        message: MessageView,
        /// The sender's display name.
        from_name: String,
    },
    /// An outgoing message changed state.
    MessageState {
        /// Message id.
        id: String,
        /// Recipient user id.
        to: String,
        /// The new state.
        state: MessageState,
        /// Why, when failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A peer device came online.
    PeerOnline {
        /// The peer.
        peer: PeerView,
    },
    /// A peer device went offline.
    PeerOffline {
        /// The peer.
        peer: PeerView,
    },
    /// This node's part for its site changed (gateway election, roaming).
    RoleChanged {
        /// `gateway`, `member`, `roaming` or `standalone`.
        role: String,
        /// The site's gateway, if there is one.
        #[serde(skip_serializing_if = "Option::is_none")]
        gateway: Option<GatewayView>,
    },
    /// A device announced a name already held by another user.
    NameConflict {
        /// The contested name.
        name: String,
        /// User id holding the name.
        holder: String,
        /// User id also claiming it; shown as `name (fingerprint)`.
        claimant: String,
    },
    /// Someone offers files (`tincan file accept ID`).
    FileOffered {
        /// The offer.
        transfer: crate::file::TransferView,
    },
    /// A transfer changed state.
    FileState {
        /// The transfer now.
        transfer: crate::file::TransferView,
    },
    /// A peer device's presence (or note) changed; `peer.presence` and
    /// `peer.note` say to what.
    Presence {
        /// The peer.
        peer: PeerView,
    },
    /// A peer is typing in the conversation with this user (never stored;
    /// at most one event per peer device a second).
    Typing {
        /// The typing user's id.
        from: String,
        /// Their display name.
        from_name: String,
        /// The device they type on.
        device_id: String,
    },
    /// A message was edited or retracted by its author (`message` is the
    /// new state; one event per conversation it is in).
    MessageChanged {
        /// The message now.
        message: MessageView,
    },
    /// A contact request arrived, or a contact's state changed.
    Contact {
        /// The contact now.
        contact: ContactView,
    },
    /// A new message deserved a desktop notification (by the rule of
    /// `tincan_core::notify`); shown on the desktop when one is available.
    Notification {
        /// The sender's display name.
        title: String,
        /// The start of the text.
        body: String,
        /// `normal` or `mention`.
        urgency: String,
        /// The conversation (peer user id).
        peer: String,
        /// The message id.
        message_id: String,
        /// The room, for a room message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
    },
    /// A new device of this user was paired (on the device that showed the code).
    DevicePaired {
        /// The new device.
        device: DeviceView,
    },
    /// Pairing ended without a new device: wrong or expired code.
    PairingFailed {
        /// Why, for the user.
        reason: String,
    },
    /// A device of this user was removed (`device remove`); `this`: the
    /// device reporting it is the one removed and gets nothing new.
    DeviceRemoved {
        /// The removed device.
        device_id: String,
        /// Whether it is this device.
        this: bool,
    },
    /// A message this user sent from another of their devices.
    SentElsewhere {
        /// The message (direction `out`).
        message: MessageView,
    },
    /// A member is typing in a room (never stored; at most one event per
    /// member device a second).
    RoomTyping {
        /// The room id.
        room: String,
        /// The typing user's id.
        from: String,
        /// Their display name.
        from_name: String,
        /// The device they type on.
        device_id: String,
    },
}

/// One entry of `tincan contact list --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactView {
    /// The contact's user id.
    pub user_id: String,
    /// How this user calls them.
    pub name: String,
    /// This user's group for them ("" = none).
    pub group: String,
    /// `org` (a member of this user's organisation: a contact without
    /// asking), `accepted`, `requested` (we asked), `incoming` (they
    /// asked), `rejected` (they said no) or `declined` (we said no).
    pub state: String,
    /// The message of their request.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Whether one of their devices is connected now.
    pub online: bool,
    /// What they show (`offline` when not online).
    pub presence: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::view::RecipientView;
    use crate::file::TransferView;
    use tincan_core::file::TransferState;

    fn s(text: &str) -> String {
        text.to_string()
    }

    fn peer() -> PeerView {
        PeerView {
            name: s("Bob"),
            user_id: s("b0b"),
            device_id: s("d1"),
            addrs: vec![s("127.0.0.1:7777")],
            online: true,
            via: s("lan"),
            presence: s("available"),
            note: Some(s("in a meeting")),
            blocked: false,
        }
    }

    fn message(state: MessageState) -> MessageView {
        MessageView {
            id: s("3fa2c1"),
            from: s("a11ce"),
            to: s("b0b"),
            text: s("hi @Bob"),
            sent_at: 1_800_000_000_000,
            state,
            direction: s("out"),
            error: (state == MessageState::Failed).then(|| s("blocked by the recipient")),
            received_at: Some(1_800_000_000_500),
            offline: false,
            reply_to: Some(QuoteView {
                id: s("1dea"),
                from: s("b0b"),
                excerpt: s("lunch?"),
            }),
            mentions: vec![s("b0b")],
            broadcast: false,
            edited_at: Some(1_800_000_001_000),
            deleted: false,
            room: Some(s("r00m")),
            system: true,
        }
    }

    fn transfer(state: TransferState) -> TransferView {
        TransferView {
            id: s("7ab1"),
            direction: s("in"),
            peer: s("b0b"),
            peer_name: s("Bob"),
            name: s("report.pdf"),
            size: 1_000_000,
            count: 1,
            bytes_done: 250_000,
            state,
            error: (state == TransferState::Failed).then(|| s("disk full")),
            rate: Some(100_000),
            eta_secs: Some(8),
            bytes_received_total: Some(250_000),
            bytes_sent_total: Some(0),
            dest: Some(s("/home/a/Downloads")),
            saved_as: vec![s("/home/a/Downloads/report.pdf")],
            created_at: 1_800_000_000_000,
            recipients: vec![RecipientView {
                user: s("b0b"),
                name: s("Bob"),
                state: Some(state),
                error: None,
            }],
        }
    }

    /// One example of every event; an event added without one fails to
    /// compile (no wildcard arm).
    fn example_of_each() -> Vec<NodeEvent> {
        let mut all = vec![
            NodeEvent::MessageReceived {
                message: message(MessageState::Delivered),
                from_name: s("Alice"),
            },
            NodeEvent::PeerOnline { peer: peer() },
            NodeEvent::PeerOffline { peer: peer() },
            NodeEvent::RoleChanged {
                role: s("gateway"),
                gateway: Some(GatewayView {
                    device_id: s("d1"),
                    epoch: 3,
                }),
            },
            NodeEvent::NameConflict {
                name: s("Bob"),
                holder: s("b0b"),
                claimant: s("b0b2"),
            },
            NodeEvent::FileOffered {
                transfer: transfer(TransferState::Offered),
            },
            NodeEvent::Presence { peer: peer() },
            NodeEvent::Typing {
                from: s("b0b"),
                from_name: s("Bob"),
                device_id: s("d1"),
            },
            NodeEvent::MessageChanged {
                message: message(MessageState::Read),
            },
            NodeEvent::Contact {
                contact: ContactView {
                    user_id: s("b0b"),
                    name: s("Bob"),
                    group: s("Suppliers"),
                    state: s("incoming"),
                    message: s("hello"),
                    online: true,
                    presence: s("busy"),
                },
            },
            NodeEvent::Notification {
                title: s("Bob"),
                body: s("hi @Alice"),
                urgency: s("mention"),
                peer: s("b0b"),
                message_id: s("3fa2c1"),
                room: Some(s("r00m")),
            },
            NodeEvent::DevicePaired {
                device: DeviceView {
                    device_id: s("d2"),
                    label: s("laptop"),
                    this: false,
                    online: true,
                    added_at: 1_800_000_000_000,
                },
            },
            NodeEvent::PairingFailed {
                reason: s("wrong code"),
            },
            NodeEvent::DeviceRemoved {
                device_id: s("d2"),
                this: false,
            },
            NodeEvent::SentElsewhere {
                message: message(MessageState::Sent),
            },
            NodeEvent::RoomTyping {
                room: s("r00m"),
                from: s("b0b"),
                from_name: s("Bob"),
                device_id: s("d1"),
            },
        ];
        for state in MessageState::ALL {
            all.push(NodeEvent::MessageState {
                id: s("3fa2c1"),
                to: s("b0b"),
                state,
                error: (state == MessageState::Failed).then(|| s("expired after 7 days")),
            });
        }
        for state in TransferState::ALL {
            all.push(NodeEvent::FileState {
                transfer: transfer(state),
            });
        }
        for event in &all {
            match event {
                NodeEvent::MessageReceived { .. }
                | NodeEvent::MessageState { .. }
                | NodeEvent::PeerOnline { .. }
                | NodeEvent::PeerOffline { .. }
                | NodeEvent::RoleChanged { .. }
                | NodeEvent::NameConflict { .. }
                | NodeEvent::FileOffered { .. }
                | NodeEvent::FileState { .. }
                | NodeEvent::Presence { .. }
                | NodeEvent::Typing { .. }
                | NodeEvent::MessageChanged { .. }
                | NodeEvent::Contact { .. }
                | NodeEvent::Notification { .. }
                | NodeEvent::DevicePaired { .. }
                | NodeEvent::PairingFailed { .. }
                | NodeEvent::DeviceRemoved { .. }
                | NodeEvent::SentElsewhere { .. }
                | NodeEvent::RoomTyping { .. } => {}
            }
        }
        all
    }

    #[test]
    fn watch_event_lines_are_as_pinned() {
        let mut lines = String::new();
        for event in example_of_each() {
            let line = serde_json::to_string(&event).expect("encode");
            let back: NodeEvent = serde_json::from_str(&line).expect("decode");
            assert_eq!(back, event);
            lines.push_str(&line);
            lines.push('\n');
        }
        crate::golden::check("watch_events.txt", &lines);
    }
}
