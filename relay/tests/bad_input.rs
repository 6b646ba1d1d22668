//! Hostile input: garbage datagrams, half-open and abandoned handshakes,
//! connections that never register, malformed and unexpected frames, and
//! a connection flood from one address. A good client is served throughout.

mod common;

use std::time::Duration;

use common::relay::Relay;
use common::{answer_for, client_endpoint, close_of, route_of, seal, Client, Org, DEADLINE};
use tincan_core::route::Answer;
use tincan_core::wire::Frame;
use tincan_core::Identity;
use tincan_transport::entropy::OsEntropy;
use tincan_transport::{rpc, tls};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: reproducible noise from a printed seed.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next() as u8;
        }
    }
}

fn stranger_identity(name: &str) -> Identity {
    Identity::generate(name, common::now_secs(), &mut OsEntropy)
}

/// Real QUIC Initial packets, captured by pointing a client at a sink.
async fn captured_initials(count: usize) -> Vec<Vec<u8>> {
    let endpoint = client_endpoint(&stranger_identity("sniffed")).expect("endpoint");
    let mut initials = Vec::with_capacity(count);
    for _ in 0..count {
        let sink = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let connecting = endpoint
            .connect(sink.local_addr().expect("addr"), tls::SERVER_NAME)
            .expect("connect");
        let mut buf = vec![0u8; 65_535];
        let (len, _) = tokio::time::timeout(DEADLINE, sink.recv_from(&mut buf))
            .await
            .expect("an initial in time")
            .expect("recv");
        buf.truncate(len);
        initials.push(buf);
        drop(connecting);
    }
    initials
}

/// A peer that completes TLS and then says nothing.
async fn mute(relay: std::net::SocketAddr) -> (quinn::Endpoint, Result<quinn::Connection, String>) {
    let endpoint = client_endpoint(&stranger_identity("mute")).expect("endpoint");
    let conn = match endpoint.connect(relay, tls::SERVER_NAME) {
        Ok(c) => c.await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    (endpoint, conn)
}

async fn raw_exchange(conn: &quinn::Connection, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    send.write_all(bytes).await.map_err(|e| e.to_string())?;
    send.finish().map_err(|e| e.to_string())?;
    tokio::time::timeout(DEADLINE, recv.read_to_end(rpc::STREAM_LIMIT))
        .await
        .map_err(|_| "no answer".to_string())?
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_does_not_hurt_good_clients() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let relay = Relay::start(dir.path(), &[acme.id()], &[]);
    let alice = acme.device("alice");
    let bob = acme.device("bob");
    let a = Client::connect(relay.addr, &alice).await.expect("alice");

    let seed = std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    eprintln!("garbage seed: {seed:#x}");
    let mut rng = Rng(seed | 1);
    let noise = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    for i in 0..1000 {
        let len = 1 + (rng.next() % 1500) as usize;
        let mut datagram = vec![0u8; len];
        rng.fill(&mut datagram);
        if i % 2 == 0 {
            datagram[0] |= 0xc0;
            if len >= 5 {
                datagram[1..5].copy_from_slice(&1u32.to_be_bytes());
            }
        }
        noise.send_to(&datagram, relay.addr).expect("send noise");
    }
    let mut half_open = Vec::new();
    for initial in captured_initials(20).await {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.send_to(&initial, relay.addr).expect("send initial");
        half_open.push(socket);
    }
    let quitter = client_endpoint(&stranger_identity("quitter")).expect("endpoint");
    for _ in 0..20 {
        let connecting = quitter
            .connect(relay.addr, tls::SERVER_NAME)
            .expect("connect");
        tokio::task::yield_now().await;
        drop(connecting);
    }
    let mut mutes = Vec::new();
    for _ in 0..3 {
        mutes.push(mute(relay.addr).await);
    }

    // Malformed frames on a registered connection: the stream is reset,
    // the connection keeps serving.
    let garbage = [0u8, 0, 0, 6, 2, 0xff, 0xff, 0xff, 0xff, 0xff];
    assert!(
        raw_exchange(&a.conn, &garbage).await.is_err(),
        "garbage answered"
    );
    let oversize = [0xffu8, 0xff, 0xff, 0xff, 2, 0];
    assert!(
        raw_exchange(&a.conn, &oversize).await.is_err(),
        "oversize answered"
    );
    let wrong_version = [0u8, 0, 0, 2, 9, 0];
    assert!(raw_exchange(&a.conn, &wrong_version).await.is_err());
    // A frame kind of a later protocol revision is answered, not reset.
    let future = raw_exchange(&a.conn, &[0, 0, 0, 3, 2, 42, 0])
        .await
        .expect("an answer");
    match tincan_core::wire::decode(&future).expect("a frame").0 {
        Frame::Error(e) => assert!(e.contains("unknown frame kind 42"), "{e}"),
        other => panic!("expected an error, got {other:?}"),
    }
    match a.request(Frame::Directory(vec![])).await {
        Frame::Error(e) => assert!(e.contains("unexpected"), "{e}"),
        other => panic!("expected an error, got {other:?}"),
    }

    // The good clients are served.
    let b = Client::connect(relay.addr, &bob).await.expect("bob");
    let envelope = seal(&alice, &[&bob], "through the noise");
    let answers = a.route(route_of(&envelope, &[&bob])).await;
    assert!(matches!(answer_for(&answers, &bob), Answer::Receipt(_)));
    drop(b);

    // Connections that never register are closed after 5 s.
    for (_, conn) in &mutes {
        let conn = conn.as_ref().expect("mute handshake");
        let (code, reason) = close_of(conn).await.expect("mute closed");
        assert_eq!(code, 0x13, "{reason}");
    }
    drop(half_open);
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_flood_from_one_address_is_capped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let relay = Relay::start(dir.path(), &[acme.id()], &["--max-conns-per-ip", "4"]);
    let mut mutes = Vec::new();
    for _ in 0..4 {
        let (endpoint, conn) = mute(relay.addr).await;
        conn.as_ref().expect("within the cap");
        mutes.push((endpoint, conn));
    }
    let (_e, refused) = mute(relay.addr).await;
    let error = refused.expect_err("the fifth connection is refused");
    eprintln!("fifth connection: {error}");
    // Once the silent ones are dropped, a member gets in.
    let alice = acme.device("alice");
    let a = common::eventually("alice admitted after the flood", || async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        Client::connect(relay.addr, &alice).await.ok()
    })
    .await;
    assert!(matches!(
        a.request(Frame::Register(alice.register())).await,
        Frame::Welcome(_)
    ));
    drop(mutes);
}
