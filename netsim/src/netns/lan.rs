//! One layer-2 broadcast domain and the machines plugged into it.
//!
//! A [`Lan`] is a namespace `tc-<pid>-<n>-lan` holding a bridge `br0`.
//! [`Lan::add_host`] creates a namespace `tc-<pid>-<n>-<label>` with a veth
//! `eth0` whose other end is a port `p<N>` of the bridge, address
//! `PREFIX.N/24` (N counts up from the LAN's first address and is never
//! reused), `lo` up, a route for multicast (`224.0.0.0/4 dev eth0`) and, on
//! a LAN with a gateway (a site of an [`super::Internet`]), a default route
//! through it. Multicast is flooded across the bridge (snooping off), so
//! mDNS works between the hosts of a LAN and nowhere else, unless
//! [`Lan::set_multicast_blocked`] filters it at the bridge.
//!
//! This file is the one implementation of "a machine on a bridge": NAT
//! routers and hosts on the WAN are plugged in by [`Lan::plug`] too, and
//! roaming ([`Lan::move_host`]) moves a host's bridge port to another LAN.
//!
//! # Invariants
//! - Nothing is configured in the root namespace: a veth pair is created there
//!   only under unique temporary names (it cannot be called `eth0` there) and
//!   immediately moved into its namespaces, where it is renamed.
//! - Each host namespace is owned by exactly one [`Lan`] at a time (the one
//!   it is plugged into, or for a router, its site's LAN). Dropping a
//!   [`Lan`] kills whatever still runs inside the namespaces it owns and
//!   deletes them, hosts first, then the bridge. Because cleanup lives in
//!   `Drop`, it also runs when a test panics. Construction errors clean up
//!   what was already created.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

use super::sys::{self, delete_ns, ip, next_id, ns_name, temp_ifname};

/// One broadcast domain: a bridge `br0` in its own namespace, and the hosts
/// plugged into it. Dropping it deletes all of its namespaces.
#[derive(Debug)]
pub struct Lan {
    /// The namespace holding the bridge.
    ns: String,
    /// First three octets of the /24, e.g. `10.77.1`.
    prefix: [u8; 3],
    /// The last octet the next plugged-in interface gets.
    next: u16,
    /// The default gateway of hosts on this LAN, if it has one.
    gateway: Option<Ipv4Addr>,
    /// Namespaces this LAN owns, in creation order (deleted before `ns`).
    hosts: Vec<String>,
}

/// Parses a /24 prefix of three octets, e.g. `"10.77.1"`.
pub(super) fn parse_prefix(subnet_prefix: &str) -> Result<[u8; 3]> {
    let octets: Vec<u8> = subnet_prefix
        .split('.')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad subnet prefix {subnet_prefix:?}"))?;
    octets
        .try_into()
        .map_err(|_| anyhow::anyhow!("subnet prefix {subnet_prefix:?} needs three octets"))
}

impl Lan {
    /// Creates an empty LAN for the /24 `subnet_prefix` (three octets, e.g.
    /// `"10.77.1"`). Hosts get `PREFIX.1`, `PREFIX.2`, … in order.
    pub fn new(subnet_prefix: &str) -> Result<Lan> {
        Lan::with_first(subnet_prefix, 1)
    }

    /// Like [`Lan::new`], with the first address `PREFIX.first`.
    pub(super) fn with_first(subnet_prefix: &str, first: u8) -> Result<Lan> {
        let prefix = parse_prefix(subnet_prefix)?;
        sys::ensure_neighbour_capacity()?;
        let ns = ns_name("lan");
        ip(&["netns", "add", &ns])?;
        // From here on, dropping `lan` (also on `?`) deletes the namespace.
        let lan = Lan {
            ns,
            prefix,
            next: first.into(),
            gateway: None,
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
        sys::nft(
            ns,
            "table bridge tc_count {
  chain prerouting {
    type filter hook prerouting priority -300; policy accept;
    ip daddr 224.0.0.0/4 counter
    ip6 daddr ff02::/16 counter
  }
}
",
        )?;
        tracing::debug!(ns, "created lan");
        Ok(lan)
    }

    /// The name of the namespace holding the bridge `br0`.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// The names of every namespace this LAN owns: its hosts' and, last,
    /// the bridge's.
    pub fn namespaces(&self) -> Vec<String> {
        let mut names = self.hosts.clone();
        names.push(self.ns.clone());
        names
    }

    /// Sets the default gateway that hosts added or moved here get.
    pub(super) fn set_gateway(&mut self, gateway: Ipv4Addr) {
        self.gateway = Some(gateway);
    }

    /// Creates a namespace `tc-<pid>-<n>-<label>` owned by this LAN, with
    /// `lo` up and nothing else.
    pub(super) fn add_namespace(&mut self, label: &str) -> Result<String> {
        let ns = ns_name(label);
        ip(&["netns", "add", &ns])?;
        // Registered before configuring, so a failure below still cleans up.
        self.hosts.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Creates a host namespace `tc-<pid>-<n>-<label>` plugged into the
    /// bridge through `eth0`, with the next free address of the /24 (and a
    /// default route through the LAN's gateway, if it has one).
    pub fn add_host(&mut self, label: &str) -> Result<Host> {
        let ns = self.add_namespace(label)?;
        let (ip, port) = self.plug(&ns, "eth0")?;
        host_routes(&ns, self.gateway)?;
        tracing::debug!(ns, %ip, "added host");
        Ok(Host {
            ns,
            ip,
            label: label.to_owned(),
            bridge_ns: self.ns.clone(),
            port,
        })
    }

    /// The next free address and bridge port name.
    fn next_slot(&mut self) -> Result<(Ipv4Addr, String)> {
        ensure!(
            self.next < 255,
            "LAN {}.0/24 has no free address left",
            self.prefix.map(|o| o.to_string()).join(".")
        );
        let index = self.next as u8;
        self.next += 1;
        let [a, b, c] = self.prefix;
        Ok((Ipv4Addr::new(a, b, c, index), format!("p{index}")))
    }

    /// Plugs the existing namespace `ns` into the bridge: a veth whose end in
    /// `ns` is called `ifname` (up, multicast on, the next free address /24)
    /// and whose other end is a new bridge port. Returns the address and the
    /// port's name. Does not change who owns `ns`.
    pub(super) fn plug(&mut self, ns: &str, ifname: &str) -> Result<(Ipv4Addr, String)> {
        let (addr, port) = self.next_slot()?;
        let n = next_id();
        let (inner, outer) = (temp_ifname(n, 'a'), temp_ifname(n, 'b'));
        ip(&[
            "link", "add", &inner, "type", "veth", "peer", "name", &outer,
        ])?;
        let moved = ip(&["link", "set", &inner, "netns", ns])
            .and_then(|()| ip(&["link", "set", &outer, "netns", &self.ns]));
        if let Err(err) = moved {
            // Deleting either end of a veth pair deletes both.
            let _ = ip(&["link", "del", &inner]);
            let _ = ip(&["link", "del", &outer]);
            return Err(err);
        }

        let bridge_ns = self.ns.as_str();
        ip(&["-n", bridge_ns, "link", "set", &outer, "name", &port])?;
        ip(&["-n", bridge_ns, "link", "set", &port, "master", "br0"])?;
        ip(&["-n", bridge_ns, "link", "set", &port, "up"])?;

        ip(&["-n", ns, "link", "set", &inner, "name", ifname])?;
        ip(&["-n", ns, "link", "set", ifname, "multicast", "on"])?;
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            ifname,
        ])?;
        ip(&["-n", ns, "link", "set", ifname, "up"])?;
        Ok((addr, port))
    }

    /// Roaming: unplugs `host` from this LAN and plugs it into `to`, as when
    /// a laptop's cable is moved to another network. The host's namespace,
    /// its `eth0` (same interface, it only loses carrier for a moment) and
    /// the processes inside stay; its bridge port moves to `to`'s bridge,
    /// `eth0` gets `to`'s next free address (the old one is removed) and the
    /// routes are set anew (multicast, and the default route through `to`'s
    /// gateway, if any). `host` is updated; clones of it are stale after.
    pub fn move_host(&mut self, host: &mut Host, to: &mut Lan) -> Result<()> {
        ensure!(
            host.bridge_ns == self.ns,
            "host {} is not plugged into LAN {}",
            host.label,
            self.ns
        );
        ensure!(
            self.ns != to.ns,
            "host {} is already on that LAN",
            host.label
        );
        let position = self
            .hosts
            .iter()
            .position(|ns| *ns == host.ns)
            .with_context(|| format!("host {} is not owned by LAN {}", host.label, self.ns))?;
        let (addr, port) = to.next_slot()?;

        // Renamed first, because `to` may already have a port of that name.
        let moving = temp_ifname(next_id(), 'm');
        ip(&["-n", &self.ns, "link", "set", &host.port, "nomaster"])?;
        ip(&["-n", &self.ns, "link", "set", &host.port, "down"])?;
        ip(&["-n", &self.ns, "link", "set", &host.port, "name", &moving])?;
        ip(&["-n", &self.ns, "link", "set", &moving, "netns", &to.ns])?;
        // The namespace now hangs off `to`; let `to` own (and delete) it.
        let ns = self.hosts.remove(position);
        to.hosts.push(ns);
        host.bridge_ns = to.ns.clone();
        ip(&["-n", &to.ns, "link", "set", &moving, "name", &port])?;
        host.port = port;
        ip(&["-n", &to.ns, "link", "set", &host.port, "master", "br0"])?;

        // Flushing the last address also flushes every route through eth0.
        ip(&["-n", &host.ns, "addr", "flush", "dev", "eth0"])?;
        ip(&[
            "-n",
            &host.ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ])?;
        host.ip = addr;
        // The new gateway may have the old one's address but another MAC.
        ip(&["-n", &host.ns, "neigh", "flush", "dev", "eth0"])?;
        ip(&["-n", &to.ns, "link", "set", &host.port, "up"])?;
        host_routes(&host.ns, to.gateway)?;
        tracing::debug!(ns = host.ns, %addr, lan = to.ns, "moved host");
        Ok(())
    }

    /// Drops (`true`) or again floods (`false`) IP multicast between the
    /// ports of this LAN's bridge: IPv4 `224.0.0.0/4` (so mDNS, and IGMP)
    /// and IPv6 `ff02::/16` except ICMPv6 (so mDNS over IPv6, but not
    /// neighbour discovery), with an nftables `bridge` table in the bridge's
    /// namespace. Unicast and broadcast (ARP) still pass, as on a Wi-Fi
    /// network with "multicast isolation".
    pub fn set_multicast_blocked(&self, blocked: bool) -> Result<()> {
        let rules = "ip daddr 224.0.0.0/4 drop
    ip6 daddr ff02::/16 meta l4proto != ipv6-icmp drop";
        bridge_filter(&self.ns, "tc_mcast", blocked.then_some(rules))
    }

    /// Makes this LAN lose `percent` (0..=100) of the UDP packets crossing
    /// its bridge, each packet independently (an nftables `numgen random`
    /// rule on the bridge's forward hook, in the bridge's own namespace):
    /// host to host and host to router alike, so a gateway's packets to
    /// the WAN cross the loss too. 0 removes the rule. Only UDP, which is
    /// all tincan sends (QUIC, mDNS): ARP and neighbour discovery pass, so
    /// the link stays up, as a lossy Wi-Fi does.
    pub fn set_loss(&self, percent: u8) -> Result<()> {
        ensure!(percent <= 100, "loss is a percentage, got {percent}");
        // `numgen random mod 100` is 0..=99, so `< 100` does not parse.
        let rule = match percent {
            0 => None,
            100 => Some("meta l4proto udp counter drop".to_string()),
            p => Some(format!(
                "meta l4proto udp numgen random mod 100 < {p} counter drop"
            )),
        };
        bridge_filter(&self.ns, "tc_loss", rule.as_deref())
    }

    /// UDP packets [`Lan::set_loss`] dropped since it was last set (0
    /// without loss): proof that a lossy run really lost packets.
    pub fn lost_packets(&self) -> Result<u64> {
        let Ok(rules) = sys::in_ns(&self.ns, "nft", &["list", "table", "bridge", "tc_loss"]) else {
            return Ok(0);
        };
        Ok(rules
            .split("packets ")
            .skip(1)
            .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .sum())
    }

    /// Packets, and multicast packets among them, that the hosts have sent
    /// into this LAN's bridge so far (summed over its ports; multicast is
    /// counted by an nftables rule at the bridge's prerouting hook, once per
    /// packet sent, installed when the LAN is made).
    pub fn bridge_counters(&self) -> Result<BridgeCounters> {
        let out = sys::in_ns(&self.ns, "ip", &["-s", "-o", "link", "show"])?;
        let mut total = BridgeCounters::default();
        let rules = sys::in_ns(&self.ns, "nft", &["list", "table", "bridge", "tc_count"])?;
        total.multicast = rules
            .split("packets ")
            .skip(1)
            .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        for line in out.lines() {
            // `7: p3@if2: <...> ... RX:  bytes packets ... \    1234 56 ...`
            let Some(name) = line.split(':').nth(1).map(str::trim) else {
                continue;
            };
            if !name.starts_with('p') {
                continue;
            }
            let Some(rx) = line.split("RX:").nth(1) else {
                continue;
            };
            // After the header words comes `\` and the counters.
            // `bytes packets errors dropped missed mcast`
            let numbers: Vec<u64> = rx
                .split_whitespace()
                .skip_while(|w| w.parse::<u64>().is_err())
                .take(2)
                .filter_map(|w| w.parse().ok())
                .collect();
            if let [bytes, packets, ..] = numbers[..] {
                total.bytes += bytes;
                total.packets += packets;
            }
        }
        Ok(total)
    }
}

/// What the hosts of a [`Lan`] sent into its bridge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BridgeCounters {
    /// All packets.
    pub packets: u64,
    /// Their bytes (Ethernet frames).
    pub bytes: u64,
    /// Multicast packets among them (mDNS, neighbour discovery).
    pub multicast: u64,
}

/// Replaces the nftables `bridge` table `table` in namespace `ns` with one
/// whose forward chain applies `rules` (one per line), or removes it when
/// `rules` is `None`. Idempotent either way.
fn bridge_filter(ns: &str, table: &str, rules: Option<&str>) -> Result<()> {
    let mut script = format!("table bridge {table} {{}}\ndelete table bridge {table}\n");
    if let Some(rules) = rules {
        script.push_str(&format!(
            "table bridge {table} {{
  chain forward {{
    type filter hook forward priority 0; policy accept;
    {rules}
  }}
}}
"
        ));
    }
    sys::nft(ns, &script)
}

/// Sets a host's routes on `eth0`: multicast, and the default route through
/// `gateway` if there is one. Real LAN hosts have a default route that
/// multicast follows; without a gateway, multicast needs its own route, or
/// sockets that join a group on INADDR_ANY fail with ENODEV.
fn host_routes(ns: &str, gateway: Option<Ipv4Addr>) -> Result<()> {
    ip(&["-n", ns, "route", "replace", "224.0.0.0/4", "dev", "eth0"])?;
    if let Some(gateway) = gateway {
        let gateway = gateway.to_string();
        ip(&[
            "-n", ns, "route", "replace", "default", "via", &gateway, "dev", "eth0",
        ])?;
    }
    Ok(())
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
/// A plain description; the namespace belongs to a [`Lan`] and disappears
/// when that [`Lan`] (or the [`super::Internet`] holding it) is dropped.
/// Roaming updates the host it is given; clones made before are stale.
#[derive(Debug, Clone)]
pub struct Host {
    /// The namespace name, for `ip netns exec` or `ip -n`.
    pub ns: String,
    /// The address of `eth0` (updated by a move).
    pub ip: Ipv4Addr,
    /// The label given to [`Lan::add_host`].
    pub label: String,
    /// The namespace of the bridge this host is plugged into.
    bridge_ns: String,
    /// This host's port on the bridge (`p<N>`).
    port: String,
}

impl Host {
    /// Describes the namespace `ns`, plugged into the bridge in `bridge_ns`
    /// through `port`, with address `ip`.
    pub(super) fn on_bridge(
        ns: String,
        ip: Ipv4Addr,
        label: String,
        bridge_ns: &str,
        port: String,
    ) -> Host {
        Host {
            ns,
            ip,
            label,
            bridge_ns: bridge_ns.to_owned(),
            port,
        }
    }

    /// The namespace of the bridge this host is plugged into.
    pub(super) fn bridge_ns(&self) -> &str {
        &self.bridge_ns
    }

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

    /// Drops (`true`) or again passes (`false`) IPv4 multicast (so mDNS
    /// over IPv4; mDNS over IPv6 still passes) to and from this host only,
    /// at its bridge port.
    pub fn set_ipv4_multicast_blocked(&self, blocked: bool) -> Result<()> {
        let port = &self.port;
        let rules = format!(
            "iifname {port} ip daddr 224.0.0.0/4 drop
    oifname {port} ip daddr 224.0.0.0/4 drop"
        );
        let table = format!("tc_mc4_{port}");
        bridge_filter(&self.bridge_ns, &table, blocked.then_some(rules.as_str()))
    }

    /// The IPv4 address `eth0` has now, read from the namespace (unlike
    /// [`Host::ip`], also right for a stale clone after a move).
    pub fn current_ip(&self) -> Result<Ipv4Addr> {
        let out = sys::in_ns(&self.ns, "ip", &["-4", "-o", "addr", "show", "dev", "eth0"])?;
        // `2: eth0    inet 10.1.1.2/24 brd ... scope global eth0`
        let Some(cidr) = out
            .split_whitespace()
            .skip_while(|word| *word != "inet")
            .nth(1)
        else {
            bail!("{} has no IPv4 address on eth0", self.label);
        };
        let addr = cidr.split('/').next().unwrap_or(cidr);
        addr.parse()
            .with_context(|| format!("bad address {addr:?} on {}", self.label))
    }

    /// Makes this host IPv6-only: removes every IPv4 address from `eth0`
    /// (the IPv4 routes through it go with them; [`Host::ip`] keeps the old
    /// address) and returns its IPv6 link-local address once duplicate
    /// address detection has passed, so a program started next can bind and
    /// send from it. The kernel configures that address by itself when
    /// `eth0` comes up; this only waits (a bounded poll) for it to leave
    /// the "tentative" state.
    pub fn remove_ipv4(&self) -> Result<Ipv6Addr> {
        ip(&["-n", &self.ns, "-4", "addr", "flush", "dev", "eth0"])?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let out = sys::in_ns(
                &self.ns,
                "ip",
                &["-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"],
            )?;
            // `2: eth0    inet6 fe80::1/64 scope link tentative ...`
            if !out.contains("tentative") {
                if let Some(cidr) = out
                    .split_whitespace()
                    .skip_while(|word| *word != "inet6")
                    .nth(1)
                {
                    let addr = cidr.split('/').next().unwrap_or(cidr);
                    return addr
                        .parse()
                        .with_context(|| format!("bad address {addr:?} on {}", self.label));
                }
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "{} has no usable IPv6 link-local address on eth0: {out:?}",
                self.label
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Makes this host IPv4-only, as a desktop whose admin turned IPv6
    /// off: sets `disable_ipv6` for every interface of its namespace
    /// (which also removes `eth0`'s IPv6 addresses). Sockets of the IPv6
    /// family can still be made and bound there; they carry IPv4 only.
    pub fn disable_ipv6(&self) -> Result<()> {
        for conf in ["all", "default", "eth0"] {
            sys::sysctl(&self.ns, &format!("net/ipv6/conf/{conf}/disable_ipv6"), "1")?;
        }
        Ok(())
    }

    /// The ids of the processes running in this host's namespace.
    pub fn pids(&self) -> Result<Vec<u32>> {
        sys::netns_pids(&self.ns)
    }
}
