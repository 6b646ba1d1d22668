//! Directory pushes: a device that registers gets the whole directory; the
//! devices registered before it get only what changed (its entry), not
//! the whole directory again; a device of another organisation is never
//! in them. A device that misses pushes (refused, late, or on a connection
//! being replaced) still ends up with the directory as the relay has it,
//! including departures it missed; a device that never asked for versioned
//! pushes gets the whole directory, as before them.

mod common;

use common::relay::Relay;
use common::{now_secs, Client, Device, DirectoryMode, Org};
use tincan_core::device::Roster;
use tincan_core::route::DirectoryEntry;
use tincan_core::wire::Frame;
use tincan_core::DeviceRevocation;

/// Whether `d` lists `device` with `online`.
fn lists(d: &[DirectoryEntry], device: &Device, online: bool) -> bool {
    d.iter()
        .any(|e| e.cert == device.cert() && e.online == online)
}

/// Whether `d` lists `device` at all.
fn has(d: &[DirectoryEntry], device: &Device) -> bool {
    d.iter().any(|e| e.cert == device.cert())
}

/// `device` removed by its user, handed to the relay over `by`.
async fn remove(by: &Client, device: &Device) {
    let user = device.identity.user.as_ref().expect("user key");
    let roster = Roster {
        certs: Vec::new(),
        revocations: vec![DeviceRevocation::sign(user, device.id(), now_secs())],
        labels: Vec::new(),
    };
    assert_eq!(by.request(Frame::Devices(roster)).await, Frame::Ack);
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
    assert!(
        a.versioned && b.versioned,
        "the relay takes versioned pushes"
    );
    a.wait_directory("ben online", |d| lists(d, &ben, true))
        .await;
    b.wait_directory("ann online", |d| lists(d, &ann, true))
        .await;
    let c = Client::connect(relay.addr, &cat).await.expect("cat");
    // Cat knows nobody: it gets all three, as one whole directory.
    c.wait_directory("everyone", |d| {
        [&ann, &ben, &cat].iter().all(|x| lists(d, x, true))
    })
    .await;
    assert_eq!(c.first_directory().await.len(), 3);
    // Ann knew Ben already: she is told of Cat alone.
    a.wait_directory("cat online", |d| lists(d, &cat, true))
        .await;
    let updates = a.updates().await;
    let delta = updates
        .iter()
        .find(|u| lists(&u.entries, &cat, true))
        .expect("the update with cat");
    assert!(
        delta.base > 0,
        "ann got the whole directory again: {delta:?}"
    );
    assert_eq!(delta.entries.len(), 1, "ann got more than cat: {delta:?}");
    // Cat leaves: the others learn it is offline, again as a delta.
    c.close().await;
    b.wait_directory("cat offline", |d| lists(d, &cat, false))
        .await;
    let updates = b.updates().await;
    let delta = updates
        .iter()
        .find(|u| lists(&u.entries, &cat, false))
        .expect("the update with cat offline");
    assert_eq!(
        delta.entries.len(),
        1,
        "ben got more than the change: {delta:?}"
    );
    // Organisations stay apart: Oscar never hears of Acme, nor Acme of him.
    o.received().await;
    for d in o.view() {
        assert_eq!(d.cert, oscar.cert(), "oscar was told of {}", d.name);
    }
    for client in [&a, &b] {
        assert!(!has(&client.view(), &oscar), "acme was told of oscar");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_that_missed_pushes_gets_what_it_missed_and_the_departures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let relay = Relay::start(dir.path(), &[acme.id()], &[]);
    let (ann, ben, cat, dan) = (
        acme.device("ann"),
        acme.device("ben"),
        acme.device("cat"),
        acme.device("dan"),
    );
    let a = Client::connect(relay.addr, &ann).await.expect("ann");
    let _b = Client::connect(relay.addr, &ben).await.expect("ben");
    let c = Client::connect(relay.addr, &cat).await.expect("cat");
    a.wait_directory("ben and cat online", |d| {
        lists(d, &ben, true) && lists(d, &cat, true)
    })
    .await;
    // Ann takes nothing for a while: every push to her is refused.
    a.set_directory_mode(DirectoryMode::Refuse);
    let d = Client::connect(relay.addr, &dan).await.expect("dan");
    d.wait_directory("ann online", |d| lists(d, &ann, true))
        .await;
    // Ben's device is removed by its user: it leaves the directory.
    remove(&d, &ben).await;
    // Cat goes offline.
    c.close().await;
    d.wait_directory("cat offline", |v| lists(v, &cat, false))
        .await;
    let missed = a.view();
    assert!(!has(&missed, &dan) && lists(&missed, &cat, true) && has(&missed, &ben));
    // Ann takes pushes again: she gets what she missed, without Ben.
    a.set_directory_mode(DirectoryMode::Apply);
    a.wait_directory("dan online, cat offline, ben gone", |d| {
        lists(d, &dan, true) && lists(d, &cat, false) && !has(d, &ben)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_that_lands_late_does_not_undo_a_newer_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let relay = Relay::start(dir.path(), &[acme.id()], &[]);
    let (ann, cat, dan) = (acme.device("ann"), acme.device("cat"), acme.device("dan"));
    let a = Client::connect(relay.addr, &ann).await.expect("ann");
    let _c = Client::connect(relay.addr, &cat).await.expect("cat");
    a.wait_directory("cat online", |d| lists(d, &cat, true))
        .await;
    // The push telling Ann that Dan is online is held up on the way.
    a.set_directory_mode(DirectoryMode::Hold);
    let d = Client::connect(relay.addr, &dan).await.expect("dan");
    common::eventually("the push of dan held", || async {
        (a.held_count() > 0).then_some(())
    })
    .await;
    // Dan leaves before it arrives; the relay gives up on that push and
    // sends what is true now.
    d.close().await;
    a.set_directory_mode(DirectoryMode::Apply);
    a.wait_directory("dan offline", |d| lists(d, &dan, false))
        .await;
    // Then the old push lands: it must not bring Dan back online.
    a.release_held().await;
    let view = a.view();
    assert!(
        lists(&view, &dan, false),
        "a late push undid a newer one: {view:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_that_reconnects_during_a_push_gets_the_whole_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let relay = Relay::start(dir.path(), &[acme.id()], &[]);
    let (ann, cat, dan) = (acme.device("ann"), acme.device("cat"), acme.device("dan"));
    let a = Client::connect(relay.addr, &ann).await.expect("ann");
    let _c = Client::connect(relay.addr, &cat).await.expect("cat");
    a.wait_directory("cat online", |d| lists(d, &cat, true))
        .await;
    a.set_directory_mode(DirectoryMode::Hold);
    let d = Client::connect(relay.addr, &dan).await.expect("dan");
    common::eventually("the push of dan held", || async {
        (a.held_count() > 0).then_some(())
    })
    .await;
    // Ann comes back on a new connection while that push hangs on the old.
    let again = Client::connect(relay.addr, &ann).await.expect("ann again");
    again
        .wait_directory("cat and dan online", |v| {
            lists(v, &cat, true) && lists(v, &dan, true)
        })
        .await;
    d.close().await;
    again
        .wait_directory("dan offline", |v| lists(v, &dan, false))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_that_never_asked_for_versions_gets_the_whole_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let relay = Relay::start(dir.path(), &[acme.id()], &[]);
    let (ann, ben, cat) = (acme.device("ann"), acme.device("ben"), acme.device("cat"));
    let a = Client::connect_unversioned(relay.addr, &ann)
        .await
        .expect("ann");
    assert!(!a.versioned);
    let _b = Client::connect(relay.addr, &ben).await.expect("ben");
    a.wait_directory("ben online", |d| lists(d, &ben, true))
        .await;
    let _c = Client::connect(relay.addr, &cat).await.expect("cat");
    a.wait_directory("cat online", |d| lists(d, &cat, true))
        .await;
    // Only unversioned parts, each push the whole directory.
    let received = a.received().await;
    assert!(received
        .iter()
        .all(|i| !matches!(i, common::Inbound::Update(_))));
    let with_cat = received
        .iter()
        .find_map(|i| match i {
            common::Inbound::Directory(d) if has(d, &cat) => Some(d.clone()),
            _ => None,
        })
        .expect("a push with cat");
    assert_eq!(with_cat.len(), 3, "not the whole directory: {with_cat:?}");
}
