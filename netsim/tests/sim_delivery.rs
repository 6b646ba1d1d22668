//! Exactly-once delivery through loss, partitions, crashes and roaming.
//!
//! Three sites of five nodes, 10% loss on every hop; random nodes send
//! random messages to one to three random others for five virtual minutes,
//! then everything heals and the simulation runs until every outbox is
//! empty. Every message must be displayed exactly once by every recipient
//! and acknowledged to its sender, for 20 seeds each.

use std::time::Duration;

use tincan_core::delivery::MessageState;
use tincan_netsim::sim::{check_seeds, NodeIdx, Sim, SimBuilder, SiteIdx};

const SITES: usize = 3;
const PER_SITE: usize = 5;
const RUN: Duration = Duration::from_secs(300);

fn build(seed: u64) -> Sim {
    let mut sim = SimBuilder::new()
        .seed(seed)
        .sites(SITES)
        .latency(10..80)
        .lan_latency(1..5)
        .loss(0.1)
        .build();
    for site in 0..SITES {
        for i in 0..PER_SITE {
            sim.add_node(SiteIdx(site), &format!("s{site}n{i}"));
        }
    }
    sim
}

/// One random message from a random running node to 1–3 random others.
fn send_random(sim: &mut Sim, n: usize) {
    let nodes = (SITES * PER_SITE) as u64;
    let from = NodeIdx(sim.rng().below(nodes) as usize);
    if !sim.node(from).is_up() {
        return;
    }
    let count = 1 + sim.rng().below(3) as usize;
    let mut to = Vec::new();
    while to.len() < count {
        let n = NodeIdx(sim.rng().below(nodes) as usize);
        let user = sim.node(n).user_id();
        if n != from && !to.contains(&user) {
            to.push(user);
        }
    }
    sim.send(from, &to, &format!("message {n}"))
        .expect("send from a running node");
}

/// Runs the traffic for [`RUN`], calling `disturb(sim, second)` once per
/// virtual second, then heals everything and waits for quiescence.
fn scenario(seed: u64, mut disturb: impl FnMut(&mut Sim, u64)) -> Sim {
    let mut sim = build(seed);
    let mut n = 0;
    let mut second = 0;
    while sim.elapsed() < RUN {
        let gap = sim.rng().in_range(500..2_500);
        sim.run_for(Duration::from_millis(gap));
        send_random(&mut sim, n);
        n += 1;
        while (second + 1) * 1000 <= sim.elapsed().as_millis() as u64 {
            second += 1;
            disturb(&mut sim, second);
        }
    }
    sim.heal_all();
    let ids: Vec<NodeIdx> = sim.node_ids().collect();
    for node in ids {
        sim.restart(node);
    }
    sim.run_until(|s| s.is_quiescent(), Duration::from_secs(600))
        .unwrap_or_else(|e| panic!("seed {seed}: not quiescent: {e}"));
    sim
}

fn assert_exactly_once(sim: &Sim) {
    let report = sim.delivery_report();
    assert!(
        report.is_exactly_once(),
        "seed {}: missing {:?}, duplicated {:?}, unexpected {:?}, unacknowledged {:?}, \
         state shown wrongly {:?}",
        sim.seed(),
        report.missing,
        report.duplicated,
        report.unexpected,
        report.unacknowledged,
        report.misreported
    );
    assert!(report.expected > 150, "only {} deliveries", report.expected);
    // The sites' elections (core's, with the relay's leases) held too.
    let gateways = sim.gateway_report();
    assert_eq!(
        gateways.violations,
        Vec::<String>::new(),
        "seed {}",
        sim.seed()
    );
    assert!(gateways.max_gateways_per_site_epoch <= 1);
    for node in sim.node_ids() {
        assert_eq!(sim.node(node).failures(), &[], "{node} gave up");
        assert_eq!(sim.node(node).rejected(), 0, "{node} rejected something");
    }
}

#[test]
fn lossy_network_delivers_every_message_exactly_once() {
    check_seeds(0..20, |seed| {
        let sim = scenario(seed, |_, _| {});
        assert_exactly_once(&sim);
        let stats = sim.net_stats();
        assert!(stats.lost > 0, "loss was configured");
        let dups: u64 = sim.node_ids().map(|n| sim.node(n).duplicates()).sum();
        assert!(dups > 0, "seed {seed}: lost receipts must cause resends");
    });
}

#[test]
fn partition_then_heal_still_delivers_exactly_once() {
    check_seeds(100..120, |seed| {
        let mut waiting_at_heal = 0;
        let sim = scenario(seed, |sim, second| match second {
            60 => sim.partition(SiteIdx(0), SiteIdx(1)),
            200 => {
                waiting_at_heal = sim.node_ids().map(|n| sim.node(n).pending_len()).sum();
                sim.heal(SiteIdx(0), SiteIdx(1));
            }
            _ => {}
        });
        assert!(
            waiting_at_heal > 0,
            "seed {seed}: the partition held nothing back"
        );
        assert_exactly_once(&sim);
    });
}

#[test]
fn crashes_and_roaming_do_not_lose_or_duplicate() {
    check_seeds(200..210, |seed| {
        let victim = NodeIdx((seed % 15) as usize);
        let rover = NodeIdx(((seed + 7) % 15) as usize);
        let sim = scenario(seed, |sim, second| match second {
            50 => sim.crash(victim),
            90 => sim.roam(rover, SiteIdx((sim.site_of(rover).0 + 1) % SITES)),
            120 => sim.restart(victim),
            150 => sim.partition(SiteIdx(1), SiteIdx(2)),
            160 => sim.crash(rover),
            170 => sim.restart(rover),
            240 => sim.heal_all(),
            _ => {}
        });
        assert_exactly_once(&sim);
    });
}

/// The recipient's refusal travels back (as the daemon's does) and ends
/// the delivery: the sender's history shows it failed, with the reason,
/// and the outbox does not retry a refused message.
#[test]
fn a_misaddressed_envelope_is_refused_and_reported_failed() {
    let mut sim = SimBuilder::new().seed(5).sites(2).build();
    let alice = sim.add_node(SiteIdx(0), "alice");
    let bob = sim.add_node(SiteIdx(1), "bob");
    let carol = sim.add_node(SiteIdx(1), "carol");
    sim.settle(Duration::from_secs(30)).expect("gateways");
    let sealed_for = [sim.node(bob).user_id()];
    let deliver_to = [sim.node(carol).user_id()];
    let id = sim
        .send_sealed_for(alice, &sealed_for, &deliver_to, "for bob")
        .expect("send");
    sim.run_until(|s| s.is_quiescent(), Duration::from_secs(60))
        .expect("the refusal settles it");
    let carol_device = sim.node(carol).device_id();
    let failures = sim.node(alice).failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!((failures[0].0, failures[0].1), (id, carol_device));
    assert!(failures[0].2.contains("NotForThisDevice"), "{failures:?}");
    let (state, reason) = sim.node(alice).message_state(&id).expect("a state");
    assert_eq!(state, MessageState::Failed);
    assert!(reason.is_some_and(|r| r.contains("NotForThisDevice")));
    assert_eq!(sim.node(carol).displayed(), &[]);
    assert_eq!(sim.node(carol).rejected(), 1, "refused once, not retried");
    assert!(sim.delivery_report().misreported.is_empty());
}
