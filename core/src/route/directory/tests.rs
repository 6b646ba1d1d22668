//! Tests of versioned directory updates: the holder's rules one by one,
//! then a publisher and a holder over a channel that loses, delays and
//! reorders pushes (proptest): whenever the holder has a version it holds
//! exactly what was published at that version, and one clean exchange at
//! the end always brings it up to date.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;
use crate::entropy::SeededEntropy;
use crate::identity::{DeviceCert, Identity};
use crate::route::MAX_DIRECTORY_CHUNK;

/// Certificates of `n` devices (generated once per size).
fn certs(n: usize) -> Vec<DeviceCert> {
    static SMALL: OnceLock<Vec<DeviceCert>> = OnceLock::new();
    let make = |n: usize| -> Vec<DeviceCert> {
        (0..n)
            .map(|i| {
                Identity::generate("d", 1_700_000_000, &mut SeededEntropy::new(i as u64 + 1)).cert
            })
            .collect()
    };
    if n <= 8 {
        SMALL.get_or_init(|| make(8))[..n].to_vec()
    } else {
        make(n)
    }
}

fn entry(cert: &DeviceCert, online: bool) -> DirectoryEntry {
    DirectoryEntry {
        cert: cert.clone(),
        name: "d".into(),
        online,
        site: None,
    }
}

fn held_map(held: &HeldDirectory) -> BTreeMap<DeviceId, bool> {
    held.entries().iter().map(|(d, e)| (*d, e.online)).collect()
}

fn apply_all(
    held: &mut HeldDirectory,
    parts: Vec<DirectoryUpdate>,
) -> Result<(), DirectoryUpdateError> {
    for part in parts {
        held.handle_update(part)?;
    }
    Ok(())
}

#[test]
fn the_whole_directory_replaces_what_is_held_and_drops_what_it_lacks() {
    let c = certs(3);
    let mut published = PublishedDirectory::new();
    let mut held = HeldDirectory::new();
    published.publish(vec![entry(&c[0], true), entry(&c[1], true)]);
    apply_all(&mut held, published.updates_since(0)).expect("whole");
    assert_eq!(held.version(), Some(published.version()));
    published.publish(vec![entry(&c[1], false), entry(&c[2], true)]);
    let mut fresh = held.clone();
    // A holder that lost track gets the whole directory again.
    let applied = fresh
        .handle_update(published.updates_since(0).remove(0))
        .expect("whole");
    assert_eq!(applied.gone, vec![c[0].device_id()]);
    assert_eq!(
        held_map(&fresh),
        BTreeMap::from([(c[1].device_id(), false), (c[2].device_id(), true)])
    );
}

#[test]
fn a_delta_applies_to_its_base_only() {
    let c = certs(3);
    let mut published = PublishedDirectory::new();
    let mut held = HeldDirectory::new();
    published.publish(vec![entry(&c[0], true)]);
    apply_all(&mut held, published.updates_since(0)).expect("whole");
    let v1 = published.version();
    published.publish(vec![entry(&c[0], true), entry(&c[1], true)]);
    let to_v2 = published.updates_since(v1);
    assert_eq!(to_v2.len(), 1);
    assert_eq!(
        to_v2[0].entries,
        vec![entry(&c[1], true)],
        "only the change"
    );
    published.publish(vec![entry(&c[0], false), entry(&c[1], true)]);
    let to_v3 = published.updates_since(v1);
    // v1 -> v3 applies; the late v1 -> v2 then does not undo it.
    apply_all(&mut held, to_v3).expect("delta");
    let err = apply_all(&mut held, to_v2).expect_err("stale delta");
    assert!(matches!(err, DirectoryUpdateError::OtherBase { base, .. } if base == v1));
    assert_eq!(held.version(), Some(published.version()));
    assert_eq!(
        held_map(&held),
        BTreeMap::from([(c[0].device_id(), false), (c[1].device_id(), true)])
    );
}

#[test]
fn a_device_that_left_is_named_gone_in_the_delta() {
    let c = certs(2);
    let mut published = PublishedDirectory::new();
    let mut held = HeldDirectory::new();
    published.publish(vec![entry(&c[0], true), entry(&c[1], true)]);
    apply_all(&mut held, published.updates_since(0)).expect("whole");
    let v1 = published.version();
    published.publish(vec![entry(&c[0], true)]);
    let delta = published.updates_since(v1);
    assert_eq!(delta[0].gone, vec![c[1].device_id()]);
    apply_all(&mut held, delta).expect("delta");
    assert_eq!(held_map(&held), BTreeMap::from([(c[0].device_id(), true)]));
    // Once no holder needs the tombstone it goes, and older holders get
    // the whole directory.
    published.prune(published.version());
    assert_eq!(published.tombstones(), 0);
    assert_eq!(published.updates_since(v1)[0].base, 0);
}

#[test]
fn nothing_changes_nothing() {
    let c = certs(1);
    let mut published = PublishedDirectory::new();
    assert!(published.publish(vec![entry(&c[0], true)]));
    let v = published.version();
    assert!(!published.publish(vec![entry(&c[0], true)]));
    assert_eq!(published.version(), v);
    let delta = published.updates_since(v);
    assert_eq!(delta.len(), 1);
    assert!(delta[0].entries.is_empty() && delta[0].gone.is_empty() && delta[0].last);
}

#[test]
fn parts_apply_in_order_and_a_missing_one_leaves_no_version() {
    let n = MAX_DIRECTORY_CHUNK * 2 + 3;
    let c = certs(n);
    let mut published = PublishedDirectory::new();
    published.publish(c.iter().map(|c| entry(c, true)).collect());
    let parts = published.updates_since(0);
    assert_eq!(parts.len(), 3);
    assert!(parts[2].last && !parts[0].last && !parts[1].last);

    // Held from before: one device the new directory lacks.
    let other = [Identity::generate("o", 1_700_000_000, &mut SeededEntropy::new(9_999)).cert];
    let mut held = HeldDirectory::new();
    let mut old = PublishedDirectory::new();
    old.publish(vec![entry(&other[0], true)]);
    apply_all(&mut held, old.updates_since(0)).expect("old whole");
    assert!(held.entries().contains_key(&other[0].device_id()));

    held.handle_update(parts[0].clone()).expect("part 0");
    assert_eq!(held.version(), None, "no version between parts");
    // What the whole directory lacks stays until its last part.
    assert!(held.entries().contains_key(&other[0].device_id()));
    let skipped = held.handle_update(parts[2].clone());
    assert!(matches!(
        skipped,
        Err(DirectoryUpdateError::OutOfOrder { part: 2, .. })
    ));
    held.handle_update(parts[1].clone()).expect("part 1");
    let applied = held.handle_update(parts[2].clone()).expect("part 2");
    assert!(applied.complete);
    assert_eq!(applied.gone, vec![other[0].device_id()]);
    assert_eq!(held.entries().len(), n);
    assert_eq!(held.version(), Some(published.version()));

    // A delta cut after its first part: the next delta is refused.
    let v = published.version();
    published.publish(c.iter().map(|c| entry(c, false)).collect());
    let delta = published.updates_since(v);
    assert_eq!(delta.len(), 3);
    held.handle_update(delta[0].clone()).expect("first part");
    let v2 = published.version();
    published.publish(c.iter().map(|c| entry(c, true)).collect());
    let next = published.updates_since(v2);
    assert!(held.handle_update(next[0].clone()).is_err());
    // The whole directory heals it.
    apply_all(&mut held, published.updates_since(0)).expect("whole");
    assert_eq!(held.version(), Some(published.version()));
    assert!(held.entries().values().all(|e| e.online));
}

/// What the channel between the publisher and the holder does next.
#[derive(Clone, Debug)]
enum Step {
    /// The directory changes: device `i` is listed when bit `i` of `listed`
    /// is set, online when bit `i` of `online` is.
    Change { listed: u8, online: u8 },
    /// The publisher sends what the holder is due (if no push is awaited).
    Push,
    /// One push in the channel arrives (index modulo its length).
    Arrive(usize),
    /// The awaited push times out: the publisher stops waiting for it (it
    /// may still arrive later).
    Timeout,
    /// One push in the channel is lost.
    Lose(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (any::<u8>(), any::<u8>()).prop_map(|(listed, online)| Step::Change { listed, online }),
        3 => Just(Step::Push),
        3 => any::<usize>().prop_map(Step::Arrive),
        1 => Just(Step::Timeout),
        1 => any::<usize>().prop_map(Step::Lose),
    ]
}

/// The publisher's side, as the relay runs it for one connection.
struct Publisher {
    published: PublishedDirectory,
    /// What the holder acknowledged (0: it gets the whole directory).
    acked: u64,
    /// The id of the push it waits for.
    awaited: Option<u64>,
    /// The directory at each version, to check the holder against.
    history: BTreeMap<u64, BTreeMap<DeviceId, bool>>,
    next_id: u64,
}

impl Publisher {
    fn answer(&mut self, id: u64, version: u64, ok: bool) {
        if self.awaited != Some(id) {
            return; // timed out: the answer goes nowhere
        }
        self.awaited = None;
        self.acked = if ok { version } else { 0 };
        let oldest = if self.acked > 0 {
            self.acked
        } else {
            self.published.version()
        };
        self.published.prune(oldest);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_holder_is_never_wrong_and_always_heals(steps in proptest::collection::vec(step(), 0..60)) {
        let c = certs(8);
        let mut publisher = Publisher {
            published: PublishedDirectory::new(),
            acked: 0,
            awaited: None,
            history: BTreeMap::from([(0, BTreeMap::new())]),
            next_id: 0,
        };
        let mut held = HeldDirectory::new();
        // Pushes in the channel: (id, version, parts).
        let mut channel: Vec<(u64, u64, Vec<DirectoryUpdate>)> = Vec::new();
        for step in steps {
            match step {
                Step::Change { listed, online } => {
                    let current: Vec<DirectoryEntry> = (0..8)
                        .filter(|i| listed & (1 << i) != 0)
                        .map(|i| entry(&c[i], online & (1 << i) != 0))
                        .collect();
                    publisher.published.publish(current.clone());
                    publisher.history.insert(
                        publisher.published.version(),
                        current.iter().map(|e| (e.cert.device_id(), e.online)).collect(),
                    );
                }
                Step::Push => {
                    if publisher.awaited.is_none() {
                        let id = publisher.next_id;
                        publisher.next_id += 1;
                        publisher.awaited = Some(id);
                        channel.push((
                            id,
                            publisher.published.version(),
                            publisher.published.updates_since(publisher.acked),
                        ));
                    }
                }
                Step::Arrive(i) if !channel.is_empty() => {
                    let (id, version, parts) = channel.remove(i % channel.len());
                    let ok = apply_all(&mut held, parts).is_ok();
                    publisher.answer(id, version, ok);
                }
                Step::Timeout => publisher.awaited = None,
                Step::Lose(i) if !channel.is_empty() => {
                    let (id, _, _) = channel.remove(i % channel.len());
                    if publisher.awaited == Some(id) {
                        publisher.awaited = None;
                    }
                }
                Step::Arrive(_) | Step::Lose(_) => {}
            }
            if let Some(v) = held.version() {
                prop_assert_eq!(Some(&held_map(&held)), publisher.history.get(&v));
            }
        }
        // The channel clears; a clean exchange or two bring the holder up
        // to date (a refused delta is followed by the whole directory).
        publisher.awaited = None;
        for _ in 0..2 {
            if held.version() == Some(publisher.published.version()) {
                break;
            }
            let parts = publisher.published.updates_since(publisher.acked);
            let version = publisher.published.version();
            publisher.awaited = Some(u64::MAX);
            let ok = apply_all(&mut held, parts).is_ok();
            publisher.answer(u64::MAX, version, ok);
        }
        prop_assert_eq!(held.version(), Some(publisher.published.version()));
        prop_assert_eq!(
            Some(&held_map(&held)),
            publisher.history.get(&publisher.published.version())
        );
    }
}
