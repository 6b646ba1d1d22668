//! The CI smoke of the fuzzing (see fuzz/README.md) for the node's targets:
//! every corpus input and kept crash of `control` and `tls_cert` runs
//! through the very target bodies libFuzzer runs (`fuzz/targets/*.rs`).
//!
//! `cargo test -p tincan-node --test fuzz_replay -- --ignored write_seeds`
//! writes the seed corpus from real values.

#[path = "../../fuzz/targets/control.rs"]
mod control;
#[path = "../../fuzz/targets/replay.rs"]
mod replay;
#[path = "../../fuzz/targets/tls_cert.rs"]
mod tls_cert;

use tincan_core::entropy::SeededEntropy;
use tincan_core::Identity;

#[test]
fn control_corpus_replays() {
    replay::replay("control", control::run);
}

#[test]
fn tls_cert_corpus_replays() {
    replay::replay("tls_cert", tls_cert::run);
}

#[test]
#[ignore = "writes the seed corpus; run by hand after a format change"]
fn write_seeds() {
    // Every example request line of the protocol's documentation.
    let protocol = include_str!("../src/control/protocol.rs");
    let lines: Vec<Vec<u8>> = protocol
        .lines()
        .filter_map(|l| {
            let start = l.find("`{\"cmd\"")? + 1;
            let end = start + l[start..].find('`')?;
            Some(format!("{}\n", &l[start..end]).into_bytes())
        })
        .collect();
    assert!(lines.len() > 20, "the protocol documents its requests");
    replay::write_seeds("control", &lines);

    let identity = Identity::generate("Alice", 1_700_000_000, &mut SeededEntropy::new(1));
    let (der, _key) =
        tincan_node::tls::device_tls_identity(&identity).expect("a device tls certificate");
    replay::write_seeds("tls_cert", &[der.to_vec()]);
}
