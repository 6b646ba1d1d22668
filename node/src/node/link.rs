//! QUIC plumbing: the endpoint, one task per connection and one per
//! delivery attempt. These tasks decide nothing; they move frames between
//! streams and the actor, and report what happened.
//!
//! Stream protocol (all frames are `tincan_core::wire` frames):
//! - each side opens one unidirectional stream and sends `Hello`;
//! - a delivery is one bidirectional stream: the sender writes `Envelope`
//!   and finishes, the recipient answers `Receipt` or `Refused` and finishes;
//! - every other request (`Route`, `Directory`, `Neighbours`,
//!   `Revocations`) is one bidirectional stream too, answered with one frame
//!   (`crate::rpc`);
//! - election beacons are QUIC datagrams (unreliable, latest wins);
//! - a file request (`FileRequest`) is one bidirectional stream answered
//!   with `FileData` and the raw sealed bytes (`crate::file::stream`).
//!
//! # Layout
//! - `endpoint`: the one QUIC endpoint and the limits it puts on a peer.
//! - `conn`: a connection's life: dial or accept, hello, beacons, down.
//! - `inbound`: one request stream from a peer, handed to the actor.
//! - `outbound`: deliveries, routed sends and notifications to a peer.

mod conn;
mod endpoint;
mod inbound;
mod outbound;

use std::net::SocketAddr;
use std::time::Duration;

use tincan_core::election::Beacon;
use tincan_core::pairing::PairMessage;
use tincan_core::route::{DeviceAnswer, Route, Welcome};
use tincan_core::wire::{Frame, Hello};
use tincan_core::{DeviceCert, DeviceId, Envelope, MessageId};
use tokio::sync::oneshot;

pub(crate) use conn::{accept, dial, serve_streams};
pub(crate) use endpoint::bind_endpoint;
pub(crate) use outbound::{
    deliver, deliver_once, forward, notify, route, routed_envelope, AnswerJudge, REROUTED,
};

/// Longest a whole delivery attempt may take before it counts as failed.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// What connection and delivery tasks tell the actor.
pub(crate) enum LinkEvent {
    /// A peer proved who it is and said hello.
    Up {
        conn: quinn::Connection,
        cert: DeviceCert,
        hello: Box<Hello>,
        /// Where the peer listens (its address with its announced port).
        addr: SocketAddr,
        /// The address we dialled, when we did.
        dialed: Option<SocketAddr>,
    },
    /// A connection ended.
    Down {
        /// Whether it was lost (timed out, reset) rather than closed.
        lost: bool,
        device: DeviceId,
        stable_id: usize,
        reason: String,
    },
    /// A static peer's host name resolved to these addresses.
    Resolved(Vec<SocketAddr>),
    /// Dialling an address failed before a peer was authenticated.
    DialFailed { addr: SocketAddr, reason: String },
    /// A peer delivered an envelope; the actor answers on `reply`.
    Inbound {
        device: DeviceId,
        envelope: Box<Envelope>,
        reply: oneshot::Sender<Frame>,
    },
    /// An envelope of [`LinkEvent::Inbound`], opened (or not) by a worker
    /// off the event loop (`node/opener.rs`); the actor answers on `reply`.
    Opened {
        device: DeviceId,
        message_id: tincan_core::MessageId,
        opened: Box<Result<tincan_core::Opened, tincan_core::OpenError>>,
        reply: oneshot::Sender<Frame>,
    },
    /// A peer delivered a room envelope; the actor answers on `reply`.
    InboundRoom {
        device: DeviceId,
        envelope: Box<tincan_core::RoomEnvelope>,
        reply: oneshot::Sender<Frame>,
    },
    /// A delivery attempt wrote its envelope completely.
    Written {
        message_id: MessageId,
        device: DeviceId,
    },
    /// A delivery attempt ended: what the peer's answer (or the error)
    /// proves, judged by the attempt's task with core's rule.
    Attempted {
        message_id: MessageId,
        device: DeviceId,
        outcome: tincan_core::outbox::AttemptOutcome,
    },
    /// A peer (LAN device, gateway or the relay) hands us a routed item.
    RouteIn {
        from: DeviceId,
        route: Box<Route>,
        reply: oneshot::Sender<Frame>,
    },
    /// Directory, neighbours or revocations from the relay or the gateway.
    Control {
        from: DeviceId,
        frame: Box<Frame>,
        reply: oneshot::Sender<Frame>,
    },
    /// A LAN peer's election beacon.
    Beacon { from: DeviceId, beacon: Beacon },
    /// A routed send (one copy for `devices`) ended.
    Routed {
        message_id: MessageId,
        devices: Vec<DeviceId>,
        result: Result<Vec<DeviceAnswer>, String>,
    },
    /// The relay accepted our registration.
    RelayUp {
        conn: quinn::Connection,
        welcome: Welcome,
        relay_device: DeviceId,
        /// `HOST:PORT` of the relay node that answered.
        node: String,
    },
    /// Connecting or registering to the relay failed.
    RelayFailed { reason: String },
    /// The relay connection ended.
    RelayDown { stable_id: usize, reason: String },
    /// The relay answered a lease claim or release.
    LeaseAnswer {
        sent_at: u64,
        result: Result<Frame, String>,
    },
    /// File transfer traffic (`node/file_task.rs`).
    Files(super::file_task::FilesEvent),
    /// A device being paired (TLS-authenticated as `joiner`, on a
    /// pairing connection) sent one pairing step; the actor answers.
    Pair {
        joiner: DeviceCert,
        message: PairMessage,
        reply: oneshot::Sender<PairMessage>,
    },
}
