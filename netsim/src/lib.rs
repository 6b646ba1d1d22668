//! tincan-netsim: the test harness for tincan.
//!
//! # Layout
//! - [`netns`]: real Linux network namespaces. A [`Lan`] is one broadcast
//!   domain (a bridge in its own namespace); each [`Host`] is a namespace
//!   plugged into it, in which tests run real `tincan` daemons. Needs root and
//!   `ip`; tests check [`netns_available`] and skip otherwise. Everything it
//!   creates is removed again when the [`Lan`] is dropped, also on panic.
//!
//! A deterministic in-process simulator (seeded, virtual clock) will sit next
//! to it; the namespace harness is for end-to-end tests of the real binaries.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod netns;

pub use netns::{netns_available, Host, Lan};
