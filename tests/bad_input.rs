//! Hostile and broken input end to end: a real daemon faces a scripted peer
//! (`common::raw_peer`) that replays, misaddresses, tampers, oversizes and
//! garbles frames, floods the UDP port and lies about its keys. Each test
//! asserts what a user would see (history, receipts, peer list, a later
//! message still arriving), never speed.
//!
//! Root namespace only, so every daemon runs with `--no-mdns --listen
//! 127.0.0.1:PORT` and all traffic stays on 127.0.0.1.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use common::raw_peer::{
    client_endpoint, envelope_frame, new_identity, seal_text, RawConn, RawPeer,
};
use common::{cli, cli_json, free_udp_port, wait_for, Daemon};
use serde_json::Value;
use tincan_core::wire::{Frame, Hello, RefuseReason, MAX_FRAME_LEN, PROTOCOL_VERSION};
use tincan_core::{Envelope, Identity, ReceiptKind};

/// Generous deadlines: they bound a hang, they do not measure speed.
const DEADLINE: Duration = Duration::from_secs(30);

/// A daemon on 127.0.0.1 whose log is printed if the test fails.
struct Node {
    name: &'static str,
    addr: SocketAddr,
    daemon: Daemon,
    _dir: tempfile::TempDir,
}

impl Node {
    fn start(name: &'static str, extra: &[&str]) -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_udp_port();
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec!["--no-mdns", "--listen", &listen, "--name", name];
        args.extend_from_slice(extra);
        let daemon = Daemon::start(&dir.path().join(name), &args, None);
        Node {
            name,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            daemon,
            _dir: dir,
        }
    }

    fn home(&self) -> &Path {
        &self.daemon.home
    }

    /// Texts of `history <peer> --json`.
    fn history_texts(&self, peer: &str) -> Vec<String> {
        history_texts(self.home(), peer)
    }

    /// `peers --json`.
    fn peers(&self) -> Vec<Value> {
        match cli_json(self.home(), &["peers", "--json"]) {
            Value::Array(peers) => peers,
            other => panic!("peers --json is not an array: {other}"),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "===== log of {} ({}) =====\n{}",
                self.name,
                self.home().display(),
                self.daemon.log()
            );
        }
    }
}

fn history_texts(home: &Path, peer: &str) -> Vec<String> {
    match cli_json(home, &["history", peer, "--json"]) {
        Value::Array(messages) => messages
            .iter()
            .map(|m| m["text"].as_str().expect("message has text").to_owned())
            .collect(),
        other => panic!("history --json is not an array: {other}"),
    }
}

/// The user-id prefix a CLI user would type for `identity`.
fn prefix(identity: &Identity) -> String {
    identity.user_id().to_string()[..8].to_owned()
}

/// Asserts that `answer` is a delivered-receipt for `envelope`, signed by
/// the node's device.
fn assert_receipt(answer: &anyhow::Result<Frame>, envelope: &Envelope, conn: &RawConn) {
    let Ok(Frame::Receipt(receipt)) = answer else {
        panic!("expected a receipt, got {answer:?}");
    };
    receipt
        .verify(conn.node_cert())
        .expect("receipt signed by the node's device");
    assert_eq!(receipt.message_id, envelope.id);
    assert_eq!(receipt.sender_device, envelope.sender.device_id());
    assert_eq!(receipt.kind, ReceiptKind::Delivered);
}

fn assert_refused(answer: &anyhow::Result<Frame>, envelope: &Envelope, want: RefuseReason) {
    match answer {
        Ok(Frame::Refused { message_id, reason }) => {
            assert_eq!(*message_id, envelope.id);
            assert_eq!(*reason, want);
        }
        other => panic!("expected Refused({want:?}), got {other:?}"),
    }
}

/// Sends a fresh valid message from `peer` over `conn` and checks that the
/// node acknowledges it and shows it: the node is still serving.
async fn still_serves(node: &Node, peer: &RawPeer, conn: &RawConn, text: &str) {
    let envelope = seal_text(&peer.identity, &[conn.node_cert().clone()], text);
    let answer = conn.deliver(&envelope_frame(&envelope)).await;
    assert_receipt(&answer, &envelope, conn);
    let texts = node.history_texts(&prefix(&peer.identity));
    assert!(
        texts.iter().any(|t| t == text),
        "{text:?} not in history {texts:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn same_envelope_twice_is_shown_once() {
    let alice = Node::start("alice", &[]);
    let bob = RawPeer::new("Bob").expect("raw peer");
    let conn = bob.connect(alice.addr).await.expect("connect to alice");

    let envelope = seal_text(&bob.identity, &[conn.node_cert().clone()], "only once");
    let frame = envelope_frame(&envelope);
    let first = conn.deliver(&frame).await;
    assert_receipt(&first, &envelope, &conn);
    let second = conn.deliver(&frame).await;
    assert_receipt(&second, &envelope, &conn);

    // A replay on a fresh connection is acknowledged again, shown once.
    let conn2 = bob.connect(alice.addr).await.expect("second connection");
    let third = conn2.deliver(&frame).await;
    assert_receipt(&third, &envelope, &conn2);

    let texts = alice.history_texts(&prefix(&bob.identity));
    let shown = texts.iter().filter(|t| *t == "only once").count();
    assert_eq!(shown, 1, "history: {texts:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn envelope_for_another_device_is_refused() {
    let alice = Node::start("alice", &[]);
    let bob = RawPeer::new("Bob").expect("raw peer");
    let conn = bob.connect(alice.addr).await.expect("connect to alice");
    let bob_prefix = prefix(&bob.identity);

    let stranger = new_identity("stranger");
    let envelope = seal_text(
        &bob.identity,
        std::slice::from_ref(&stranger.cert),
        "not for alice",
    );
    let answer = conn.deliver(&envelope_frame(&envelope)).await;
    assert_refused(&answer, &envelope, RefuseReason::NotForThisDevice);
    assert!(
        alice.history_texts(&bob_prefix).is_empty(),
        "a refused message reached the history"
    );

    still_serves(&alice, &bob, &conn, "this one is for alice").await;
    assert_eq!(alice.history_texts(&bob_prefix), ["this one is for alice"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_envelope_is_refused() {
    let alice = Node::start("alice", &[]);
    let bob = RawPeer::new("Bob").expect("raw peer");
    let conn = bob.connect(alice.addr).await.expect("connect to alice");
    let to = [conn.node_cert().clone()];

    let mut envelope = seal_text(&bob.identity, &to, "tampered payload");
    envelope.ciphertext[0] ^= 0x01;
    let answer = conn.deliver(&envelope_frame(&envelope)).await;
    assert_refused(&answer, &envelope, RefuseReason::Undecryptable);

    let mut envelope = seal_text(&bob.identity, &to, "tampered signature");
    envelope.signature.0[10] ^= 0x80;
    let answer = conn.deliver(&envelope_frame(&envelope)).await;
    assert_refused(&answer, &envelope, RefuseReason::BadSignature);

    assert!(alice.history_texts(&prefix(&bob.identity)).is_empty());
    still_serves(&alice, &bob, &conn, "untouched").await;
}

/// `len || version || body` with an arbitrary version byte and body.
fn raw_frame(version: u8, body: &[u8]) -> Vec<u8> {
    let mut out = ((1 + body.len()) as u32).to_be_bytes().to_vec();
    out.push(version);
    out.extend_from_slice(body);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn oversize_and_malformed_frames_are_refused() {
    let alice = Node::start("alice", &[]);
    let bob = RawPeer::new("Bob").expect("raw peer");
    let conn = bob.connect(alice.addr).await.expect("connect to alice");

    // More than one frame's worth on one stream: refused, no answer.
    let oversize = vec![0u8; 300 * 1024];
    assert!(oversize.len() > MAX_FRAME_LEN + 4);
    let answer = conn.deliver(&oversize).await;
    assert!(answer.is_err(), "oversize stream answered: {answer:?}");
    // A length prefix announcing an oversize frame, body following.
    let mut announced = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes().to_vec();
    announced.extend_from_slice(&[PROTOCOL_VERSION; 1024]);
    let answer = conn.deliver(&announced).await;
    assert!(answer.is_err(), "oversize prefix answered: {answer:?}");
    still_serves(&alice, &bob, &conn, "after the oversize stream").await;

    // A valid envelope under a version byte this build does not speak.
    let envelope = seal_text(&bob.identity, &[conn.node_cert().clone()], "v99");
    let mut v99 = envelope_frame(&envelope);
    v99[4] = 99;
    let answer = conn.deliver(&v99).await;
    assert!(answer.is_err(), "unknown version answered: {answer:?}");

    // Garbage postcard, an empty frame, trailing bytes, a stray Hello and
    // an empty stream: none is a delivery.
    let mut trailing = envelope_frame(&envelope);
    trailing.push(0);
    let len = (trailing.len() - 4) as u32;
    trailing[..4].copy_from_slice(&len.to_be_bytes());
    let stray_hello = tincan_core::wire::encode(&Frame::Hello(bob.hello())).expect("encode");
    for (what, bytes) in [
        ("garbage postcard", raw_frame(PROTOCOL_VERSION, &[0xff; 64])),
        ("empty frame", vec![0, 0, 0, 0]),
        ("trailing bytes", trailing),
        ("stray hello", stray_hello),
        ("empty stream", Vec::new()),
        ("truncated frame", envelope_frame(&envelope)[..40].to_vec()),
    ] {
        let answer = conn.deliver(&bytes).await;
        // Refused: the stream is reset, or a well-formed but unexpected
        // request gets an explicit error — never a receipt.
        assert!(
            matches!(answer, Err(_) | Ok(Frame::Error(_))),
            "{what} answered: {answer:?}"
        );
    }
    assert!(
        alice
            .history_texts(&prefix(&bob.identity))
            .iter()
            .all(|t| t != "v99"),
        "a malformed frame reached the history"
    );

    still_serves(&alice, &bob, &conn, "after the garbage").await;
    assert!(
        conn.closed_within(Duration::ZERO).await.is_none(),
        "bad streams closed the whole connection"
    );
}

/// A small deterministic PRNG (xorshift64*); the seed is printed so a
/// failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// `count` real QUIC Initial packets (each a fresh connection attempt with
/// its own connection ids), captured by pointing a quinn client at plain
/// UDP sockets that never answer.
async fn captured_initials(count: usize) -> Vec<Vec<u8>> {
    let endpoint = client_endpoint(&new_identity("sniffed")).expect("endpoint");
    let mut initials = Vec::with_capacity(count);
    for _ in 0..count {
        let sink = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let connecting = endpoint
            .connect(
                sink.local_addr().expect("addr"),
                tincan_node::tls::SERVER_NAME,
            )
            .expect("connect");
        let mut buf = vec![0u8; 65_535];
        let (len, _) = tokio::time::timeout(DEADLINE, sink.recv_from(&mut buf))
            .await
            .expect("an initial packet in time")
            .expect("recv");
        buf.truncate(len);
        initials.push(buf);
        drop(connecting);
    }
    initials
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_udp_and_half_open_quic_do_not_hurt() {
    let alice = Node::start("alice", &[]);
    let seed = std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    eprintln!("garbage seed: {seed:#x}");
    let mut rng = Rng(seed | 1);

    // 1000 random datagrams of random sizes; half look like QUIC long headers.
    let noise = UdpSocket::bind("127.0.0.1:0").expect("bind");
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
        noise.send_to(&datagram, alice.addr).expect("send noise");
    }

    // 20 handshakes that start and are never continued: real Initials from
    // sockets that never read the answer.
    let mut half_open = Vec::new();
    for initial in captured_initials(20).await {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.send_to(&initial, alice.addr).expect("send initial");
        half_open.push(socket);
    }
    // 20 connection attempts abandoned by the client mid-handshake.
    let quitter = client_endpoint(&new_identity("quitter")).expect("endpoint");
    for _ in 0..20 {
        let connecting = quitter
            .connect(alice.addr, tincan_node::tls::SERVER_NAME)
            .expect("connect");
        tokio::task::yield_now().await;
        drop(connecting);
    }
    // Peers that complete TLS and then never say hello.
    let mut mute = Vec::new();
    for i in 0..5 {
        let peer = RawPeer::new(&format!("mute{i}")).expect("raw peer");
        let conn = peer.handshake(alice.addr).await.expect("tls handshake");
        mute.push((peer, conn));
    }

    // A real daemon still connects and delivers.
    let carol = Node::start("carol", &["--peer", &alice.addr.to_string()]);
    wait_for("carol to see alice online", DEADLINE, || {
        carol
            .peers()
            .iter()
            .any(|p| p["name"] == "alice" && p["online"] == true)
            .then_some(())
    });
    let out = cli(
        carol.home(),
        &[
            "send",
            "alice",
            "through the noise",
            "--wait",
            "--timeout",
            "30",
        ],
    );
    assert!(
        out.status.success(),
        "send --wait failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(alice.history_texts("carol"), ["through the noise"]);
    let status = alice.daemon.status();
    assert!(
        status["peers_online"].as_u64().is_some_and(|n| n >= 1),
        "status: {status}"
    );
    // The mute peers never became peers.
    let peers = alice.peers();
    assert!(
        peers.iter().all(|p| p["name"] == "carol"),
        "unexpected peers: {peers:?}"
    );
    drop(mute);
    drop(half_open);
}

#[tokio::test(flavor = "multi_thread")]
async fn peer_with_mismatched_key_is_refused() {
    let alice = Node::start("alice", &[]);
    let victim = new_identity("victim");
    let peers_named = |name: &str| -> usize {
        alice
            .peers()
            .iter()
            .filter(|p| p["name"] == name || p["user_id"] == victim.user_id().to_string())
            .count()
    };

    // TLS key of mallory, device certificate of the victim.
    let mut forged = new_identity("mallory");
    forged.cert = victim.cert.clone();
    let mallory = RawPeer::with_identity(forged).expect("raw peer");
    match mallory.connect(alice.addr).await {
        // TLS 1.3: the client may finish before the server checks its
        // certificate; then the server's refusal closes the connection.
        Ok(conn) => {
            let closed = conn.closed_within(DEADLINE).await;
            assert!(closed.is_some(), "forged certificate accepted");
        }
        Err(e) => eprintln!("forged certificate refused: {e:#}"),
    }

    // A valid TLS identity whose hello claims the victim's certificate.
    let eve = RawPeer::new("eve").expect("raw peer");
    let lie = Hello {
        cert: victim.cert.clone(),
        ..eve.hello()
    };
    match eve.connect_with_hello(alice.addr, &lie).await {
        Ok(conn) => {
            let closed = conn.closed_within(DEADLINE).await;
            assert!(closed.is_some(), "lying hello accepted");
            eprintln!("lying hello: connection closed: {closed:?}");
        }
        Err(e) => eprintln!("lying hello refused: {e:#}"),
    }

    // An honest peer is listed, so the peer list is a real witness.
    let honest = RawPeer::new("honest").expect("raw peer");
    let conn = honest.connect(alice.addr).await.expect("honest peer");
    wait_for("honest peer listed", DEADLINE, || {
        (peers_named("honest") == 1).then_some(())
    });
    assert_eq!(peers_named("mallory"), 0, "peers: {:?}", alice.peers());
    assert_eq!(peers_named("eve"), 0, "peers: {:?}", alice.peers());
    assert_eq!(alice.peers().len(), 1, "peers: {:?}", alice.peers());
    still_serves(&alice, &honest, &conn, "honest message").await;
}

/// Resident memory of the daemon whose home is `home`, in KiB (Linux).
fn daemon_rss_kib(home: &Path) -> u64 {
    let home = home.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").expect("/proc") {
        let Ok(entry) = entry else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == &home) && args.iter().any(|a| a == "run") {
            let status = std::fs::read_to_string(entry.path().join("status")).expect("status");
            let line = status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .expect("VmRSS");
            return line
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .expect("rss number");
        }
    }
    panic!("daemon process for {home} not found");
}

#[tokio::test(flavor = "multi_thread")]
async fn unread_streams_cannot_pin_memory() {
    let alice = Node::start("alice", &[]);
    let before = daemon_rss_kib(alice.home());
    let bob = RawPeer::new("Bob").expect("raw peer");
    let conn = bob.connect(alice.addr).await.expect("connect to alice");

    // The protocol reads one uni stream per connection (the Hello). Open
    // as many more as the node allows and fill them: nobody reads them.
    let step = Duration::from_secs(1);
    let chunk = vec![7u8; 64 * 1024];
    let (mut streams, mut written) = (Vec::new(), 0usize);
    'open: for _ in 0..200 {
        let Ok(Ok(mut stream)) = tokio::time::timeout(step, conn.conn.open_uni()).await else {
            break;
        };
        for _ in 0..32 {
            match tokio::time::timeout(step, stream.write_all(&chunk)).await {
                Ok(Ok(())) => written += chunk.len(),
                _ => break,
            }
            if written >= 160 << 20 {
                break 'open;
            }
        }
        streams.push(stream);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = daemon_rss_kib(alice.home());
    eprintln!(
        "{} unread streams, {} KiB written; daemon rss {before} KiB -> {after} KiB",
        streams.len(),
        written >> 10
    );
    assert!(
        after.saturating_sub(before) < 40 << 10,
        "one peer made the daemon hold {} KiB more ({} KiB written)",
        after.saturating_sub(before),
        written >> 10
    );
    let fresh = bob.connect(alice.addr).await.expect("fresh connection");
    still_serves(&alice, &bob, &fresh, "after the stream flood").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_hello_names_are_refused() {
    let alice = Node::start("alice", &[]);
    let mut refused = Vec::new();
    for name in [
        "evil\u{1b}[2J\u{1b}[31mred\nfake line".to_string(),
        "x".repeat(10_000),
        "   ".to_string(),
        " padded ".to_string(),
        // Invisible and text-direction characters: a name that renders
        // like another user's, or reorders what follows it.
        "Bob\u{200B}".to_string(),
        "\u{202E}boB".to_string(),
    ] {
        let peer = RawPeer::new(&name).expect("raw peer");
        match peer.connect(alice.addr).await {
            Ok(conn) => {
                let closed = conn.closed_within(DEADLINE).await;
                assert!(closed.is_some(), "hello named {name:?} accepted");
                refused.push(conn);
            }
            Err(e) => eprintln!(
                "hello named {:?} refused: {e:#}",
                &name[..name.len().min(20)]
            ),
        }
    }

    let honest = RawPeer::new("honest").expect("raw peer");
    let conn = honest.connect(alice.addr).await.expect("honest peer");
    wait_for("honest peer listed", DEADLINE, || {
        alice
            .peers()
            .iter()
            .any(|p| p["name"] == "honest")
            .then_some(())
    });
    assert_eq!(alice.peers().len(), 1, "peers: {:?}", alice.peers());
    let out = cli(alice.home(), &["peers"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        !shown.contains('\u{1b}') && shown.lines().count() == 1,
        "peer list shows: {shown:?}"
    );
    still_serves(&alice, &honest, &conn, "honest message").await;
}
