//! Peers falling silent, and `poll_timeout`, which skips its scan of the
//! peers when their lower bound (`peers_silent_from`) cannot be the
//! answer: it must still give what the full scan gives after any input.

use super::*;

/// What `poll_timeout` computed before it kept a bound: every deadline,
/// each peer's silence included.
fn scanned_timeout(e: &GatewayElection) -> Option<u64> {
    let silent = e
        .peers
        .values()
        .map(|p| p.heard_at.saturating_add(e.config.peer_timeout_ms))
        .min();
    [
        Some(e.next_beacon_at),
        silent,
        e.claim.as_ref().map(Claim::next_timeout),
        e.decide_again_at,
    ]
    .into_iter()
    .flatten()
    .min()
}

#[test]
fn the_timeout_is_the_one_a_scan_of_every_peer_gives() {
    let mut rng = SeededEntropy::new(5);
    let mut draw = |n: u64| u64::from_le_bytes(rng.bytes32()[..8].try_into().unwrap_or([0; 8])) % n;
    // How often a peer's silence was the answer, and how often the bound
    // spared the scan: both paths must be taken.
    let (mut silence_first, mut spared, mut gateway) = (0, 0, 0);
    for preference in [GatewayPreference::Auto, GatewayPreference::Never] {
        let mut a = node(1, preference, None);
        let mut now = 0;
        let mut claimed = None;
        for step in 0..3_000 {
            now += draw(120);
            match draw(10) {
                // Peers 2..9 beacon irregularly, some now and then as gateway
                // of site 1 (with the relay's grant), some silent for long.
                0..=5 => {
                    let n = 2 + draw(7) as u8;
                    let gateway = (n == 3 && draw(2) == 0).then_some(1 + now / 10_000);
                    a.handle_beacon(now, dev(n), peer(n, Some(site(1)), gateway));
                }
                6 | 7 => a.handle_timeout(now, &mut SeededEntropy::new(step)),
                8 => a.handle_peer_lost(now, dev(2 + draw(7) as u8)),
                _ => {
                    if let Some((s, epoch)) = claimed.take() {
                        a.handle_lease_granted(now, grant(1, s, epoch));
                    }
                }
            }
            if let Some(claim) = claims(&drain(&mut a).0).last() {
                claimed = Some(*claim);
            }
            let timeout = a.poll_timeout();
            assert_eq!(timeout, scanned_timeout(&a), "step {step} at {now}");
            let silent = a
                .peers
                .values()
                .map(|p| p.heard_at + a.config.peer_timeout_ms);
            if silent.min() == timeout {
                silence_first += 1;
            }
            if timeout.is_some_and(|t| t <= a.peers_silent_from) {
                spared += 1;
            }
            if a.role() == Role::Gateway {
                gateway += 1;
            }
        }
    }
    let covered = [silence_first, spared, gateway];
    assert!(covered.iter().all(|n| *n > 100), "{covered:?}");
}

#[test]
fn silent_peers_expire_and_lost_peers_go_at_once() {
    let mut a = node(1, GatewayPreference::Auto, Some(site(1)));
    a.handle_beacon(0, dev(2), peer(2, Some(site(1)), Some(1)));
    a.handle_beacon(100, dev(3), peer(3, Some(site(1)), None));
    assert_eq!(a.role(), Role::Member);
    assert_eq!(a.lan_peers().collect::<Vec<_>>(), vec![dev(2), dev(3)]);
    let timeout = a.config().peer_timeout_ms;
    a.handle_timeout(timeout - 1, &mut SeededEntropy::new(0));
    assert_eq!(a.role(), Role::Member);
    a.handle_timeout(timeout, &mut SeededEntropy::new(0));
    assert_eq!(a.lan_peers().collect::<Vec<_>>(), vec![dev(3)]);
    assert_eq!(a.role(), Role::Roaming, "claiming once the gateway is gone");
    a.handle_peer_lost(timeout + 1, dev(3));
    let (tx, _) = drain(&mut a);
    assert_eq!(a.lan_peers().count(), 0);
    assert_eq!(
        releases(&tx),
        vec![(site(1), 2)],
        "alone: the claim is moot"
    );
}
