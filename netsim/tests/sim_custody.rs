//! The relay's custody in the simulator (core's `route::custody`, as the
//! real relay runs it): a message for a device the relay cannot reach is
//! held by the relay, the sender is told (`Custody`: it stops retrying and
//! shows "sent"), and the relay hands it over when the device's site has a
//! gateway again; the recipient's receipt travels back to the sender
//! through the relay's mailbox, and the message is delivered exactly once.

use std::time::Duration;

use tincan_core::delivery::MessageState;
use tincan_netsim::sim::{check_seeds, SimBuilder, SiteIdx};

#[test]
fn a_dark_site_gets_its_mail_from_custody_when_its_gateway_returns() {
    check_seeds(0..10, |seed| {
        let mut sim = SimBuilder::new()
            .seed(seed)
            .sites(2)
            .latency(10..40)
            .lan_latency(1..3)
            .build();
        let alice = sim.add_node(SiteIdx(0), "alice");
        sim.add_node(SiteIdx(0), "ann");
        let site1: Vec<_> = ["bob", "carol", "dave"]
            .iter()
            .map(|name| sim.add_node(SiteIdx(1), name))
            .collect();
        sim.settle(Duration::from_secs(30))
            .expect("gateways settle");
        // Site 1 goes dark (a power cut): the relay can reach no one there.
        for node in &site1 {
            sim.crash(*node);
        }
        let to: Vec<_> = site1.iter().map(|n| sim.node(*n).user_id()).collect();
        let id = sim.send(alice, &to, "while you were out").expect("send");
        sim.run_for(Duration::from_secs(20));
        assert_eq!(
            sim.custody_items(),
            3,
            "seed {seed}: one copy per device held"
        );
        assert_eq!(sim.held_items(), 3, "seed {seed}");
        let state = sim.node(alice).message_state(&id).map(|(s, _)| s);
        assert_eq!(
            state,
            Some(MessageState::Sent),
            "seed {seed}: held shows sent"
        );
        let wan_before = sim.wan(SiteIdx(1)).envelopes_in.messages;
        assert_eq!(
            wan_before, 0,
            "seed {seed}: nothing went into the dark site"
        );
        for node in &site1 {
            sim.restart(*node);
        }
        sim.run_until(|s| s.is_quiescent(), Duration::from_secs(120))
            .expect("delivered once the site is back");
        let state = sim.node(alice).message_state(&id).map(|(s, _)| s);
        assert_eq!(state, Some(MessageState::Delivered), "seed {seed}");
        assert!(sim.delivery_report().is_exactly_once(), "seed {seed}");
        // The three receipts were held for alice on their way back, and
        // taken: once her answers reach the relay, it holds nothing.
        sim.run_for(Duration::from_secs(5));
        assert_eq!(sim.custody_items(), 6, "seed {seed}");
        assert_eq!(sim.held_items(), 0, "seed {seed}");
        // The devices come back one by one, each talking to the relay
        // itself until the site has elected its gateway: the mailbox
        // hands over at most one copy per device, never more.
        let copies = sim.wan(SiteIdx(1)).envelopes_in.messages;
        assert!(copies <= 3, "seed {seed}: {copies} copies into the site");
    });
}
