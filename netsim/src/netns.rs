//! Linux network-namespace topologies for end-to-end tests.
//!
//! A [`Lan`] is one layer-2 broadcast domain: a namespace `tc-<pid>-<n>-lan`
//! holding a bridge `br0`. [`Lan::add_host`] creates a namespace
//! `tc-<pid>-<n>-<label>` with a veth `eth0` whose other end is a port of the
//! bridge, address `PREFIX.N/24` (N = 1, 2, … in the order hosts are added)
//! and `lo` up, and a route for multicast (`224.0.0.0/4 dev eth0`). Multicast
//! is flooded across the bridge (snooping off), so mDNS works between the
//! hosts of a LAN and nowhere else.
//!
//! # Invariants
//! - Nothing is configured in the root namespace: a veth pair is created there
//!   only under unique temporary names (it cannot be called `eth0` there) and
//!   immediately moved into its namespaces, where it is renamed.
//! - Every name carries the test process id and a per-process counter, so
//!   parallel test processes never collide; interface names stay within the
//!   kernel's 15-character limit.
//! - Dropping a [`Lan`] kills whatever still runs inside its namespaces and
//!   deletes them, hosts first, then the bridge. Because cleanup lives in
//!   `Drop`, it also runs when a test panics. Construction errors clean up
//!   what was already created.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use anyhow::{bail, ensure, Context, Result};

/// Per-process counter that makes namespace and interface names unique.
static COUNTER: AtomicU32 = AtomicU32::new(0);

fn next_id() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A namespace name `tc-<pid>-<n>-<label>`, unique across test processes.
fn ns_name(label: &str) -> String {
    format!("tc-{}-{}-{}", std::process::id(), next_id(), label)
}

/// A root-namespace interface name `tc<pid hex>-<n hex><suffix>`, at most
/// 2 + 6 + 1 + 4 + 1 = 14 characters for pids below 2^24 and n below 2^16.
fn temp_ifname(n: u32, suffix: char) -> String {
    format!("tc{:x}-{:x}{suffix}", std::process::id(), n & 0xffff)
}

/// Runs `ip ARGS...` and fails with its stderr if it does not succeed.
fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (is iproute2 installed?)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Whether this process runs with effective uid 0 (read from procfs, which
/// avoids an `unsafe` libc call).
fn is_root() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

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

/// Kills every process still running in namespace `ns`, then deletes it.
/// Best effort: errors are logged, because this runs from `Drop`.
fn delete_ns(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            tracing::debug!(ns, pid, "killing leftover process");
            let _ = Command::new("kill").args(["-KILL", pid]).output();
        }
    }
    if let Err(err) = ip(&["netns", "del", ns]) {
        tracing::warn!("cleanup of namespace {ns}: {err:#}");
    }
}

/// One broadcast domain: a bridge `br0` in its own namespace, and the hosts
/// plugged into it. Dropping it deletes all of its namespaces.
#[derive(Debug)]
pub struct Lan {
    /// The namespace holding the bridge.
    ns: String,
    /// First three octets of the /24, e.g. `10.77.1`.
    prefix: [u8; 3],
    /// Host namespaces, in creation order (deleted before `ns`).
    hosts: Vec<String>,
}

impl Lan {
    /// Creates an empty LAN for the /24 `subnet_prefix` (three octets, e.g.
    /// `"10.77.1"`). Hosts get `PREFIX.1`, `PREFIX.2`, … in order.
    pub fn new(subnet_prefix: &str) -> Result<Lan> {
        let octets: Vec<u8> = subnet_prefix
            .split('.')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("bad subnet prefix {subnet_prefix:?}"))?;
        let prefix: [u8; 3] = octets
            .try_into()
            .map_err(|_| anyhow::anyhow!("subnet prefix {subnet_prefix:?} needs three octets"))?;

        let ns = ns_name("lan");
        ip(&["netns", "add", &ns])?;
        // From here on, dropping `lan` (also on `?`) deletes the namespace.
        let lan = Lan {
            ns,
            prefix,
            hosts: Vec::new(),
        };
        let ns = lan.ns.as_str();
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        // No STP and no snooping: ports forward at once, multicast floods.
        ip(&[
            "-n",
            ns,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        ip(&["-n", ns, "link", "set", "br0", "up"])?;
        tracing::debug!(ns, "created lan");
        Ok(lan)
    }

    /// The name of the namespace holding the bridge `br0`.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// Creates a host namespace `tc-<pid>-<n>-<label>` plugged into the
    /// bridge through `eth0`, with the next free address of the /24.
    pub fn add_host(&mut self, label: &str) -> Result<Host> {
        let index = self.hosts.len() + 1;
        ensure!(index < 255, "a /24 LAN holds at most 254 hosts");
        let addr = Ipv4Addr::new(self.prefix[0], self.prefix[1], self.prefix[2], index as u8);
        let ns = ns_name(label);
        ip(&["netns", "add", &ns])?;
        // Registered before configuring, so a failure below still cleans up.
        self.hosts.push(ns.clone());

        let n = next_id();
        let (inner, outer) = (temp_ifname(n, 'a'), temp_ifname(n, 'b'));
        ip(&[
            "link", "add", &inner, "type", "veth", "peer", "name", &outer,
        ])?;
        let moved = ip(&["link", "set", &inner, "netns", &ns])
            .and_then(|()| ip(&["link", "set", &outer, "netns", &self.ns]));
        if let Err(err) = moved {
            // Deleting either end of a veth pair deletes both.
            let _ = ip(&["link", "del", &inner]);
            let _ = ip(&["link", "del", &outer]);
            return Err(err);
        }

        let port = format!("p{index}");
        let bridge_ns = self.ns.as_str();
        ip(&["-n", bridge_ns, "link", "set", &outer, "name", &port])?;
        ip(&["-n", bridge_ns, "link", "set", &port, "master", "br0"])?;
        ip(&["-n", bridge_ns, "link", "set", &port, "up"])?;

        let cidr = format!("{addr}/24");
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&["-n", &ns, "link", "set", &inner, "name", "eth0"])?;
        ip(&["-n", &ns, "link", "set", "eth0", "multicast", "on"])?;
        ip(&["-n", &ns, "addr", "add", &cidr, "dev", "eth0"])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        // Real LAN hosts have a default route that multicast follows; these
        // have none, so route multicast explicitly. Otherwise sockets that
        // join a group on INADDR_ANY fail with ENODEV.
        ip(&["-n", &ns, "route", "add", "224.0.0.0/4", "dev", "eth0"])?;
        tracing::debug!(ns, %addr, "added host");

        Ok(Host {
            ns,
            ip: addr,
            label: label.to_owned(),
            bridge_ns: self.ns.clone(),
            port,
        })
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in self.hosts.iter().rev() {
            delete_ns(ns);
        }
        delete_ns(&self.ns);
    }
}

/// A machine on a [`Lan`]: a namespace with `lo` and `eth0`.
///
/// A plain description; the namespace belongs to the [`Lan`] and disappears
/// when the [`Lan`] is dropped.
#[derive(Debug, Clone)]
pub struct Host {
    /// The namespace name, for `ip netns exec` or `ip -n`.
    pub ns: String,
    /// The address of `eth0`.
    pub ip: Ipv4Addr,
    /// The label given to [`Lan::add_host`].
    pub label: String,
    bridge_ns: String,
    /// This host's port on the bridge (`p<N>`).
    port: String,
}

impl Host {
    /// A command running `program` inside this host's namespace (through
    /// `ip netns exec`, which execs it, so the child's pid is the program's).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns]).arg(program);
        cmd
    }

    /// Plugs (`true`) or pulls (`false`) this host's cable: sets its bridge
    /// port up or down, so `eth0` loses carrier as with a real cable, while
    /// its address and the processes inside stay as they are.
    pub fn set_link(&self, up: bool) -> Result<()> {
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.bridge_ns, "link", "set", &self.port, state])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_ifnames_fit_the_kernel_limit() {
        let name = temp_ifname(u32::MAX, 'a');
        assert!(name.len() <= 15, "{name}");
    }

    #[test]
    fn names_are_unique() {
        assert_ne!(ns_name("x"), ns_name("x"));
    }
}
