//! `sim`: one seeded run of the simulator's standard workload (see
//! `tincan_netsim::scenario`): sites electing gateways with core's
//! election, messages sealed and acknowledged with core's envelopes and
//! receipts, rooms whose members change through core's room logs, gateway
//! kills, roaming laptops, partitions and crashes.
//!
//! ```text
//! cargo run -p tincan-netsim --release --bin sim -- --nodes 2000 --sites 100 --seed 7 --minutes 10 --json
//! ```
//!
//! Prints a summary, or with `--json` one JSON object as the last line of
//! standard output. Exits with status 1 when an invariant broke, so any
//! failing seed can be rerun as it is.

use std::process::ExitCode;

use clap::Parser;
use tincan_netsim::scenario::{Outcome, Workload};

/// Runs one seeded simulation of an organisation and checks its invariants.
#[derive(Parser, Debug)]
#[command(name = "sim", version)]
struct Args {
    /// Devices in the organisation (each its own user).
    #[arg(long, default_value_t = 2_000)]
    nodes: usize,
    /// Offices (LANs) the devices are spread over.
    #[arg(long, default_value_t = 100)]
    sites: usize,
    /// The seed every random choice derives from.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Virtual minutes of traffic and faults.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Messages to send (default: max(1000, nodes/2) for ten minutes,
    /// scaled to the run's length).
    #[arg(long)]
    messages: Option<usize>,
    /// Loss probability of every hop (0..1).
    #[arg(long, default_value_t = 0.01)]
    loss: f64,
    /// Print the outcome as one JSON object (the last line of stdout).
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let workload = Workload {
        nodes: args.nodes,
        sites: args.sites,
        seed: args.seed,
        minutes: args.minutes,
        messages: args.messages,
        loss: args.loss.clamp(0.0, 1.0),
        ..Workload::default()
    };
    eprintln!(
        "simulating {} nodes over {} sites for {} virtual minutes (seed {})",
        workload.nodes, workload.sites, workload.minutes, workload.seed
    );
    let outcome = workload.run();
    if args.json {
        match serde_json::to_string(&outcome) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("cannot encode the outcome: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print_summary(&outcome);
    }
    if outcome.invariant_violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "invariants broke; rerun with --seed {} to replay",
            outcome.seed
        );
        ExitCode::FAILURE
    }
}

fn print_summary(o: &Outcome) {
    println!("nodes {} over {} sites, seed {}", o.nodes, o.sites, o.seed);
    println!(
        "virtual {:.1} s in {:.2} s of wall time",
        o.virtual_secs, o.wall_secs
    );
    println!(
        "messages {}: {} deliveries, {} once, {} duplicated, {} failed (reported), {} lost",
        o.messages_sent, o.deliveries, o.delivered_once, o.duplicates, o.failed_reported, o.lost
    );
    println!(
        "faults: {} gateway kills, {} crashes, {} roams, {} partitions",
        o.gateway_kills, o.crashes, o.roams, o.partitions
    );
    println!(
        "gateways: at most {} per site and epoch; {} failovers, longest {} ms (bound {} ms)",
        o.max_gateways_per_site_epoch, o.failovers, o.max_failover_ms, o.failover_bound_ms
    );
    println!(
        "WAN: at most {} first copies per site and message ({} messages without faults); \
         {} retransmitted copies",
        o.wan_copies_per_site_msg_max, o.fault_free_messages, o.wan_retransmits
    );
    println!("relay: {} copies taken into custody", o.custody_items);
    println!(
        "rooms: {}, {} ops; every member device holds the same log: {}",
        o.rooms,
        o.room_ops,
        if o.rooms_converged { "yes" } else { "no" }
    );
    if o.invariant_violations.is_empty() {
        println!("invariants: all held");
    } else {
        println!("invariants broken:");
        for v in &o.invariant_violations {
            println!("  {v}");
        }
    }
}
