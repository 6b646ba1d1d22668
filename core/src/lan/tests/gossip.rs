//! Peer exchange: a new link learns only what it lacks, news travels on
//! once, reports reach the device they are about, and a link's first
//! message fits a frame. Apart from the link and dial tests because a
//! failure here costs bandwidth or a wrong view, not a missing link.

use super::*;

#[test]
fn a_new_link_learns_what_it_lacks_and_a_newer_record_travels_on_once() {
    let (a, b, c) = (identity(1, "A"), identity(2, "B"), identity(3, "C"));
    let mut m = mesh(&a, 1);
    m.handle_link_up(0, b.device_id());
    let (to, first) = m.poll_transmit().expect("own record and holds for b");
    assert_eq!(to, b.device_id());
    assert_eq!(first.records.len(), 1, "only our own record");
    assert_eq!(first.holds, Some(vec![]), "holding nothing else yet");

    // b tells us about c; we learn c, and c is online by its record.
    let gossip = news(vec![here(&b, 2, 1), here(&c, 3, 1)]);
    m.handle_gossip(1, b.device_id(), gossip.clone())
        .expect("valid");
    assert!(m.is_online(&c.device_id()));
    let events = drain(&mut m);
    assert!(events.contains(&LanEvent::Learned(c.device_id())));
    assert!(events.contains(&LanEvent::Online(c.device_id())));
    // Nothing goes back to b, who told us.
    assert_eq!(m.poll_transmit(), None);
    // The same records again change nothing.
    m.handle_gossip(2, b.device_id(), gossip).expect("valid");
    assert!(drain(&mut m).is_empty());

    // A second link is told what we hold, and sent what it lacks: it
    // holds b's record, an older one of c, and one of its own.
    let d = identity(4, "D");
    m.handle_link_up(3, d.device_id());
    let (_, view) = m.poll_transmit().expect("own record and holds for d");
    assert_eq!(view.records.len(), 1);
    let held = |id: &Identity, version| HeldRecord {
        device: id.device_id(),
        version,
    };
    let mut held_here = vec![held(&b, 1), held(&c, 1)];
    held_here.sort_by_key(|h| h.device);
    assert_eq!(view.holds, Some(held_here));
    let mut theirs = news(vec![here(&d, 4, 1)]);
    theirs.holds = Some(vec![held(&b, 1), held(&c, 0)]);
    m.handle_gossip(3, d.device_id(), theirs).expect("valid");
    drain(&mut m);
    let (to, answer) = m.poll_transmit().expect("what d lacks, at once");
    assert_eq!(to, d.device_id());
    let answered: Vec<DeviceId> = answer.records.iter().map(LanRecord::device).collect();
    assert_eq!(answered, vec![c.device_id()], "only c's newer record");
    assert_eq!(answer.holds, None);
    // d's own record travels on to b in the next batch; leave that out.
    sent(&mut m);

    // A newer record of c goes to both links but the one it came from.
    let newer = LanRecord::sign(&c, vec![addr(3)], 2, LanStatus::Here(ShownPresence::Away));
    m.handle_gossip(4, d.device_id(), news(vec![newer]))
        .expect("valid");
    assert_eq!(m.shown(&c.device_id()), Some(ShownPresence::Away));
    assert!(
        m.poll_transmit().is_none(),
        "passed on in a batch, not at once"
    );
    let to: Vec<DeviceId> = sent(&mut m).into_iter().map(|(to, _)| to).collect();
    assert_eq!(
        to,
        vec![b.device_id()],
        "passed on to b only, not back to d"
    );
}

/// A peer that holds a live link to a reported device does not take the
/// report, but it must pass it to that device: otherwise, when every path
/// from the reporter runs through such peers, the device never hears it,
/// never refutes, and the reporter shows a live device offline for good.
/// (Found by netsim's sim_lan: a device cut off for 20 s and plugged back
/// in kept one of its old neighbours offline.)
#[test]
fn a_report_about_a_linked_device_is_passed_to_it_to_refute() {
    let (a, b, c) = (identity(1, "A"), identity(2, "B"), identity(3, "C"));
    let mut m = mesh(&a, 1);
    m.handle_link_up(0, b.device_id());
    m.handle_link_up(0, c.device_id());
    m.handle_gossip(0, b.device_id(), news(vec![here(&b, 2, 4)]))
        .expect("valid");
    sent(&mut m);
    let report = Suspicion {
        device: b.device_id(),
        version: 4,
    };
    m.handle_gossip(
        1,
        c.device_id(),
        LanGossip {
            records: vec![],
            suspicions: vec![report],
            holds: None,
        },
    )
    .expect("valid");
    assert!(
        m.is_online(&b.device_id()),
        "a live link outweighs the report"
    );
    let sent = sent(&mut m);
    assert_eq!(
        sent,
        vec![(
            b.device_id(),
            LanGossip {
                records: vec![],
                suspicions: vec![report],
                holds: None,
            }
        )],
        "passed to the device only"
    );
}

#[test]
fn the_largest_first_message_of_a_link_fits_one_frame() {
    let a = identity(1, "A");
    let device = a.device_id();
    let gossip = LanGossip {
        records: vec![here(&a, 1, u64::MAX)],
        suspicions: vec![
            Suspicion {
                device,
                version: u64::MAX,
            };
            MAX_GOSSIP_SUSPICIONS
        ],
        holds: Some(vec![
            HeldRecord {
                device,
                version: u64::MAX,
            };
            MAX_GOSSIP_HOLDS
        ]),
    };
    let bytes = crate::wire::encode(&crate::wire::Frame::Lan(gossip)).expect("fits a frame");
    assert!(bytes.len() <= crate::wire::MAX_FRAME_LEN + 4);
}
