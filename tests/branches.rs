//! Branch offices end to end: two LANs behind NAT routers (3 and 2 real
//! daemons) and a relay on the WAN. Each LAN elects exactly one gateway by
//! itself; messages cross in both directions through gateway → relay →
//! gateway; each side sees the other branch's people online.
//!
//! Needs root and iproute2 (CI has both); skips otherwise. mDNS and all
//! traffic stay inside the namespaces this test creates.

mod common;

use std::time::Duration;

use common::branches::Branches;
use common::cli_json;
use tincan_netsim::netns_available;

/// Generous deadlines: they bound a hang, they do not measure speed.
const ELECTION: Duration = Duration::from_secs(40);
const DIRECTORY: Duration = Duration::from_secs(30);

#[test]
fn two_branches_elect_one_gateway_each_and_talk_across() {
    if !netns_available() {
        println!("skipping: network namespaces unavailable (needs root and iproute2)");
        return;
    }
    let mut org = Branches::new(&[
        ("a", "10.1.1", &["Alice", "Anna", "Arno"]),
        ("b", "10.2.1", &["Bob", "Berta"]),
    ]);
    org.start_all(&[]);
    let gw_a = org.wait_one_gateway(&["Alice", "Anna", "Arno"], ELECTION);
    let gw_b = org.wait_one_gateway(&["Bob", "Berta"], ELECTION);
    println!("gateways: branch a {gw_a}, branch b {gw_b}");
    let status = org.status(&gw_a);
    assert_eq!(status["relay"]["connected"], true, "{status}");
    let member = ["Alice", "Anna", "Arno"]
        .into_iter()
        .find(|n| *n != gw_a)
        .expect("a member");
    let status = org.status(member);
    assert_eq!(
        status["relay"]["connected"], false,
        "only the gateway holds the relay: {status}"
    );
    assert!(status["site"].is_string(), "{status}");

    // The other branch's people appear by themselves, online.
    let bob_device = org.member("Bob").device_id.clone();
    common::wait_for("Bob visible in branch a", DIRECTORY, || {
        let peers = cli_json(&org.member("Arno").home, &["peers", "--json"]);
        peers.as_array()?.iter().find(|p| {
            p["device_id"] == bob_device.as_str()
                && p["online"] == true
                && (p["via"] == "gateway" || p["via"] == "relay")
        })?;
        Some(())
    });
    let arno_device = org.member("Arno").device_id.clone();
    common::wait_for("Arno visible in branch b", DIRECTORY, || {
        let peers = cli_json(&org.member("Berta").home, &["peers", "--json"]);
        peers
            .as_array()?
            .iter()
            .find(|p| p["device_id"] == arno_device.as_str() && p["online"] == true)?;
        Some(())
    });

    // Both ways, from members and gateways alike.
    org.send_delivered("Arno", "Bob", "hello branch b");
    // To a member of branch a (not its gateway, whose conversation with
    // Berta gets the next message too).
    org.send_delivered("Berta", member, "hello branch a");
    org.send_delivered(&gw_a, "Berta", "from the gateway");
    assert_eq!(org.received_texts("Bob", "Arno"), ["hello branch b"]);
    assert_eq!(org.received_texts(member, "Berta"), ["hello branch a"]);
    assert_eq!(org.received_texts("Berta", &gw_a), ["from the gateway"]);

    // One message to two people of the other branch: one envelope, shown in
    // both of the sender's conversations and received by both.
    org.send_delivered("Anna", "Bob,Berta", "to both of you");
    for peer in ["Bob", "Berta"] {
        assert!(
            org.history_texts("Anna", peer)
                .contains(&"to both of you".to_string()),
            "Anna's conversation with {peer}"
        );
        common::wait_for(&format!("{peer} got the group message"), DIRECTORY, || {
            org.history_texts(peer, "Anna")
                .contains(&"to both of you".to_string())
                .then_some(())
        });
    }
    let relay_status = std::process::Command::new(common::relay_bin())
        .arg("--home")
        .arg(&org.relay.home)
        .args(["status", "--json"])
        .output()
        .expect("relay status");
    let relay_status: serde_json::Value =
        serde_json::from_slice(&relay_status.stdout).expect("relay status json");
    let sites = relay_status["orgs"][0]["sites"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let live: Vec<_> = sites.iter().filter(|s| s["holder"].is_string()).collect();
    assert_eq!(live.len(), 2, "one live lease per branch: {relay_status}");

    // Without the relay, the other branch is no longer shown online.
    org.relay.kill();
    common::wait_for("Bob shown offline in branch a", DIRECTORY, || {
        let peers = cli_json(&org.member("Arno").home, &["peers", "--json"]);
        let bob = peers
            .as_array()?
            .iter()
            .find(|p| p["device_id"] == bob_device.as_str())?
            .clone();
        (bob["online"] == false).then_some(())
    });
}

#[test]
fn gateway_killed_another_takes_over_and_nothing_is_lost_or_doubled() {
    if !netns_available() {
        println!("skipping: network namespaces unavailable (needs root and iproute2)");
        return;
    }
    let mut org = Branches::new(&[
        ("a", "10.3.1", &["Alice", "Anna", "Arno"]),
        ("b", "10.4.1", &["Bob"]),
    ]);
    org.start_all(&[]);
    let names = ["Alice", "Anna", "Arno"];
    let old = org.wait_one_gateway(&names, ELECTION);
    let bob = org.member("Bob").device_id.clone();
    common::wait_for("Bob visible in branch a", DIRECTORY, || {
        let peers = cli_json(&org.member("Anna").home, &["peers", "--json"]);
        peers
            .as_array()?
            .iter()
            .find(|p| p["device_id"] == bob.as_str())?;
        Some(())
    });
    let survivors: Vec<&str> = names.into_iter().filter(|n| *n != old).collect();
    let sender = survivors[0];
    org.send_delivered(sender, "Bob", "before failover");
    // Queue messages, then kill the gateway with SIGKILL while they travel.
    queue(&org, sender, "Bob", "during failover 1");
    let killed_at = std::time::Instant::now();
    let i = org
        .members
        .iter()
        .position(|m| m.name == old)
        .expect("gateway");
    org.members[i].daemon.as_mut().expect("daemon").kill();
    queue(&org, sender, "Bob", "during failover 2");
    let new = org.wait_one_gateway(&survivors, ELECTION);
    println!(
        "failover: {old} killed, {new} is gateway after {:.2} s (measured through the CLI, so an upper bound)",
        killed_at.elapsed().as_secs_f64()
    );
    assert_ne!(new, old);
    org.send_delivered(sender, "Bob", "after failover");
    common::wait_for("all four messages at Bob", DIRECTORY, || {
        let texts = org.history_texts("Bob", sender);
        (texts.len() >= 4).then_some(texts)
    });
    let mut texts = org.history_texts("Bob", sender);
    texts.sort();
    assert_eq!(
        texts,
        [
            "after failover",
            "before failover",
            "during failover 1",
            "during failover 2"
        ],
        "each message exactly once"
    );
}

#[test]
fn mail_for_an_offline_device_survives_a_relay_restart() {
    if !netns_available() {
        println!("skipping: network namespaces unavailable (needs root and iproute2)");
        return;
    }
    let mut org = Branches::new(&[("a", "10.5.1", &["Alice"]), ("b", "10.6.1", &["Bob"])]);
    org.start_all(&[]);
    // Alone on their LANs, both talk to the relay directly.
    for name in ["Alice", "Bob"] {
        common::wait_for(&format!("{name} roaming"), ELECTION, || {
            let s = org.status(name);
            (s["role"] == "roaming" && s["relay"]["connected"] == true).then_some(())
        });
    }
    org.wait_online("Alice", "Bob", DIRECTORY);
    org.send_delivered("Alice", "Bob", "while you are here");
    let b = org
        .members
        .iter()
        .position(|m| m.name == "Bob")
        .expect("bob");
    org.members[b].daemon.as_mut().expect("daemon").kill();
    queue(&org, "Alice", "Bob", "while you were away");
    // The relay takes custody: the message shows "sent", not "delivered".
    common::wait_for("custody at the relay", DIRECTORY, || {
        let rows = cli_json(&org.member("Alice").home, &["history", "Bob", "--json"]);
        let last = rows.as_array()?.last()?.clone();
        (last["state"] == "sent").then_some(())
    });
    org.relay.restart();
    org.start(b, &[]);
    common::wait_for("Bob got the held mail", DIRECTORY, || {
        let texts = org.history_texts("Bob", "Alice");
        (texts.len() == 2).then_some(())
    });
    assert_eq!(
        org.history_texts("Bob", "Alice"),
        ["while you are here", "while you were away"]
    );
    // The end-to-end receipt travels back: Alice sees it delivered.
    common::wait_for("late receipt at Alice", DIRECTORY, || {
        let rows = cli_json(&org.member("Alice").home, &["history", "Bob", "--json"]);
        let last = rows.as_array()?.last()?.clone();
        (last["state"] == "delivered").then_some(())
    });
}

/// Queues a message without waiting for delivery.
fn queue(org: &Branches, from: &str, to: &str, text: &str) {
    let out = common::cli(&org.member(from).home, &["send", to, text, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
