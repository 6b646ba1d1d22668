//! tincan-transport: what the node and the relay share, so that the relay
//! never links the node (`tincan-node`, with its mDNS, desktop
//! notifications, progress bars and OS-account lookups).
//!
//! Everything here is the same on both sides of a connection or written
//! the same way by both daemons; nothing here decides anything (that is
//! `tincan_core`'s job) or knows about a node's discovery, storage or UI.
//!
//! # Layout
//! - [`tls`]: TLS certificates bound to device keys; mutual authentication.
//! - [`rpc`]: one request / one answer per QUIC stream.
//! - [`quic`]: binding QUIC endpoints (large UDP receive buffers, dual stack).
//! - [`file_stream`]: the stream format of file requests and uploads.
//! - [`entropy`]: the OS random source as core's `Entropy`.
//! - [`secret`]: private directories and atomic owner-only secret files.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod entropy;
pub mod file_stream;
pub mod quic;
pub mod rpc;
pub mod secret;
pub mod tls;
