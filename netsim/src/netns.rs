//! Linux network-namespace topologies for end-to-end tests.
//!
//! - [`Lan`] (in `netns/lan.rs`): one layer-2 broadcast domain, a namespace
//!   holding a bridge `br0`, and [`Host`]s plugged into it (`eth0`,
//!   `PREFIX.N/24`, multicast routed to `eth0`, so mDNS works within a LAN).
//!   Hosts can roam to another LAN ([`Lan::move_host`]).
//! - [`Internet`] (in `netns/internet.rs`): a WAN [`Lan`] with public hosts
//!   (a relay) and sites, each a [`Lan`] behind its own NAT router, with
//!   per-site WAN counters, loss and rate limits.
//! - [`DelayProxy`] (in `netns/delay.rs`): a UDP forwarder in a host's
//!   namespace that delays every datagram (there is no `tc netem` here).
//! - `netns/sys.rs`: unique names, running `ip` / `nft` / `tc` in a
//!   namespace, and finding and killing a namespace's processes
//!   ([`netns_pids`], [`kill_child`]).
//!
//! # Invariants
//! - Nothing is configured in the root namespace: a veth pair is created there
//!   only under unique temporary names (it cannot be called `eth0` there) and
//!   immediately moved into its namespaces, where it is renamed. No traffic
//!   and no multicast ever touch the root namespace.
//! - Every name carries the test process id and a per-process counter
//!   (`tc-<pid>-<n>-<label>`), so parallel test processes never collide;
//!   interface names stay within the kernel's 15-character limit.
//! - Dropping a [`Lan`] or an [`Internet`] kills whatever still runs inside
//!   its namespaces and deletes them. Because cleanup lives in `Drop`, it also
//!   runs when a test panics. Construction errors clean up what was already
//!   created.

use std::sync::OnceLock;

mod delay;
mod internet;
mod lan;
mod sys;

pub use delay::DelayProxy;
pub use internet::{Internet, SiteId};
pub use lan::{BridgeCounters, Host, Lan};
pub use sys::{kill_child, netns_pids};

use sys::{ip, is_root, ns_name};

/// Whether network-namespace tests can run here: the process is root, `ip`
/// is installed, and a probe namespace can be created and deleted.
///
/// The answer is computed once per process. Tests call this first and skip
/// (print a line and return) when it is `false`.
pub fn netns_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        if !is_root() {
            tracing::info!("netns unavailable: not root");
            return false;
        }
        let probe = ns_name("probe");
        let result = ip(&["netns", "add", &probe]).and_then(|()| {
            let up = ip(&["-n", &probe, "link", "set", "lo", "up"]);
            let del = ip(&["netns", "del", &probe]);
            up.and(del)
        });
        if let Err(err) = &result {
            tracing::info!("netns unavailable: {err:#}");
            let _ = ip(&["netns", "del", &probe]);
        }
        result.is_ok()
    })
}
