//! LAN discovery end to end: three real daemons in three network namespaces
//! on one bridge find each other over mDNS (no static peers), exchange
//! messages, and notice when one of them dies.
//!
//! Needs root and iproute2 (CI has both); skips otherwise. mDNS runs only
//! inside the namespaces this test creates, never in the root namespace.

mod common;

use std::path::Path;
use std::time::Duration;

use common::lan_nodes::{peer, send_and_check, Node, Nodes};
use common::{cli, wait_for, Daemon};
use tincan_netsim::{netns_available, Lan};

/// Generous deadlines: they bound a hang, they do not measure speed.
const DISCOVERY: Duration = Duration::from_secs(20);
const DELIVERY: Duration = Duration::from_secs(20);
const GONE: Duration = Duration::from_secs(15);

/// The `online` flag of the peer called `name` in `home`'s peer list, if listed.
fn online(home: &Path, name: &str) -> Option<bool> {
    peer(home, name).and_then(|p| p["online"].as_bool())
}

#[test]
fn three_nodes_discover_each_other_chat_and_notice_a_crash() {
    if !netns_available() {
        println!("skipping mdns_lan: network namespaces unavailable (needs root and iproute2)");
        return;
    }
    // Declared first so it is dropped last, after the daemons.
    let start = std::time::Instant::now();
    // Progress on stderr: shown with a failure, to see where time went.
    let step = |what: &str| eprintln!("[{:>6.1?}] {what}", start.elapsed());
    let mut lan = Lan::new("10.77.2").expect("create lan");
    let tmp = tempfile::tempdir().expect("tempdir");

    let mut nodes = Nodes(Vec::new());
    for name in ["Alice", "Bob", "Carol"] {
        let host = lan.add_host(&name.to_lowercase()).expect("add host");
        let home = tmp.path().join(name.to_lowercase());
        std::fs::create_dir_all(&home).expect("create home");
        let out = cli(&home, &["init", "--name", name]);
        step(&format!("{name} initialised"));
        assert!(
            out.status.success(),
            "{name}: init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // mDNS on, no static peers: discovery is the point of this test.
        let daemon = Daemon::start(&home, &["--listen", "0.0.0.0:7000"], Some(&host.ns));
        nodes.0.push(Node { name, home, daemon });
    }

    step("three daemons running");

    // Everyone sees the two others online.
    for node in &nodes.0 {
        let others: Vec<&str> = nodes
            .0
            .iter()
            .map(|n| n.name)
            .filter(|n| *n != node.name)
            .collect();
        wait_for(
            &format!("{} to see {others:?} online", node.name),
            DISCOVERY,
            || {
                others
                    .iter()
                    .all(|other| online(&node.home, other) == Some(true))
                    .then_some(())
            },
        );
    }

    step("everyone sees the others online");
    // Found by mDNS, whoever dialled whom: listed as LAN peers, not as
    // configured (static) ones.
    for node in &nodes.0 {
        for other in nodes.0.iter().filter(|n| n.name != node.name) {
            let row = peer(&node.home, other.name).expect("listed");
            assert_eq!(
                row["via"], "lan",
                "{} lists {}: {row}",
                node.name, other.name
            );
        }
    }
    send_and_check(&nodes, "Alice", "Bob", "hello from alice", DELIVERY);
    step("alice -> bob delivered");
    send_and_check(&nodes, "Carol", "Alice", "hello from carol", DELIVERY);
    step("carol -> alice delivered");

    // Carol crashes; the others notice without her saying goodbye.
    nodes.get_mut("Carol").daemon.kill();
    for name in ["Alice", "Bob"] {
        let home = &nodes.get(name).home;
        wait_for(&format!("{name} to see carol offline"), GONE, || {
            (online(home, "carol") == Some(false)).then_some(())
        });
        step(&format!("{name} sees carol offline"));
    }
}
