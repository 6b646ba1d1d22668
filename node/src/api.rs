//! The embedding API: what an application needs to run a node in its own
//! process, or to attach to a running daemon, and talk to it.
//!
//! - [`Node::start`] runs a node from a [`NodeConfig`] in a [`Home`] and
//!   returns its [`NodeHandle`].
//! - [`NodeHandle::request`] takes a [`Request`], the node's one command
//!   language (the control socket, the CLI and the desktop app speak it
//!   too), and answers a [`Response`]; [`NodeHandle::subscribe`] yields
//!   [`NodeEvent`]s.
//! - [`ControlClient`] speaks the same requests to a daemon that runs
//!   elsewhere, over its control socket.
//! - The views ([`MessageView`], [`PeerView`], [`TransferView`], …) are
//!   the stable JSON shapes of answers and events: their own types, never
//!   the store's rows, so the SQLite schema can change under them.
//!
//! The crate root re-exports all of this. The crate's other public
//! modules are for the `tincan` binary and the tests (identity files,
//! organisation files, pairing, platform bits) and are not an embedding
//! contract; the daemon's insides (the actor, links, the store, mDNS)
//! are private.
//!
//! ```no_run
//! use tincan_node::api::{Home, Node, NodeConfig, Request, Response};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = NodeConfig::from_home(Home::new("/tmp/alice"))?;
//! config.create_identity_as = Some("Alice".into());
//! config.mdns = false;
//! let node = Node::start(config).await?;
//! if let Response::Whoami(me) = node.request(Request::Whoami).await? {
//!     println!("I am {}", me.name);
//! }
//! # Ok(()) }
//! ```

pub use crate::config::{NodeConfig, DEFAULT_PORT};
pub use crate::control::client::{ControlClient, ControlError, EventStream};
pub use crate::control::protocol::Reply;
pub use crate::event::{
    BlockedView, BroadcastView, ContactView, DeviceView, ForgottenView, GatewayView, JoinedView,
    MessageView, MuteView, NodeEvent, PairingView, PeerView, PresenceView, QuoteView, ReadView,
    RelayView, RoomJoinView, RoomLinkView, RoomMemberView, RoomTypingView, RoomView, SearchHitView,
    StatusView, TypingView, WhoAmI,
};
pub use crate::export::ExportView;
pub use crate::file::TransferView;
pub use crate::home::Home;
pub use crate::node::{read_history, Node, NodeError, NodeHandle, StartError, StoredHistory};
pub use crate::request::{Reloaded, Request, Response, UnexpectedResponse};
pub use crate::store::HistoryQuery;
// The states a message or a transfer shows are protocol facts (core's),
// not the store's: the JSON contract does not follow the SQLite schema.
pub use tincan_core::delivery::MessageState;
pub use tincan_core::file::TransferState;
