//! The namespace harness end to end: three hosts on one bridge reach each
//! other, and dropping the LAN removes every namespace it created.

use std::process::Command;

use tincan_netsim::{netns_available, Lan};

/// The names `ip netns list` shows (each line is `NAME [(id: N)]`).
fn netns_list() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("run ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn ping(from: &tincan_netsim::Host, to: std::net::Ipv4Addr) -> bool {
    from.command("ping")
        .args(["-c1", "-W2", &to.to_string()])
        .output()
        .expect("run ping")
        .status
        .success()
}

#[test]
fn three_hosts_ping_each_other_and_cleanup_removes_namespaces() {
    if !netns_available() {
        println!("skipping: network namespaces unavailable (needs root and iproute2)");
        return;
    }
    let mut lan = Lan::new("10.77.1").expect("create lan");
    let hosts: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|label| lan.add_host(label).expect("add host"))
        .collect();
    let mut names: Vec<String> = hosts.iter().map(|h| h.ns.clone()).collect();
    names.push(lan.ns().to_owned());
    let listed = netns_list();
    for name in &names {
        assert!(listed.contains(name), "{name} missing from {listed:?}");
    }

    for from in &hosts {
        for to in &hosts {
            if from.ns != to.ns {
                assert!(ping(from, to.ip), "{} cannot ping {}", from.label, to.ip);
            }
        }
    }

    // A pulled cable cuts the host off; plugging it back restores it.
    hosts[2].set_link(false).expect("pull cable");
    assert!(!ping(&hosts[0], hosts[2].ip), "ping crossed a pulled cable");
    hosts[2].set_link(true).expect("plug cable");
    assert!(ping(&hosts[0], hosts[2].ip), "no ping after replugging");

    drop(lan);
    let listed = netns_list();
    for name in &names {
        assert!(!listed.contains(name), "{name} left behind in {listed:?}");
    }
}
