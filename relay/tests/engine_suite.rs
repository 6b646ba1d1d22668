//! One storage suite, two engines: every test here runs against the
//! single-host SQLite engine and against the NATS JetStream engine (a real
//! `nats-server` on 127.0.0.1), through the `RelayStore` trait the relay
//! uses. An engine that behaves differently fails here.

mod common;

use std::future::Future;
use std::sync::Arc;

use common::nats::NatsServer;
use tincan_core::entropy::SeededEntropy;
use tincan_core::site::SiteId;
use tincan_core::{DeviceId, DeviceRevocation, Identity, MessageId, OrgId, OrgKey};
use tincan_relay::engine::{NatsEngine, NatsEngineConfig, RelayStore, SqliteEngine};
use tincan_relay::store::{MailKind, MailQuota, NewMail, PutOutcome, Store, StoredDevice};

/// Runs `test` against a fresh SQLite engine, then a fresh NATS engine;
/// `reopen` gives the test a second handle on the same state (a restarted
/// relay, or another node of the cluster).
async fn each_engine<F, Fut>(test: F)
where
    F: Fn(Arc<dyn RelayStore>, Reopen) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("relay.db");
    let sqlite = SqliteEngine::new(Store::open(&path).expect("open"));
    eprintln!("engine: sqlite");
    test(Arc::new(sqlite.clone()), Reopen::Sqlite(sqlite)).await;

    let server = NatsServer::start();
    let config = NatsEngineConfig {
        urls: vec![server.url.clone()],
        replicas: 1,
    };
    let nats = NatsEngine::connect(&config).await.expect("connect");
    eprintln!("engine: nats at {}", server.url);
    test(Arc::new(nats), Reopen::Nats(config)).await;
}

/// How to get a second handle on an engine's state.
enum Reopen {
    Sqlite(SqliteEngine),
    Nats(NatsEngineConfig),
}

impl Reopen {
    async fn open(&self) -> Arc<dyn RelayStore> {
        match self {
            Reopen::Sqlite(engine) => Arc::new(engine.clone()),
            Reopen::Nats(config) => Arc::new(NatsEngine::connect(config).await.expect("reconnect")),
        }
    }
}

fn mail(org: OrgId, devices: Vec<DeviceId>, id: u8, kind: MailKind, size: usize) -> NewMail {
    NewMail {
        org,
        devices,
        message_id: MessageId([id; 16]),
        kind,
        origin: DeviceId([9; 20]),
        item: vec![id; size],
        now_ms: 1_000,
        expires_ms: 5_000,
    }
}

/// Per-device limits, no organisation limit.
fn quota(items: u64, bytes: u64) -> MailQuota {
    MailQuota {
        items,
        bytes,
        org_bytes: u64::MAX,
    }
}

fn many_devices(n: u32) -> Vec<DeviceId> {
    (0..n)
        .map(|i| {
            let mut id = [7u8; 20];
            id[..4].copy_from_slice(&i.to_be_bytes());
            DeviceId(id)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn mail_dedupes_respects_quotas_and_outlives_the_handle() {
    each_engine(|engine, reopen| async move {
        let org = OrgId([1; 20]);
        let (bob, carol) = (DeviceId([2; 20]), DeviceId([3; 20]));
        let m = mail(org, vec![bob, carol], 1, MailKind::Envelope, 10);
        let stored = vec![(bob, PutOutcome::Stored), (carol, PutOutcome::Stored)];
        assert_eq!(
            engine
                .put_mail(m.clone(), quota(2, 1_000))
                .await
                .expect("put"),
            stored
        );
        let again = vec![(bob, PutOutcome::Duplicate), (carol, PutOutcome::Duplicate)];
        assert_eq!(
            engine
                .put_mail(m.clone(), quota(2, 1_000))
                .await
                .expect("again"),
            again
        );
        // The same id and kind from another origin is another item.
        let other = NewMail {
            origin: DeviceId([8; 20]),
            ..mail(org, vec![carol], 1, MailKind::Envelope, 10)
        };
        let out = engine.put_mail(other, quota(5, 1_000)).await.expect("put");
        assert_eq!(out, vec![(carol, PutOutcome::Stored)]);
        // A receipt of the same message is another item too.
        let receipt = mail(org, vec![bob], 1, MailKind::Delivered, 10);
        let out = engine
            .put_mail(receipt, quota(5, 1_000))
            .await
            .expect("put");
        assert_eq!(out, vec![(bob, PutOutcome::Stored)]);
        // Bob holds 2 items: the item quota refuses a third.
        let third = mail(org, vec![bob], 3, MailKind::Envelope, 10);
        let out = engine
            .put_mail(third.clone(), quota(2, 1_000))
            .await
            .expect("put");
        assert_eq!(out, vec![(bob, PutOutcome::Full)]);
        // The byte quota counts what is held plus the new item.
        let out = engine.put_mail(third, quota(10, 25)).await.expect("put");
        assert_eq!(out, vec![(bob, PutOutcome::Full)]);

        let later = reopen.open().await;
        let rows = later.mail_for_devices(vec![bob], 10).await.expect("rows");
        assert_eq!(rows.len(), 2);
        assert!(rows[0].id < rows[1].id, "oldest first");
        assert_eq!(rows[0].message_id, MessageId([1; 16]));
        assert_eq!(rows[0].kind, MailKind::Envelope);
        assert_eq!(rows[1].kind, MailKind::Delivered);
        assert_eq!(rows[0].item, vec![1u8; 10]);
        assert_eq!(rows[0].origin, DeviceId([9; 20]));
        assert_eq!(rows[0].stored_ms, 1_000);
        let mut holders = later.devices_with_mail().await.expect("holders");
        holders.sort();
        assert_eq!(holders, vec![(org, bob), (org, carol)]);
        assert_eq!(later.mail_counts().await.expect("counts"), vec![(org, 4)]);

        assert!(later.expire(4_999).await.expect("expire").is_empty());
        assert_eq!(later.expire(5_000).await.expect("expire").len(), 4);
        assert!(later.devices_with_mail().await.expect("holders").is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delivered_mail_goes_and_its_receipt_comes_back() {
    each_engine(|engine, _| async move {
        let org = OrgId([1; 20]);
        let devices = many_devices(3);
        let m = mail(org, devices.clone(), 4, MailKind::Envelope, 50);
        engine.put_mail(m, quota(10, 1_000)).await.expect("put");
        let rows = engine
            .mail_for_devices(devices.clone(), 2)
            .await
            .expect("rows");
        assert_eq!(rows.len(), 2, "the limit holds");
        let rows = engine
            .mail_for_devices(devices.clone(), 10)
            .await
            .expect("rows");
        assert_eq!(rows.len(), 3);
        assert!(
            rows.iter().all(|r| r.body == rows[0].body),
            "one item, one body"
        );

        // Delivered to the first: its row goes, the receipt for the
        // sender (device 9) is stored in its place.
        let receipt = NewMail {
            devices: vec![DeviceId([9; 20])],
            origin: rows[0].device,
            ..mail(org, vec![], 4, MailKind::Delivered, 30)
        };
        let out = engine
            .replace_with_receipt(rows[0].id, receipt, quota(10, 1_000))
            .await
            .expect("replace");
        assert_eq!(out, vec![(DeviceId([9; 20]), PutOutcome::Stored)]);
        let left = engine
            .mail_for_devices(devices.clone(), 10)
            .await
            .expect("rows");
        assert_eq!(left.len(), 2);
        assert!(left.iter().all(|r| r.device != rows[0].device));
        let back = engine
            .mail_for_devices(vec![DeviceId([9; 20])], 10)
            .await
            .expect("rows");
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].kind, MailKind::Delivered);

        // Deleting twice is no error.
        let ids: Vec<i64> = left.iter().map(|r| r.id).collect();
        engine.delete_mail(ids.clone()).await.expect("delete");
        engine.delete_mail(ids).await.expect("delete again");
        assert!(engine
            .mail_for_devices(devices, 10)
            .await
            .expect("rows")
            .is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_organisation_quota_holds() {
    each_engine(|engine, _| async move {
        let org = OrgId([1; 20]);
        let q = MailQuota {
            items: 10,
            bytes: 1_000,
            org_bytes: 150,
        };
        let first = mail(org, vec![DeviceId([2; 20])], 1, MailKind::Envelope, 100);
        let out = engine.put_mail(first, q).await.expect("put");
        assert_eq!(out[0].1, PutOutcome::Stored);
        let second = mail(org, vec![DeviceId([3; 20])], 2, MailKind::Envelope, 100);
        let out = engine.put_mail(second, q).await.expect("put");
        assert_eq!(out[0].1, PutOutcome::OrgFull);
        // Another organisation has its own.
        let other = mail(
            OrgId([5; 20]),
            vec![DeviceId([3; 20])],
            2,
            MailKind::Envelope,
            100,
        );
        let out = engine.put_mail(other, q).await.expect("put");
        assert_eq!(out[0].1, PutOutcome::Stored);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn devices_revocations_and_epochs_round_trip() {
    each_engine(|engine, reopen| async move {
        let mut entropy = SeededEntropy::new(1);
        let acme = OrgKey::generate(&mut entropy);
        let alice = Identity::generate("alice", 1, &mut entropy);
        let dev = StoredDevice {
            org: acme.id(),
            cert: alice.cert.clone(),
            name: "alice".into(),
            last_seen_ms: 10,
        };
        let renamed = StoredDevice {
            name: "alice2".into(),
            last_seen_ms: 5,
            ..dev.clone()
        };
        engine
            .upsert_devices(vec![dev.clone(), renamed])
            .await
            .expect("upsert");
        let devices = reopen.open().await.devices().await.expect("devices");
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0].name, "alice2");
        assert_eq!(devices[0].last_seen_ms, 10, "a sighting never goes back");
        assert_eq!(devices[0].cert, alice.cert);

        let m = mail(
            acme.id(),
            vec![alice.device_id()],
            1,
            MailKind::Envelope,
            10,
        );
        engine.put_mail(m, quota(5, 1_000)).await.expect("put");
        engine
            .remove_devices(acme.id(), vec![alice.device_id()])
            .await
            .expect("remove");
        assert!(engine.devices().await.expect("devices").is_empty());
        let held = engine
            .mail_for_devices(vec![alice.device_id()], 10)
            .await
            .expect("rows");
        assert!(held.is_empty(), "a removed device's mail goes with it");

        let list = acme.revoke(3, vec![alice.user_id()], 1);
        engine.put_revocations(list.clone()).await.expect("put");
        let older = acme.revoke(2, vec![], 1);
        engine.put_revocations(older).await.expect("put older");
        let lists = reopen.open().await.revocations().await.expect("lists");
        assert_eq!(lists.len(), 1);
        assert_eq!(lists[0].serial, 3, "a list never goes back");

        let site = SiteId([4; 16]);
        engine.put_epoch(acme.id(), site, 7).await.expect("epoch");
        engine.put_epoch(acme.id(), site, 3).await.expect("epoch");
        let epochs = reopen.open().await.epochs().await.expect("epochs");
        assert_eq!(epochs, vec![(acme.id(), site, 7)]);
        engine.delete_epoch(acme.id(), site).await.expect("delete");
        assert!(engine.epochs().await.expect("epochs").is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_revocation_is_kept_and_takes_the_device_and_its_mail() {
    each_engine(|engine, reopen| async move {
        let org = OrgId([1; 20]);
        let alice = Identity::generate("alice", 1, &mut SeededEntropy::new(1));
        let user = alice.user.clone().expect("user key");
        let device = alice.device_id();
        let revocation = DeviceRevocation::sign(&user, device, 5);
        engine
            .upsert_devices(vec![StoredDevice {
                org,
                cert: alice.cert.clone(),
                name: "alice".into(),
                last_seen_ms: 1,
            }])
            .await
            .expect("upsert");
        let m = mail(org, vec![device], 1, MailKind::Envelope, 10);
        engine.put_mail(m, quota(2, 1_000)).await.expect("put");
        engine
            .put_device_revocation(org, revocation.clone())
            .await
            .expect("revoke");
        engine
            .put_device_revocation(org, revocation.clone())
            .await
            .expect("idempotent");
        let later = reopen.open().await;
        assert!(later
            .mail_for_devices(vec![device], 10)
            .await
            .expect("rows")
            .is_empty());
        assert!(later.devices().await.expect("devices").is_empty());
        assert_eq!(
            later.device_revocations().await.expect("rows"),
            vec![(org, revocation)]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_envelope_for_many_offline_devices_reaches_each_mailbox() {
    each_engine(|engine, _| async move {
        let org = OrgId([1; 20]);
        let devices = many_devices(200);
        let m = mail(org, devices.clone(), 1, MailKind::Envelope, 64 * 1024);
        let out = engine.put_mail(m, quota(10, 1 << 20)).await.expect("put");
        assert_eq!(out.len(), 200);
        assert!(out.iter().all(|(_, o)| *o == PutOutcome::Stored));
        for d in [devices[0], devices[199]] {
            let rows = engine.mail_for_devices(vec![d], 10).await.expect("rows");
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].item, vec![1u8; 64 * 1024]);
        }
        let all = engine.mail_for_devices(devices, 1_000).await.expect("rows");
        assert_eq!(all.len(), 200);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn relay_nodes_that_beat_are_listed_until_they_stop() {
    each_engine(|engine, _| async move {
        let node = |id: &str, seen_ms| tincan_relay::cluster::ClusterNode {
            node_id: id.into(),
            listen: "127.0.0.1:7443".into(),
            seen_ms,
        };
        engine.beat(node("aa", 10_000)).await.expect("beat");
        let alive = engine.cluster(11_000).await.expect("cluster");
        assert_eq!(alive, vec![node("aa", 10_000)]);
        assert!(engine.cluster(20_000).await.expect("cluster").is_empty());
    })
    .await;
}
