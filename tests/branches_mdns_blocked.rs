//! A branch whose LAN drops multicast (a Wi-Fi with multicast isolation):
//! mDNS finds no one, so each node registers with the relay as lonely; the
//! relay introduces the devices that arrive from the same public address
//! with the same LAN prefix, they dial each other directly, message each
//! other and elect exactly one gateway as usual. A second, normal branch
//! is reachable across. A device that arrives after the election (when the
//! relay only sees the gateway) still meets every member: the gateway
//! passes its LAN peers' addresses on.
//!
//! Needs root and iproute2 (CI has both); skips otherwise. All traffic
//! stays inside the namespaces this test creates.

mod common;

use std::time::Duration;

use common::branches::Branches;
use common::cli_json;
use tincan_netsim::netns_available;

/// Generous deadlines: they bound a hang, they do not measure speed.
const ELECTION: Duration = Duration::from_secs(60);
const DIRECTORY: Duration = Duration::from_secs(40);

#[test]
fn blocked_multicast_lan_finds_itself_through_the_relay_and_elects_one_gateway() {
    if !netns_available() {
        println!("skipping: network namespaces unavailable (needs root and iproute2)");
        return;
    }
    let blocked = ["Mia", "Max", "Mo"];
    let mut org = Branches::new(&[
        ("m", "10.7.1", &blocked),
        ("n", "10.8.1", &["Nina", "Nils"]),
    ]);
    // Before any daemon runs: no mDNS packet ever crosses this LAN.
    org.net
        .set_multicast_blocked(org.sites[0], true)
        .expect("block multicast");
    org.start_all(&[]);

    // The relay's introductions make them LAN peers of one another.
    for of in blocked {
        for peer in blocked.into_iter().filter(|p| *p != of) {
            org.wait_online(of, peer, DIRECTORY);
        }
    }
    let gw_m = org.wait_one_gateway(&blocked, ELECTION);
    let gw_n = org.wait_one_gateway(&["Nina", "Nils"], ELECTION);
    println!("gateways: blocked branch {gw_m}, normal branch {gw_n}");
    let mo = org.member("Mo").device_id.clone();
    let peers = cli_json(&org.member("Mia").home, &["peers", "--json"]);
    let row = peers
        .as_array()
        .and_then(|a| a.iter().find(|p| p["device_id"] == mo.as_str()))
        .cloned()
        .expect("Mo in Mia's peers");
    assert_eq!(row["via"], "lan", "a neighbour reached directly: {row}");

    // Within the blocked LAN, directly.
    org.send_delivered("Mia", "Max", "no multicast here");
    org.send_delivered("Mo", "Mia", "still found you");
    assert_eq!(org.history_texts("Max", "Mia"), ["no multicast here"]);
    assert_eq!(org.history_texts("Mia", "Mo"), ["still found you"]);

    // Across to the normal branch and back.
    org.wait_online("Max", "Nils", DIRECTORY);
    org.wait_online("Nina", "Mo", DIRECTORY);
    org.send_delivered("Max", "Nils", "hello from the quiet lan");
    org.send_delivered("Nina", "Mo", "hello back");
    assert_eq!(
        org.history_texts("Nils", "Max"),
        ["hello from the quiet lan"]
    );
    assert_eq!(org.history_texts("Mo", "Nina"), ["hello back"]);

    // Still one gateway on the blocked LAN after all that.
    assert_eq!(org.wait_one_gateway(&blocked, ELECTION), gw_m);
    assert_found_without_mdns(&org, &blocked);
}

/// The blocked LAN's daemons heard no mDNS at all, and the relay made the
/// introductions (the daemons and the relay log at debug level).
fn assert_found_without_mdns(org: &Branches, blocked: &[&str]) {
    for name in blocked {
        let log = org.member(name).daemon.as_ref().expect("running").log();
        assert!(
            !log.contains("mdns hint"),
            "{name} heard mDNS on a LAN that drops multicast:\n{log}"
        );
    }
    assert!(
        org.relay.log().contains("telling probable lan neighbours"),
        "the relay introduced no neighbours:\n{}",
        org.relay.log()
    );
}

#[test]
fn late_joiner_on_a_blocked_lan_meets_every_member_not_just_the_gateway() {
    if !netns_available() {
        println!("skipping: network namespaces unavailable (needs root and iproute2)");
        return;
    }
    let blocked = ["Lea", "Leo", "Lou"];
    let mut org = Branches::new(&[("l", "10.9.1", &blocked), ("k", "10.10.1", &["Kim"])]);
    org.net
        .set_multicast_blocked(org.sites[0], true)
        .expect("block multicast");
    for i in 0..2 {
        org.start(i, &[]);
    }
    org.start(3, &[]);
    let first = org.wait_one_gateway(&blocked[..2], ELECTION);
    println!("first gateway: {first}");
    org.start(2, &[]);
    let gw = org.wait_one_gateway(&blocked, ELECTION);
    println!("gateway after the late join: {gw}");
    for of in blocked {
        for peer in blocked.into_iter().filter(|p| *p != of) {
            let device = org.member(peer).device_id.clone();
            let home = org.member(of).home.clone();
            common::wait_for(&format!("{peer} on the lan of {of}"), DIRECTORY, || {
                let peers = cli_json(&home, &["peers", "--json"]);
                peers.as_array()?.iter().find(|p| {
                    p["device_id"] == device.as_str() && p["online"] == true && p["via"] == "lan"
                })?;
                Some(())
            });
        }
    }
    let members: Vec<&str> = blocked.into_iter().filter(|n| *n != gw).collect();
    org.send_delivered(members[0], members[1], "member to member");
    org.send_delivered("Lou", "Kim", "late but here");
    assert_eq!(
        org.history_texts(members[1], members[0]),
        ["member to member"]
    );
    assert_eq!(org.history_texts("Kim", "Lou"), ["late but here"]);
    assert_found_without_mdns(&org, &blocked);
}
