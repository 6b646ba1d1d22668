//! Leases decided by the cluster's engine: two handles on one real
//! `nats-server` stand for two relay nodes deciding claims at once.

mod common;

use std::sync::Arc;

use common::nats::NatsServer;
use tincan_core::lease::LeaseRefusal;
use tincan_core::site::SiteId;
use tincan_core::{DeviceId, OrgId};
use tincan_relay::engine::{NatsEngine, NatsEngineConfig, RelayStore};

const TTL: u64 = 1_200;

async fn two_nodes(server: &NatsServer) -> (Arc<NatsEngine>, Arc<NatsEngine>) {
    let config = NatsEngineConfig {
        urls: vec![server.url.clone()],
        replicas: 1,
    };
    let a = NatsEngine::connect(&config).await.expect("node a");
    let b = NatsEngine::connect(&config).await.expect("node b");
    (Arc::new(a), Arc::new(b))
}

#[tokio::test(flavor = "multi_thread")]
async fn one_holder_per_site_whichever_node_decides() {
    let server = NatsServer::start();
    let (a, b) = two_nodes(&server).await;
    let (la, lb) = (
        a.shared_leases().expect("a cluster shares leases"),
        b.shared_leases().expect("a cluster shares leases"),
    );
    let (org, site) = (OrgId([1; 20]), SiteId([2; 16]));
    let (x, y) = (DeviceId([3; 20]), DeviceId([4; 20]));

    let granted = la
        .claim_lease(org, site, x, 1, 1_000, TTL)
        .await
        .expect("engine");
    let granted = granted.expect("x is granted epoch 1");
    assert_eq!((granted.holder, granted.epoch), (Some(x), 1));
    // The other node sees the live lease: y may not take the site.
    let refusal = lb
        .claim_lease(org, site, y, 2, 1_500, TTL)
        .await
        .expect("engine");
    assert_eq!(
        refusal,
        Err(LeaseRefusal::Held {
            current_epoch: 1,
            holder: x
        })
    );
    // x renews at the other node (its connection moved).
    let renewed = lb
        .claim_lease(org, site, x, 1, 2_000, TTL)
        .await
        .expect("engine");
    assert_eq!(renewed.expect("renewed").expires_at, 2_000 + TTL);
    // Once the lease lapsed, y is granted a newer epoch; x's is stale.
    let taken = la
        .claim_lease(org, site, y, 2, 2_000 + TTL, TTL)
        .await
        .expect("engine");
    assert_eq!(taken.expect("y takes over").epoch, 2);
    let stale = lb
        .claim_lease(org, site, x, 1, 3_300, TTL)
        .await
        .expect("engine");
    assert!(
        matches!(
            stale,
            Err(LeaseRefusal::Stale {
                current_epoch: 2,
                ..
            })
        ),
        "{stale:?}"
    );
    // y steps down at b; x may claim above at a at once.
    assert!(lb
        .release_lease(org, site, y, 2, 3_400)
        .await
        .expect("engine"));
    let back = la
        .claim_lease(org, site, x, 3, 3_400, TTL)
        .await
        .expect("engine");
    assert_eq!(back.expect("x is back").epoch, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_claims_at_two_nodes_grant_each_epoch_once() {
    let server = NatsServer::start();
    let (a, b) = two_nodes(&server).await;
    let (org, site) = (OrgId([1; 20]), SiteId([2; 16]));
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let leases = node.shared_leases().expect("shared");
            let device = DeviceId([10 + i; 20]);
            let out = leases
                .claim_lease(org, site, device, 1, 1_000, TTL)
                .await
                .expect("engine");
            (device, out)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (device, out) = task.await.expect("task");
        if out.is_ok() {
            winners.push(device);
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one of 16 racing claims wins: {winners:?}"
    );
}
