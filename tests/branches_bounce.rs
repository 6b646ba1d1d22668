//! A member that restarts before its gateway notices it left (a crash and
//! an immediate restart: the gateway's old link to it has not timed out
//! yet) still learns the devices of other sites, and its message to one of
//! them is delivered.
//!
//! Nothing changes at the relay in that case: the gateway's member list is
//! the same, so the relay has no directory change to push, and the
//! restarted member, which starts with no directory at all, hears of
//! nobody elsewhere unless its gateway hands it the directory when its
//! link comes up. This is how `tests/chaos.rs` seed 0x7e57c4a05002 hung at
//! step 59 once directory pushes carried only what changed: Alice,
//! restarted, kept her message to Bob `queued` with no route to him.
//!
//! The member's host cannot reach the relay (a blackhole route in its own
//! namespace), so its directory can only come from its gateway.
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
fn a_member_restarted_at_once_learns_the_other_site_from_its_gateway() {
    if !netns_available() {
        println!("skipping: network namespaces unavailable (needs root and iproute2)");
        return;
    }
    let mut org = Branches::new(&[
        ("a", "10.61.1", &["Alice", "Arno"]),
        ("b", "10.62.1", &["Bob"]),
    ]);
    org.start_all(&[]);
    let gateway = org.wait_one_gateway(&["Alice", "Arno"], ELECTION);
    let member = if gateway == "Alice" { "Arno" } else { "Alice" };
    org.wait_online(member, "Bob", DIRECTORY);
    org.send_delivered(member, "Bob", "before the restart");

    // The member's host loses its own way to the relay.
    let relay_ip = org
        .relay
        .addr
        .split(':')
        .next()
        .expect("relay address")
        .to_string();
    let i = org.index(member);
    let status = org.members[i]
        .host
        .command("ip")
        .args(["route", "add", "blackhole", &format!("{relay_ip}/32")])
        .status()
        .expect("ip route");
    assert!(status.success(), "blackhole route to the relay");

    // Crash and restart at once.
    if let Some(mut daemon) = org.members[i].daemon.take() {
        daemon.kill();
    }
    org.start(i, &[]);
    org.wait_one_gateway(&["Alice", "Arno"], ELECTION);
    let status = org.status(member);
    assert_eq!(status["relay"]["connected"], false, "{status}");

    org.send_delivered(member, "Bob", "after the restart");
    assert_eq!(
        org.received_texts("Bob", member),
        ["before the restart", "after the restart"]
    );
    let device = org.member(member).device_id.clone();
    let gateway_log = org
        .member(&gateway)
        .daemon
        .as_ref()
        .map(|d| d.log())
        .unwrap_or_default();
    if gateway_log
        .lines()
        .any(|l| l.contains("link closed") && l.contains(&device))
    {
        println!("note: the gateway saw {member} leave before it came back; this run did not restart it within the gateway's idle timeout");
    }
    let peers = cli_json(&org.member(member).home, &["peers", "--json"]);
    assert!(peers.as_array().is_some_and(|p| !p.is_empty()), "{peers}");
}
