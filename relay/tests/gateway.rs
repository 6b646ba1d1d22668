//! Branch gateways: leases (grant, held, stale, renew, expiry, epochs kept
//! across a restart), site member lists only from the live holder, and one
//! stream per site carrying all of that site's devices.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::relay::{cli, metric, Relay};
use common::{answer_for, route_of, seal, Client, Inbound, Org};
use tincan_core::route::{Answer, Route, Routed};
use tincan_core::site::SiteId;
use tincan_core::wire::Frame;

fn claim(site: SiteId, epoch: u64) -> Frame {
    Frame::LeaseClaim { site, epoch }
}

#[tokio::test(flavor = "multi_thread")]
async fn leases_fence_epochs_and_sites_get_one_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let mut relay = Relay::start(dir.path(), &[acme.id()], &["--lease-ttl-ms", "4000"]);
    let site = SiteId([7; 16]);
    let gw1 = acme.device("gw1");
    let gw2 = acme.device("gw2");
    let m1 = acme.device("m1");
    let m2 = acme.device("m2");
    let alice = acme.device("alice");
    let g1 = Client::connect_with(
        relay.addr,
        &gw1,
        gw1.register(),
        vec![m1.clone(), m2.clone()],
    )
    .await
    .expect("gw1");
    let g2 = Client::connect(relay.addr, &gw2).await.expect("gw2");
    let a = Client::connect(relay.addr, &alice).await.expect("alice");

    match g1.request(claim(site, 1)).await {
        Frame::LeaseGranted {
            site: s,
            epoch: 1,
            ttl_ms: 4000,
            ..
        } => assert_eq!(s, site),
        other => panic!("expected grant, got {other:?}"),
    }
    match g2.request(claim(site, 2)).await {
        Frame::LeaseRefused {
            epoch: 2,
            current_epoch: 1,
            holder,
            ..
        } => assert_eq!(holder, Some(gw1.id())),
        other => panic!("expected held, got {other:?}"),
    }
    match g2.request(claim(site, 1)).await {
        Frame::LeaseRefused {
            epoch: 1,
            current_epoch: 1,
            ..
        } => {}
        other => panic!("expected stale, got {other:?}"),
    }
    // Renewal by the holder.
    assert!(matches!(
        g1.request(claim(site, 1)).await,
        Frame::LeaseGranted { epoch: 1, .. }
    ));
    // Site members only from the live holder of that epoch.
    let members = vec![gw1.card(), m1.card(), m2.card()];
    let from_gw2 = Frame::SiteMembers {
        site,
        epoch: 1,
        members: members.clone(),
    };
    assert!(matches!(g2.request(from_gw2).await, Frame::Error(_)));
    let wrong_epoch = Frame::SiteMembers {
        site,
        epoch: 2,
        members: members.clone(),
    };
    assert!(matches!(g1.request(wrong_epoch).await, Frame::Error(_)));
    // A card whose membership belongs to another device is refused.
    let mut bad = m1.card();
    bad.membership = m2.membership.clone();
    let forged = Frame::SiteMembers {
        site,
        epoch: 1,
        members: vec![bad],
    };
    assert!(matches!(g1.request(forged).await, Frame::Error(_)));
    assert!(matches!(
        g1.request(claim(site, 1)).await,
        Frame::LeaseGranted { .. }
    ));
    let listed = Frame::SiteMembers {
        site,
        epoch: 1,
        members,
    };
    assert_eq!(g1.request(listed).await, Frame::Ack);
    a.wait_directory("m1 and m2 behind the site", |d| {
        [&m1, &m2].iter().all(|m| {
            d.iter()
                .any(|e| e.cert == m.cert() && e.online && e.site == Some(site))
        })
    })
    .await;

    // One envelope for both site members: one stream to the gateway.
    let before = g1.route_streams.load(Ordering::SeqCst);
    let envelope = seal(&alice, &[&m1, &m2], "to the branch");
    let answers = a.route(route_of(&envelope, &[&m1, &m2])).await;
    for m in [&m1, &m2] {
        match answer_for(&answers, m) {
            Answer::Receipt(r) => r.verify(&m.cert()).expect("member signed"),
            other => panic!("expected receipt, got {other:?}"),
        }
    }
    assert_eq!(g1.route_streams.load(Ordering::SeqCst) - before, 1);
    let carried = g1
        .wait_for("the site route", |i| match i {
            Inbound::Route(Route {
                to,
                item: Routed::Envelope(e),
            }) if e.id == envelope.id => Some(to.clone()),
            _ => None,
        })
        .await;
    let mut carried = carried;
    carried.sort();
    let mut want = vec![m1.id(), m2.id()];
    want.sort();
    assert_eq!(carried, want);

    // gw1 stops renewing: once its lease ran out, gw2 takes epoch 2.
    let granted = common::eventually("gw2's lease after expiry", || async {
        match g2.request(claim(site, 2)).await {
            Frame::LeaseGranted { epoch: 2, .. } => Some(()),
            _ => {
                tokio::time::sleep(Duration::from_millis(400)).await;
                None
            }
        }
    })
    .await;
    let _: () = granted;
    // The site's old list no longer routes: m1 goes to custody.
    let later = seal(&alice, &[&m1], "after failover");
    assert_eq!(
        answer_for(&a.route(route_of(&later, &[&m1])).await, &m1),
        Answer::Custody
    );
    // Releasing ends the lease (and an unknown release is still acked).
    assert_eq!(
        g2.request(Frame::LeaseRelease { site, epoch: 2 }).await,
        Frame::Ack
    );

    // A restarted relay never grants an old epoch again.
    relay.kill();
    drop((g1, g2, a));
    let relay = Relay::start(dir.path(), &[acme.id()], &[]);
    let g2 = Client::connect(relay.addr, &gw2).await.expect("gw2 again");
    match g2.request(claim(site, 2)).await {
        Frame::LeaseRefused {
            current_epoch: 2, ..
        } => {}
        other => panic!("expected stale after restart, got {other:?}"),
    }
    assert!(matches!(
        g2.request(claim(site, 3)).await,
        Frame::LeaseGranted { epoch: 3, .. }
    ));
    let status = relay.status();
    let sites = &status["orgs"][0]["sites"];
    assert_eq!(sites[0]["epoch"], 3);
    assert_eq!(sites[0]["holder"], gw2.id().to_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_mail_reaches_a_site_once_when_its_gateway_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let relay = Relay::start(dir.path(), &[acme.id()], &[]);
    let site = SiteId([9; 16]);
    let gw = acme.device("gw");
    let m1 = acme.device("m1");
    let m2 = acme.device("m2");
    let alice = acme.device("alice");
    let g = Client::connect_with(relay.addr, &gw, gw.register(), vec![m1.clone(), m2.clone()])
        .await
        .expect("gw");
    let a = Client::connect(relay.addr, &alice).await.expect("alice");
    let members = || Frame::SiteMembers {
        site,
        epoch: 0,
        members: vec![gw.card(), m1.card(), m2.card()],
    };
    let with_epoch = |epoch| match members() {
        Frame::SiteMembers { site, members, .. } => Frame::SiteMembers {
            site,
            epoch,
            members,
        },
        other => other,
    };
    // The site is listed once (so the relay knows m1 and m2), then the
    // gateway steps down.
    assert!(matches!(
        g.request(claim(site, 1)).await,
        Frame::LeaseGranted { .. }
    ));
    assert_eq!(g.request(with_epoch(1)).await, Frame::Ack);
    assert_eq!(
        g.request(Frame::LeaseRelease { site, epoch: 1 }).await,
        Frame::Ack
    );
    a.wait_directory("m1 and m2 offline", |d| {
        [&m1, &m2]
            .iter()
            .all(|m| d.iter().any(|e| e.cert == m.cert() && !e.online))
    })
    .await;

    let envelope = seal(&alice, &[&m1, &m2], "for the branch, later");
    let answers = a.route(route_of(&envelope, &[&m1, &m2])).await;
    assert_eq!(answer_for(&answers, &m1), Answer::Custody);
    assert_eq!(answer_for(&answers, &m2), Answer::Custody);
    let before = g.route_streams.load(Ordering::SeqCst);

    // The gateway comes back: one stream carries the item to both.
    assert!(matches!(
        g.request(claim(site, 2)).await,
        Frame::LeaseGranted { .. }
    ));
    assert_eq!(g.request(with_epoch(2)).await, Frame::Ack);
    for m in [&m1, &m2] {
        a.wait_for("a member's receipt", |i| match i {
            Inbound::Route(Route {
                item: Routed::Receipt(r),
                ..
            }) if r.message_id == envelope.id && r.recipient_device == m.id() => Some(()),
            _ => None,
        })
        .await;
    }
    assert_eq!(g.route_streams.load(Ordering::SeqCst) - before, 1);
    common::eventually("mailboxes empty", || {
        let s = relay.status();
        async move { (s["mail_total"] == 0).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn epoch_jumps_are_refused_so_the_site_keeps_getting_gateways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let mut relay = Relay::start(dir.path(), &[acme.id()], &[]);
    let fingerprint: tincan_core::RelayId = relay.fingerprint.parse().expect("fingerprint");
    let site = SiteId([5; 16]);
    let gw = acme.device("gw");
    let mallory = acme.device("mallory");
    let m = Client::connect(relay.addr, &mallory)
        .await
        .expect("mallory");
    // A member tries to burn the epoch space: refused, nothing stored.
    for epoch in [
        u64::MAX,
        u64::MAX / 2,
        1 + tincan_core::lease::MAX_EPOCH_STEP,
    ] {
        match m.request(claim(site, epoch)).await {
            Frame::LeaseRefused {
                current_epoch: 0,
                holder: None,
                ..
            } => {}
            other => panic!("expected a refusal of epoch {epoch}, got {other:?}"),
        }
    }
    relay.kill();
    drop(m);
    let relay = Relay::start(dir.path(), &[acme.id()], &[]);
    let g = Client::connect(relay.addr, &gw).await.expect("gw");
    // The site still gets a gateway, with a grant its LAN can check
    // against the relay key it pinned.
    match g.request(claim(site, 1)).await {
        Frame::LeaseGranted {
            epoch: 1, grant, ..
        } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_millis() as u64;
            grant
                .proves(&fingerprint, gw.id(), site, 1, now)
                .expect("a grant the LAN believes");
        }
        other => panic!("expected a grant, got {other:?}"),
    }
}

/// `status` and `/metrics` count the same devices online: those connected
/// directly and those behind a live site's gateway, each said apart.
#[tokio::test(flavor = "multi_thread")]
async fn status_and_metrics_agree_on_who_is_online() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let relay = Relay::start(dir.path(), &[acme.id()], &["--metrics", "127.0.0.1:0"]);
    let metrics = relay.metrics.expect("metrics addr");
    let site = SiteId([9; 16]);
    let (gw, member, alice) = (acme.device("gw"), acme.device("m1"), acme.device("alice"));
    let g = Client::connect_with(relay.addr, &gw, gw.register(), vec![member.clone()])
        .await
        .expect("gw");
    let a = Client::connect(relay.addr, &alice).await.expect("alice");
    assert!(matches!(
        g.request(claim(site, 1)).await,
        Frame::LeaseGranted { .. }
    ));
    let members = Frame::SiteMembers {
        site,
        epoch: 1,
        members: vec![gw.card(), member.card()],
    };
    assert_eq!(g.request(members).await, Frame::Ack);
    a.wait_directory("m1 behind the site", |d| {
        d.iter().any(|e| e.cert == member.cert() && e.online)
    })
    .await;

    let status = relay.status();
    let online = status["orgs"][0]["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .filter(|d| d["online"] == true)
        .count();
    assert_eq!(online, 3, "{status:#}");
    assert_eq!(metric(metrics, "tincan_relay_devices_online").await, 3);
    assert_eq!(metric(metrics, "tincan_relay_devices_connected").await, 2);
    let human = cli(dir.path(), &["status"]);
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(
        human.contains("3 devices (3 online: 2 connected directly, 1 through a branch gateway)"),
        "{human}"
    );

    // The gateway leaves: its member is no longer reachable either.
    g.close().await;
    common::eventually("the site's devices offline in the metrics", || async {
        (metric(metrics, "tincan_relay_devices_online").await == 1).then_some(())
    })
    .await;
    assert_eq!(metric(metrics, "tincan_relay_devices_connected").await, 1);
}
