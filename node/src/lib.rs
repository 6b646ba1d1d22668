//! tincan-node: the daemon behind the `tincan` binary, usable as a library.
//!
//! Embedders start with [`api`]: the node, its handle, the requests and
//! answers, the views and events, the home and its config (all also at
//! the crate root).
//!
//! # Layout
//! - [`api`]: the embedding API.
//! - `node` (private): [`Node::start`] and the [`NodeHandle`]; inside, the
//!   actor, the QUIC links and the disk sync thread.
//! - `request` (private): the node's command language, [`Request`] in and
//!   [`Response`] out, spoken by the control socket, embedders and the GUI.
//! - [`config`], `home`, [`keystore`]: where a node lives and what it is.
//! - [`org`]: organisation key (admin), membership, revocation list files.
//! - [`pair`]: enrolling this home as a new device of an existing user.
//! - `store` (private): SQLite history, outbox, peers, name pins (WAL,
//!   migrations).
//! - `discovery` (private): mDNS announce + browse.
//! - `control` (private): the JSON-lines control socket (CLI and bot API)
//!   and its client ([`ControlClient`]): requests as lines,
//!   [`NodeHandle::request`] behind them.
//! - [`event`]: events and views with stable JSON shapes.
//! - [`file`](mod@file): file transfer I/O — scanning, staging, the file stream format.
//! - `export` (private): `tincan export` as round-tripping JSON or escaped
//!   HTML ([`ExportView`]).
//! - [`platform`]: the OS-specific bits.
//! - `addr` (private): socket addresses kept IPv4 when seen IPv4-mapped;
//!   dial order.
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

pub(crate) mod addr;
pub mod api;
pub mod config;
pub(crate) mod control;
pub(crate) mod discovery;
pub mod event;
pub(crate) mod export;
pub mod file;
#[doc(hidden)]
pub mod golden;
pub(crate) mod home;
pub mod keystore;
pub(crate) mod node;
pub mod notifier;
pub mod org;
pub mod pair;
pub mod platform;
pub(crate) mod request;
pub(crate) mod store;

// What the relay shares with the node lives in tincan-transport, so that
// the relay never links the node; these keep the node's paths working.
pub use tincan_transport::{quic, rpc, tls};

pub use api::*;
