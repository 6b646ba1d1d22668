//! Device removal at the relay (`tincan device remove`): a revocation
//! signed by the user key cuts the device off at once and for good (also
//! across a relay restart), nothing is routed to it any more, the others
//! hear of it; a forged or tampered revocation changes nothing.

mod common;

use common::relay::Relay;
use common::{answer_for, assert_refused, close_of, route_of, seal, Client, Inbound, Org};
use tincan_core::device::Roster;
use tincan_core::route::Answer;
use tincan_core::wire::{Frame, RefuseReason};
use tincan_core::DeviceRevocation;

fn roster(revocation: DeviceRevocation) -> Frame {
    Frame::Devices(Roster {
        certs: Vec::new(),
        revocations: vec![revocation],
        labels: Vec::new(),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_device_is_cut_off_for_good() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let mut relay = Relay::start(dir.path(), &[acme.id()], &[]);
    let laptop = acme.device("alice");
    let desktop = laptop.sibling();
    let bob = acme.device("bob");
    let l = Client::connect(relay.addr, &laptop).await.expect("laptop");
    let d = Client::connect(relay.addr, &desktop)
        .await
        .expect("desktop");
    let b = Client::connect(relay.addr, &bob).await.expect("bob");

    // Bob cannot remove alice's device: signed by the wrong user key.
    let bob_key = bob.identity.user.as_ref().expect("bob's user key");
    let forged = DeviceRevocation::sign(bob_key, desktop.id(), common::now_secs());
    assert_eq!(b.request(roster(forged)).await, Frame::Ack);
    let mut tampered = DeviceRevocation::sign(
        laptop.identity.user.as_ref().expect("user key"),
        desktop.id(),
        common::now_secs(),
    );
    tampered.revoked_at += 1;
    assert!(matches!(b.request(roster(tampered)).await, Frame::Error(_)));
    let envelope = seal(&bob, &[&desktop], "still yours");
    let answers = b.route(route_of(&envelope, &[&desktop])).await;
    assert!(
        matches!(answer_for(&answers, &desktop), Answer::Receipt(_)),
        "the desktop is still served"
    );

    // Alice removes the desktop from the laptop.
    let revocation = DeviceRevocation::sign(
        laptop.identity.user.as_ref().expect("user key"),
        desktop.id(),
        common::now_secs(),
    );
    assert_eq!(l.request(roster(revocation)).await, Frame::Ack);
    let (code, reason) = close_of(&d.conn).await.expect("desktop closed");
    assert_eq!(
        (code, reason.as_str()),
        (0x15, "device removed by its user")
    );
    b.wait_for("the removal pushed to bob", |i| match i {
        Inbound::Other(name) if name == "devices" => Some(()),
        _ => None,
    })
    .await;
    b.wait_directory("no desktop", |dir| {
        dir.iter().any(|e| e.cert == laptop.cert()) && dir.iter().all(|e| e.cert != desktop.cert())
    })
    .await;
    let envelope = seal(&bob, &[&desktop], "after removal");
    let answers = b.route(route_of(&envelope, &[&desktop])).await;
    assert_eq!(
        answer_for(&answers, &desktop),
        Answer::Refused(RefuseReason::UnknownDevice)
    );
    assert_refused(
        Client::connect(relay.addr, &desktop).await,
        "device removed by its user",
    );

    // Durable: still refused after a restart; the laptop is fine.
    relay.kill();
    drop((l, b));
    let relay = Relay::start(dir.path(), &[acme.id()], &[]);
    assert_refused(
        Client::connect(relay.addr, &desktop).await,
        "device removed by its user",
    );
    Client::connect(relay.addr, &laptop)
        .await
        .expect("laptop again");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_members_removal_of_a_device_not_seen_yet_does_not_block_the_real_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let relay = Relay::start(dir.path(), &[acme.id()], &[]);
    let laptop = acme.device("alice");
    let desktop = laptop.sibling();
    let bob = acme.device("bob");
    let b = Client::connect(relay.addr, &bob).await.expect("bob");

    // Bob "removes" alice's desktop with his own key before the relay has
    // seen it: nothing is enforced, the desktop registers and is served.
    let bob_key = bob.identity.user.as_ref().expect("bob's user key");
    let forged = DeviceRevocation::sign(bob_key, desktop.id(), common::now_secs());
    assert_eq!(b.request(roster(forged)).await, Frame::Ack);
    let l = Client::connect(relay.addr, &laptop).await.expect("laptop");
    let d = Client::connect(relay.addr, &desktop)
        .await
        .expect("the desktop registers");
    let envelope = seal(&bob, &[&desktop], "still yours");
    let answers = b.route(route_of(&envelope, &[&desktop])).await;
    assert!(
        matches!(answer_for(&answers, &desktop), Answer::Receipt(_)),
        "the desktop is served"
    );

    // Alice's own removal still cuts it off.
    let revocation = DeviceRevocation::sign(
        laptop.identity.user.as_ref().expect("user key"),
        desktop.id(),
        common::now_secs(),
    );
    assert_eq!(l.request(roster(revocation)).await, Frame::Ack);
    let (code, reason) = close_of(&d.conn).await.expect("desktop closed");
    assert_eq!(
        (code, reason.as_str()),
        (0x15, "device removed by its user")
    );
    assert_refused(
        Client::connect(relay.addr, &desktop).await,
        "device removed by its user",
    );
}
