//! The CI smoke of the fuzzing (see fuzz/README.md) for the relay's target:
//! every corpus input and kept crash of `relay_request` runs through the
//! very target body libFuzzer runs (`fuzz/targets/relay_request.rs`).
//!
//! `cargo test -p tincan-relay --test fuzz_replay -- --ignored write_seeds`
//! writes the seed corpus from real encoded frames.

#[path = "../../fuzz/targets/relay_request.rs"]
mod relay_request;
#[path = "../../fuzz/targets/replay.rs"]
mod replay;

use tincan_core::route::Register;
use tincan_core::site::SiteId;
use tincan_core::wire::{self, Frame};

#[test]
fn relay_request_corpus_replays() {
    replay::replay("relay_request", relay_request::run);
}

#[test]
#[ignore = "writes the seed corpus; run by hand after a format change"]
fn write_seeds() {
    let keys = relay_request::keys();
    let register = |name: &str, lan: usize, membership| {
        Frame::Register(Register {
            name: name.into(),
            membership,
            lan_addrs: (0..lan)
                .map(|i| format!("10.0.0.{}:7700", i + 1).parse().expect("address"))
                .collect(),
            lonely: lan == 0,
        })
    };
    let expired = keys
        .org
        .issue("Fuzz Ltd", keys.user.id(), 1_600_000_000, 1_700_000_000)
        .expect("membership");
    let frames = [
        register("Alice", 1, keys.membership.clone()),
        register("Alice", 0, keys.membership.clone()),
        register("Al\u{0}ice", 1, keys.membership.clone()),
        register("Alice", 17, keys.membership.clone()),
        register("Alice", 1, expired),
        Frame::LeaseClaim {
            site: SiteId([3; 16]),
            epoch: 1,
        },
        Frame::Revocations(keys.revocations.clone()),
    ];
    let mut seeds: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| wire::encode(f).expect("seed frame encodes"))
        .collect();
    // A well-framed body of a frame kind from a later protocol revision.
    seeds.push(vec![0, 0, 0, 3, wire::PROTOCOL_VERSION, 40, 0]);
    replay::write_seeds("relay_request", &seeds);
}
