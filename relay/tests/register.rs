//! Registration: members are welcomed; non-members, expired memberships
//! and foreign organisations are refused with a visible reason; a second
//! connection replaces the first; lonely devices learn their neighbours.

mod common;

use common::relay::Relay;
use common::{assert_refused, close_of, now_secs, Client, Inbound, Org};
use tincan_core::route::Register;
use tincan_core::wire::Frame;

#[tokio::test(flavor = "multi_thread")]
async fn members_are_welcomed_and_strangers_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let other = Org::new("Other");
    let relay = Relay::start(dir.path(), &[acme.id()], &["--lease-ttl-ms", "3000"]);

    let alice = acme.device("alice");
    let a = Client::connect(relay.addr, &alice)
        .await
        .expect("alice welcomed");
    assert_eq!(
        a.welcome.public_addr,
        a.endpoint.local_addr().expect("addr")
    );
    assert_eq!(a.welcome.lease_ttl_ms, 3000);
    // A second Register on the same connection is answered with Welcome.
    match a.request(Frame::Register(alice.register())).await {
        Frame::Welcome(w) => assert_eq!(w.public_addr, a.welcome.public_addr),
        other => panic!("expected welcome, got {other:?}"),
    }

    // Mallory presents Alice's membership with her own device.
    let mallory = acme.device("mallory");
    let forged = common::Device {
        identity: mallory.identity.clone(),
        membership: alice.membership.clone(),
    };
    assert_refused(
        Client::connect(relay.addr, &forged).await,
        "not a member: no valid membership",
    );

    let late = acme.device_until("late", now_secs() - 1);
    assert_refused(
        Client::connect(relay.addr, &late).await,
        "membership expired",
    );

    let stranger = other.device("stranger");
    assert_refused(
        Client::connect(relay.addr, &stranger).await,
        &format!("organisation {} is not served by this relay", other.id()),
    );

    // Alice is still served after all that.
    match a.request(Frame::Register(alice.register())).await {
        Frame::Welcome(_) => {}
        other => panic!("expected welcome, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_connection_replaces_the_old_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let relay = Relay::start(dir.path(), &[acme.id()], &[]);
    let alice = acme.device("alice");
    let first = Client::connect(relay.addr, &alice).await.expect("first");
    let second = Client::connect(relay.addr, &alice).await.expect("second");
    let (code, reason) = close_of(&first.conn).await.expect("first closed");
    assert_eq!(code, 0x12, "{reason}");
    assert!(reason.contains("replaced"), "{reason}");
    match second.request(Frame::Register(alice.register())).await {
        Frame::Welcome(_) => {}
        other => panic!("second still served, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lonely_devices_behind_one_address_are_told_about_each_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let relay = Relay::start(dir.path(), &[acme.id()], &[]);
    // LAN addresses are only data here: nothing is sent to them.
    let lan = |d: &common::Device, ip: &str| Register {
        lan_addrs: vec![format!("{ip}:7000").parse().expect("addr")],
        lonely: true,
        ..d.register()
    };
    let alice = acme.device("alice");
    let bob = acme.device("bob");
    let carol = acme.device("carol");
    let a = Client::connect_with(relay.addr, &alice, lan(&alice, "192.168.1.10"), vec![])
        .await
        .expect("alice");
    let c = Client::connect_with(relay.addr, &carol, lan(&carol, "10.9.9.9"), vec![])
        .await
        .expect("carol");
    let b = Client::connect_with(relay.addr, &bob, lan(&bob, "192.168.1.77"), vec![])
        .await
        .expect("bob");
    let told_bob = b
        .wait_for("neighbours", |i| match i {
            Inbound::Neighbours(n) => Some(n.clone()),
            _ => None,
        })
        .await;
    assert_eq!(told_bob.len(), 1);
    assert_eq!(told_bob[0].device, alice.id());
    assert_eq!(
        told_bob[0].addrs,
        vec!["192.168.1.10:7000".parse().expect("addr")]
    );
    let told_alice = a
        .wait_for("neighbours", |i| match i {
            Inbound::Neighbours(n) if n.iter().any(|x| x.device == bob.id()) => Some(n.clone()),
            _ => None,
        })
        .await;
    assert!(told_alice.iter().all(|n| n.device != carol.id()));
    let carol_told = c.received().await.into_iter().any(|i| match i {
        Inbound::Neighbours(n) => n.iter().any(|x| x.device == bob.id()),
        _ => false,
    });
    assert!(!carol_told, "carol is on another LAN");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_membership_that_ends_while_connected_closes_the_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let relay = Relay::start(dir.path(), &[acme.id()], &[]);
    let brief = acme.device_until("brief", now_secs() + 3);
    let b = Client::connect(relay.addr, &brief)
        .await
        .expect("still valid");
    let (code, reason) = close_of(&b.conn).await.expect("closed at expiry");
    assert_eq!((code, reason.as_str()), (0x10, "membership expired"));
}
