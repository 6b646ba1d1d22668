//! Several LANs behind NAT routers on a shared WAN: the topology for
//! end-to-end tests of branches, relays and roaming.
//!
//! An [`Internet`] is a WAN [`Lan`] ("the internet", a public /24) plus
//! sites. A site is a [`Lan`] of its own (its own bridge, so two sites may
//! use the same private prefix) and a router namespace `tc-<pid>-<n>-<label>-gw`
//! with `lan` on the site's bridge (`PREFIX.1`, the hosts' default gateway)
//! and `wan` on the WAN bridge (the site's public address). Hosts directly on
//! the WAN (a relay) and the routers' `wan` get `WAN.10`, `WAN.11`, … in the
//! order they are added.
//!
//! # Invariants
//! - A router forwards (`ip_forward=1`), masquerades everything leaving on
//!   `wan`, and drops every packet arriving on `wan` that does not belong to
//!   a connection started from inside (`ct state new`): no port forwarding,
//!   and nothing reaches the router itself from outside either. Dropping new
//!   inbound packets before conntrack confirms them is also what makes UDP
//!   hole punching reliable (a peer's early packet creates no entry that
//!   would make the router remap the port).
//! - Impairments live only in the router's namespace and on the router's
//!   port of the WAN bridge, each in its own nftables table or qdisc, so
//!   setting one again replaces it and 0 / `None` removes it.
//! - The [`Internet`] owns every namespace it creates (through its
//!   [`Lan`]s); dropping it kills every process inside them and deletes
//!   them, also on panic.

use std::net::Ipv4Addr;

use anyhow::{bail, ensure, Context, Result};

use super::lan::{Host, Lan};
use super::sys::{self, ip};

/// A site of an [`Internet`], as returned by [`Internet::add_site`]. Only
/// meaningful for the [`Internet`] that returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SiteId(usize);

/// One site: its LAN (which owns the router's namespace) and its router.
#[derive(Debug)]
struct Site {
    lan: Lan,
    /// The router, described as a host of the site's LAN (`ip` = gateway).
    router: Host,
    /// The router's `wan` address.
    public_ip: Ipv4Addr,
    /// The router's port on the WAN bridge.
    wan_port: String,
}

/// A WAN segment with hosts on it and NATed sites hanging off it. Dropping it
/// deletes everything it created.
#[derive(Debug)]
pub struct Internet {
    /// Dropped before `wan`: hosts and routers go before the WAN bridge.
    sites: Vec<Site>,
    wan: Lan,
}

/// The router's rules: masquerade outbound, refuse new inbound.
const ROUTER_RULES: &str = "table ip tc_nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname \"wan\" masquerade
  }
  chain prerouting {
    type filter hook prerouting priority filter; policy accept;
    iifname \"wan\" ct state new drop
  }
}
";

impl Internet {
    /// Creates the WAN: a bridge for the public /24 `wan_prefix` (three
    /// octets, e.g. `"198.51.100"`), with no hosts and no sites yet. Fails if
    /// `nft` (nftables) is missing, because every router needs it.
    pub fn new(wan_prefix: &str) -> Result<Internet> {
        let wan = Lan::with_first(wan_prefix, 10)?;
        sys::in_ns(wan.ns(), "nft", &["list", "ruleset"])
            .context("nftables is needed for NAT routers")?;
        Ok(Internet {
            sites: Vec::new(),
            wan,
        })
    }

    /// Adds a host directly on the WAN (a relay, a server): `eth0` with the
    /// next public address, no NAT, no default route (the WAN is one /24).
    pub fn add_host(&mut self, label: &str) -> Result<Host> {
        self.wan.add_host(label)
    }

    /// Adds a site: a new LAN `subnet_prefix.0/24` behind a NAT router whose
    /// `lan` is `subnet_prefix.1` and whose `wan` gets the next public
    /// address. Prefixes may repeat across sites.
    pub fn add_site(&mut self, label: &str, subnet_prefix: &str) -> Result<SiteId> {
        let mut lan = Lan::new(subnet_prefix)?;
        // From here on, dropping `lan` (also on `?`) deletes the router and
        // with it its veth into the WAN bridge.
        let router_ns = lan.add_namespace(&format!("{label}-gw"))?;
        let (gateway, port) = lan.plug(&router_ns, "lan")?;
        lan.set_gateway(gateway);
        let (public_ip, wan_port) = self.wan.plug(&router_ns, "wan")?;
        sys::sysctl(&router_ns, "net/ipv4/ip_forward", "1")?;
        sys::nft(&router_ns, ROUTER_RULES)?;
        tracing::debug!(router_ns, %gateway, %public_ip, "added site");
        let router = Host::on_bridge(router_ns, gateway, format!("{label}-gw"), lan.ns(), port);
        self.sites.push(Site {
            lan,
            router,
            public_ip,
            wan_port,
        });
        Ok(SiteId(self.sites.len() - 1))
    }

    fn site(&self, site: SiteId) -> Result<&Site> {
        self.sites
            .get(site.0)
            .with_context(|| format!("no site {site:?} in this internet"))
    }

    /// Adds a host to `site`'s LAN: `eth0` with the next free private
    /// address, the default route through the router, multicast on `eth0`
    /// (mDNS works within the site, as on a plain [`Lan`]).
    pub fn add_host_to(&mut self, site: SiteId, label: &str) -> Result<Host> {
        self.site(site)?;
        self.sites[site.0].lan.add_host(label)
    }

    /// Roaming: replugs `host` (on the WAN or on any site) into `to`'s LAN.
    /// Its namespace, `eth0` and running processes stay; it gets a new
    /// address from `to` (written to `host.ip`) and a default route through
    /// `to`'s router. See [`Lan::move_host`].
    pub fn move_host(&mut self, host: &mut Host, to: SiteId) -> Result<()> {
        self.site(to)?;
        if self.sites.iter().any(|s| s.router.ns == host.ns) {
            bail!("{} is a router; routers cannot move", host.label);
        }
        let from = self
            .sites
            .iter()
            .position(|s| s.lan.ns() == host.bridge_ns());
        match from {
            None => {
                ensure!(
                    host.bridge_ns() == self.wan.ns(),
                    "{} is not on this internet",
                    host.label
                );
                self.wan.move_host(host, &mut self.sites[to.0].lan)
            }
            Some(from) => {
                ensure!(from != to.0, "{} is already on that site", host.label);
                let (low, high) = self.sites.split_at_mut(from.max(to.0));
                let (from_site, to_site) = if from < to.0 {
                    (&mut low[from], &mut high[0])
                } else {
                    (&mut high[0], &mut low[to.0])
                };
                from_site.lan.move_host(host, &mut to_site.lan)
            }
        }
    }

    /// Drops (`true`) or again floods (`false`) multicast between the hosts
    /// of `site`'s LAN (see [`Lan::set_multicast_blocked`]).
    pub fn set_multicast_blocked(&self, site: SiteId, blocked: bool) -> Result<()> {
        self.site(site)?.lan.set_multicast_blocked(blocked)
    }

    /// Makes `site`'s LAN lose `percent` of its UDP packets (see
    /// [`Lan::set_loss`]); 0 removes the loss.
    pub fn set_lan_loss(&self, site: SiteId, percent: u8) -> Result<()> {
        self.site(site)?.lan.set_loss(percent)
    }

    /// UDP packets `site`'s LAN loss dropped (see [`Lan::lost_packets`]).
    pub fn lan_lost_packets(&self, site: SiteId) -> Result<u64> {
        self.site(site)?.lan.lost_packets()
    }

    /// The byte counters `(rx, tx)` of `site`'s router `wan` interface: what
    /// the site downloaded and uploaded so far, headers included.
    pub fn wan_bytes(&self, site: SiteId) -> Result<(u64, u64)> {
        let ns = &self.site(site)?.router.ns;
        let read = |counter: &str| -> Result<u64> {
            let path = format!("/sys/class/net/wan/statistics/{counter}");
            let text = sys::in_ns(ns, "cat", &[&path])?;
            text.trim()
                .parse()
                .with_context(|| format!("bad counter {text:?} in {path}"))
        };
        Ok((read("rx_bytes")?, read("tx_bytes")?))
    }

    /// Makes `site`'s WAN link lose `percent` of the IP packets (0..=100) in
    /// each direction, independently, with nftables `numgen random` rules on
    /// the router's `wan`; 0 removes the rules. (`tc netem` is not available
    /// on these kernels.)
    pub fn set_wan_loss(&self, site: SiteId, percent: u8) -> Result<()> {
        ensure!(percent <= 100, "loss is a percentage, got {percent}");
        let ns = &self.site(site)?.router.ns;
        let mut script = String::from("table ip tc_loss {}\ndelete table ip tc_loss\n");
        if percent > 0 {
            // `numgen random mod 100` is 0..=99, so `< 100` does not parse.
            let chance = if percent == 100 {
                String::new()
            } else {
                format!("numgen random mod 100 < {percent} ")
            };
            // Inbound before conntrack (raw), outbound after NAT.
            script.push_str(&format!(
                "table ip tc_loss {{
  chain ingress {{
    type filter hook prerouting priority raw; policy accept;
    iifname \"wan\" {chance}drop
  }}
  chain egress {{
    type filter hook postrouting priority 300; policy accept;
    oifname \"wan\" {chance}drop
  }}
}}
"
            ));
        }
        sys::nft(ns, &script)
    }

    /// Limits `site`'s WAN link to `rate` in each direction (a `tc` rate such
    /// as `"10mbit"`, `"512kbit"`, `"1mbps"`) with a `tbf` qdisc on the
    /// router's `wan` (upload) and on its port of the WAN bridge (download);
    /// `None` removes both.
    pub fn set_wan_rate(&self, site: SiteId, rate: Option<&str>) -> Result<()> {
        let site = self.site(site)?;
        let ends = [
            (site.router.ns.as_str(), "wan"),
            (self.wan.ns(), site.wan_port.as_str()),
        ];
        let Some(rate) = rate else {
            for (ns, dev) in ends {
                // Fails when there is no tbf, which is what we want anyway.
                let _ = tc(ns, &["qdisc", "del", "dev", dev, "root"]);
            }
            return Ok(());
        };
        let bits = parse_rate(rate)?;
        // At least 10 ms worth of bytes (and a few packets), so the bucket
        // can hold what arrives between two timer ticks.
        let burst = (bits / 8 / 100).max(4 * 1514).to_string();
        let bits = format!("{bits}bit");
        for (ns, dev) in ends {
            tc(
                ns,
                &[
                    "qdisc", "replace", "dev", dev, "root", "tbf", "rate", &bits, "burst", &burst,
                    "latency", "50ms",
                ],
            )?;
        }
        Ok(())
    }

    /// Plugs (`true`) or pulls (`false`) `site`'s WAN cable (the router's port
    /// on the WAN bridge): the whole site goes offline, its LAN stays up.
    pub fn set_wan_link(&self, site: SiteId, up: bool) -> Result<()> {
        let port = &self.site(site)?.wan_port;
        let state = if up { "up" } else { "down" };
        ip(&["-n", self.wan.ns(), "link", "set", port, state])
    }

    /// `site`'s public address (its router's `wan`), which its hosts'
    /// traffic carries as source on the WAN.
    pub fn public_ip(&self, site: SiteId) -> Result<Ipv4Addr> {
        Ok(self.site(site)?.public_ip)
    }

    /// `site`'s router, as a host of its LAN: `ip` is the gateway
    /// (`PREFIX.1`, on interface `lan`; `wan` is the other one).
    /// [`Host::command`] runs programs in the router (e.g. `tcpdump`).
    pub fn router(&self, site: SiteId) -> Result<&Host> {
        Ok(&self.site(site)?.router)
    }

    /// `site`'s LAN.
    pub fn site_lan(&self, site: SiteId) -> Result<&Lan> {
        Ok(&self.site(site)?.lan)
    }

    /// The WAN segment.
    pub fn wan(&self) -> &Lan {
        &self.wan
    }

    /// The names of every namespace this internet owns (hosts, routers,
    /// bridges), e.g. to check they are gone after a drop.
    pub fn namespaces(&self) -> Vec<String> {
        let mut names: Vec<String> = self.sites.iter().flat_map(|s| s.lan.namespaces()).collect();
        names.extend(self.wan.namespaces());
        names
    }
}

/// Runs `tc ARGS...` inside namespace `ns`.
fn tc(ns: &str, args: &[&str]) -> Result<()> {
    let mut full = vec!["-n", ns];
    full.extend_from_slice(args);
    sys::tc(&full)
}

/// Parses a `tc` rate (`bit`, `kbit`, `mbit`, `gbit`, or bytes per second
/// with `bps`, `kbps`, `mbps`, `gbps`; a bare number is bits) into bits per
/// second.
fn parse_rate(rate: &str) -> Result<u64> {
    let lower = rate.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    let number: f64 = number
        .parse()
        .with_context(|| format!("bad rate {rate:?}"))?;
    let factor = match unit {
        "" | "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "bps" => 8.0,
        "kbps" => 8e3,
        "mbps" => 8e6,
        "gbps" => 8e9,
        _ => bail!("bad rate unit in {rate:?}"),
    };
    let bits = (number * factor).round();
    ensure!(bits >= 8.0, "rate {rate:?} is too low");
    Ok(bits as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn rates_parse_to_bits() {
        assert_eq!(parse_rate("10mbit").unwrap(), 10_000_000);
        assert_eq!(parse_rate("512kbit").unwrap(), 512_000);
        assert_eq!(parse_rate("1mbps").unwrap(), 8_000_000);
        assert_eq!(parse_rate("1.5Mbit").unwrap(), 1_500_000);
        assert_eq!(parse_rate("64000").unwrap(), 64_000);
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("10 parsecs").is_err());
    }
}
