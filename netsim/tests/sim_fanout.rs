//! Issue 5's fan-out requirement, as far as core supports it today: a
//! 200-member group spread over 10 sites (20 members each). One member sends
//! messages addressed to the 199 others, each as ONE envelope sealed to all
//! their device certificates (core's `MAX_RECIPIENTS` is 1024).
//!
//! Checked: every member displays every message exactly once and the sender
//! gets every receipt; each remote site's WAN link carries exactly one
//! envelope copy per message (not one per member), of about one payload plus
//! the wrapped keys; the sender's site uploads one copy per message.
//!
//! The room-based variant (sender keys, one room envelope) is
//! `sim_rooms.rs`.

use std::time::Duration;

use tincan_core::envelope::MAX_RECIPIENTS;
use tincan_core::UserId;
use tincan_netsim::sim::{check_seeds, NodeIdx, Sim, SimBuilder, SiteIdx};

const SITES: usize = 10;
const PER_SITE: usize = 20;

fn group(seed: u64, loss: f64) -> (Sim, NodeIdx, Vec<UserId>) {
    let mut sim = SimBuilder::new()
        .seed(seed)
        .sites(SITES)
        .latency(20..60)
        .loss(loss)
        .build();
    for site in 0..SITES {
        for i in 0..PER_SITE {
            sim.add_node(SiteIdx(site), &format!("member-{site}-{i}"));
        }
    }
    // Messages start once every site has elected its gateway.
    sim.settle(Duration::from_secs(30))
        .expect("every site elects a gateway");
    let sender = NodeIdx(0);
    let others: Vec<UserId> = sim
        .node_ids()
        .filter(|n| *n != sender)
        .map(|n| sim.node(n).user_id())
        .collect();
    assert!(others.len() <= MAX_RECIPIENTS);
    (sim, sender, others)
}

fn print_wan(sim: &Sim, label: &str) {
    println!("{label} (seed {}):", sim.seed());
    for site in 0..SITES {
        let w = sim.wan(SiteIdx(site));
        println!(
            "  site {site}: envelopes in {} ({} B), out {} ({} B); receipts in {} ({} B), out {} ({} B)",
            w.envelopes_in.messages,
            w.envelopes_in.bytes,
            w.envelopes_out.messages,
            w.envelopes_out.bytes,
            w.receipts_in.messages,
            w.receipts_in.bytes,
            w.receipts_out.messages,
            w.receipts_out.bytes,
        );
    }
}

fn assert_converged(sim: &Sim, expected: usize) {
    let report = sim.delivery_report();
    assert_eq!(report.expected, expected);
    assert!(
        report.is_exactly_once(),
        "missing {}, duplicated {}, unexpected {}, unacknowledged {}, state shown wrongly {}",
        report.missing.len(),
        report.duplicated.len(),
        report.unexpected.len(),
        report.unacknowledged.len(),
        report.misreported.len()
    );
}

#[test]
fn group_of_200_over_10_sites_sends_one_wan_copy_per_site() {
    const MESSAGES: u64 = 8;
    check_seeds(0..2, |seed| {
        let (mut sim, sender, others) = group(seed, 0.0);
        for i in 0..MESSAGES {
            sim.send(
                sender,
                &others,
                &format!("announcement {i}: lunch is served"),
            )
            .expect("seal to 199 devices");
            sim.run_for(Duration::from_millis(500));
        }
        sim.run_until(|s| s.is_quiescent(), Duration::from_secs(120))
            .expect("every member acknowledges");
        print_wan(&sim, "200-member group, no loss");
        assert_converged(&sim, 199 * MESSAGES as usize);

        let frames: u64 = sim.sent().iter().map(|m| m.frame_len as u64).sum();
        let one_copy = frames / MESSAGES;
        // Routing header: a 20-byte device id per member of the site.
        let routing = 20 * PER_SITE as u64 * MESSAGES;
        println!("  one envelope frame: {one_copy} B (payload + 199 wrapped keys)");
        for site in 1..SITES {
            let w = sim.wan(SiteIdx(site));
            assert_eq!(
                w.envelopes_in.messages, MESSAGES,
                "site {site}: one WAN copy per message, not one per member"
            );
            assert_eq!(w.envelopes_out.messages, 0);
            assert_eq!(w.envelopes_in.bytes, frames + routing, "site {site}");
            assert!(
                w.envelopes_in.bytes < 2 * frames,
                "site {site}: bytes within a small factor of one copy"
            );
            assert_eq!(w.receipts_out.messages, PER_SITE as u64 * MESSAGES);
        }
        let home = sim.wan(SiteIdx(0));
        assert_eq!(
            home.envelopes_out.messages, MESSAGES,
            "one upload per message"
        );
        assert_eq!(home.envelopes_in.messages, 0);
        assert_eq!(home.receipts_in.messages, 180 * MESSAGES);
    });
}

#[test]
fn group_of_200_converges_under_loss() {
    const MESSAGES: u64 = 3;
    check_seeds(10..11, |seed| {
        let (mut sim, sender, others) = group(seed, 0.05);
        for i in 0..MESSAGES {
            sim.send(sender, &others, &format!("lossy {i}"))
                .expect("seal to 199 devices");
            sim.run_for(Duration::from_millis(500));
        }
        sim.run_until(|s| s.is_quiescent(), Duration::from_secs(600))
            .expect("every member acknowledges");
        print_wan(&sim, "200-member group, 5% loss per hop");
        assert_converged(&sim, 199 * MESSAGES as usize);
        for site in 1..SITES {
            let w = sim.wan(SiteIdx(site));
            // Retries go only to the devices still missing, so a site sees
            // a few extra copies at most, never one per member and message.
            assert!(w.envelopes_in.messages >= MESSAGES);
            assert!(
                w.envelopes_in.messages < PER_SITE as u64 * MESSAGES,
                "site {site}: {} copies",
                w.envelopes_in.messages
            );
        }
    });
}
