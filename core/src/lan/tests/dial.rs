//! Whom the mesh dials and when: failed ring dials, hint-only devices and
//! a moving view. Apart because these bounds were each found by an office
//! starting at once (netsim's sim_lan and the 200-daemon lab), and each
//! test pins one of them.

use super::*;

/// A ring dial that fails on a busy LAN is no proof: the device is
/// checked once more, and only a failed check reports it gone.
#[test]
fn a_failed_ring_dial_is_checked_before_the_device_is_reported_gone() {
    let (a, b, c) = (identity(1, "A"), identity(2, "B"), identity(3, "C"));
    let mut m = mesh(&a, 1);
    m.handle_link_up(0, c.device_id());
    m.handle_gossip(0, c.device_id(), news(vec![here(&b, 2, 7), here(&c, 3, 1)]))
        .expect("valid");
    while m.poll_transmit().is_some() {}
    drain(&mut m);
    let dials = m.poll_dials(1);
    assert!(dials.iter().any(|(d, _)| *d == b.device_id()), "{dials:?}");

    m.handle_unreachable(2, b.device_id());
    assert_eq!(drain(&mut m), vec![LanEvent::Check(b.device_id())]);
    assert!(m.is_online(&b.device_id()), "online until the check fails");
    m.handle_unreachable(3, b.device_id());
    m.handle_timeout(3 + m.config.suspect_grace_ms);
    assert!(!m.is_online(&b.device_id()));
    assert_eq!(drain(&mut m), vec![LanEvent::Offline(b.device_id())]);
}

/// A device that hears no multicast dials nobody; the devices that hear
/// its announcement must dial it once even when it is not their ring
/// neighbour, or nobody learns its record. (Found by netsim's sim_lan: with
/// 30 % of 150 devices deaf, 10 were never known by anyone.)
#[test]
fn a_hinted_device_without_a_record_is_dialled_once_even_off_the_ring() {
    let ids: Vec<Identity> = (0..12)
        .map(|i| identity(200 + i, &format!("N{i}")))
        .collect();
    let me = &ids[0];
    let mut m = mesh(me, 0);
    let b = ids[1].device_id();
    m.handle_link_up(0, b);
    let records = ids[1..11]
        .iter()
        .enumerate()
        .map(|(i, id)| here(id, i as u64 + 1, 1))
        .collect();
    m.handle_gossip(
        0,
        b,
        LanGossip {
            records,
            suspicions: vec![],
            holds: None,
        },
    )
    .expect("valid");
    // A deaf device, known only from its mDNS announcement, that sorts
    // off this node's ring targets.
    let known: BTreeSet<DeviceId> = ids[..11].iter().map(|id| id.device_id()).collect();
    let deaf_id = (300..400)
        .map(|seed| identity(seed, "Deaf"))
        .find(|id| {
            let mut present = known.clone();
            present.insert(id.device_id());
            !overlay::targets(&me.device_id(), &present).contains(&id.device_id())
        })
        .expect("some seed sorts off the ring");
    let deaf = deaf_id.device_id();
    m.handle_hint(deaf, vec![addr(11)]);
    let targets: Vec<DeviceId> = m.poll_dials(0).into_iter().map(|(d, _)| d).collect();
    assert!(
        !targets.contains(&deaf),
        "not at once: its record may still arrive through the ring"
    );
    // Woken in time, it is dialled after its grace and within its spread.
    let config = m.config.clone();
    let now = loop {
        let now = m.poll_timeout().expect("a wake-up is due");
        m.handle_timeout(now);
        if m.poll_dials(now).iter().any(|(d, _)| *d == deaf) {
            break now;
        }
        assert!(
            now <= config.hint_grace_ms + config.hint_spread_ms,
            "never dialled"
        );
    };
    assert!(now >= config.hint_grace_ms, "dialled at {now}");

    // Once linked (its record comes with the link), it is no longer dialled
    // for its record; a later link down does not make it a target again.
    m.handle_link_up(now, deaf);
    m.handle_gossip(now, deaf, news(vec![here(&deaf_id, 11, 1)]))
        .expect("valid");
    m.handle_link_down(now + 1, deaf, LinkEnd::Closed);
    let targets: Vec<DeviceId> = m.poll_dials(now + 1).into_iter().map(|(d, _)| d).collect();
    assert!(!targets.contains(&deaf));
}

/// When a whole office starts, many nodes hear a device before its record
/// reaches them; each dials it at a different time (so the first link
/// spreads its record before the rest dial), and a node dials at most
/// `MAX_HINT_DIALS` such devices at once.
#[test]
fn hint_only_devices_are_dialled_spread_out_and_few_at_a_time() {
    let ids: Vec<Identity> = (0..40)
        .map(|i| identity(500 + i, &format!("N{i}")))
        .collect();
    // Twenty nodes' times to dial the same hinted device differ.
    let target = ids[39].device_id();
    let mut due = BTreeSet::new();
    for id in &ids[..20] {
        let mut m = mesh(id, 0);
        m.handle_hint(target, vec![addr(39)]);
        let at = m.hint_due(&target);
        assert!(
            (m.config.hint_grace_ms..m.config.hint_grace_ms + m.config.hint_spread_ms)
                .contains(&at)
        );
        due.insert(at);
    }
    assert!(due.len() >= 15, "dial times {due:?}");

    // One node hearing twenty devices dials two at a time; a failure
    // frees a place, and the failed one waits out its grace again.
    let mut m = mesh(&ids[0], 0);
    for (i, id) in ids[20..40].iter().enumerate() {
        m.handle_hint(id.device_id(), vec![addr(20 + i as u64)]);
    }
    let late = m.config.hint_grace_ms + m.config.hint_spread_ms;
    let first: Vec<DeviceId> = m.poll_dials(late).into_iter().map(|(d, _)| d).collect();
    let for_records: Vec<&DeviceId> = first
        .iter()
        .filter(|d| {
            m.dialling
                .get(d)
                .is_some_and(|(_, why)| *why == DialFor::Record)
        })
        .collect();
    // With no link, ring dials take their own places.
    assert!(first.len() <= MIN_LINKS + MAX_HINT_DIALS, "{first:?}");
    assert_eq!(for_records.len(), MAX_HINT_DIALS);
    let failed = *for_records[0];
    m.handle_unreachable(late, failed);
    let next: Vec<DeviceId> = m.poll_dials(late).into_iter().map(|(d, _)| d).collect();
    assert_eq!(next.len(), 1, "one place was freed: {next:?}");
    assert_ne!(next[0], failed, "the failed one waits");
    // Each failure in a row doubles the wait.
    let first_wait = m.hint_due(&failed) - late;
    assert!(first_wait >= 2 * m.config.hint_grace_ms, "{first_wait}");
    let again = m.hint_due(&failed);
    m.handle_unreachable(again, failed);
    assert!(m.hint_due(&failed) - again >= 2 * first_wait - 1);
}

/// While the view moves (an office starting), a node dials only enough of
/// its ring to hold `MIN_LINKS` links, counting the dials under way.
#[test]
fn a_moving_view_is_dialled_only_up_to_the_minimum_links() {
    let ids: Vec<Identity> = (0..30)
        .map(|i| identity(700 + i, &format!("N{i}")))
        .collect();
    let mut m = mesh(&ids[0], 0);
    let mut asked = BTreeSet::new();
    for (i, id) in ids[1..].iter().enumerate() {
        let now = i as u64 * 100;
        m.handle_hint(id.device_id(), vec![addr(i as u64 + 1)]);
        asked.extend(m.poll_dials(now).into_iter().map(|(d, _)| d));
    }
    assert_eq!(asked.len(), MIN_LINKS, "{asked:?}");
}
