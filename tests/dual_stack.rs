//! Dual stack end to end: real daemons in network namespaces on one bridge,
//! with mDNS and nothing else, find each other whichever address family
//! they share. A node listens on IPv6 and IPv4 (one socket), and dials an
//! IPv6 link-local address with its interface (scope id), as offices with
//! IPv6 on the LAN, or mDNS answers carrying only `AAAA` records, need.
//!
//! Needs root and iproute2 (CI has both); skips otherwise. mDNS runs only
//! inside the namespaces these tests create, never in the root namespace.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::lan_nodes::{peer, send_and_check, Node, Nodes};
use common::{cli, wait_for, Daemon};
use serde_json::Value;
use tincan_netsim::{netns_available, Lan};

/// Generous deadlines: they bound a hang, they do not measure speed.
const DISCOVERY: Duration = Duration::from_secs(30);
const DELIVERY: Duration = Duration::from_secs(20);

/// Starts `name`'s daemon in namespace `ns` with `args` (after `init`).
fn start(root: &Path, name: &'static str, ns: &str, args: &[&str]) -> Node {
    let home = root.join(name.to_lowercase());
    std::fs::create_dir_all(&home).expect("create home");
    let out = cli(&home, &["init", "--name", name]);
    assert!(
        out.status.success(),
        "{name}: init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let daemon = Daemon::start(&home, args, Some(ns));
    Node { name, home, daemon }
}

/// Waits until every node lists every other one online; returns the peer
/// entries seen, as `(who, whom, entry)`.
fn wait_all_online(nodes: &Nodes) -> Vec<(&'static str, &'static str, Value)> {
    let mut seen = Vec::new();
    for node in &nodes.0 {
        for other in nodes.0.iter().filter(|o| o.name != node.name) {
            let entry = wait_for(
                &format!("{} to list {} online", node.name, other.name),
                DISCOVERY,
                || peer(&node.home, other.name).filter(|p| p["online"] == true),
            );
            seen.push((node.name, other.name, entry));
        }
    }
    seen
}

/// The addresses a peer entry shows.
fn addrs(entry: &Value) -> Vec<String> {
    entry["addrs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn two_ipv6_only_nodes_find_each_other_by_link_local_and_chat() {
    if !netns_available() {
        println!("skipping dual_stack: network namespaces unavailable (needs root and iproute2)");
        return;
    }
    let started = Instant::now();
    let step = |what: &str| eprintln!("[{:>6.1?}] {what}", started.elapsed());
    let mut lan = Lan::new("10.77.6").expect("create lan");
    let tmp = tempfile::tempdir().expect("tempdir");
    let alice_host = lan.add_host("alice").expect("add host");
    let bob_host = lan.add_host("bob").expect("add host");
    // Only IPv6 link-local addresses are left: mDNS can answer with `AAAA`
    // records alone, and only a dual-stack listener that dials with the
    // scope id connects.
    let alice_ip = alice_host.remove_ipv4().expect("alice ipv6 only");
    let bob_ip = bob_host.remove_ipv4().expect("bob ipv6 only");
    step(&format!("ipv6 only: alice {alice_ip}, bob {bob_ip}"));

    // One with the default listen address, one with the IPv4 wildcard a
    // user may have configured: both mean "every address, both families".
    let mut nodes = Nodes(Vec::new());
    nodes
        .0
        .push(start(tmp.path(), "Alice", &alice_host.ns, &[]));
    nodes.0.push(start(
        tmp.path(),
        "Bob",
        &bob_host.ns,
        &["--listen", "0.0.0.0:7000"],
    ));
    step("two daemons running");

    let seen = wait_all_online(&nodes);
    step("both list each other online");
    for (who, whom, entry) in &seen {
        let shown = addrs(entry);
        eprintln!("{who} lists {whom} at {shown:?}");
        assert!(
            shown.iter().any(|a| a.starts_with("[fe80::")),
            "{who} lists {whom} without its link-local address: {entry}"
        );
    }
    send_and_check(
        &nodes,
        "Alice",
        "Bob",
        "hello over ipv6 from alice",
        DELIVERY,
    );
    step("alice -> bob delivered");
    send_and_check(&nodes, "Bob", "Alice", "hello over ipv6 from bob", DELIVERY);
    step("bob -> alice delivered");
}

#[test]
fn mixed_lan_an_ipv6_only_node_and_dual_stack_nodes_all_find_each_other() {
    if !netns_available() {
        println!("skipping dual_stack: network namespaces unavailable (needs root and iproute2)");
        return;
    }
    let started = Instant::now();
    let step = |what: &str| eprintln!("[{:>6.1?}] {what}", started.elapsed());
    let mut lan = Lan::new("10.77.7").expect("create lan");
    let tmp = tempfile::tempdir().expect("tempdir");
    let carol_host = lan.add_host("carol").expect("add host");
    let dave_host = lan.add_host("dave").expect("add host");
    let erin_host = lan.add_host("erin").expect("add host");
    let carol_ip = carol_host.remove_ipv4().expect("carol ipv6 only");
    step(&format!("carol is ipv6 only at {carol_ip}"));

    let mut nodes = Nodes(Vec::new());
    nodes
        .0
        .push(start(tmp.path(), "Carol", &carol_host.ns, &[]));
    nodes.0.push(start(tmp.path(), "Dave", &dave_host.ns, &[]));
    nodes.0.push(start(
        tmp.path(),
        "Erin",
        &erin_host.ns,
        &["--listen", "[::]:7000"],
    ));
    step("three daemons running");

    let seen = wait_all_online(&nodes);
    step("everyone lists everyone online");
    for (who, whom, entry) in &seen {
        let shown = addrs(entry);
        eprintln!("{who} lists {whom} at {shown:?}");
        // A dual-stack socket sees IPv4 peers as `::ffff:a.b.c.d`; users
        // see (and compare) plain IPv4.
        assert!(
            shown.iter().all(|a| !a.contains("::ffff:")),
            "{who} shows {whom} at an IPv4-mapped address: {entry}"
        );
    }
    send_and_check(&nodes, "Carol", "Dave", "from the ipv6-only desk", DELIVERY);
    step("carol -> dave delivered");
    send_and_check(&nodes, "Erin", "Carol", "to the ipv6-only desk", DELIVERY);
    step("erin -> carol delivered");
    send_and_check(&nodes, "Dave", "Erin", "between dual-stack desks", DELIVERY);
    step("dave -> erin delivered");
}

#[test]
fn an_ipv4_only_node_and_a_dual_stack_node_chat_over_ipv4() {
    if !netns_available() {
        println!("skipping dual_stack: network namespaces unavailable (needs root and iproute2)");
        return;
    }
    let started = Instant::now();
    let step = |what: &str| eprintln!("[{:>6.1?}] {what}", started.elapsed());
    let mut lan = Lan::new("10.77.8").expect("create lan");
    let tmp = tempfile::tempdir().expect("tempdir");
    let frank_host = lan.add_host("frank").expect("add host");
    let grace_host = lan.add_host("grace").expect("add host");
    // Frank's host has IPv6 turned off: his node still listens (IPv4 on
    // its socket) and dials Grace's IPv4 address, not her link-local one.
    frank_host.disable_ipv6().expect("frank ipv4 only");
    step("frank is ipv4 only");

    let mut nodes = Nodes(Vec::new());
    nodes
        .0
        .push(start(tmp.path(), "Frank", &frank_host.ns, &[]));
    nodes
        .0
        .push(start(tmp.path(), "Grace", &grace_host.ns, &[]));
    step("two daemons running");

    let seen = wait_all_online(&nodes);
    step("both list each other online");
    let expected = [
        ("Frank", format!("{}:47070", grace_host.ip)),
        ("Grace", format!("{}:47070", frank_host.ip)),
    ];
    for (who, whom, entry) in &seen {
        let shown = addrs(entry);
        eprintln!("{who} lists {whom} at {shown:?}");
        let want = &expected.iter().find(|(w, _)| w == who).expect("a node").1;
        assert_eq!(shown, [want.as_str()], "{who} lists {whom}: {entry}");
    }
    send_and_check(&nodes, "Frank", "Grace", "over plain ipv4", DELIVERY);
    step("frank -> grace delivered");
    send_and_check(&nodes, "Grace", "Frank", "and back", DELIVERY);
    step("grace -> frank delivered");
}
