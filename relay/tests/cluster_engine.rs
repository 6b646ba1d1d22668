//! The NATS engine on a real three-server JetStream cluster (127.0.0.1):
//! mail is kept in three copies, and losing the server that leads it
//! costs a pause, never an acknowledged item.

mod common;

use std::time::{Duration, Instant};

use common::nats::NatsCluster;
use tincan_core::{DeviceId, MessageId, OrgId};
use tincan_relay::engine::{NatsEngine, NatsEngineConfig, RelayStore};
use tincan_relay::store::{MailKind, MailQuota, NewMail, PutOutcome};

const QUOTA: MailQuota = MailQuota {
    items: 1_000,
    bytes: 1 << 24,
    org_bytes: u64::MAX,
};

fn mail(n: u16) -> NewMail {
    let mut id = [0u8; 16];
    id[..2].copy_from_slice(&n.to_be_bytes());
    NewMail {
        org: OrgId([1; 20]),
        devices: vec![DeviceId([2; 20])],
        message_id: MessageId(id),
        kind: MailKind::Envelope,
        origin: DeviceId([3; 20]),
        item: vec![7; 100],
        now_ms: 1_000,
        expires_ms: u64::MAX / 2,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_mail_outlives_the_leader_of_a_three_server_cluster() {
    let mut cluster = NatsCluster::start(3);
    let config = NatsEngineConfig {
        urls: cluster.urls.clone(),
        replicas: 3,
    };
    // A fresh cluster elects its meta leader first: connect until it can.
    let started = Instant::now();
    let engine = loop {
        match NatsEngine::connect(&config).await {
            Ok(engine) => break engine,
            Err(e) if started.elapsed() < Duration::from_secs(60) => {
                eprintln!("cluster not ready yet: {e}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("the cluster never became ready: {e}"),
        }
    };
    eprintln!("three-server cluster ready in {:?}", started.elapsed());
    for n in 0..50 {
        let out = engine.put_mail(mail(n), QUOTA).await.expect("put");
        assert_eq!(out[0].1, PutOutcome::Stored);
    }
    let leader = engine
        .mail_leader()
        .await
        .expect("stream info")
        .expect("a replicated stream has a leader");
    let killed = cluster.kill(&leader);
    eprintln!("killed the mail stream's leader {leader}");

    // Custody resumes once the other two elect a new leader.
    let lost_at = Instant::now();
    let mut n = 50;
    loop {
        match engine.put_mail(mail(n), QUOTA).await {
            Ok(out) if out[0].1 == PutOutcome::Stored => break,
            Ok(out) => panic!("unexpected {out:?}"),
            Err(e) if lost_at.elapsed() < Duration::from_secs(60) => {
                eprintln!("custody paused: {e}");
                n += 1;
                // The stream answers "not found" at once while the two
                // left elect a leader; do not spin on it.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("custody never resumed: {e}"),
        }
    }
    eprintln!(
        "custody resumed {:?} after the leader died",
        lost_at.elapsed()
    );
    let held = engine
        .mail_for_devices(vec![DeviceId([2; 20])], 10_000)
        .await
        .expect("read");
    let ids: std::collections::BTreeSet<MessageId> = held.iter().map(|r| r.message_id).collect();
    for m in 0..50 {
        assert!(
            ids.contains(&mail(m).message_id),
            "acknowledged item {m} lost"
        );
    }

    // The dead server rejoins with its store and catches up.
    cluster.restart(killed);
    let new_leader = engine.mail_leader().await.expect("info");
    eprintln!("leader now {new_leader:?}; {} items held", held.len());
}
