//! Directory pushes: a device that registers gets the whole directory; the
//! devices registered before it get only what changed (its entry), not
//! the whole directory again; a device of another organisation is never
//! in them.

mod common;

use common::relay::Relay;
use common::{Client, Inbound, Org};
use tincan_core::route::DirectoryEntry;

/// Every directory frame `client` got so far.
async fn directories(client: &Client) -> Vec<Vec<DirectoryEntry>> {
    client
        .received()
        .await
        .into_iter()
        .filter_map(|i| match i {
            Inbound::Directory(d) => Some(d),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn newcomers_get_everything_and_the_others_only_the_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let other = Org::new("Other");
    let relay = Relay::start(dir.path(), &[acme.id(), other.id()], &[]);
    let (ann, ben, cat) = (acme.device("ann"), acme.device("ben"), acme.device("cat"));
    let oscar = other.device("oscar");
    let o = Client::connect(relay.addr, &oscar).await.expect("oscar");
    let a = Client::connect(relay.addr, &ann).await.expect("ann");
    let b = Client::connect(relay.addr, &ben).await.expect("ben");
    a.wait_directory("ben online", |d| {
        d.iter().any(|e| e.cert == ben.cert() && e.online)
    })
    .await;
    b.wait_directory("ann online", |d| {
        d.iter().any(|e| e.cert == ann.cert() && e.online)
    })
    .await;
    let before = directories(&a).await.len();
    let c = Client::connect(relay.addr, &cat).await.expect("cat");
    // Cat knows nobody: it gets all three.
    c.wait_directory("everyone", |d| {
        [&ann, &ben, &cat]
            .iter()
            .all(|x| d.iter().any(|e| e.cert == x.cert() && e.online))
    })
    .await;
    // Ann knew Ben already: she is told of Cat alone.
    let delta = a
        .wait_directory("cat online", |d| {
            d.iter().any(|e| e.cert == cat.cert() && e.online)
        })
        .await;
    assert_eq!(
        delta.len(),
        1,
        "ann got the whole directory again: {delta:?}"
    );
    assert!(directories(&a).await.len() > before);
    // Cat leaves: the others learn it is offline, again as a delta.
    c.close().await;
    let delta = b
        .wait_directory("cat offline", |d| {
            d.iter().any(|e| e.cert == cat.cert() && !e.online)
        })
        .await;
    assert_eq!(delta.len(), 1, "ben got more than the change: {delta:?}");
    // Organisations stay apart: Oscar never hears of Acme, nor Acme of him.
    for d in directories(&o).await.iter().flatten() {
        assert_eq!(d.cert, oscar.cert(), "oscar was told of {}", d.name);
    }
    for client in [&a, &b] {
        for d in directories(client).await.iter().flatten() {
            assert_ne!(d.cert, oscar.cert(), "acme was told of oscar");
        }
    }
}
