//! Pre-authentication limits under a flood: while strangers open QUIC
//! connections as fast as they can (handshakes that never register,
//! registrations of a foreign organisation, garbage datagrams) from four
//! loopback addresses, two registered devices keep exchanging messages,
//! each answered end to end; the relay refuses or retries the flood
//! (its metrics say so) instead of serving it. The flood is bounded in
//! attempts and time; nothing here is timed. Only 127.0.0.0/8 is used.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::relay::{metric, Relay};
use common::{answer_for, route_of, seal, Client, Org, DEADLINE};
use quinn::crypto::rustls::QuicClientConfig;
use tincan_core::route::Answer;
use tincan_core::wire::Frame;
use tincan_core::Identity;
use tincan_transport::entropy::OsEntropy;
use tincan_transport::{rpc, tls};

/// Most flood attempts (a bound, not a target).
const FLOOD_ATTEMPTS: usize = 600;
/// Longest the flood runs.
const FLOOD_TIME: Duration = Duration::from_secs(30);
/// Flood attempts in flight at once.
const IN_FLIGHT: usize = 48;
/// Flood source addresses: 127.0.0.2 ..= 127.0.0.5.
const SOURCES: u8 = 4;
/// Messages the registered devices exchange during the flood.
const MESSAGES: usize = 20;

/// What the flood did, as its clients saw it.
#[derive(Default)]
struct FloodStats {
    attempts: AtomicUsize,
    refused: AtomicUsize,
    handshakes: AtomicUsize,
    datagrams: AtomicUsize,
}

/// A client endpoint on `ip` presenting a stranger's device identity
/// (valid TLS, but no membership of a served organisation).
fn stranger_endpoint(ip: Ipv4Addr) -> (quinn::Endpoint, Identity) {
    let identity = Identity::generate("stranger", common::now_secs(), &mut OsEntropy);
    let (_, client_tls) = tls::rustls_configs(&identity).expect("tls");
    let crypto = QuicClientConfig::try_from(client_tls).expect("quic tls");
    let mut endpoint =
        quinn::Endpoint::client(SocketAddr::from((ip, 0))).expect("bind a loopback address");
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    (endpoint, identity)
}

/// One flood attempt of kind `i % 3` from `endpoint`.
async fn attempt(
    i: usize,
    relay: SocketAddr,
    endpoint: quinn::Endpoint,
    udp: Arc<tokio::net::UdpSocket>,
    foreign: common::Device,
    stats: Arc<FloodStats>,
) {
    stats.attempts.fetch_add(1, Ordering::SeqCst);
    if i % 3 == 2 {
        // Garbage shaped like a QUIC v1 Initial (long header), padded.
        let mut junk = vec![0u8; 1200];
        junk[0] = 0xc3;
        junk[1..5].copy_from_slice(&1u32.to_be_bytes());
        junk[5] = 8;
        for (k, b) in junk.iter_mut().enumerate().skip(6) {
            *b = (k * 31 + i * 7) as u8;
        }
        if udp.send_to(&junk, relay).await.is_ok() {
            stats.datagrams.fetch_add(1, Ordering::SeqCst);
        }
        return;
    }
    let connecting = match endpoint.connect(relay, tls::SERVER_NAME) {
        Ok(c) => c,
        Err(_) => {
            stats.refused.fetch_add(1, Ordering::SeqCst);
            return;
        }
    };
    let conn = match tokio::time::timeout(Duration::from_secs(15), connecting).await {
        Ok(Ok(conn)) => conn,
        _ => {
            stats.refused.fetch_add(1, Ordering::SeqCst);
            return;
        }
    };
    stats.handshakes.fetch_add(1, Ordering::SeqCst);
    if i % 3 == 1 {
        // A registration the relay must refuse (foreign organisation).
        let _ = rpc::request(&conn, &Frame::Register(foreign.register()), DEADLINE).await;
    }
    // Otherwise never register: hold the slot until the relay gives up.
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.closed()).await;
}

/// Floods `relay` until `stop`, [`FLOOD_ATTEMPTS`] or [`FLOOD_TIME`].
async fn flood(relay: SocketAddr, stop: Arc<AtomicBool>, stats: Arc<FloodStats>) {
    let foreign = Org::new("Elsewhere").device("mallory");
    let mut sources = Vec::new();
    for n in 0..SOURCES {
        let ip = Ipv4Addr::new(127, 0, 0, 2 + n);
        let (endpoint, _) = stranger_endpoint(ip);
        let udp = tokio::net::UdpSocket::bind(SocketAddr::from((ip, 0)))
            .await
            .expect("bind udp");
        sources.push((endpoint, Arc::new(udp)));
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..FLOOD_ATTEMPTS {
        if stop.load(Ordering::SeqCst) || started.elapsed() > FLOOD_TIME {
            break;
        }
        while tasks.len() >= IN_FLIGHT {
            tasks.join_next().await;
        }
        let (endpoint, udp) = &sources[i % sources.len()];
        tasks.spawn(attempt(
            i,
            relay,
            endpoint.clone(),
            udp.clone(),
            foreign.clone(),
            stats.clone(),
        ));
    }
    // Whatever is still in flight is abandoned with the endpoints.
    tasks.abort_all();
    for (endpoint, _) in sources {
        endpoint.close(0u32.into(), b"flood over");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn registered_devices_are_served_while_strangers_flood() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let relay = Relay::start(
        dir.path(),
        &[acme.id()],
        &[
            "--metrics",
            "127.0.0.1:0",
            "--max-handshakes",
            "32",
            "--retry-above",
            "8",
        ],
    );
    let metrics = relay.metrics.expect("metrics address");
    let (alice, bob) = (acme.device("alice"), acme.device("bob"));
    let a = Client::connect(relay.addr, &alice).await.expect("alice");
    let b = Client::connect(relay.addr, &bob).await.expect("bob");

    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(FloodStats::default());
    let flooding = tokio::spawn(flood(relay.addr, stop.clone(), stats.clone()));
    // Start the exchange only once the flood is under way.
    common::eventually("the flood to start", || async {
        (stats.attempts.load(Ordering::SeqCst) >= IN_FLIGHT).then_some(())
    })
    .await;

    for i in 0..MESSAGES {
        let (client, from, to) = if i % 2 == 0 {
            (&a, &alice, &bob)
        } else {
            (&b, &bob, &alice)
        };
        let envelope = seal(from, &[to], &format!("message {i} during the flood"));
        let answers = tokio::time::timeout(DEADLINE, client.route(route_of(&envelope, &[to])))
            .await
            .unwrap_or_else(|_| panic!("message {i} not answered within {DEADLINE:?}"));
        match answer_for(&answers, to) {
            Answer::Receipt(r) => assert_eq!(r.message_id, envelope.id),
            other => panic!("message {i} not delivered: {other:?}"),
        }
    }
    let during = stats.attempts.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    flooding.await.expect("flood task");

    let refused = metric(metrics, "tincan_relay_refused_connections_total").await;
    let retries = metric(metrics, "tincan_relay_retries_total").await;
    let cap = metric(
        metrics,
        "tincan_relay_refused_connections_total{kind=\"handshake_cap\"}",
    )
    .await;
    let rate = metric(
        metrics,
        "tincan_relay_refused_connections_total{kind=\"ip_rate\"}",
    )
    .await;
    println!(
        "flood: {} attempts ({during} while {MESSAGES} messages went through), {} handshakes completed, {} refused or failed as the flood saw it, {} garbage datagrams; relay: {refused} refused ({cap} over the handshake cap, {rate} over the per-address rate), {retries} sent a retry",
        stats.attempts.load(Ordering::SeqCst),
        stats.handshakes.load(Ordering::SeqCst),
        stats.refused.load(Ordering::SeqCst),
        stats.datagrams.load(Ordering::SeqCst),
    );
    assert!(during >= IN_FLIGHT, "the flood ran during the exchange");
    assert!(
        stats.refused.load(Ordering::SeqCst) > 0,
        "some flood attempts were refused"
    );
    assert!(refused > 0, "the relay counted refusals");
    assert!(retries > 0, "the relay asked for address validation");
    // Still serving: both devices are registered and answer.
    let envelope = seal(&alice, &[&bob], "after the flood");
    let answers = a.route(route_of(&envelope, &[&bob])).await;
    assert!(matches!(answer_for(&answers, &bob), Answer::Receipt(_)));
}
