//! Several devices per user across branches: Alice's second device (Desk)
//! is paired on her LAN (inside the namespaces; `device add` finds her
//! first device over mDNS, no `--peer`), then Bob's
//! messages from another branch reach both of her devices through gateway
//! and relay, and what she sends from Desk shows as outgoing on her first
//! device. Once Desk is removed, the relay refuses it and Bob's next
//! message reaches Alice's first device only.
//!
//! Needs root and iproute2 (CI has both); skips otherwise. All traffic
//! stays inside the namespaces this test creates.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::branches::Branches;
use common::{cli, cli_json, tincan_bin, wait_for};
use serde_json::Value;
use tincan_netsim::netns_available;

/// Bounds a wait across gateway, relay and directory pushes (never a
/// speed requirement).
const DEADLINE: Duration = Duration::from_secs(60);

/// Texts `home` received from `peer`; `None` while `peer` is not known there yet.
fn received(home: &std::path::Path, peer: &str) -> Option<Vec<String>> {
    let out = cli(home, &["history", peer, "--json"]);
    if !out.status.success() {
        return None;
    }
    let rows: Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(
        rows.as_array()?
            .iter()
            .filter(|m| m["direction"] == "in")
            .filter_map(|m| m["text"].as_str().map(String::from))
            .collect(),
    )
}

fn relay_knows(org: &Branches, device: &str) -> bool {
    org.relay_status()["orgs"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|o| o["devices"].as_array().cloned().unwrap_or_default())
        .any(|d| d["device_id"] == device)
}

#[test]
fn a_second_device_is_reached_across_branches_until_removed() {
    if !netns_available() {
        println!("skipping: network namespaces unavailable (needs root and iproute2)");
        return;
    }
    let mut org = Branches::new(&[
        ("a", "10.1.1", &["Alice", "Desk"]),
        ("b", "10.2.1", &["Bob"]),
    ]);
    org.start(org.index("Alice"), &[]);
    org.start(org.index("Bob"), &[]);
    org.wait_online("Bob", "Alice", DEADLINE);
    let alice_home = org.member("Alice").home.clone();
    let alice_id = org.member("Alice").user_id.clone();

    // Pair Desk on Alice's LAN: the code from `device pair --json`.
    let mut pairing = Command::new(tincan_bin())
        .arg("--home")
        .arg(&alice_home)
        .args(["device", "pair", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn device pair");
    let mut out = BufReader::new(pairing.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("code line");
    let shown: Value = serde_json::from_str(&line).expect("code JSON");
    let code = shown["code"].as_str().expect("code").to_string();
    let (desk_ns, desk_home) = {
        let desk = org.member("Desk");
        (desk.host.ns.clone(), desk.home.clone())
    };
    let added = Command::new("ip")
        .args(["netns", "exec", &desk_ns])
        .arg(tincan_bin())
        .arg("--home")
        .arg(&desk_home)
        // No --peer: the device showing the code is found over mDNS.
        .args(["device", "add", &code, "--label", "desk", "--json"])
        .output()
        .expect("run device add");
    assert!(
        added.status.success(),
        "device add: {}",
        String::from_utf8_lossy(&added.stderr)
    );
    let joined: Value = serde_json::from_slice(&added.stdout).expect("joined JSON");
    assert_eq!(joined["user_id"], alice_id.as_str(), "{joined}");
    assert!(
        joined["org"].is_string(),
        "the membership came along: {joined}"
    );
    assert_eq!(joined["relay"], true, "the relay came along: {joined}");
    assert!(pairing.wait().expect("wait pair").success());
    let desk_id = org.member("Desk").device_id.clone();

    org.start(org.index("Desk"), &[]);
    org.wait_one_gateway(&["Alice", "Desk"], DEADLINE);
    wait_for("the relay to know Desk", DEADLINE, || {
        relay_knows(&org, &desk_id).then_some(())
    });

    // Bob learns of Desk from the relay's directory push, which can come
    // after the relay registered it; a message sent before that goes to the
    // devices Bob knew when he sent it.
    org.wait_online("Bob", "Desk", DEADLINE);

    // Bob, in the other branch, reaches both of Alice's devices.
    org.send_delivered("Bob", "Alice", "hello both");
    for of in ["Alice", "Desk"] {
        let home = org.member(of).home.clone();
        wait_for(&format!("{of} to get Bob's message"), DEADLINE, || {
            received(&home, "Bob")?
                .contains(&"hello both".to_string())
                .then_some(())
        });
    }
    // Sent from Desk: outgoing on Alice's first device, received once by Bob.
    org.send_delivered("Desk", "Bob", "from the desk");
    wait_for("the desk's message on Alice's laptop", DEADLINE, || {
        let rows = cli_json(&alice_home, &["history", "Bob", "--json"]);
        rows.as_array()?
            .iter()
            .any(|m| m["text"] == "from the desk" && m["direction"] == "out")
            .then_some(())
    });
    assert_eq!(
        org.received_texts("Bob", "Alice")
            .iter()
            .filter(|t| *t == "from the desk")
            .count(),
        1
    );

    // Remove Desk: the relay drops it, Bob's next message skips it.
    let removed = cli_json(&alice_home, &["device", "remove", "desk", "--json"]);
    assert_eq!(removed["device_id"], desk_id.as_str(), "{removed}");
    wait_for("the relay to forget Desk", DEADLINE, || {
        (!relay_knows(&org, &desk_id)).then_some(())
    });
    wait_for("Desk to be told", DEADLINE, || {
        let out = cli(&desk_home, &["device", "list"]);
        (!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("removed"))
            .then_some(())
    });
    org.send_delivered("Bob", "Alice", "after the removal");
    wait_for("Alice to get it", DEADLINE, || {
        org.received_texts("Alice", "Bob")
            .contains(&"after the removal".to_string())
            .then_some(())
    });
    wait_for("Bob's outbox to empty", DEADLINE, || {
        (org.status("Bob")["outbox"] == 0).then_some(())
    });
    assert!(!org
        .received_texts("Desk", "Bob")
        .contains(&"after the removal".to_string()));
    let relay_log = org.relay.log();
    assert!(
        relay_log.contains("device removed by its user"),
        "the relay logged the removal"
    );
}
