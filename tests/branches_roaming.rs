//! A roaming laptop end to end: Lena's laptop sits in the office (a branch
//! with a gateway), goes home (a NATed LAN with nobody else: she talks to
//! the relay directly) and comes back, while she and Bob in another branch
//! keep sending to each other. Nothing is lost, nothing shown twice, and
//! her role follows the network by itself.
//!
//! Needs root and iproute2 (CI has both); skips otherwise. mDNS and all
//! traffic stay inside the namespaces this test creates.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::branches::Branches;
use common::wait_for;
use tincan_netsim::netns_available;

/// Generous deadlines: they bound a hang, they do not measure speed.
const SETTLE: Duration = Duration::from_secs(40);
const ROLE: Duration = Duration::from_secs(40);
const DELIVERY: Duration = Duration::from_secs(90);

const OFFICE: usize = 0;
const HOME: usize = 2;

/// Queues one message without waiting (the outbox does the rest).
fn queue(org: &Branches, from: &str, to: &str, text: &str) {
    let out = common::cli(&org.member(from).home, &["send", to, text, "--json"]);
    assert!(
        out.status.success(),
        "send {from} → {to}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Both sides send one message each.
fn exchange(org: &Branches, sent: &mut Vec<(String, String)>, tag: &str) {
    for (from, to) in [("Lena", "Bob"), ("Bob", "Lena")] {
        let text = format!("{from} {tag}");
        queue(org, from, to, &text);
        sent.push((from.to_string(), text));
    }
}

fn role(org: &Branches, name: &str) -> String {
    org.status(name)["role"].as_str().unwrap_or("").to_string()
}

#[test]
fn laptop_roams_office_home_office_without_loss_or_duplicates() {
    if !netns_available() {
        println!("skipping: network namespaces unavailable (needs root and iproute2)");
        return;
    }
    let mut org = Branches::new(&[
        ("office", "10.7.1", &["Alice", "Arno", "Lena"]),
        ("b", "10.8.1", &["Bob"]),
        ("home", "192.168.1", &[]),
    ]);
    org.start_all(&[]);
    org.wait_one_gateway(&["Alice", "Arno", "Lena"], SETTLE);
    org.wait_online("Lena", "Bob", SETTLE);
    org.wait_online("Bob", "Lena", SETTLE);
    let mut sent = Vec::new();
    exchange(&org, &mut sent, "in the office");

    // Home: no colleague on this LAN, so Lena talks to the relay directly.
    let moved = std::time::Instant::now();
    org.roam("Lena", HOME);
    exchange(&org, &mut sent, "right after leaving");
    wait_for("Lena roaming at home", ROLE, || {
        (role(&org, "Lena") == "roaming" && org.status("Lena")["relay"]["connected"] == true)
            .then_some(())
    });
    println!(
        "office → home: roaming after {:.1} s",
        moved.elapsed().as_secs_f64()
    );
    exchange(&org, &mut sent, "at home");

    // Back in the office: member of the gateway again, relay connection gone.
    let moved = std::time::Instant::now();
    org.roam("Lena", OFFICE);
    exchange(&org, &mut sent, "right after coming back");
    wait_for("Lena member in the office again", ROLE, || {
        let status = org.status("Lena");
        (status["role"] == "member" && status["relay"]["connected"] == false).then_some(())
    });
    println!(
        "home → office: member after {:.1} s",
        moved.elapsed().as_secs_f64()
    );
    exchange(&org, &mut sent, "back in the office");

    for (from, to) in [("Lena", "Bob"), ("Bob", "Lena")] {
        let expected: BTreeSet<String> = sent
            .iter()
            .filter(|(f, _)| f == from)
            .map(|(_, t)| t.clone())
            .collect();
        let got = wait_for(
            &format!("all of {from}'s messages at {to}"),
            DELIVERY,
            || {
                let texts = org.history_texts(to, from);
                let incoming: Vec<String> =
                    texts.into_iter().filter(|t| t.starts_with(from)).collect();
                (incoming.iter().cloned().collect::<BTreeSet<_>>() == expected).then_some(incoming)
            },
        );
        assert_eq!(
            got.len(),
            expected.len(),
            "{to} shows a message twice: {got:?}"
        );
    }
    // And every sent message ends delivered at its sender.
    for from in ["Lena", "Bob"] {
        let peer = if from == "Lena" { "Bob" } else { "Lena" };
        wait_for(&format!("{from}'s messages delivered"), DELIVERY, || {
            let rows = common::cli_json(&org.member(from).home, &["history", peer, "--json"]);
            rows.as_array()?
                .iter()
                .filter(|m| m["direction"] == "out")
                .all(|m| m["state"] == "delivered")
                .then_some(())
        });
    }
}
