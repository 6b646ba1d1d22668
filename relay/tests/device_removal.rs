//! Device removal at the relay (`tincan device remove`): a revocation
//! signed by the user key cuts the device off at once and for good (also
//! across a relay restart), nothing is routed to it any more, the others
//! hear of it; a forged or tampered revocation changes nothing.

mod common;

use common::relay::Relay;
use common::{answer_for, assert_refused, close_of, route_of, seal, Client, Device, Inbound, Org};
use tincan_core::device::Roster;
use tincan_core::route::Answer;
use tincan_core::wire::{Frame, RefuseReason};
use tincan_core::DeviceRevocation;

/// A message from `from` (connected as `client`) to `device` gets its
/// receipt: the relay still serves `device`.
async fn assert_served(client: &Client, from: &Device, device: &Device) {
    let envelope = seal(from, &[device], "still yours");
    let answers = client.route(route_of(&envelope, &[device])).await;
    assert!(
        matches!(answer_for(&answers, device), Answer::Receipt(_)),
        "{} is still served",
        device.name()
    );
}

/// `user`'s device connected as `by` removes `device` (connected as
/// `conn`), whose connection the relay then closes as removed.
async fn remove_and_see_it_closed(by: &Client, user: &Device, device: &Device, conn: &Client) {
    let revocation = DeviceRevocation::sign(
        user.identity.user.as_ref().expect("user key"),
        device.id(),
        common::now_secs(),
    );
    assert_eq!(by.request(roster(revocation)).await, Frame::Ack);
    let (code, reason) = close_of(&conn.conn).await.expect("device closed");
    assert_eq!(
        (code, reason.as_str()),
        (0x15, "device removed by its user")
    );
}

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
    assert_served(&b, &bob, &desktop).await;

    // Alice removes the desktop from the laptop.
    remove_and_see_it_closed(&l, &laptop, &desktop, &d).await;
    b.wait_for("the removal pushed to bob", |i| match i {
        Inbound::Other(name) if name == "devices" => Some(()),
        _ => None,
    })
    .await;
    // A new connection gets the whole directory: the desktop is no
    // longer in it.
    let b = Client::connect(relay.addr, &bob).await.expect("bob again");
    let whole = b.first_directory().await;
    assert!(whole.iter().any(|e| e.cert == laptop.cert()), "{whole:?}");
    assert!(
        whole.iter().all(|e| e.cert != desktop.cert()),
        "the removed desktop is still listed"
    );
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
    assert_served(&b, &bob, &desktop).await;

    // Alice's own removal still cuts it off.
    remove_and_see_it_closed(&l, &laptop, &desktop, &d).await;
    assert_refused(
        Client::connect(relay.addr, &desktop).await,
        "device removed by its user",
    );
}
