//! Routing between devices: direct delivery with end-to-end receipts,
//! custody across a relay restart (SIGKILL), mailbox quota, organisation
//! isolation.

mod common;

use common::relay::Relay;
use common::{answer_for, route_of, seal, Client, Inbound, Mode, Org};
use tincan_core::route::{Answer, Route, Routed};
use tincan_core::wire::RefuseReason;
use tincan_core::ReceiptKind;

#[tokio::test(flavor = "multi_thread")]
async fn envelope_to_an_online_device_comes_back_with_its_receipt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let relay = Relay::start(dir.path(), &[acme.id()], &[]);
    let alice = acme.device("alice");
    let bob = acme.device("bob");
    let a = Client::connect(relay.addr, &alice).await.expect("alice");
    let b = Client::connect(relay.addr, &bob).await.expect("bob");

    let envelope = seal(&alice, &[&bob], "hi bob");
    let answers = a.route(route_of(&envelope, &[&bob])).await;
    assert_eq!(answers.len(), 1);
    match answer_for(&answers, &bob) {
        Answer::Receipt(r) => {
            r.verify(&bob.cert()).expect("bob signed it");
            assert_eq!(r.message_id, envelope.id);
            assert_eq!(r.sender_device, alice.id());
            assert_eq!(r.kind, ReceiptKind::Delivered);
        }
        other => panic!("expected bob's receipt, got {other:?}"),
    }
    let got = b
        .wait_for("the envelope", |i| match i {
            Inbound::Route(r) => Some(r.clone()),
            _ => None,
        })
        .await;
    assert_eq!(got.to, vec![bob.id()]);
    assert!(matches!(&got.item, Routed::Envelope(e) if e.id == envelope.id));

    // Both see each other online in their directory.
    a.wait_directory("bob online", |d| {
        d.iter()
            .any(|e| e.cert == bob.cert() && e.online && e.site.is_none())
    })
    .await;

    // A tampered envelope is refused, an unknown device too.
    let mut forged = envelope.clone();
    forged.ciphertext.push(0);
    let answers = a.route(route_of(&forged, &[&bob])).await;
    assert_eq!(
        answer_for(&answers, &bob),
        Answer::Refused(RefuseReason::BadSignature)
    );
    let ghost = acme.device("ghost");
    let answers = a.route(route_of(&envelope, &[&ghost])).await;
    assert_eq!(
        answer_for(&answers, &ghost),
        Answer::Refused(RefuseReason::UnknownDevice)
    );
    // A device that fails is covered by custody.
    b.set_mode(Mode::Fail);
    let again = seal(&alice, &[&bob], "second");
    let answers = a.route(route_of(&again, &[&bob])).await;
    assert_eq!(answer_for(&answers, &bob), Answer::Custody);
    b.set_mode(Mode::Normal);
    // ...and flushed later, its receipt routed back to alice.
    a.wait_for("bob's receipt of the stored message", |i| match i {
        Inbound::Route(Route {
            to,
            item: Routed::Receipt(r),
        }) if r.message_id == again.id && to == &vec![alice.id()] => Some(()),
        _ => None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn custody_survives_a_killed_relay_and_the_receipt_reaches_the_sender() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let mut relay = Relay::start(dir.path(), &[acme.id()], &[]);
    let alice = acme.device("alice");
    let bob = acme.device("bob");
    // Bob has been seen once, then left.
    Client::connect(relay.addr, &bob)
        .await
        .expect("bob")
        .close()
        .await;
    let a = Client::connect(relay.addr, &alice).await.expect("alice");
    a.wait_directory("bob offline", |d| {
        d.iter().any(|e| e.cert == bob.cert() && !e.online)
    })
    .await;

    let envelope = seal(&alice, &[&bob], "while you were out");
    let answers = a.route(route_of(&envelope, &[&bob])).await;
    assert_eq!(answer_for(&answers, &bob), Answer::Custody);
    // A retry (the custody answer got lost) is deduped: still custody, one copy.
    let answers = a.route(route_of(&envelope, &[&bob])).await;
    assert_eq!(answer_for(&answers, &bob), Answer::Custody);
    assert_eq!(relay.status()["mail_total"], 1);

    relay.kill();
    drop(a);
    let relay = Relay::start(dir.path(), &[acme.id()], &[]);
    assert_eq!(relay.status()["mail_total"], 1, "mail survived SIGKILL");
    let a = Client::connect(relay.addr, &alice)
        .await
        .expect("alice again");
    let b = Client::connect(relay.addr, &bob).await.expect("bob back");
    b.wait_for("the stored envelope", |i| match i {
        Inbound::Route(Route {
            item: Routed::Envelope(e),
            ..
        }) if e.id == envelope.id => Some(()),
        _ => None,
    })
    .await;
    let receipt = a
        .wait_for("bob's receipt", |i| match i {
            Inbound::Route(Route {
                to,
                item: Routed::Receipt(r),
            }) if r.message_id == envelope.id => Some((to.clone(), r.clone())),
            _ => None,
        })
        .await;
    assert_eq!(receipt.0, vec![alice.id()]);
    receipt.1.verify(&bob.cert()).expect("signed by bob");
    common::eventually("mailboxes empty", || {
        let s = relay.status();
        async move { (s["mail_total"] == 0).then_some(()) }
    })
    .await;
    // Exactly one delivery of the envelope to bob.
    let copies = b
        .received()
        .await
        .iter()
        .filter(|i| matches!(i, Inbound::Route(Route { item: Routed::Envelope(e), .. }) if e.id == envelope.id))
        .count();
    assert_eq!(copies, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_mailbox_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let relay = Relay::start(dir.path(), &[acme.id()], &["--mailbox-quota", "2"]);
    let alice = acme.device("alice");
    let bob = acme.device("bob");
    Client::connect(relay.addr, &bob)
        .await
        .expect("bob")
        .close()
        .await;
    let a = Client::connect(relay.addr, &alice).await.expect("alice");
    a.wait_directory("bob offline", |d| {
        d.iter().any(|e| e.cert == bob.cert() && !e.online)
    })
    .await;
    let mut answers = Vec::new();
    let mut first = None;
    for i in 0..3 {
        let e = seal(&alice, &[&bob], &format!("message {i}"));
        first.get_or_insert_with(|| e.clone());
        answers.push(answer_for(&a.route(route_of(&e, &[&bob])).await, &bob));
    }
    assert_eq!(
        answers,
        vec![
            Answer::Custody,
            Answer::Custody,
            Answer::Refused(RefuseReason::MailboxFull)
        ]
    );
    // A retry of a stored message is still custody.
    let first = first.expect("first");
    assert_eq!(
        answer_for(&a.route(route_of(&first, &[&bob])).await, &bob),
        Answer::Custody
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn organisations_never_see_each_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let globex = Org::new("Globex");
    let relay = Relay::start(dir.path(), &[acme.id(), globex.id()], &[]);
    let alice = acme.device("alice");
    let amy = acme.device("amy");
    let gina = globex.device("gina");
    let a = Client::connect(relay.addr, &alice).await.expect("alice");
    let g = Client::connect(relay.addr, &gina).await.expect("gina");
    let _m = Client::connect(relay.addr, &amy).await.expect("amy");

    let envelope = seal(&alice, &[&gina], "psst");
    let answers = a.route(route_of(&envelope, &[&gina])).await;
    assert_eq!(
        answer_for(&answers, &gina),
        Answer::Refused(RefuseReason::UnknownDevice)
    );
    // Gina's own envelope routed through Acme's connection is refused too.
    let from_gina = seal(&gina, &[&alice], "hello?");
    let answers = g.route(route_of(&from_gina, &[&alice])).await;
    assert_eq!(
        answer_for(&answers, &alice),
        Answer::Refused(RefuseReason::UnknownDevice)
    );
    let dir_a = a
        .wait_directory("amy", |d| d.iter().any(|e| e.cert == amy.cert()))
        .await;
    assert!(dir_a.iter().all(|e| e.cert != gina.cert()));
    let dir_g = g
        .wait_directory("gina herself", |d| d.iter().any(|e| e.cert == gina.cert()))
        .await;
    assert!(dir_g
        .iter()
        .all(|e| e.cert != alice.cert() && e.cert != amy.cert()));
    for item in a.received().await {
        if let Inbound::Route(r) = item {
            panic!("alice got a route: {r:?}");
        }
    }
    assert!(g
        .received()
        .await
        .iter()
        .all(|i| !matches!(i, Inbound::Route(_))));
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_beyond_the_rate_are_failed_not_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    // One route per second, bursts of two: ten quick routes cannot all pass.
    let relay = Relay::start(dir.path(), &[acme.id()], &["--rate", "1"]);
    let alice = acme.device("alice");
    let bob = acme.device("bob");
    let a = Client::connect(relay.addr, &alice).await.expect("alice");
    let _b = Client::connect(relay.addr, &bob).await.expect("bob");
    let mut limited = 0;
    for i in 0..10 {
        let e = seal(&alice, &[&bob], &format!("spam {i}"));
        match answer_for(&a.route(route_of(&e, &[&bob])).await, &bob) {
            Answer::Failed(reason) => {
                assert_eq!(reason, "rate limited");
                limited += 1;
            }
            Answer::Receipt(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(limited > 0, "no route was rate limited");
    assert_eq!(
        relay.status()["mail_total"],
        0,
        "limited routes are not stored"
    );
}

/// A room message sealed with alice's sender key for `to`.
fn room_envelope(from: &common::Device, to: &[&common::Device]) -> tincan_core::RoomEnvelope {
    use tincan_core::room::{RoomContent, SenderKey};
    let (log, _) = tincan_core::RoomLog::create(
        &from.identity.device,
        &from.identity.cert,
        "Relay room",
        common::now_ms(),
        &mut tincan_transport::entropy::OsEntropy,
    )
    .expect("room");
    tincan_core::RoomEnvelope::seal(
        &from.identity.device,
        &from.identity.cert,
        log.id(),
        log.state().epoch,
        &SenderKey([3; 32]),
        to.iter().map(|d| d.id()).collect(),
        tincan_core::MessageId::random(&mut tincan_transport::entropy::OsEntropy),
        common::now_ms(),
        &RoomContent::Text { text: "hi".into() },
        &mut tincan_transport::entropy::OsEntropy,
    )
    .expect("seal")
}

fn room_route(
    envelope: &tincan_core::RoomEnvelope,
    to: &[&common::Device],
) -> tincan_core::wire::Frame {
    tincan_core::wire::Frame::Route(Route {
        to: to.iter().map(|d| d.id()).collect(),
        item: Routed::Room(Box::new(envelope.clone())),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn room_envelopes_are_checked_routed_and_held_like_envelopes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let relay = Relay::start(dir.path(), &[acme.id()], &[]);
    let (alice, bob, carol) = (
        acme.device("alice"),
        acme.device("bob"),
        acme.device("carol"),
    );
    let a = Client::connect(relay.addr, &alice).await.expect("alice");
    let b = Client::connect(relay.addr, &bob).await.expect("bob");
    let _c = Client::connect(relay.addr, &carol).await.expect("carol");

    let envelope = room_envelope(&alice, &[&bob]);
    let answers = a.route(room_route(&envelope, &[&bob])).await;
    assert!(
        matches!(answer_for(&answers, &bob), Answer::Receipt(r) if r.message_id == envelope.id),
        "{answers:?}"
    );
    // Carol is not among its devices; a tampered one fails its signature.
    let answers = a.route(room_route(&envelope, &[&carol])).await;
    assert_eq!(
        answer_for(&answers, &carol),
        Answer::Refused(RefuseReason::NotForThisDevice)
    );
    let mut forged = envelope.clone();
    forged.to.push(carol.id());
    let answers = a.route(room_route(&forged, &[&carol])).await;
    assert_eq!(
        answer_for(&answers, &carol),
        Answer::Refused(RefuseReason::BadSignature)
    );
    // Held for a failing device, then flushed with its receipt.
    b.set_mode(Mode::Fail);
    let again = room_envelope(&alice, &[&bob]);
    let answers = a.route(room_route(&again, &[&bob])).await;
    assert_eq!(answer_for(&answers, &bob), Answer::Custody);
    b.set_mode(Mode::Normal);
    a.wait_for("bob's receipt of the held room message", |i| match i {
        Inbound::Route(Route {
            to,
            item: Routed::Receipt(r),
        }) if r.message_id == again.id && to == &vec![alice.id()] => Some(()),
        _ => None,
    })
    .await;
}
