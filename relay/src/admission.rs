//! Admission of connection attempts, decided before any crypto runs: what
//! a stranger on the internet can make the relay spend.
//!
//! # Rules, in order
//! 1. Above [`RelayConfig::retry_above`] unregistered connections, an
//!    attempt from an address QUIC has not validated gets a stateless
//!    Retry (RFC 9000 §8.1.2): the relay keeps no state for it, and a
//!    sender of spoofed addresses never comes back.
//! 2. At [`RelayConfig::max_handshakes`] unregistered connections (TLS
//!    handshake or waiting for `Register`), further attempts are refused
//!    until some register or fail, so registered devices keep the CPU.
//! 3. Each address (IPv4 address, IPv6 /64: [`flood_key`]) has a token
//!    bucket of [`RelayConfig::conn_rate_per_ip`] attempts per second.
//! 4. Each address has at most [`RelayConfig::max_conns_per_ip`] open
//!    connections (registered or not).
//!
//! Registered devices are never judged again: a flood delays only new
//! connections. The state here is bounded: counters go with their
//! connections, and idle (refilled) buckets are dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::RelayConfig;
use crate::router::TokenBucket;

/// Addresses with a bucket beyond which refilled ones are dropped.
const MAX_BUCKETS: usize = 4096;
/// Least time between two sweeps of refilled buckets.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// What to do with a connection attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead with the handshake (a slot was taken: see
    /// [`Admission::registered`] and [`Admission::closed`]).
    Accept,
    /// Answer with a stateless Retry (address validation).
    Retry,
    /// Refuse; the reason is the metric label.
    Refuse(&'static str),
}

/// The admission state of a running relay.
#[derive(Debug)]
pub struct Admission {
    /// Open connections per address.
    open: HashMap<IpAddr, usize>,
    /// Attempt rates per address.
    buckets: HashMap<IpAddr, TokenBucket>,
    /// Connections accepted and not registered (nor closed) yet.
    pending: usize,
    last_sweep: Instant,
}

/// The unit of the per-address limits: the IPv4 address, or the IPv6 /64
/// (one host usually owns a whole /64).
pub fn flood_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::V6(octets.into())
        }
        v4 => v4,
    }
}

impl Admission {
    /// Nothing admitted yet.
    pub fn new(now: Instant) -> Self {
        Self {
            open: HashMap::new(),
            buckets: HashMap::new(),
            pending: 0,
            last_sweep: now,
        }
    }

    /// Connections accepted and not registered yet.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Judges an attempt from `ip` (already a [`flood_key`]); `validated`
    /// says whether QUIC validated its address (it came back with a Retry
    /// token).
    pub fn judge(
        &mut self,
        config: &RelayConfig,
        ip: IpAddr,
        validated: bool,
        now: Instant,
    ) -> Verdict {
        if !validated && self.pending >= config.retry_above {
            return Verdict::Retry;
        }
        if self.pending >= config.max_handshakes {
            return Verdict::Refuse("handshake_cap");
        }
        self.sweep(config.conn_rate_per_ip, now);
        let rate = config.conn_rate_per_ip;
        let allowed = self
            .buckets
            .entry(ip)
            .or_insert_with(|| TokenBucket::new(rate, now))
            .take(rate, now);
        if !allowed {
            return Verdict::Refuse("ip_rate");
        }
        let open = self.open.entry(ip).or_insert(0);
        if *open >= config.max_conns_per_ip {
            return Verdict::Refuse("per_ip_limit");
        }
        *open += 1;
        self.pending += 1;
        Verdict::Accept
    }

    /// An accepted connection registered: it no longer counts as pending.
    pub fn registered(&mut self) {
        self.pending = self.pending.saturating_sub(1);
    }

    /// An accepted connection from `ip` ended; `registered` says whether
    /// [`Self::registered`] was called for it.
    pub fn closed(&mut self, ip: IpAddr, registered: bool) {
        if !registered {
            self.registered();
        }
        if let Some(n) = self.open.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.open.remove(&ip);
            }
        }
    }

    /// Drops the buckets that refilled (their address went quiet), at
    /// most once a second and only when there are many.
    fn sweep(&mut self, rate: u32, now: Instant) {
        if self.buckets.len() < MAX_BUCKETS
            || now.saturating_duration_since(self.last_sweep) < SWEEP_EVERY
        {
            return;
        }
        self.last_sweep = now;
        self.buckets.retain(|_, b| !b.is_full(rate, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn config() -> RelayConfig {
        let mut c = RelayConfig::new(
            crate::RelayHome::new("/nonexistent"),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            Vec::new(),
        );
        c.retry_above = 2;
        c.max_handshakes = 4;
        c.conn_rate_per_ip = 3;
        c.max_conns_per_ip = 5;
        c
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    #[test]
    fn unvalidated_attempts_are_retried_under_load_and_the_cap_refuses() {
        let c = config();
        let t = Instant::now();
        let mut a = Admission::new(t);
        assert_eq!(a.judge(&c, ip(1), false, t), Verdict::Accept);
        assert_eq!(a.judge(&c, ip(2), false, t), Verdict::Accept);
        // Two pending: unvalidated addresses must prove themselves first.
        assert_eq!(a.judge(&c, ip(3), false, t), Verdict::Retry);
        assert_eq!(a.judge(&c, ip(3), true, t), Verdict::Accept);
        assert_eq!(a.judge(&c, ip(4), true, t), Verdict::Accept);
        assert_eq!(a.pending(), 4);
        assert_eq!(
            a.judge(&c, ip(5), true, t),
            Verdict::Refuse("handshake_cap")
        );
        // One registers, one fails: room again.
        a.registered();
        a.closed(ip(2), false);
        assert_eq!(a.pending(), 2);
        assert_eq!(a.judge(&c, ip(5), true, t), Verdict::Accept);
        // The registered one leaving does not free a pending slot twice.
        a.closed(ip(1), true);
        assert_eq!(a.pending(), 3);
    }

    #[test]
    fn an_address_is_limited_in_rate_and_in_open_connections() {
        let c = config();
        let t = Instant::now();
        let mut a = Admission::new(t);
        for _ in 0..5 {
            assert_eq!(a.judge(&c, ip(1), true, t), Verdict::Accept);
            a.registered();
        }
        // Burst of 2 x 3 = 6 tokens; 5 open connections at most.
        assert_eq!(a.judge(&c, ip(1), true, t), Verdict::Refuse("per_ip_limit"));
        assert_eq!(a.judge(&c, ip(1), true, t), Verdict::Refuse("ip_rate"));
        // Others are not affected; the address recovers with time.
        assert_eq!(a.judge(&c, ip(2), true, t), Verdict::Accept);
        a.closed(ip(1), true);
        let later = t + Duration::from_secs(1);
        assert_eq!(a.judge(&c, ip(1), true, later), Verdict::Accept);
    }

    #[test]
    fn quiet_addresses_lose_their_buckets() {
        let c = config();
        let t = Instant::now();
        let mut a = Admission::new(t);
        for i in 0..MAX_BUCKETS {
            let ip = IpAddr::from(u32::try_from(i).expect("small").to_be_bytes());
            assert_eq!(a.judge(&c, ip, true, t), Verdict::Accept);
            a.closed(ip, false);
        }
        assert_eq!(a.buckets.len(), MAX_BUCKETS);
        assert!(a.open.is_empty());
        let later = t + Duration::from_secs(5);
        assert_eq!(a.judge(&c, ip(1), true, later), Verdict::Accept);
        assert_eq!(a.buckets.len(), 1);
    }

    #[test]
    fn flood_keys_group_an_ipv6_64_and_unmap_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(flood_key(a), flood_key(b));
        assert_ne!(flood_key(a), flood_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(
            flood_key(mapped),
            "192.0.2.7".parse::<IpAddr>().expect("ip")
        );
    }
}
