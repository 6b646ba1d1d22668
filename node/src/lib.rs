//! tincan-node: the daemon behind the `tincan` binary, usable as a library.
//!
//! # Layout
//! - [`node`]: [`Node::start`] and the [`NodeHandle`]; inside, the actor and QUIC links.
//! - [`request`]: the node's command language, [`Request`] in and
//!   [`Response`] out, spoken by the control socket, embedders and the GUI.
//! - [`config`], [`home`], [`keystore`]: where a node lives and what it is.
//! - [`org`]: organisation key (admin), membership, revocation list files.
//! - [`pair`]: enrolling this home as a new device of an existing user.
//! - [`store`]: SQLite history, outbox, peers, name pins (WAL, migrations).
//! - [`discovery`]: mDNS announce + browse.
//! - [`control`]: the JSON-lines control socket (CLI and bot API) and its client:
//!   requests as lines, [`NodeHandle::request`] behind them.
//! - [`event`]: events and views with stable JSON shapes.
//! - [`file`](mod@file): file transfer I/O — scanning, staging, the file stream format.
//! - [`export`]: `tincan export` as round-tripping JSON or escaped HTML.
//! - [`platform`]: the OS-specific bits.
//! - [`addr`]: socket addresses kept IPv4 when seen IPv4-mapped; dial order.
//!
//! Re-exported from `tincan_transport`, which the node shares with the
//! relay (so the relay never links this crate):
//! - [`tls`]: TLS certificates bound to device keys; mutual authentication.
//! - [`rpc`]: one request / one answer per QUIC stream.
//! - [`quic`]: binding QUIC endpoints (large UDP receive buffers, dual stack).
//! - `file::stream`, `keystore::OsEntropy`, `platform::write_secret` and
//!   `platform::restrict_dir` likewise.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod addr;
pub mod config;
pub mod control;
pub mod discovery;
pub mod event;
pub mod export;
pub mod file;
#[doc(hidden)]
pub mod golden;
pub mod home;
pub mod keystore;
pub mod node;
pub mod notifier;
pub mod org;
pub mod pair;
pub mod platform;
pub mod request;
pub mod store;

// What the relay shares with the node lives in tincan-transport, so that
// the relay never links the node; these keep the node's paths working.
pub use tincan_transport::{quic, rpc, tls};

pub use config::{NodeConfig, DEFAULT_PORT};
pub use control::client::{ControlClient, ControlError, EventStream};
pub use control::protocol::Reply;
pub use event::{
    BlockedView, BroadcastView, ContactView, DeviceView, ForgottenView, GatewayView, JoinedView,
    MessageView, MuteView, NodeEvent, PairingView, PeerView, PresenceView, QuoteView, ReadView,
    RelayView, RoomJoinView, RoomLinkView, RoomMemberView, RoomTypingView, RoomView, SearchHitView,
    StatusView, TypingView, WhoAmI,
};
pub use export::ExportView;
pub use file::TransferView;
pub use home::Home;
pub use node::{read_history, Node, NodeError, NodeHandle, StartError, StoredHistory};
pub use request::{Reloaded, Request, Response, UnexpectedResponse};
pub use store::HistoryQuery;
// The states a message or a transfer shows are protocol facts (core's),
// not the store's: the JSON contract does not follow the SQLite schema.
pub use tincan_core::delivery::MessageState;
pub use tincan_core::file::TransferState;
