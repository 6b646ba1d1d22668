//! tincan: a messenger for offices with no server.
//!
//! This crate is the embedding API: start a node in your own program with
//! [`Node::start`], send commands through the [`NodeHandle`] and read its
//! event stream — or talk to a running daemon over its control socket with
//! [`ControlClient`] (the bot API). The protocol itself lives in
//! [`core`] (sans-IO).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use tincan_core as core;
pub use tincan_node::*;
