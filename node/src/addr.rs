//! Socket addresses as the node keeps, compares, orders and shows them.
//!
//! The node listens on one dual-stack socket (`[::]:PORT` with
//! `IPV6_V6ONLY` off, [`crate::quic::bind_dual_stack`]), on which the
//! kernel reports an IPv4 peer as an IPv4-mapped IPv6 address
//! (`[::ffff:10.1.2.3]:47070`). [`canonical`] turns those back into IPv4
//! wherever an address is stored, compared or printed, so the peer book,
//! dial state and what users see do not depend on how the socket was bound.
//!
//! An IPv6 link-local address (`fe80::/10`) means something only together
//! with the interface it was seen on (its scope id): without it the kernel
//! cannot route it and quinn refuses it ("invalid remote address").

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

/// `addr` with an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) shown as the
/// IPv4 address it stands for; any other address unchanged (an IPv6
/// address keeps its scope id).
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// Whether `ip` is an IPv6 unicast link-local address (`fe80::/10`).
pub fn is_link_local(ip: &Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// How early to dial `addr` among one device's addresses (lower first):
/// IPv4, the common office LAN; then routable IPv6 (global, unique local);
/// then IPv6 link-local, which reaches the device on one interface only.
pub fn dial_rank(addr: &SocketAddr) -> u8 {
    match canonical(*addr) {
        SocketAddr::V4(_) => 0,
        SocketAddr::V6(v6) if is_link_local(v6.ip()) => 2,
        SocketAddr::V6(_) => 1,
    }
}

/// Sorts one device's addresses into dial order ([`dial_rank`]), then by
/// address, so the order does not depend on where they came from (mDNS
/// hands them over as a set).
pub fn sort_for_dial(addrs: &mut [SocketAddr]) {
    addrs.sort_by_key(|a| (dial_rank(a), *a));
}

/// An IPv6 address on `port` as seen on the interface with index `scope`
/// (0: unknown); `None` for a link-local address without its interface,
/// which cannot be dialled.
pub fn ipv6_socket_addr(ip: Ipv6Addr, scope: u32, port: u16) -> Option<SocketAddr> {
    if is_link_local(&ip) {
        (scope != 0).then(|| SocketAddrV6::new(ip, port, 0, scope).into())
    } else {
        // Only link-local addresses need (and keep) a scope.
        Some(SocketAddrV6::new(ip, port, 0, 0).into())
    }
}

/// The one address of a device to dial now, from its addresses in dial
/// order: none while a dial to any of them is `running`, else the first
/// one that is `ready` (not backing off). So a device announced on both
/// families (or on several addresses) is dialled once, not once per
/// address, and the next address is tried once the one before failed.
pub fn next_dial(
    addrs: &[SocketAddr],
    running: impl Fn(&SocketAddr) -> bool,
    ready: impl Fn(&SocketAddr) -> bool,
) -> Option<SocketAddr> {
    if addrs.iter().any(running) {
        return None;
    }
    addrs.iter().copied().find(ready)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(text: &str) -> SocketAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn ipv4_mapped_addresses_become_ipv4() {
        assert_eq!(
            canonical(sa("[::ffff:10.1.2.3]:47070")),
            sa("10.1.2.3:47070")
        );
        assert_eq!(canonical(sa("10.1.2.3:7000")), sa("10.1.2.3:7000"));
        assert_eq!(
            canonical(sa("[2001:db8::1]:7000")),
            sa("[2001:db8::1]:7000")
        );
        // IPv4-compatible (`::a.b.c.d`, deprecated) is not IPv4-mapped.
        assert_eq!(canonical(sa("[::10.1.2.3]:7000")), sa("[::10.1.2.3]:7000"));
    }

    #[test]
    fn canonical_keeps_the_scope_of_a_link_local_address() {
        let scoped = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 7000, 0, 3));
        assert_eq!(canonical(scoped), scoped);
        assert_eq!(canonical(scoped).to_string(), "[fe80::1%3]:7000");
    }

    #[test]
    fn link_local_is_fe80_slash_10() {
        for ip in ["fe80::1", "fe80::abcd:1234", "febf::1"] {
            assert!(is_link_local(&ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "fec0::1",
            "fd00::1",
            "2001:db8::1",
            "::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_link_local(&ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn dial_order_is_ipv4_then_routable_ipv6_then_link_local() {
        let mut addrs = vec![
            sa("[fe80::2%2]:7000"),
            sa("[fd00::5]:7000"),
            sa("10.0.0.9:7000"),
            sa("[2001:db8::1]:7000"),
            sa("10.0.0.2:7000"),
        ];
        sort_for_dial(&mut addrs);
        let shown: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "10.0.0.2:7000",
                "10.0.0.9:7000",
                "[2001:db8::1]:7000",
                "[fd00::5]:7000",
                "[fe80::2%2]:7000",
            ]
        );
        assert_eq!(dial_rank(&sa("[::ffff:10.0.0.2]:7000")), 0);
    }

    #[test]
    fn a_link_local_address_is_dialled_with_its_interface_or_not_at_all() {
        let ll: Ipv6Addr = "fe80::1".parse().unwrap();
        let dial = ipv6_socket_addr(ll, 4, 7000).expect("scoped");
        assert_eq!(dial.to_string(), "[fe80::1%4]:7000");
        assert_eq!(ipv6_socket_addr(ll, 0, 7000), None);
        let global: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            ipv6_socket_addr(global, 4, 7000),
            Some(sa("[2001:db8::1]:7000"))
        );
    }

    #[test]
    fn one_dial_per_device_at_a_time_best_address_first() {
        let addrs = [sa("10.0.0.2:7000"), sa("[fe80::2%2]:7000")];
        let none = |_: &SocketAddr| false;
        let all = |_: &SocketAddr| true;
        assert_eq!(next_dial(&addrs, none, all), Some(addrs[0]));
        // A dial to either address runs: no second one to the same device.
        assert_eq!(next_dial(&addrs, |a| *a == addrs[0], all), None);
        assert_eq!(next_dial(&addrs, |a| *a == addrs[1], all), None);
        // The IPv4 address failed and backs off: try link-local next.
        assert_eq!(next_dial(&addrs, none, |a| *a != addrs[0]), Some(addrs[1]));
        assert_eq!(next_dial(&addrs, none, none), None);
        assert_eq!(next_dial(&[], none, all), None);
    }
}
