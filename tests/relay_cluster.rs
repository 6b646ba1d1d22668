//! Roaming devices on a relay cluster: two `tincan-relay run --engine`
//! nodes sharing one NATS JetStream server and one key, and real `tincan`
//! daemons configured with both addresses. Kill the node a device is
//! connected to: it moves to the other node, and every message sent
//! before, during and after is delivered exactly once.
//!
//! Every host is a network namespace this test creates (netsim's
//! `Internet`: a WAN with the NATS server and the relay nodes, and one NAT
//! site per device, so the relay cannot take the two for LAN neighbours);
//! all of it is removed when the test ends, also on failure.

mod common;
#[path = "../relay/tests/common/nats.rs"]
#[allow(dead_code)]
mod nats;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::branches::cli_json_relay;
use common::{cli, cli_json, relay_bin, wait_for, Daemon};
use nats::NatsServer;
use tincan_netsim::{Host, Internet};

/// The relay nodes' QUIC port on their WAN hosts.
const RELAY_PORT: u16 = 7443;

const DEADLINE: Duration = Duration::from_secs(60);

/// One relay node, killed when dropped.
struct RelayNode {
    child: Child,
    addr: String,
}

impl RelayNode {
    fn start(host: &Host, home: &Path, org: &str, engine: &str) -> RelayNode {
        let listen = format!("{}:{RELAY_PORT}", host.ip);
        let mut child = Command::new("ip")
            .args(["netns", "exec", &host.ns])
            .arg(relay_bin())
            .arg("--home")
            .arg(home)
            .args(["run", "--listen", &listen, "--org", org])
            .args(["--engine", engine, "--engine-replicas", "1"])
            .env("RUST_LOG", "info,quinn=warn,async_nats=warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tincan-relay");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        loop {
            let line = lines
                .next()
                .expect("the relay prints its listening line")
                .expect("read relay stdout");
            if line.starts_with("tincan-relay listening on") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        RelayNode {
            child,
            addr: listen,
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RelayNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The relay node `home`'s daemon is connected to now, if any.
fn connected_node(home: &Path) -> Option<String> {
    let status = cli_json(home, &["status", "--json"]);
    let relay = &status["relay"];
    (relay["connected"] == true)
        .then(|| relay["addr"].as_str().map(String::from))
        .flatten()
}

fn send(home: &Path, to: &str, text: &str) {
    let out = cli(home, &["send", to, text, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn received(home: &Path, peer: &str) -> Vec<String> {
    let rows = cli_json(home, &["history", peer, "--json"]);
    rows.as_array()
        .map(|a| {
            a.iter()
                .filter(|m| m["direction"] == "in")
                .filter_map(|m| m["text"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_device_moves_to_another_relay_node_and_nothing_is_lost_or_doubled() {
    let mut net = Internet::new("198.51.100").expect("internet");
    let engine_host = net.add_host("nats").expect("nats host");
    let relay_hosts = [
        net.add_host("relay1").expect("relay1"),
        net.add_host("relay2").expect("relay2"),
    ];
    let site_a = net.add_site("a", "10.1.0").expect("site a");
    let site_b = net.add_site("b", "10.2.0").expect("site b");
    let ann_host = net.add_host_to(site_a, "ann").expect("ann host");
    let bob_host = net.add_host_to(site_b, "bob").expect("bob host");
    let nats = NatsServer::start_at(Some(&engine_host.ns), &engine_host.ip.to_string());

    let dir = tempfile::tempdir().expect("tempdir");
    let (ann, bob) = (dir.path().join("ann"), dir.path().join("bob"));
    cli_json(&ann, &["init", "--name", "Ann", "--json"]);
    let bob_id = cli_json(&bob, &["init", "--name", "Bob", "--json"]);
    let org = cli_json(&ann, &["org", "init", "--name", "Acme", "--json"]);
    let org_id = org["org_id"].as_str().expect("org id").to_string();
    let file = dir.path().join("bob.membership");
    let file_arg = file.to_str().expect("utf-8");
    let user = bob_id["user_id"].as_str().expect("user id");
    cli_json(&ann, &["org", "issue", user, "--out", file_arg, "--json"]);
    cli_json(&bob, &["org", "join", file_arg, "--json"]);

    let (home_a, home_b) = (dir.path().join("relay-a"), dir.path().join("relay-b"));
    let fingerprint = cli_json_relay(&home_a, &["init", "--json"])["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_string();
    std::fs::create_dir_all(&home_b).expect("home b");
    std::fs::copy(home_a.join("relay.key"), home_b.join("relay.key")).expect("copy key");
    let mut nodes = [
        RelayNode::start(&relay_hosts[0], &home_a, &org_id, &nats.url),
        RelayNode::start(&relay_hosts[1], &home_b, &org_id, &nats.url),
    ];
    let relay = format!("{},{}#{fingerprint}", nodes[0].addr, nodes[1].addr);
    let daemon =
        |home: &Path, host: &Host| Daemon::start(home, &["--relay", &relay], Some(&host.ns));
    let _ann_daemon = daemon(&ann, &ann_host);
    let _bob_daemon = daemon(&bob, &bob_host);
    for home in [&ann, &bob] {
        let status = cli_json(home, &["status", "--json"]);
        assert_eq!(
            status["relay"]["addrs"].as_array().map(Vec::len),
            Some(2),
            "{status}"
        );
    }
    let bob_node = wait_for("bob connected to a relay node", DEADLINE, || {
        connected_node(&bob)
    });
    wait_for("ann connected to a relay node", DEADLINE, || {
        connected_node(&ann)
    });
    wait_for("ann knows Bob", DEADLINE, || {
        let peers = cli_json(&ann, &["peers", "--json"]);
        peers
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x["name"] == "Bob"))
            .then_some(())
    });
    let out = cli(
        &ann,
        &[
            "send",
            "Bob",
            "before",
            "--wait",
            "--timeout",
            "60",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Kill the node Bob is connected to, with messages on their way.
    let killed = nodes
        .iter()
        .position(|n| n.addr == bob_node)
        .expect("bob's node is one of ours");
    for i in 0..5 {
        send(&ann, "Bob", &format!("during {i}"));
    }
    let started = Instant::now();
    nodes[killed].kill();
    let other = nodes[1 - killed].addr.clone();
    let moved = std::panic::catch_unwind(|| {
        wait_for("bob moved to the other relay node", DEADLINE, || {
            (connected_node(&bob).as_deref() == Some(other.as_str())).then_some(())
        })
    });
    if moved.is_err() {
        let log = common::daemon_logs(&bob);
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        panic!(
            "bob did not move; his log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    eprintln!(
        "bob moved to the other relay node in {:?}",
        started.elapsed()
    );
    for i in 0..5 {
        send(&ann, "Bob", &format!("after {i}"));
    }
    let mut want: Vec<String> = vec!["before".into()];
    want.extend((0..5).map(|i| format!("during {i}")));
    want.extend((0..5).map(|i| format!("after {i}")));
    wait_for("every message at bob", DEADLINE, || {
        let got = received(&bob, "Ann");
        want.iter().all(|w| got.contains(w)).then_some(())
    });
    eprintln!(
        "every message reached bob {:?} after the kill",
        started.elapsed()
    );
    let got = received(&bob, "Ann");
    for w in &want {
        let n = got.iter().filter(|g| *g == w).count();
        assert_eq!(n, 1, "{w:?} received {n} times: {got:?}");
    }
}
