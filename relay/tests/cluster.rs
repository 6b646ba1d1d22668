//! Relay nodes of one cluster: real `tincan-relay run --engine` binaries
//! sharing one NATS JetStream server on 127.0.0.1 and one relay key.

mod common;

use std::time::Instant;

use common::nats::NatsServer;
use common::relay::Relay;
use common::{answer_for, close_of, route_of, seal, Client, Inbound, Org};
use tincan_core::route::{Answer, Route, Routed};
use tincan_core::site::SiteId;
use tincan_core::wire::Frame;

/// Starts a relay node in `home` on the engine at `url`.
fn node(home: &std::path::Path, org: tincan_core::OrgId, url: &str) -> Relay {
    Relay::start(home, &[org], &["--engine", url, "--engine-replicas", "1"])
}

/// Two relay nodes of one cluster serving `org`: one NATS server, and a
/// second home holding only a copy of the first one's relay.key (which
/// is all a cluster node needs).
struct TwoNodes {
    a: Relay,
    b: Relay,
    _nats: NatsServer,
    _dir: tempfile::TempDir,
}

fn two_nodes(org: tincan_core::OrgId) -> TwoNodes {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (home_a, home_b) = (dir.path().join("a"), dir.path().join("b"));
    let a = node(&home_a, org, &nats.url);
    std::fs::create_dir_all(&home_b).expect("home b");
    std::fs::copy(home_a.join("relay.key"), home_b.join("relay.key")).expect("copy key");
    let b = node(&home_b, org, &nats.url);
    TwoNodes {
        a,
        b,
        _nats: nats,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_share_one_key_and_mail_held_by_one_is_flushed_by_the_other() {
    let acme = Org::new("Acme");
    let TwoNodes { a, b, _nats, _dir } = two_nodes(acme.id());
    assert_eq!(
        a.fingerprint, b.fingerprint,
        "one fingerprint for users to pin"
    );

    let (sa, sb) = (a.status(), b.status());
    assert_eq!(sa["engine"], "nats");
    assert_eq!(sb["engine"], "nats");
    assert_ne!(sa["node_id"], sb["node_id"]);
    common::eventually("both nodes list each other", || {
        let s = a.status();
        async move { (s["cluster"].as_array().map(Vec::len) == Some(2)).then_some(()) }
    })
    .await;

    let alice = acme.device("alice");
    let bob = acme.device("bob");
    // Bob was seen once at node a, then left.
    Client::connect(a.addr, &bob)
        .await
        .expect("bob")
        .close()
        .await;
    let ca = Client::connect(a.addr, &alice).await.expect("alice");
    ca.wait_directory("bob offline", |d| {
        d.iter().any(|e| e.cert == bob.cert() && !e.online)
    })
    .await;
    let envelope = seal(&alice, &[&bob], "held by the cluster");
    let answers = ca.route(route_of(&envelope, &[&bob])).await;
    assert_eq!(answer_for(&answers, &bob), Answer::Custody);
    assert_eq!(b.status()["mail_total"], 1, "node b sees what node a holds");

    // Bob comes back at the other node: it flushes what a took.
    let started = Instant::now();
    let cb = Client::connect(b.addr, &bob).await.expect("bob at b");
    cb.wait_for("the envelope held by node a", |i| match i {
        Inbound::Route(Route {
            item: Routed::Envelope(e),
            ..
        }) if e.id == envelope.id => Some(()),
        _ => None,
    })
    .await;
    eprintln!(
        "held mail reached bob at the other node in {:?}",
        started.elapsed()
    );
    // Bob's receipt, stored by b for alice, reaches her at a.
    let receipt = ca
        .wait_for("bob's receipt through the cluster", |i| match i {
            Inbound::Route(Route {
                item: Routed::Receipt(r),
                ..
            }) if r.message_id == envelope.id => Some(r.clone()),
            _ => None,
        })
        .await;
    receipt.verify(&bob.cert()).expect("signed by bob");
    eprintln!(
        "the receipt reached alice at node a after {:?}",
        started.elapsed()
    );
    common::eventually("every mailbox empty", || {
        let s = b.status();
        async move { (s["mail_total"] == 0).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_site_has_one_gateway_across_nodes_and_a_new_epoch_once_the_lease_lapsed() {
    let acme = Org::new("Acme");
    let TwoNodes { a, b, _nats, _dir } = two_nodes(acme.id());
    let site = SiteId([7; 16]);
    let (gw1, gw2) = (acme.device("gw1"), acme.device("gw2"));
    let g1 = Client::connect(a.addr, &gw1).await.expect("gw1 at a");
    let g2 = Client::connect(b.addr, &gw2).await.expect("gw2 at b");

    let claim = |epoch| Frame::LeaseClaim { site, epoch };
    match g1.request(claim(1)).await {
        Frame::LeaseGranted { epoch: 1, .. } => {}
        other => panic!("expected a grant at a, got {other:?}"),
    }
    // Node b sees gw1's live lease: gw2 is refused there.
    match g2.request(claim(2)).await {
        Frame::LeaseRefused {
            current_epoch: 1,
            holder,
            ..
        } => assert_eq!(holder, Some(gw1.id())),
        other => panic!("expected held at b, got {other:?}"),
    }
    // gw1 stops renewing (its node may have died): once the lease lapsed,
    // gw2 is granted epoch 2 at b, and gw1's epoch 1 is stale at a.
    let started = Instant::now();
    let granted = common::eventually("gw2 granted epoch 2 at b", || {
        let g2 = &g2;
        async move {
            match g2.request(claim(2)).await {
                Frame::LeaseGranted { epoch: 2, .. } => Some(()),
                _ => None,
            }
        }
    })
    .await;
    let () = granted;
    eprintln!(
        "new epoch at the other node {:?} after the last renewal",
        started.elapsed()
    );
    match g1.request(claim(1)).await {
        Frame::LeaseRefused {
            current_epoch: 2, ..
        } => {}
        other => panic!("expected stale at a, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_list_handed_to_one_node_cuts_the_user_off_at_every_node() {
    let acme = Org::new("Acme");
    let TwoNodes { a, b, _nats, _dir } = two_nodes(acme.id());
    let (admin, mallory) = (acme.device("admin"), acme.device("mallory"));
    let ca = Client::connect(a.addr, &admin).await.expect("admin at a");
    let cm = Client::connect(b.addr, &mallory)
        .await
        .expect("mallory at b");

    let list = acme.key.revoke(1, vec![mallory.identity.user_id()], 1);
    assert_eq!(ca.request(Frame::Revocations(list)).await, Frame::Ack);
    let (code, reason) = close_of(&cm.conn).await.expect("mallory closed at b");
    assert_eq!((code, reason.as_str()), (0x11, "revoked"));
    let again = Client::connect(b.addr, &mallory).await;
    assert!(again.is_err(), "node b refuses mallory from now on");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_envelope_for_a_device_at_the_other_node_is_handed_over_not_stored() {
    let acme = Org::new("Acme");
    let TwoNodes { a, b, _nats, _dir } = two_nodes(acme.id());
    common::eventually("node a sees node b alive", || {
        let s = a.status();
        async move { (s["cluster"].as_array().map(Vec::len) == Some(2)).then_some(()) }
    })
    .await;
    let (alice, bob) = (acme.device("alice"), acme.device("bob"));
    let cb = Client::connect(b.addr, &bob).await.expect("bob at b");
    let ca = Client::connect(a.addr, &alice).await.expect("alice at a");
    // Node a learns bob (registered at b) through the cluster.
    ca.wait_directory("bob known at node a", |d| {
        d.iter().any(|e| e.cert == bob.cert())
    })
    .await;
    let envelope = seal(&alice, &[&bob], "across the cluster, live");
    let started = Instant::now();
    let answers = ca.route(route_of(&envelope, &[&bob])).await;
    let answer = answer_for(&answers, &bob);
    assert!(
        matches!(answer, Answer::Receipt(_)),
        "bob's own receipt through node b, not custody: {answer:?}"
    );
    eprintln!(
        "a live envelope crossed nodes and came back with bob's receipt in {:?}",
        started.elapsed()
    );
    cb.wait_for("the envelope", |i| match i {
        Inbound::Route(Route {
            item: Routed::Envelope(e),
            ..
        }) if e.id == envelope.id => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(a.status()["mail_total"], 0, "nothing was stored");
}
