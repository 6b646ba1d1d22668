//! Links going down and idling out: what a lost link, a goodbye and an
//! idle on-demand link mean for the view. Apart because these are the
//! mesh's liveness rules, where a bug shows a live device offline.

use super::*;

#[test]
fn a_lost_link_is_checked_and_an_unreachable_device_is_reported_gone() {
    let (a, b, c) = (identity(1, "A"), identity(2, "B"), identity(3, "C"));
    let mut m = mesh(&a, 1);
    m.handle_link_up(0, b.device_id());
    m.handle_link_up(0, c.device_id());
    m.handle_gossip(0, b.device_id(), news(vec![here(&b, 2, 7)]))
        .expect("valid");
    while m.poll_transmit().is_some() {}
    drain(&mut m);

    m.handle_link_down(1, b.device_id(), LinkEnd::Lost);
    assert_eq!(drain(&mut m), vec![LanEvent::Check(b.device_id())]);
    assert!(m.is_online(&b.device_id()), "online until the check fails");
    m.handle_unreachable(2, b.device_id());
    // The report goes out at once; the device is shown offline once it
    // stood unrefuted for the grace.
    assert!(m.is_online(&b.device_id()), "online during the grace");
    let grace = m.config.suspect_grace_ms;
    m.handle_timeout(1 + grace);
    assert!(m.is_online(&b.device_id()), "online during the grace");
    m.handle_timeout(2 + grace);
    assert!(!m.is_online(&b.device_id()));
    assert_eq!(drain(&mut m), vec![LanEvent::Offline(b.device_id())]);
    let (to, gossip) = sent(&mut m).pop().expect("suspicion goes out");
    assert_eq!(to, c.device_id());
    assert_eq!(
        gossip.suspicions,
        vec![Suspicion {
            device: b.device_id(),
            version: 7
        }]
    );

    // A clean close is not checked.
    m.handle_link_down(3, c.device_id(), LinkEnd::Closed);
    assert!(!drain(&mut m).contains(&LanEvent::Check(c.device_id())));
}

#[test]
fn a_goodbye_shows_offline_at_once() {
    let (a, b) = (identity(1, "A"), identity(2, "B"));
    let mut m = mesh(&a, 1);
    m.handle_link_up(0, b.device_id());
    let c = identity(3, "C");
    m.handle_gossip(0, b.device_id(), news(vec![here(&c, 3, 1)]))
        .expect("valid");
    assert!(m.is_online(&c.device_id()));
    let leaving = LanRecord::sign(&c, vec![addr(3)], 2, LanStatus::Leaving);
    m.handle_gossip(1, b.device_id(), news(vec![leaving]))
        .expect("valid");
    assert!(!m.is_online(&c.device_id()));
}

#[test]
fn idle_links_outside_the_ring_close_and_ring_links_stay() {
    let ids: Vec<Identity> = (0..12).map(|i| identity(i, &format!("N{i}"))).collect();
    let me = &ids[0];
    let mut m = mesh(me, 0);
    let records: Vec<LanRecord> = ids[1..]
        .iter()
        .enumerate()
        .map(|(i, id)| here(id, i as u64 + 1, 1))
        .collect();
    // Linked to everyone (as after a burst of messages).
    for id in &ids[1..] {
        m.handle_link_up(0, id.device_id());
    }
    m.handle_gossip(
        0,
        ids[1].device_id(),
        LanGossip {
            records,
            suspicions: vec![],
            holds: None,
        },
    )
    .expect("valid");
    drain(&mut m);
    let keep = m.neighbours();
    assert!(keep.len() <= 6);
    m.handle_traffic(20_000, ids[5].device_id());
    let wake = m.poll_timeout().expect("a timer");
    m.handle_timeout(wake.max(30_000));
    let closed: BTreeSet<DeviceId> = drain(&mut m)
        .into_iter()
        .filter_map(|e| match e {
            LanEvent::Close(d) => Some(d),
            _ => None,
        })
        .collect();
    for id in &ids[1..] {
        let d = id.device_id();
        let expect_closed = !keep.contains(&d) && d != ids[5].device_id();
        assert_eq!(closed.contains(&d), expect_closed, "{d}");
    }
}
