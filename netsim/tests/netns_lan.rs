//! The namespace harness end to end: three hosts on one bridge reach each
//! other by unicast and by mDNS-group multicast, a pulled cable cuts a host
//! off, and dropping the LAN removes every namespace it created.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

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

    assert_multicast(&hosts[0], &hosts[1]);

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

/// The mDNS group and port: what discovery needs from the LAN.
const MDNS: (Ipv4Addr, u16) = (Ipv4Addr::new(224, 0, 0, 251), 5353);
/// Tells [`multicast_helper`] which side to play when re-executed in a host.
const ROLE: &str = "TINCAN_NETSIM_MCAST_ROLE";

/// Re-executes this test binary in `to` (receiving) and `from` (sending) and
/// checks that a datagram to the mDNS group crosses the bridge.
fn assert_multicast(from: &tincan_netsim::Host, to: &tincan_netsim::Host) {
    let exe = std::env::current_exe().expect("current exe");
    let helper = |host: &tincan_netsim::Host, role: &str| {
        let mut cmd = host.command(&exe);
        cmd.args(["--ignored", "--exact", "multicast_helper", "--nocapture"])
            .env(ROLE, role)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    let mut receiver = helper(to, "recv").spawn().expect("spawn receiver");
    // Send only once the receiver has joined the group.
    let mut lines = BufReader::new(receiver.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("read receiver output");
        seen.push(line.clone());
        if line == "joined" {
            break;
        }
    }
    let sender = helper(from, "send").output().expect("run sender");
    let received = receiver.wait_with_output().expect("wait for receiver");
    seen.extend(lines.map_while(Result::ok));
    let stdout = seen.join("\n");
    assert!(
        sender.status.success() && received.status.success(),
        "multicast from {} to {} failed:\nsender: {}\nreceiver: {stdout}{}",
        from.label,
        to.label,
        String::from_utf8_lossy(&sender.stderr),
        String::from_utf8_lossy(&received.stderr)
    );
    assert!(
        stdout.contains(&format!("mcast from {}:", from.ip)),
        "unexpected sender: {stdout}"
    );
}

/// Not a test on its own: the process [`assert_multicast`] starts inside a
/// namespace. Without the role variable it does nothing.
#[test]
#[ignore = "helper process for three_hosts_ping_each_other_and_cleanup_removes_namespaces"]
fn multicast_helper() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    if role == "recv" {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, MDNS.1)).expect("bind");
        socket
            .join_multicast_v4(&MDNS.0, &Ipv4Addr::UNSPECIFIED)
            .expect("join group");
        println!("joined");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut buf = [0u8; 64];
        let (len, peer) = socket.recv_from(&mut buf).expect("no multicast datagram");
        assert_eq!(&buf[..len], b"tincan-netsim");
        println!("mcast from {peer}");
    } else {
        // A few copies: UDP may drop one even on a bridge.
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
        for _ in 0..3 {
            socket.send_to(b"tincan-netsim", MDNS).expect("send");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
