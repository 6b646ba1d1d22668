//! Gateway failover, measured end to end (issue 15's "gateway failover"
//! row): branch `a` (Alice, Anna, Arno) and branch `b` (Bob) behind NAT
//! routers, a relay on the WAN. Each round SIGKILLs branch a's gateway and,
//! at that instant, has both survivors send Bob a message, which must
//! cross the WAN, so through a gateway. The round prints:
//! - `gateway`: until both survivors agree on the new gateway (polled
//!   through the CLI, so an upper bound);
//! - per survivor, until its message is *delivered* (Bob's signed receipt
//!   is back at its sender) by whatever path it found: a member that lost
//!   its gateway talks to the relay itself until the new one is up;
//! - `through`: until a message the remaining member sends once the new
//!   gateway is agreed is delivered through it: the issue's "until a
//!   member's messages flow through the new one".
//!
//! The figures are printed, never asserted (speed is a benchmark's job);
//! what is asserted is what users are promised: a new gateway that is not
//! the dead one, and every message at Bob exactly once. The killed gateway
//! comes back (as a member) before the next round, so each round kills a
//! different node. `TINCAN_FAILOVER_ROUNDS=n` sets the rounds (default 3).
//!
//! Needs root and iproute2 (CI has both); skips otherwise. mDNS and all
//! traffic stay inside the namespaces this test creates.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::branches::Branches;
use common::{cli, cli_json, wait_for};
use serde_json::Value;
use tincan_netsim::netns_available;

/// Generous deadlines: they bound a hang, they do not measure speed.
const ELECTION: Duration = Duration::from_secs(40);
const DELIVERY: Duration = Duration::from_secs(60);

const BRANCH_A: [&str; 3] = ["Alice", "Anna", "Arno"];

#[test]
fn gateway_failover_times_are_printed() {
    if !netns_available() {
        println!("skipping: network namespaces unavailable (needs root and iproute2)");
        return;
    }
    let rounds: usize = std::env::var("TINCAN_FAILOVER_ROUNDS")
        .ok()
        .map(|v| v.parse().expect("TINCAN_FAILOVER_ROUNDS is a number"))
        .unwrap_or(3);
    let mut org = Branches::new(&[("a", "10.61.1", &BRANCH_A), ("b", "10.62.1", &["Bob"])]);
    org.start_all(&[]);
    let mut sent = Vec::new();
    let mut figures = Vec::new();
    for round in 1..=rounds {
        let old = org.wait_one_gateway(&BRANCH_A, ELECTION);
        let survivors: Vec<&str> = BRANCH_A.into_iter().filter(|n| *n != old).collect();
        // The path through the gateway works before the kill.
        for sender in &survivors {
            org.wait_online(sender, "Bob", ELECTION);
            let before = format!("round {round}: {sender}'s, before the kill");
            org.send_delivered(sender, "Bob", &before);
            sent.push(before);
        }

        let homes: Vec<PathBuf> = survivors
            .iter()
            .map(|n| org.member(n).home.clone())
            .collect();
        let texts: Vec<String> = survivors
            .iter()
            .map(|n| format!("round {round}: {n}'s, sent at the kill"))
            .collect();
        let i = org.index(&old);
        let killed_at = Instant::now();
        org.members[i].daemon.as_mut().expect("gateway runs").kill();
        let (new, gateway_s, message_s) = std::thread::scope(|s| {
            let senders: Vec<_> = homes
                .iter()
                .zip(&texts)
                .map(|(home, text)| {
                    s.spawn(move || {
                        let delivered = send_wait(home, text);
                        assert_eq!(delivered["state"], "delivered", "{delivered}");
                        killed_at.elapsed().as_secs_f64()
                    })
                })
                .collect();
            let new = wait_new_gateway(&homes, &survivors);
            let gateway_s = killed_at.elapsed().as_secs_f64();
            let message_s: Vec<f64> = senders
                .into_iter()
                .map(|t| t.join().expect("sender thread"))
                .collect();
            (new, gateway_s, message_s)
        });
        sent.extend(texts);
        assert_ne!(new, old, "the dead gateway cannot be the new one");
        let member = survivors.iter().position(|n| *n != new).expect("a member");
        let through = format!(
            "round {round}: {}'s, through the new gateway",
            survivors[member]
        );
        let delivered = send_wait(&homes[member], &through);
        assert_eq!(delivered["state"], "delivered", "{delivered}");
        let through_s = killed_at.elapsed().as_secs_f64();
        sent.push(through);
        println!(
            "failover round {round}: {old} killed; {new} gateway after {gateway_s:.2} s; \
             messages sent at the kill delivered after {:.2} s (member {}) and {:.2} s \
             (gateway {new}); the member's next one through {new} after {through_s:.2} s",
            message_s[member],
            survivors[member],
            message_s[1 - member]
        );
        figures.push((
            gateway_s,
            message_s[member],
            message_s[1 - member],
            through_s,
        ));
        // Back as a member (a live gateway is never deposed), so the next
        // round kills another node.
        org.start(i, &[]);
        org.wait_one_gateway(&BRANCH_A, ELECTION);
    }
    let list = |pick: fn(&(f64, f64, f64, f64)) -> f64| {
        figures
            .iter()
            .map(|f| format!("{:.2}", pick(f)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "failover summary ({rounds} rounds, s): new gateway [{}]; sent at the kill, \
         delivered: member [{}], new gateway [{}]; member's message through the new \
         gateway [{}]",
        list(|f| f.0),
        list(|f| f.1),
        list(|f| f.2),
        list(|f| f.3)
    );

    // Every message reached Bob exactly once, whoever sent it.
    wait_for("every message at Bob", DELIVERY, || {
        let texts = received_by_bob(&org);
        (texts.len() >= sent.len()).then_some(())
    });
    let mut got = received_by_bob(&org);
    got.sort();
    sent.sort();
    assert_eq!(got, sent, "each message exactly once at Bob");
}

/// `send Bob TEXT --wait` from the node at `home`: returns once Bob's
/// receipt is back (or the generous timeout says it never came).
fn send_wait(home: &Path, text: &str) -> Value {
    let out = cli(
        home,
        &["send", "Bob", text, "--wait", "--timeout", "60", "--json"],
    );
    assert!(
        out.status.success(),
        "send failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("send json")
}

/// Waits until one of `names` (homes `homes`) is gateway and the other
/// follows it; returns its name. Polls as fast as the CLI answers.
fn wait_new_gateway(homes: &[PathBuf], names: &[&str]) -> String {
    let deadline = Instant::now() + ELECTION;
    loop {
        let statuses: Vec<Value> = homes
            .iter()
            .map(|h| cli_json(h, &["status", "--json"]))
            .collect();
        let gateway = statuses.iter().position(|s| s["role"] == "gateway");
        if let Some(g) = gateway {
            let device = &statuses[g]["device_id"];
            let followed = statuses
                .iter()
                .enumerate()
                .all(|(i, s)| i == g || s["gateway"]["device_id"] == *device);
            if followed {
                return names[g].to_string();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no new gateway among {names:?} after {ELECTION:?}: {statuses:?}"
        );
    }
}

/// Texts Bob received, from anyone in branch a.
fn received_by_bob(org: &Branches) -> Vec<String> {
    BRANCH_A
        .iter()
        .flat_map(|peer| org.received_texts("Bob", peer))
        .collect()
}
