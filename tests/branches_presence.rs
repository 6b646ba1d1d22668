//! Presence and read receipts across branches: a LAN of two behind its NAT
//! router (one of them elected gateway) and a laptop alone on another LAN
//! (roaming, straight to the relay). A presence change crosses gateway →
//! relay → device within the same path as messages, appear-offline hides
//! a user in the other branch too, a device that restarts learns the other
//! branch's presence again, and a read receipt travels back across.
//!
//! Needs root and iproute2 (CI has both); skips otherwise. mDNS and all
//! traffic stay inside the namespaces this test creates.

mod common;

use std::time::Duration;

use common::branches::Branches;
use common::{cli_json, wait_for};
use serde_json::Value;
use tincan_netsim::netns_available;

/// Generous deadlines: they bound a hang, they do not measure speed.
const ELECTION: Duration = Duration::from_secs(40);
const DIRECTORY: Duration = Duration::from_secs(30);

/// Waits until `of` lists `peer`'s device satisfying `check`.
fn wait_seen(org: &Branches, of: &str, peer: &str, what: &str, check: impl Fn(&Value) -> bool) {
    let device = org.member(peer).device_id.clone();
    let home = org.member(of).home.clone();
    wait_for(&format!("{of} to see {peer} {what}"), DIRECTORY, || {
        let peers = cli_json(&home, &["peers", "--json"]);
        peers
            .as_array()?
            .iter()
            .find(|p| p["device_id"] == device.as_str() && check(p))
            .cloned()
    });
}

#[test]
fn presence_crosses_branches_through_gateway_and_relay() {
    if !netns_available() {
        println!("skipping: network namespaces unavailable (needs root and iproute2)");
        return;
    }
    let mut org = Branches::new(&[
        ("a", "10.7.1", &["Alice", "Anna"]),
        ("b", "10.8.1", &["Bob"]),
    ]);
    org.start_all(&[]);
    let gateway = org.wait_one_gateway(&["Alice", "Anna"], ELECTION);
    let member = if gateway == "Alice" { "Anna" } else { "Alice" };
    println!("branch a: gateway {gateway}, member {member}");
    wait_for("Bob roaming", ELECTION, || {
        let s = org.status("Bob");
        (s["role"] == "roaming" && s["relay"]["connected"] == true).then_some(())
    });
    for of in ["Alice", "Anna"] {
        org.wait_online(of, "Bob", DIRECTORY);
        org.wait_online("Bob", of, DIRECTORY);
    }

    // Bob's change reaches both, the member behind the gateway included.
    cli_json(
        &org.member("Bob").home,
        &[
            "presence",
            "set",
            "busy",
            "--note",
            "in a meeting",
            "--json",
        ],
    );
    for of in ["Alice", "Anna"] {
        wait_seen(&org, of, "Bob", "busy", |p| {
            p["presence"] == "busy" && p["note"] == "in a meeting" && p["online"] == true
        });
    }
    // The member's change reaches Bob through her gateway and the relay.
    cli_json(
        &org.member(member).home,
        &["presence", "set", "out-to-lunch", "--json"],
    );
    wait_seen(&org, "Bob", member, "out to lunch", |p| {
        p["presence"] == "out-to-lunch" && p["online"] == true
    });
    // Appear-offline hides her in the other branch as well.
    cli_json(
        &org.member(&gateway).home,
        &["presence", "set", "appear-offline", "--json"],
    );
    wait_seen(&org, "Bob", &gateway, "offline", |p| {
        p["online"] == false && p["presence"] == "offline"
    });

    // A restarted Bob learns the other branch's presence again.
    let b = org.index("Bob");
    org.members[b].daemon.as_mut().expect("daemon").kill();
    org.start(b, &[]);
    wait_seen(&org, "Bob", member, "out to lunch after his restart", |p| {
        p["presence"] == "out-to-lunch" && p["online"] == true
    });
    wait_seen(&org, member, "Bob", "busy after his restart", |p| {
        p["presence"] == "busy"
    });

    // A read receipt travels back across: Bob reads the member's message.
    let id = org.send_delivered(member, "Bob", "read me across the WAN");
    let read = cli_json(&org.member("Bob").home, &["read", member, "--json"]);
    assert_eq!(read["receipts"], 1, "{read}");
    wait_for("read state at the sender", DIRECTORY, || {
        let rows = cli_json(&org.member(member).home, &["history", "Bob", "--json"]);
        rows.as_array()?
            .iter()
            .find(|m| m["id"] == id.as_str() && m["state"] == "read")
            .cloned()
    });
}
