//! Relay nodes of one cluster: real `tincan-relay run --engine` binaries
//! sharing one NATS JetStream server on 127.0.0.1 and one relay key.

mod common;

use std::time::Instant;

use common::nats::NatsServer;
use common::relay::Relay;
use common::{answer_for, route_of, seal, Client, Inbound, Org};
use tincan_core::route::{Answer, Route, Routed};

/// Starts a relay node in `home` on the engine at `url`.
fn node(home: &std::path::Path, org: tincan_core::OrgId, url: &str) -> Relay {
    Relay::start(home, &[org], &["--engine", url, "--engine-replicas", "1"])
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_share_one_key_and_mail_held_by_one_is_flushed_by_the_other() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (home_a, home_b) = (dir.path().join("a"), dir.path().join("b"));
    let acme = Org::new("Acme");
    let a = node(&home_a, acme.id(), &nats.url);
    // A home holding only a copy of relay.key is a node of the cluster.
    std::fs::create_dir_all(&home_b).expect("home b");
    std::fs::copy(home_a.join("relay.key"), home_b.join("relay.key")).expect("copy key");
    let b = node(&home_b, acme.id(), &nats.url);
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
