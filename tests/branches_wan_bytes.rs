//! One copy per site on the WAN: a message of ~24 KiB to three users of a
//! remote site costs within 1.2× the WAN bytes of the same message to one
//! of them (the payload crosses once; each extra recipient adds a wrapped
//! key and a receipt). Counted on the remote site router's WAN interface;
//! several rounds of each, summed, so that keep-alives and lease renewals
//! are a small share. Bytes, not time.
//!
//! Needs root and iproute2 (CI has both); skips otherwise. All traffic
//! stays inside the namespaces this test creates.

mod common;

use std::time::Duration;

use common::branches::Branches;
use common::cli_json;
use tincan_netsim::netns::SiteId;
use tincan_netsim::netns_available;

/// Generous deadlines: they bound a hang, they do not measure speed.
const ELECTION: Duration = Duration::from_secs(60);
const DELIVERY: Duration = Duration::from_secs(60);
const ROUNDS: usize = 3;
const TEXT_LEN: usize = 24 * 1024;
const RECIPIENTS: [&str; 3] = ["Bob", "Carol", "Dave"];

#[test]
fn three_recipients_on_a_remote_site_cost_about_one_copy_on_its_wan() {
    if !netns_available() {
        println!("skipping: network namespaces unavailable (needs root and iproute2)");
        return;
    }
    let mut org = Branches::new(&[("a", "10.11.1", &["Alice"]), ("b", "10.12.1", &RECIPIENTS)]);
    let (site_a, site_b) = (org.sites[0], org.sites[1]);
    org.start_all(&[]);
    let gw = org.wait_one_gateway(&RECIPIENTS, ELECTION);
    println!("site b gateway: {gw}");
    for name in RECIPIENTS {
        org.wait_online("Alice", name, DELIVERY);
    }
    // Warm up every path (and the relay's view of the site) before counting.
    org.send_delivered("Alice", &RECIPIENTS.join(","), "warm-up");
    settle(&org, &RECIPIENTS, "warm-up");

    let mut one = Bytes::default();
    let mut three = Bytes::default();
    for round in 0..ROUNDS {
        let text = long_text(&format!("one recipient, round {round}"));
        let b = measure(&org, site_a, site_b, "Bob", &["Bob"], &text);
        println!("round {round}: 1 recipient:  {b}");
        one.add(&b);
        let text = long_text(&format!("three recipients, round {round}"));
        let b = measure(&org, site_a, site_b, "Bob,Carol,Dave", &RECIPIENTS, &text);
        println!("round {round}: 3 recipients: {b}");
        three.add(&b);
    }
    let ratio = three.site_b() as f64 / one.site_b() as f64;
    println!(
        "site b WAN bytes over {ROUNDS} rounds of a {TEXT_LEN}-byte text: 1 recipient {} (rx+tx), \
         3 recipients {}, ratio {ratio:.3}",
        one.site_b(),
        three.site_b()
    );
    println!(
        "site a WAN bytes (the sender's uplink): 1 recipient {}, 3 recipients {}",
        one.site_a(),
        three.site_a()
    );
    assert!(
        one.site_b() >= (ROUNDS * TEXT_LEN) as u64,
        "the payload must cross site b's WAN: {one}"
    );
    assert!(
        ratio <= 1.2,
        "three recipients cost {ratio:.3}× one recipient on site b's WAN (≤ 1.2 expected): \
         one {one}, three {three}"
    );
}

/// Counted bytes, (rx, tx) of each site's router WAN interface.
#[derive(Clone, Copy, Debug, Default)]
struct Bytes {
    a: (u64, u64),
    b: (u64, u64),
}

impl Bytes {
    fn add(&mut self, other: &Bytes) {
        self.a.0 += other.a.0;
        self.a.1 += other.a.1;
        self.b.0 += other.b.0;
        self.b.1 += other.b.1;
    }

    fn site_a(&self) -> u64 {
        self.a.0 + self.a.1
    }

    fn site_b(&self) -> u64 {
        self.b.0 + self.b.1
    }
}

impl std::fmt::Display for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "site b {} (rx {} tx {}), site a {} (rx {} tx {})",
            self.site_b(),
            self.b.0,
            self.b.1,
            self.site_a(),
            self.a.0,
            self.a.1
        )
    }
}

/// Sends `text` from Alice to `to` and counts both sites' WAN bytes from
/// just before the send until every recipient has it and every receipt is
/// back at Alice.
fn measure(
    org: &Branches,
    site_a: SiteId,
    site_b: SiteId,
    to: &str,
    recipients: &[&str],
    text: &str,
) -> Bytes {
    let a0 = org.net.wan_bytes(site_a).expect("site a counters");
    let b0 = org.net.wan_bytes(site_b).expect("site b counters");
    org.send_delivered("Alice", to, text);
    settle(org, recipients, text);
    let a1 = org.net.wan_bytes(site_a).expect("site a counters");
    let b1 = org.net.wan_bytes(site_b).expect("site b counters");
    Bytes {
        a: (a1.0 - a0.0, a1.1 - a0.1),
        b: (b1.0 - b0.0, b1.1 - b0.1),
    }
}

/// Waits until every recipient shows `text` and Alice's outbox is empty
/// (`--wait` returns at the first device's receipt).
fn settle(org: &Branches, recipients: &[&str], text: &str) {
    for name in recipients {
        common::wait_for(&format!("{name} has the message"), DELIVERY, || {
            org.history_texts(name, "Alice")
                .iter()
                .any(|t| t == text)
                .then_some(())
        });
    }
    common::wait_for("every receipt back at Alice", DELIVERY, || {
        let status = cli_json(&org.member("Alice").home, &["status", "--json"]);
        (status["outbox"] == 0).then_some(())
    });
}

/// A text of exactly [`TEXT_LEN`] bytes that starts with `head`.
fn long_text(head: &str) -> String {
    let mut text = format!("{head}: ");
    let mut i = 0u64;
    while text.len() < TEXT_LEN {
        // Varied words, so nothing on the way could shrink it much.
        i = i
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        text.push_str(&format!("{:x} ", i >> 40));
    }
    text.truncate(TEXT_LEN);
    text
}
