//! Revocation lists: an admin-signed list cuts a user off at once and for
//! good; foreign or old lists are refused.

mod common;

use common::relay::Relay;
use common::{assert_refused, close_of, Client, Inbound, Org};
use tincan_core::wire::Frame;

#[tokio::test(flavor = "multi_thread")]
async fn revoked_users_are_cut_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let mut relay = Relay::start(dir.path(), &[acme.id()], &[]);
    let alice = acme.device("alice");
    let bob = acme.device("bob");
    let carol = acme.device("carol");
    let a = Client::connect(relay.addr, &alice).await.expect("alice");
    let b = Client::connect(relay.addr, &bob).await.expect("bob");
    let c = Client::connect(relay.addr, &carol).await.expect("carol");

    // Signed by another key: refused.
    let impostor = Org::new("Acme");
    let fake = impostor.key.revoke(1, vec![alice.identity.user_id()], 1);
    match b.request(Frame::Revocations(fake)).await {
        Frame::Error(e) => assert!(e.contains("signed for organisation"), "{e}"),
        other => panic!("expected error, got {other:?}"),
    }
    // Tampered: refused.
    let mut tampered = acme.key.revoke(1, vec![], 1);
    tampered.revoked.push(alice.identity.user_id());
    assert!(matches!(
        b.request(Frame::Revocations(tampered)).await,
        Frame::Error(_)
    ));

    let list = acme.key.revoke(5, vec![bob.identity.user_id()], 1);
    assert_eq!(
        a.request(Frame::Revocations(list.clone())).await,
        Frame::Ack
    );
    let (code, reason) = close_of(&b.conn).await.expect("bob closed");
    assert_eq!((code, reason.as_str()), (0x11, "revoked"));
    let pushed = c
        .wait_for("the list", |i| match i {
            Inbound::Revocations(l) => Some(l.clone()),
            _ => None,
        })
        .await;
    assert_eq!(pushed, list);
    // A new connection gets the whole directory: Bob is no longer in it.
    let c = Client::connect(relay.addr, &carol)
        .await
        .expect("carol again");
    let whole = c.first_directory().await;
    assert!(whole.iter().any(|e| e.cert == alice.cert()), "{whole:?}");
    assert!(
        whole.iter().all(|e| e.cert != bob.cert()),
        "bob still listed"
    );
    assert_refused(
        Client::connect(relay.addr, &bob).await,
        "user revoked by the organisation",
    );
    // Old or equal serials are refused.
    let old = acme.key.revoke(4, vec![], 1);
    match a.request(Frame::Revocations(old)).await {
        Frame::Error(e) => assert!(e.contains("not newer"), "{e}"),
        other => panic!("expected error, got {other:?}"),
    }
    assert!(matches!(
        a.request(Frame::Revocations(list.clone())).await,
        Frame::Error(_)
    ));

    // The list is durable.
    relay.kill();
    drop((a, c));
    let relay = Relay::start(dir.path(), &[acme.id()], &[]);
    assert_refused(
        Client::connect(relay.addr, &bob).await,
        "user revoked by the organisation",
    );
    let a = Client::connect(relay.addr, &alice).await.expect("alice");
    let again = a
        .wait_for("the stored list", |i| match i {
            Inbound::Revocations(l) => Some(l.serial),
            _ => None,
        })
        .await;
    assert_eq!(again, 5);
}
