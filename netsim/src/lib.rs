//! tincan-netsim: the test harness for tincan.
//!
//! # Layout
//! - [`netns`]: real Linux network namespaces. A [`Lan`] is one broadcast
//!   domain (a bridge in its own namespace); each [`Host`] is a namespace
//!   plugged into it, in which tests run real `tincan` daemons. Needs root and
//!   `ip`; tests check [`netns_available`] and skip otherwise. An
//!   [`Internet`] adds a WAN with public hosts (a relay) and sites, each a
//!   LAN behind its own NAT router, with roaming between them and per-site
//!   WAN counters, loss and rate limits. Everything it creates is removed
//!   again when the [`Lan`] or [`Internet`] is dropped, also on panic.
//!
//! - [`sim`]: a deterministic, seeded, virtual-time simulator that drives
//!   `tincan-core`'s state machines alone (no daemon, no sockets): sites with
//!   gateways and a relay, loss, partitions, crashes and roaming, with real
//!   envelopes and receipts, core's room logs on every member device, and
//!   per-site WAN counters. Failing scenarios print their seed
//!   ([`sim::check_seeds`]).
//!
//! - [`scenario`]: the standard workload over [`sim`] (messages of every
//!   kind, room membership changes, gateway kills, roams, partitions,
//!   crashes) and its outcome; the `sim` command runs it for any size and
//!   seed.
//!
//! - [`sim_lan`]: one office LAN of up to thousands of devices, each a real
//!   identity driving core's `LanMesh` (peer exchange, ring links,
//!   suspicions, idle close) over modelled mDNS hints, dials and links, in
//!   virtual time.
//!
//! The namespace harness is for end-to-end tests of the real binaries; the
//! simulator is for protocol properties over many seeds in seconds.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod netns;
pub mod scenario;
pub mod sim;
pub mod sim_lan;

pub use netns::{
    kill_child, netns_available, netns_pids, BridgeCounters, DelayProxy, Host, Internet, Lan,
    SiteId,
};
