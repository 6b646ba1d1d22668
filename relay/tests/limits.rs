//! What one member can make the relay store: a user's devices are capped
//! (the next one is refused with a reason), and an organisation's stored
//! mail has a quota that counts an item once however many devices it waits
//! for; over it the sender is told to retry, and is taken again once
//! delivered mail made room. A device's requests besides routes are
//! rationed like its routes.

mod common;

use common::relay::Relay;
use common::{answer_for, assert_refused, route_of, seal, Client, Inbound, Org};
use tincan_core::route::Answer;
use tincan_core::site::SiteId;
use tincan_core::wire::{Frame, RefuseReason};

use tincan_transport::rpc;

#[tokio::test(flavor = "multi_thread")]
async fn the_33rd_device_of_a_user_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let relay = Relay::start(dir.path(), &[acme.id()], &[]);
    let first = acme.device("alice");
    let mut devices = vec![first.clone()];
    devices.extend((1..31).map(|_| first.sibling()));
    for (i, d) in devices.iter().enumerate() {
        // One at a time: the relay knows a device once it registered.
        let c = Client::connect(relay.addr, d)
            .await
            .unwrap_or_else(|r| panic!("device {} refused: {r:?}", i + 1));
        c.close().await;
    }
    // The 32nd and 33rd at once: exactly one of them fits.
    let (x, y) = (first.sibling(), first.sibling());
    let (rx, ry) = tokio::join!(
        Client::connect(relay.addr, &x),
        Client::connect(relay.addr, &y)
    );
    let refused = match (rx, ry) {
        (Ok(_), Err(r)) | (Err(r), Ok(_)) => r,
        (Ok(_), Ok(_)) => panic!("33 devices of one user registered"),
        (Err(a), Err(b)) => panic!("both refused: {a:?} {b:?}"),
    };
    assert!(
        format!("{refused:?}").contains("at most 32 devices"),
        "{refused:?}"
    );
    assert_refused(
        Client::connect(relay.addr, &first.sibling()).await,
        "at most 32 devices",
    );
    // Known devices of that user still connect; other users are unaffected.
    Client::connect(relay.addr, &devices[7])
        .await
        .expect("a known device reconnects");
    Client::connect(relay.addr, &acme.device("bob"))
        .await
        .expect("another user");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_organisation_mail_quota_counts_an_item_once_and_refuses_retryably() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let relay = Relay::start(
        dir.path(),
        &[acme.id()],
        &["--org-mail-quota-bytes", "100KiB"],
    );
    let (alice, bob, carol) = (
        acme.device("alice"),
        acme.device("bob"),
        acme.device("carol"),
    );
    for d in [&bob, &carol] {
        Client::connect(relay.addr, d)
            .await
            .expect("known")
            .close()
            .await;
    }
    let a = Client::connect(relay.addr, &alice).await.expect("alice");
    let text = "x".repeat(40 * 1024);

    // ~41 KiB for two offline devices, then ~41 KiB for one: 82 KiB stored
    // once each fits 100 KiB (three copies would not).
    let e1 = seal(&alice, &[&bob, &carol], &text);
    let answers = a.route(route_of(&e1, &[&bob, &carol])).await;
    assert_eq!(answer_for(&answers, &bob), Answer::Custody);
    assert_eq!(answer_for(&answers, &carol), Answer::Custody);
    let e2 = seal(&alice, &[&bob], &text);
    let answers = a.route(route_of(&e2, &[&bob])).await;
    assert_eq!(answer_for(&answers, &bob), Answer::Custody);

    // The next one does not fit: refused with a reason senders retry on.
    let e3 = seal(&alice, &[&carol], &text);
    let answers = a.route(route_of(&e3, &[&carol])).await;
    match answer_for(&answers, &carol) {
        Answer::Refused(RefuseReason::Other(why)) => {
            eprintln!("refused: {why}");
            assert!(
                why.contains("storage for this organisation is full"),
                "{why}"
            );
        }
        other => panic!("expected a retryable refusal, got {other:?}"),
    }

    // Bob fetches his mail; e2's copy goes, e1's stays for carol.
    let b = Client::connect(relay.addr, &bob).await.expect("bob");
    for id in [e1.id, e2.id] {
        b.wait_for("stored mail", |i| match i {
            Inbound::Route(r) if r.item.message_id() == id => Some(()),
            _ => None,
        })
        .await;
    }
    // The retry is taken once the delivery freed room.
    common::eventually("the retried message to be taken", || async {
        let answers = a.route(route_of(&e3, &[&carol])).await;
        (answer_for(&answers, &carol) == Answer::Custody).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_besides_routes_are_rationed_per_device() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let relay = Relay::start(dir.path(), &[acme.id()], &["--rate", "1"]);
    let (alice, bob) = (acme.device("alice"), acme.device("bob"));
    let a = Client::connect(relay.addr, &alice).await.expect("alice");
    let _b = Client::connect(relay.addr, &bob).await.expect("bob");
    // Twenty lease releases at once; the bucket holds two, refilling one a
    // second.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let conn = a.conn.clone();
        tasks.spawn(async move {
            let release = Frame::LeaseRelease {
                site: SiteId([1; 16]),
                epoch: 1,
            };
            rpc::request(&conn, &release, common::DEADLINE)
                .await
                .expect("answered")
        });
    }
    let (mut acked, mut limited) = (0, 0);
    while let Some(answer) = tasks.join_next().await {
        match answer.expect("task") {
            Frame::Ack => acked += 1,
            Frame::Error(e) if e.contains("rate limited") => limited += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    eprintln!("{acked} served, {limited} rate limited");
    assert!(acked >= 2, "the burst is served");
    assert!(limited > 0, "the rest is rationed");
    // Routes have their own bucket.
    let envelope = seal(&alice, &[&bob], "still routed");
    let answers = a.route(route_of(&envelope, &[&bob])).await;
    assert!(matches!(answer_for(&answers, &bob), Answer::Receipt(_)));
}
