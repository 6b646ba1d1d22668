//! Probable LAN neighbours, from what devices registered with the relay.
//!
//! Kept apart because it is a heuristic, not a rule: two devices behind
//! the same public IP with a shared LAN prefix are probably on one LAN, and
//! each is told of the other so that they can try a direct link where
//! multicast does not carry. Nothing else in the registry guesses.

use std::net::{IpAddr, SocketAddr};

use tincan_core::route::Neighbour;
use tincan_core::{DeviceId, OrgId};

use super::{DirectConn, Registry};

/// Whether two addresses share a LAN prefix (IPv4 /24, IPv6 /64).
pub fn same_lan_prefix(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets()[..3] == b.octets()[..3],
        (IpAddr::V6(a), IpAddr::V6(b)) => a.octets()[..8] == b.octets()[..8],
        _ => false,
    }
}

impl Registry {
    /// Probable LAN neighbours of `device`: registered devices of the same
    /// organisation from the same public IP sharing a LAN prefix. Returns
    /// what to tell each side: `(recipient, its connection, neighbours)`.
    pub fn neighbours(
        &self,
        org: &OrgId,
        device: &DeviceId,
    ) -> Vec<(DeviceId, quinn::Connection, Vec<Neighbour>)> {
        let Some(state) = self.orgs.get(org) else {
            return Vec::new();
        };
        let Some(me) = state.direct.get(device) else {
            return Vec::new();
        };
        let shares = |a: &[SocketAddr], b: &[SocketAddr]| {
            a.iter()
                .any(|x| b.iter().any(|y| same_lan_prefix(x.ip(), y.ip())))
        };
        let others: Vec<(&DeviceId, &DirectConn)> = state
            .direct
            .iter()
            .filter(|(d, c)| {
                *d != device
                    && c.remote.ip() == me.remote.ip()
                    && shares(&me.lan_addrs, &c.lan_addrs)
            })
            .collect();
        if others.is_empty() {
            return Vec::new();
        }
        let mut out = vec![(
            *device,
            me.conn.clone(),
            others
                .iter()
                .map(|(d, c)| Neighbour {
                    device: **d,
                    addrs: c.lan_addrs.clone(),
                })
                .collect(),
        )];
        for (d, c) in others {
            out.push((
                *d,
                c.conn.clone(),
                vec![Neighbour {
                    device: *device,
                    addrs: me.lan_addrs.clone(),
                }],
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_prefixes() {
        let a: IpAddr = "192.168.1.10".parse().expect("ip");
        let b: IpAddr = "192.168.1.200".parse().expect("ip");
        let c: IpAddr = "192.168.2.10".parse().expect("ip");
        assert!(same_lan_prefix(a, b));
        assert!(!same_lan_prefix(a, c));
        let x: IpAddr = "fd00:1:2:3::1".parse().expect("ip");
        let y: IpAddr = "fd00:1:2:3:ffff::9".parse().expect("ip");
        let z: IpAddr = "fd00:1:2:4::1".parse().expect("ip");
        assert!(same_lan_prefix(x, y));
        assert!(!same_lan_prefix(x, z));
        assert!(!same_lan_prefix(a, x));
    }
}
