//! Simulation of the branch-gateway election on one LAN.
//!
//! 2–6 nodes run core's `GatewayElection` and one relay runs core's
//! `LeaseTable`, in virtual time, with 1–30 ms latency and 5 % loss on every
//! packet (beacons, claims, answers, releases) and a tiny event queue of our
//! own. After *every* event the run checks the safety property: a node in
//! role gateway holds the live lease of its site at the relay at that very
//! instant — so two gateways of one site never coexist. Each scenario runs
//! over many seeds; `check_seeds` prints the one that fails
//! (`TINCAN_SIM_SEED=N` replays it).

#[path = "sim_election/lan.rs"]
mod lan;

use std::cell::Cell;

use tincan_core::{GatewayPreference, Role, SiteId};
use tincan_netsim::sim::{check_seeds, SimRng};

use lan::{random_halves, random_prefs, Lan, Trace};

/// The failover budget: lease TTL plus detection overlap.
const MAX_FAILOVER_MS: u64 = 3_600;
/// Seeds per scenario.
const SEEDS: std::ops::Range<u64> = 0..30;

#[test]
fn exactly_one_gateway_emerges_and_holds_the_lease() {
    check_seeds(SEEDS, |seed| {
        let mut rng = SimRng::new(seed, 0);
        let n = 2 + rng.below(5) as usize;
        let mut lan = Lan::new(seed, &random_prefs(&mut rng, n, 1));
        let g = lan.converge("elect");
        // It stays so under loss (a rare spurious step-down must heal).
        lan.run_for(20_000);
        let again = lan.run_until(|lan| lan.converged().is_some(), 3_000);
        assert!(
            again.is_some(),
            "seed {seed}: lost the gateway: {:?}",
            lan.roles()
        );
        let site = lan.election(g).and_then(|e| e.site());
        assert_eq!(lan.sites(), vec![site], "seed {seed}: one site");
    });
}

#[test]
fn failover_after_the_gateway_crashes_is_within_budget() {
    let worst = Cell::new(0);
    check_seeds(SEEDS, |seed| {
        let mut rng = SimRng::new(seed, 0);
        let n = 3 + rng.below(4) as usize;
        let mut lan = Lan::new(seed, &random_prefs(&mut rng, n, 2));
        let old = lan.converge("failover");
        // Crash at a random phase of the renewal cycle.
        lan.run_for(2_000 + rng.below(2_000));
        let old = lan.converged().unwrap_or(old);
        lan.crash(old);
        let failover = lan
            .run_until(|lan| !lan.gateways().is_empty(), 10_000)
            .unwrap_or_else(|| panic!("seed {seed}: no new gateway: {:?}", lan.roles()));
        let settled = failover
            + lan
                .run_until(|lan| lan.converged().is_some(), 5_000)
                .unwrap_or_else(|| panic!("seed {seed}: members did not follow"));
        let new = lan.converged().expect("converged");
        println!(
            "seed {seed:>2}: {n} nodes, gateway {old} crashed, node {new} gateway after \
             {failover} ms, all members after {settled} ms"
        );
        assert!(
            failover <= MAX_FAILOVER_MS,
            "seed {seed}: failover took {failover} ms"
        );
        worst.set(worst.get().max(failover));
        // The old gateway comes back: incumbency keeps the new one.
        lan.boot(old);
        lan.run_for(5_000);
        assert_eq!(
            lan.run_until(|lan| lan.converged() == Some(new), 3_000)
                .map(|_| ()),
            Some(()),
            "seed {seed}: restart deposed the gateway: {:?}",
            lan.roles()
        );
    });
    println!(
        "worst failover: {} ms (budget {MAX_FAILOVER_MS} ms)",
        worst.get()
    );
}

#[test]
fn a_partition_heals_into_one_gateway_and_one_site() {
    check_seeds(SEEDS, |seed| {
        let mut rng = SimRng::new(seed, 0);
        let n = 2 + rng.below(5) as usize;
        let mut lan = Lan::new(seed, &random_prefs(&mut rng, n, 2));
        let g = lan.converge("partition");
        let site = lan.election(g).and_then(|e| e.site());
        let side = random_halves(&mut rng, n);
        lan.partition(side.clone());
        // Every step checks that at most one node acts as gateway: the half
        // cut off from the lease holder roams instead of fighting for it.
        lan.run_for(8_000);
        let during = lan.gateways();
        lan.heal();
        let took = lan
            .run_until(|lan| lan.converged().is_some(), 6_000)
            .unwrap_or_else(|| {
                panic!(
                    "seed {seed}: no single gateway after heal: {:?}",
                    lan.roles()
                )
            });
        assert_eq!(lan.sites(), vec![site], "seed {seed}: the site survives");
        println!(
            "seed {seed:>2}: {n} nodes split {side:?}, gateway {g} before, {during:?} during, \
             node {} after heal in {took} ms",
            lan.converged().expect("converged")
        );
    });
}

#[test]
fn halves_that_elected_apart_merge_into_the_lower_site() {
    check_seeds(SEEDS, |seed| {
        let mut rng = SimRng::new(seed, 0);
        let n = 3 + rng.below(4) as usize;
        let mut lan = Lan::new(seed, &random_prefs(&mut rng, n, n));
        // Cut from the start: each half elects its own gateway and site.
        lan.one_site = false;
        let side = random_halves(&mut rng, n);
        lan.partition(side.clone());
        lan.run_for(6_000);
        let before: Vec<SiteId> = lan
            .gateways()
            .iter()
            .filter_map(|&g| lan.election(g).and_then(|e| e.site()))
            .collect();
        lan.heal();
        let took = lan
            .run_until(|lan| lan.converged().is_some(), 6_000)
            .unwrap_or_else(|| {
                panic!(
                    "seed {seed}: no single gateway after heal: {:?}",
                    lan.roles()
                )
            });
        let lowest = before.iter().min().copied();
        assert_eq!(
            lan.sites(),
            vec![lowest],
            "seed {seed}: merged into the lower site"
        );
        println!(
            "seed {seed:>2}: {n} nodes split {side:?}, {} sites before, one after heal in {took} ms",
            before.len()
        );
        // From here on one gateway in all.
        lan.one_site = true;
        lan.run_for(5_000);
        assert!(lan
            .run_until(|lan| lan.converged().is_some(), 3_000)
            .is_some());
    });
}

#[test]
fn nodes_that_never_serve_never_become_gateway() {
    check_seeds(SEEDS, |seed| {
        let mut rng = SimRng::new(seed, 0);
        let n = 3 + rng.below(4) as usize;
        // Between one and n - 1 nodes refuse the role. Claims by them and
        // their being gateway are checked at every step.
        let nevers = 1 + rng.below(n as u64 - 1) as usize;
        let mut prefs = vec![GatewayPreference::Auto; n];
        let mut placed = 0;
        while placed < nevers {
            let i = rng.below(n as u64) as usize;
            if prefs[i] != GatewayPreference::Never {
                prefs[i] = GatewayPreference::Never;
                placed += 1;
            }
        }
        let mut lan = Lan::new(seed, &prefs);
        let g = lan.converge("never");
        assert_ne!(prefs[g], GatewayPreference::Never);
        // The only eligible node may be the one that crashes: then nobody
        // takes over and everyone roams.
        lan.crash(g);
        let eligible_left = (0..n).any(|i| i != g && prefs[i] != GatewayPreference::Never);
        if eligible_left {
            assert!(
                lan.run_until(|lan| lan.converged().is_some(), 6_000)
                    .is_some(),
                "seed {seed}: no new gateway: {:?}",
                lan.roles()
            );
        } else {
            lan.run_for(6_000);
            assert!(lan.gateways().is_empty());
            assert!(lan
                .up_nodes()
                .all(|i| lan.election(i).is_some_and(|e| e.role() == Role::Roaming)));
        }

        // A LAN where nobody may serve: no claim, no site, everyone roams.
        let mut lan = Lan::new(seed, &vec![GatewayPreference::Never; n]);
        lan.run_for(10_000);
        assert!(lan.gateways().is_empty());
        assert_eq!(lan.sites(), vec![None]);
        assert!(lan
            .trace
            .iter()
            .all(|(_, _, role, _)| *role == Role::Roaming));
    });
}

/// One run of everything (election, crash, restart, partition, heal),
/// reduced to its role changes and the relay's epochs.
fn full_run(seed: u64) -> (Trace, Vec<(SiteId, u64)>) {
    let mut rng = SimRng::new(seed, 0);
    let n = 2 + rng.below(5) as usize;
    let mut lan = Lan::new(seed, &random_prefs(&mut rng, n, 2));
    lan.run_for(5_000);
    if let Some(g) = lan.converged() {
        lan.crash(g);
        lan.run_for(5_000);
        lan.boot(g);
    }
    lan.partition(random_halves(&mut rng, n));
    lan.run_for(5_000);
    lan.heal();
    lan.run_for(5_000);
    let epochs = lan.relay.epochs().map(|(k, e)| (*k, e)).collect();
    (lan.trace, epochs)
}

#[test]
fn the_same_seed_gives_the_same_run() {
    check_seeds(0..10, |seed| {
        let first = full_run(seed);
        assert!(!first.0.is_empty());
        assert_eq!(first, full_run(seed), "seed {seed}: not deterministic");
    });
    assert_ne!(full_run(1), full_run(2));
}
