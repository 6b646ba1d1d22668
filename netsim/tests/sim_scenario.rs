//! The simulator's standard workload (`tincan_netsim::scenario`, what the
//! `sim` command runs) at a CI size: 200 devices over 10 sites for two
//! virtual minutes with room membership changes, gateway kills, roams,
//! partitions and crashes, over fixed seeds. Every invariant must hold
//! (every room converged among them); a failing seed is printed and
//! replays with `TINCAN_SIM_SEED=N` (or `sim --seed N`).
//!
//! Bigger runs by hand: `TINCAN_SIM_NODES=2000 TINCAN_SIM_SITES=100
//! TINCAN_SIM_MINUTES=10 cargo test --release -p tincan-netsim --test
//! sim_scenario -- --nocapture`, or the `sim` command itself.

use std::process::Command;

use tincan_netsim::scenario::{Outcome, Workload};
use tincan_netsim::sim::check_seeds;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn workload(seed: u64) -> Workload {
    Workload {
        nodes: env_or("TINCAN_SIM_NODES", 200),
        sites: env_or("TINCAN_SIM_SITES", 10),
        minutes: env_or("TINCAN_SIM_MINUTES", 2.0),
        seed,
        ..Workload::default()
    }
}

fn print(o: &Outcome) {
    println!(
        "seed {}: {} nodes/{} sites, {:.0} virtual s in {:.2} s; {} messages, {} deliveries \
         ({} once, {} failed, {} lost, {} duplicated); faults: {} gateway kills, {} crashes, \
         {} roams, {} partitions; {} failovers, longest {} ms; WAN copies max {} over {} \
         fault-free messages, {} retransmitted; {} taken into custody; {} rooms, {} room ops, \
         converged: {}",
        o.seed,
        o.nodes,
        o.sites,
        o.virtual_secs,
        o.wall_secs,
        o.messages_sent,
        o.deliveries,
        o.delivered_once,
        o.failed_reported,
        o.lost,
        o.duplicates,
        o.gateway_kills,
        o.crashes,
        o.roams,
        o.partitions,
        o.failovers,
        o.max_failover_ms,
        o.wan_copies_per_site_msg_max,
        o.fault_free_messages,
        o.wan_retransmits,
        o.custody_items,
        o.rooms,
        o.room_ops,
        o.rooms_converged
    );
}

#[test]
fn the_standard_workload_holds_every_invariant() {
    check_seeds(1..6, |seed| {
        let o = workload(seed).run();
        print(&o);
        assert_eq!(o.invariant_violations, Vec::<String>::new(), "seed {seed}");
        // The workload did what it says, so the invariants were tested.
        assert!(
            o.messages_sent >= 150,
            "seed {seed}: {} sent",
            o.messages_sent
        );
        assert!(o.gateway_kills >= 1 && o.failovers >= 1, "seed {seed}");
        assert!(o.roams >= 1 && o.partitions >= 1, "seed {seed}");
        assert!(o.fault_free_messages > 0, "seed {seed}");
        assert_eq!(o.lost + o.duplicates, 0, "seed {seed}");
        assert_eq!(
            o.delivered_once + o.failed_reported,
            o.deliveries,
            "seed {seed}"
        );
        assert_eq!(o.max_gateways_per_site_epoch, 1, "seed {seed}");
        assert!(o.max_failover_ms <= o.failover_bound_ms, "seed {seed}");
        assert_eq!(o.wan_copies_per_site_msg_max, 1, "seed {seed}");
        // Each room was created (create, add, promote), then changed.
        assert!(o.rooms >= 2, "seed {seed}");
        assert!(o.room_ops > 3 * o.rooms as u64, "seed {seed}");
        assert!(o.rooms_converged, "seed {seed}");
    });
}

#[test]
fn the_sim_command_prints_its_outcome_as_the_last_json_line_and_replays() {
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_sim"))
            .args(["--nodes", "30", "--sites", "3", "--seed", "9"])
            .args(["--minutes", "1", "--json"])
            .output()
            .expect("run sim");
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8(out.stdout).expect("utf-8");
        let last = stdout.lines().last().expect("a line").to_owned();
        let mut value: serde_json::Value = serde_json::from_str(&last).expect("JSON");
        for key in [
            "nodes",
            "sites",
            "seed",
            "virtual_secs",
            "wall_secs",
            "messages_sent",
            "delivered_once",
            "duplicates",
            "lost",
            "failed_reported",
            "max_gateways_per_site_epoch",
            "failovers",
            "max_failover_ms",
            "wan_copies_per_site_msg_max",
            "wan_retransmits",
            "custody_items",
            "invariant_violations",
            "rooms",
            "room_ops",
            "rooms_converged",
        ] {
            assert!(value.get(key).is_some(), "{key} missing from {last}");
        }
        assert_eq!(value["nodes"], 30);
        assert_eq!(value["seed"], 9);
        assert_eq!(value["invariant_violations"], serde_json::json!([]));
        assert_eq!(value["rooms_converged"], true);
        // Everything but the wall time is fixed by the seed.
        value["wall_secs"] = serde_json::Value::Null;
        value
    };
    assert_eq!(run(), run(), "the same seed replays the same run");
}
