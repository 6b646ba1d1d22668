//! Tests of the LAN mesh. The shared helpers live here, with the rules a
//! hostile peer tests (records prove themselves, bounds hold, a false
//! report is refuted), which docs/security.md cites by these paths; the
//! other rules each have a submodule.

mod dial;
mod gossip;
mod link;
mod sim;

use super::*;
use crate::entropy::SeededEntropy;
use crate::identity::Identity;

fn identity(seed: u64, name: &str) -> Identity {
    Identity::generate(name, 1_700_000_000, &mut SeededEntropy::new(seed))
}

fn addr(i: u64) -> SocketAddr {
    SocketAddr::from(([10, 0, (i / 200) as u8, (i % 200) as u8 + 1], 7000))
}

fn here(id: &Identity, i: u64, version: u64) -> LanRecord {
    LanRecord::sign(
        id,
        vec![addr(i)],
        version,
        LanStatus::Here(ShownPresence::Online),
    )
}

fn mesh(id: &Identity, i: u64) -> LanMesh {
    let mut m = LanMesh::new(id.device_id(), MeshConfig::default());
    m.set_own(here(id, i, 1));
    m
}

/// Gossip carrying `records` and no reports.
fn news(records: Vec<LanRecord>) -> LanGossip {
    LanGossip {
        records,
        suspicions: vec![],
        holds: None,
    }
}

/// Everything sent once the current batch is due.
fn sent(m: &mut LanMesh) -> Vec<(DeviceId, LanGossip)> {
    let due = m.now + m.config.batch_ms;
    m.handle_timeout(due);
    std::iter::from_fn(|| m.poll_transmit()).collect()
}

fn drain(m: &mut LanMesh) -> Vec<LanEvent> {
    std::iter::from_fn(|| m.poll_event()).collect()
}

#[test]
fn records_verify_and_a_changed_field_does_not() {
    let a = identity(1, "Alice");
    let r = here(&a, 1, 5);
    assert_eq!(r.verify(), Ok(()));
    let mut forged = r.clone();
    forged.name = "Mallory".into();
    assert_eq!(forged.verify(), Err(RecordError::BadSignature));
    let mut moved = r.clone();
    moved.addrs = vec![addr(99)];
    assert_eq!(moved.verify(), Err(RecordError::BadSignature));
    let mut other = r;
    other.cert = identity(2, "Bob").cert;
    assert_eq!(other.verify(), Err(RecordError::BadSignature));
}

#[test]
fn a_forged_record_is_refused_and_the_rest_is_taken() {
    let (a, b, c) = (identity(1, "A"), identity(2, "B"), identity(3, "C"));
    let mut m = mesh(&a, 1);
    m.handle_link_up(0, b.device_id());
    let mut forged = here(&c, 3, 9);
    forged.status = LanStatus::Leaving;
    let result = m.handle_gossip(1, b.device_id(), news(vec![forged, here(&b, 2, 1)]));
    assert_eq!(result, Err(RecordError::BadSignature));
    assert!(m.record(&c.device_id()).is_none());
    assert!(m.record(&b.device_id()).is_some());
}

#[test]
fn bounds_hold_for_records_and_hints() {
    let a = identity(1, "A");
    let mut m = LanMesh::new(
        a.device_id(),
        MeshConfig {
            max_devices: 3,
            ..MeshConfig::default()
        },
    );
    let b = identity(2, "B");
    m.handle_link_up(0, b.device_id());
    let records: Vec<LanRecord> = (10..20).map(|i| here(&identity(i, "X"), i, 1)).collect();
    m.handle_gossip(
        0,
        b.device_id(),
        LanGossip {
            records,
            suspicions: vec![],
            holds: None,
        },
    )
    .expect("valid");
    assert_eq!(m.devices().count(), 3);
    for i in 0..10u8 {
        m.handle_hint(DeviceId([i; crate::id::ID_LEN]), vec![addr(i.into())]);
    }
    assert_eq!(m.hints.len(), 3);
}

#[test]
fn a_device_refutes_a_false_report_with_a_newer_record() {
    let (a, b) = (identity(1, "A"), identity(2, "B"));
    let mut m = mesh(&a, 1);
    m.handle_link_up(0, b.device_id());
    m.handle_gossip(
        0,
        b.device_id(),
        LanGossip {
            records: vec![],
            suspicions: vec![Suspicion {
                device: a.device_id(),
                version: 1,
            }],
            holds: None,
        },
    )
    .expect("valid");
    assert_eq!(
        drain(&mut m),
        vec![
            LanEvent::Online(b.device_id()),
            LanEvent::Refute { above: 1 }
        ]
    );
    while m.poll_transmit().is_some() {}
    m.set_own(here(&a, 1, 2));
    let (to, gossip) = m.poll_transmit().expect("the newer record goes out");
    assert_eq!(to, b.device_id());
    assert_eq!(gossip.records[0].version, 2);

    // Elsewhere, the newer record clears the report.
    let c = identity(3, "C");
    let mut other = mesh(&c, 3);
    other.handle_link_up(0, b.device_id());
    other
        .handle_gossip(
            0,
            b.device_id(),
            LanGossip {
                records: vec![here(&a, 1, 1)],
                suspicions: vec![Suspicion {
                    device: a.device_id(),
                    version: 1,
                }],
                holds: None,
            },
        )
        .expect("valid");
    // A refutation within the grace: never shown offline.
    assert!(other.is_online(&a.device_id()));
    other
        .handle_gossip(1, b.device_id(), news(vec![here(&a, 1, 2)]))
        .expect("valid");
    other.handle_timeout(1 + other.config.suspect_grace_ms);
    assert!(other.is_online(&a.device_id()));
    assert!(!drain(&mut other).contains(&LanEvent::Offline(a.device_id())));

    // Without one, the report stands after the grace.
    let d = identity(4, "D");
    let mut third = mesh(&d, 4);
    third.handle_link_up(0, b.device_id());
    third
        .handle_gossip(
            0,
            b.device_id(),
            LanGossip {
                records: vec![here(&a, 1, 1)],
                suspicions: vec![Suspicion {
                    device: a.device_id(),
                    version: 1,
                }],
                holds: None,
            },
        )
        .expect("valid");
    third.handle_timeout(third.config.suspect_grace_ms);
    assert!(!third.is_online(&a.device_id()));
}
