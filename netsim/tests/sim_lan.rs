//! Office-scale LANs in the simulator (issue 17): devices that each run
//! core's real `LanMesh` with real signed records start together, a share
//! of them deaf to multicast, and must all see each other; then a presence
//! change, a crash of many and a goodbye must reach everyone.
//!
//! Deadlines are in virtual time, so they are properties of the protocol,
//! not of the machine running the test. Every scenario prints its figures
//! (run with `--nocapture`). The office scenario runs one seed of 200
//! devices; `TINCAN_SIM_LAN_NODES=1000` gives the 1,000,
//! `TINCAN_SIM_LAN_SEEDS=N` runs N seeds, `TINCAN_SIM_SEED` replays one;
//! `TINCAN_SIM_LAN_SLOW_NODES` sizes the slow-start scenario (100).

use std::collections::BTreeMap;
use std::time::Duration;

use tincan_core::presence::ShownPresence;
use tincan_netsim::sim::{check_seeds, NodeIdx};
use tincan_netsim::sim_lan::{LanSim, LanSimConfig, Observation};

/// The number in environment variable `key`, or `default`.
fn env_number<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// Seeds for the office scenario: one unless `TINCAN_SIM_LAN_SEEDS` says more.
fn large_seeds() -> std::ops::Range<u64> {
    0..env_number("TINCAN_SIM_LAN_SEEDS", 1)
}

/// The value at quantile `q` of `values` (nearest rank).
fn quantile(values: &[Duration], q: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1_000.0)
}

/// `n` devices starting within 10 s, 30 % deaf to multicast.
fn office(seed: u64, n: usize) -> LanSim {
    LanSim::new(LanSimConfig {
        seed,
        nodes: n,
        ..LanSimConfig::default()
    })
}

/// Runs until every device showed every other online with its record
/// (within 60 s of virtual time), checks it and prints the figures.
fn converge(sim: &mut LanSim, label: &str) {
    let n = sim.len();
    sim.run_until(|s| s.converged() == n, Duration::from_secs(60))
        .unwrap_or_else(|e| {
            panic!(
                "{label}: {} of {n} devices saw the whole LAN: {e}",
                sim.converged()
            )
        });
    let all: Vec<NodeIdx> = (0..n).map(NodeIdx).collect();
    for &i in &all {
        let mesh = sim.mesh(i).expect("running");
        assert_eq!(mesh.devices().count(), n - 1, "{label}: records at {i}");
        for &j in all.iter().filter(|j| **j != i) {
            assert!(mesh.is_online(&sim.device(j)), "{label}: {i} shows {j}");
        }
    }
    let last_start = all
        .iter()
        .map(|i| sim.start_time(*i))
        .max()
        .unwrap_or_default();
    let times: Vec<Duration> = all.iter().filter_map(|i| sim.converged_at(*i)).collect();
    // A view can be complete only once the last device started.
    let after_last: Vec<Duration> = times.iter().map(|t| t.saturating_sub(last_start)).collect();
    let stats = sim.total_stats();
    println!(
        "{label}: {n} devices ({} deaf), last start {}; every view complete: p50 {} max {} \
         (after the last start: p50 {} max {}); gossip so far per device {:.0} messages \
         {:.0} bytes; peak links per device {}",
        all.iter().filter(|i| sim.is_deaf(**i)).count(),
        ms(last_start),
        ms(quantile(&times, 0.5)),
        ms(quantile(&times, 1.0)),
        ms(quantile(&after_last, 0.5)),
        ms(quantile(&after_last, 1.0)),
        stats.gossip_messages as f64 / n as f64,
        stats.gossip_bytes as f64 / n as f64,
        stats.max_links,
    );
    assert_eq!(stats.bad_gossip, 0, "{label}: a valid record was refused");
}

/// Runs past the idle-close time and checks that each device holds at
/// most six links (its ring neighbours) and still shows everyone online;
/// then measures a minute at rest.
fn rest(sim: &mut LanSim, label: &str) {
    let settle = Duration::from_secs(60);
    sim.run_for(settle);
    let running: Vec<NodeIdx> = (0..sim.len())
        .map(NodeIdx)
        .filter(|i| sim.is_running(*i))
        .collect();
    let links: Vec<usize> = running.iter().map(|i| sim.links(*i)).collect();
    let max = links.iter().copied().max().unwrap_or(0);
    let mean = links.iter().sum::<usize>() as f64 / links.len().max(1) as f64;
    let before = sim.total_stats();
    let window = Duration::from_secs(60);
    sim.run_for(window);
    let after = sim.total_stats();
    println!(
        "{label}: {}s later, links per device max {max} mean {mean:.2}; then {}s at rest: \
         {} gossip messages, {} bytes, {} dials in all",
        settle.as_secs(),
        window.as_secs(),
        after.gossip_messages - before.gossip_messages,
        after.gossip_bytes - before.gossip_bytes,
        after.dials - before.dials,
    );
    let history: Vec<String> = sim
        .link_history()
        .iter()
        .step_by(5)
        .take_while(|s| s.at <= Duration::from_secs(60))
        .map(|s| format!("{}s {:.1}/{}", s.at.as_secs(), s.mean, s.max))
        .collect();
    println!(
        "{label}: links per running device (mean/max) over time: {}",
        history.join(", ")
    );
    assert!(max <= 6, "{label}: a device holds {max} links at rest");
    for (&i, &before) in running.iter().zip(&links) {
        assert_eq!(sim.links(i), before, "{label}: {i}'s links changed at rest");
    }
}

/// For each running observer but `device`, the first time after `since`
/// (µs) at which `pred` held for its view of `device`, if it did and still
/// holds at the last observation.
fn first_seen(
    sim: &LanSim,
    device: NodeIdx,
    since: u64,
    pred: impl Fn(&Observation) -> bool,
) -> BTreeMap<NodeIdx, Option<Duration>> {
    let mut seen: BTreeMap<NodeIdx, Option<Duration>> = (0..sim.len())
        .map(NodeIdx)
        .filter(|i| *i != device && sim.is_running(*i))
        .map(|i| (i, None))
        .collect();
    for o in sim.observations() {
        if o.device != device || o.at_us < since {
            continue;
        }
        if let Some(slot) = seen.get_mut(&o.observer) {
            match (pred(o), *slot) {
                (true, None) => *slot = Some(Duration::from_micros(o.at_us - since)),
                (false, Some(_)) => *slot = None,
                _ => {}
            }
        }
    }
    seen
}

/// Everyone's times from `first_seen`, failing on anyone who never saw it
/// or saw it later than `deadline`.
fn all_within(
    seen: &BTreeMap<NodeIdx, Option<Duration>>,
    deadline: Duration,
    what: &str,
) -> Vec<Duration> {
    let missing: Vec<&NodeIdx> = seen
        .iter()
        .filter(|(_, t)| t.is_none())
        .map(|(i, _)| i)
        .collect();
    assert!(missing.is_empty(), "{what}: never seen by {missing:?}");
    let times: Vec<Duration> = seen.values().flatten().copied().collect();
    let max = quantile(&times, 1.0);
    assert!(
        max <= deadline,
        "{what}: last seen after {max:?} > {deadline:?}"
    );
    times
}

fn now_us(sim: &LanSim) -> u64 {
    sim.elapsed().as_micros() as u64
}

/// One device shows Away: every other device shows it within 5 s.
fn presence_change(sim: &mut LanSim, who: NodeIdx, label: &str) {
    sim.watch(who);
    let since = now_us(sim);
    sim.set_presence(who, ShownPresence::Away);
    sim.run_for(Duration::from_secs(10));
    let seen = first_seen(sim, who, since, |o| o.shown == Some(ShownPresence::Away));
    let times = all_within(&seen, Duration::from_secs(5), "away");
    println!(
        "{label}: presence change seen by all {}: p50 {} p99 {} max {}",
        times.len(),
        ms(quantile(&times, 0.5)),
        ms(quantile(&times, 0.99)),
        ms(quantile(&times, 1.0)),
    );
}

/// 5 % of the devices crash at once: every survivor shows each of them
/// offline within 20 s, and after a minute no survivor shows another
/// survivor offline.
fn crash_many(sim: &mut LanSim, seed: u64, label: &str) {
    let n = sim.len();
    let count = (n / 20).max(1);
    let crashed: Vec<NodeIdx> = (0..count)
        .map(|k| NodeIdx((seed as usize * 7 + k * (n / count)) % n))
        .filter(|i| sim.is_running(*i))
        .collect();
    for &i in &crashed {
        sim.watch(i);
    }
    let since = now_us(sim);
    let refutes_before = sim.total_stats().refutes;
    for &i in &crashed {
        sim.crash(i);
    }
    sim.run_for(Duration::from_secs(30));
    let mut times = Vec::new();
    for &i in &crashed {
        let seen = first_seen(sim, i, since, |o| !o.online);
        times.extend(all_within(&seen, Duration::from_secs(20), "crash"));
    }
    sim.run_for(Duration::from_secs(60));
    let survivors: Vec<NodeIdx> = (0..n).map(NodeIdx).filter(|i| sim.is_running(*i)).collect();
    for &i in &survivors {
        let mesh = sim.mesh(i).expect("running");
        for &c in &crashed {
            assert!(
                !mesh.is_online(&sim.device(c)),
                "{label}: {i} shows crashed {c}"
            );
        }
        for &j in survivors.iter().filter(|j| **j != i) {
            assert!(
                mesh.is_online(&sim.device(j)),
                "{label}: {i} shows {j} offline"
            );
        }
    }
    println!(
        "{label}: {} crashed, shown offline by every survivor: p50 {} p99 {} max {}; refutes {}",
        crashed.len(),
        ms(quantile(&times, 0.5)),
        ms(quantile(&times, 0.99)),
        ms(quantile(&times, 1.0)),
        sim.total_stats().refutes - refutes_before,
    );
}

/// A device says goodbye: everyone shows it offline within a second.
fn goodbye(sim: &mut LanSim, who: NodeIdx, label: &str) {
    sim.watch(who);
    let since = now_us(sim);
    sim.leave(who);
    sim.run_for(Duration::from_secs(5));
    let seen = first_seen(sim, who, since, |o| !o.online);
    let times = all_within(&seen, Duration::from_secs(1), "goodbye");
    println!(
        "{label}: goodbye seen by all {}: p99 {} max {}",
        times.len(),
        ms(quantile(&times, 0.99)),
        ms(quantile(&times, 1.0)),
    );
}

/// The scenario, all of it in one run per seed: an office of
/// `TINCAN_SIM_LAN_NODES` desktops (200 by default, the LAN; the
/// issue's 1,000 takes minutes in a debug build, so it runs by hand).
#[test]
fn an_office_converges_rests_and_spreads_changes() {
    let n = env_number("TINCAN_SIM_LAN_NODES", 200);
    check_seeds(large_seeds(), |seed| {
        let label = format!("{n}/seed {seed}");
        let mut sim = office(seed, n);
        converge(&mut sim, &label);
        rest(&mut sim, &label);
        presence_change(&mut sim, NodeIdx(seed as usize % n), &label);
        crash_many(&mut sim, seed, &label);
        let leaver = (0..n)
            .map(|i| NodeIdx((seed as usize + n / 2 + i) % n))
            .find(|i| sim.is_running(*i))
            .expect("a survivor");
        goodbye(&mut sim, leaver, &label);
    });
}

/// Devices in the smaller scenarios below: each converges in a few seconds
/// of a debug build, so each runs over three seeds.
const SMALL: usize = 60;

#[test]
fn every_device_sees_every_other_and_rests_on_ring_links() {
    check_seeds(0..3, |seed| {
        let label = format!("{SMALL}/seed {seed}");
        let mut sim = office(seed, SMALL);
        converge(&mut sim, &label);
        rest(&mut sim, &label);
    });
}

#[test]
fn a_presence_change_reaches_everyone_within_5_s() {
    check_seeds(0..3, |seed| {
        let label = format!("{SMALL}/seed {seed}");
        let mut sim = office(seed, SMALL);
        converge(&mut sim, &label);
        presence_change(&mut sim, NodeIdx(seed as usize * 11 % SMALL), &label);
    });
}

#[test]
fn crashed_devices_are_shown_offline_and_survivors_stay_online() {
    check_seeds(0..3, |seed| {
        let label = format!("{SMALL}/seed {seed}");
        let mut sim = office(seed, SMALL);
        converge(&mut sim, &label);
        rest(&mut sim, &label);
        crash_many(&mut sim, seed, &label);
    });
}

#[test]
fn a_goodbye_is_seen_by_everyone_at_once() {
    check_seeds(0..3, |seed| {
        let label = format!("{SMALL}/seed {seed}");
        let mut sim = office(seed, SMALL);
        converge(&mut sim, &label);
        goodbye(&mut sim, NodeIdx(seed as usize * 13 % SMALL), &label);
    });
}

/// A device cut off for 20 s (its neighbours report it gone, it reports
/// them gone) and plugged back in: once the reports have met their
/// devices' refutations, everyone shows everyone online again.
#[test]
fn a_device_cut_off_and_back_is_shown_online_everywhere_again() {
    check_seeds(0..3, |seed| {
        let label = format!("{SMALL}/seed {seed}");
        let mut sim = office(seed, SMALL);
        converge(&mut sim, &label);
        rest(&mut sim, &label);
        let cut = NodeIdx(seed as usize * 17 % SMALL);
        sim.watch(cut);
        let since = now_us(&sim);
        sim.isolate(cut);
        sim.run_for(Duration::from_secs(20));
        let seen = first_seen(&sim, cut, since, |o| !o.online);
        let offline = all_within(&seen, Duration::from_secs(20), "cut off");
        let refutes_before = sim.total_stats().refutes;
        let back = now_us(&sim);
        sim.reconnect(cut);
        sim.run_for(Duration::from_secs(30));
        let seen = first_seen(&sim, cut, back, |o| o.online);
        let online = all_within(&seen, Duration::from_secs(30), "back");
        let all: Vec<NodeIdx> = (0..SMALL).map(NodeIdx).collect();
        for &i in &all {
            let mesh = sim.mesh(i).expect("running");
            for &j in all.iter().filter(|j| **j != i) {
                assert!(
                    mesh.is_online(&sim.device(j)),
                    "{label}: {i} shows {j} offline"
                );
            }
        }
        println!(
            "{label}: {cut} cut off, shown offline by all: max {}; back, shown online by all: \
             max {}; refutes {}",
            ms(quantile(&offline, 1.0)),
            ms(quantile(&online, 1.0)),
            sim.total_stats().refutes - refutes_before,
        );
    });
}

/// A busy run (start, crashes, a presence change, a goodbye) as a trace.
fn trace(seed: u64) -> (String, u64) {
    let mut sim = office(seed, 60);
    sim.run_for(Duration::from_secs(20));
    sim.crash(NodeIdx(3));
    sim.crash(NodeIdx(40));
    sim.set_presence(NodeIdx(7), ShownPresence::Busy);
    sim.run_for(Duration::from_secs(15));
    sim.leave(NodeIdx(9));
    sim.run_for(Duration::from_secs(40));
    (sim.trace_hash(), sim.total_stats().gossip_bytes)
}

#[test]
fn same_seed_same_trace_and_different_seeds_differ() {
    for seed in [1, 42] {
        assert_eq!(trace(seed), trace(seed), "seed {seed} is not reproducible");
    }
    assert_ne!(trace(1).0, trace(2).0);
}

/// An office whose desktops are slow to link while everyone starts (the
/// lab runs hundreds of daemons on two cores: a handshake then takes
/// seconds): everyone hears everyone, and the start-up must still not
/// link everyone to everyone, which would only load it further.
#[test]
fn a_slow_starting_office_does_not_link_everyone_to_everyone() {
    let n = env_number("TINCAN_SIM_LAN_SLOW_NODES", 100);
    check_seeds(0..2, |seed| {
        let label = format!("slow {n}/seed {seed}");
        let mut sim = LanSim::new(LanSimConfig {
            seed,
            nodes: n,
            start_window_ms: 15_000,
            deaf_fraction: 0.0,
            hint_fraction: 1.0,
            hint_delay_ms: 100..3_000,
            dial_latency_us: 300_000..4_000_000,
            hop_latency_us: 20_000..800_000,
            ..LanSimConfig::default()
        });
        converge(&mut sim, &label);
        let stats = sim.total_stats();
        let dials = stats.dials as f64 / n as f64;
        println!(
            "{label}: dials per device {dials:.1} ({} failed in all); peak links {}",
            stats.failed_dials, stats.max_links
        );
        rest(&mut sim, &label);
    });
}
