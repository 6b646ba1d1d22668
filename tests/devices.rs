//! Several devices per user, end to end with real daemons on 127.0.0.1
//! (static peers, no mDNS): alice's laptop pairs her desktop with a code
//! from `device pair --json`; bob's messages reach both; what alice sends
//! from one shows as outgoing on the other; reading on one marks read on
//! the other; then the desktop is removed and gets nothing new, is told
//! so, and stays removed across restarts. A wrong code enrols nothing.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::loopback::{User, DEADLINE};
use common::{tincan_bin, wait_for};
use serde_json::Value;

/// `tincan device pair --json` on `home`, running; returns the process and
/// the code from its first line.
fn show_code(host: &User) -> (Child, BufReader<std::process::ChildStdout>, String) {
    let mut child = Command::new(tincan_bin())
        .arg("--home")
        .arg(host.home())
        .args(["device", "pair", "--json"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn device pair");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read the code line");
    let shown: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("device pair printed no JSON line ({e}): {line:?}"));
    let code = shown["code"].as_str().expect("code").to_string();
    assert!(shown["expires_at"].as_u64().is_some(), "{shown}");
    (child, out, code)
}

/// The rest of `device pair`'s output and whether it exited 0.
fn finish(
    mut child: Child,
    mut out: BufReader<std::process::ChildStdout>,
) -> (Value, bool, String) {
    let mut line = String::new();
    out.read_line(&mut line).expect("read the outcome line");
    let status = child.wait().expect("wait device pair");
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        use std::io::Read;
        let _ = err.read_to_string(&mut stderr);
    }
    let outcome = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("device pair printed no outcome ({e}): {line:?} {stderr}"));
    (outcome, status.success(), stderr)
}

fn texts(history: &[Value], direction: &str) -> Vec<String> {
    history
        .iter()
        .filter(|m| m["direction"] == direction)
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn has(history: &[Value], direction: &str, text: &str) -> bool {
    texts(history, direction).iter().any(|t| t == text)
}

/// bob's `peers --json` entries of user `user`.
fn devices_seen(by: &User, user: &str) -> Vec<Value> {
    by.json(&["peers", "--json"])
        .as_array()
        .expect("peers array")
        .iter()
        .filter(|p| p["user_id"] == user)
        .cloned()
        .collect()
}

#[test]
fn a_user_with_two_devices_receives_sends_reads_and_removes_one() {
    let mut laptop = User::init("alice");
    let mut bob = User::init("bob");
    // The desktop starts with a throwaway identity of its own and no history.
    let mut desktop = User::init("alice-desktop");
    laptop.knows(&bob);
    bob.knows(&laptop);
    desktop.knows(&bob);
    laptop.start();
    bob.start();
    bob.wait_peer("alice", "online", |p| p["online"] == true);
    let alice_id = laptop.user_id();

    // Pairing: the code from `device pair --json`, typed on the desktop.
    let (pairing, out, code) = show_code(&laptop);
    let peer = format!("127.0.0.1:{}", laptop.port);
    let joined = desktop.json(&[
        "device", "add", &code, "--peer", &peer, "--label", "desktop", "--json",
    ]);
    assert_eq!(joined["user_id"], alice_id.as_str(), "{joined}");
    assert_eq!(joined["name"], "alice", "{joined}");
    assert_eq!(joined["devices"], 2, "{joined}");
    let (outcome, ok, stderr) = finish(pairing, out);
    assert!(ok, "device pair failed: {outcome} {stderr}");
    let desktop_id = joined["device_id"].as_str().expect("device id").to_string();
    assert_eq!(
        outcome["paired"]["device_id"],
        desktop_id.as_str(),
        "{outcome}"
    );
    assert_eq!(outcome["paired"]["label"], "desktop", "{outcome}");
    let who = desktop.json(&["whoami", "--json"]);
    assert_eq!(
        who["user_id"],
        alice_id.as_str(),
        "same user on the desktop"
    );
    assert_eq!(
        who["device_id"],
        desktop_id.as_str(),
        "the device key stayed"
    );

    // Bob heard of the desktop from the laptop before it ever ran.
    wait_for("bob to know alice's second device", DEADLINE, || {
        (devices_seen(&bob, &alice_id).len() == 2).then_some(())
    });

    desktop.start();
    let listed = wait_for("the laptop to see the desktop online", DEADLINE, || {
        let list = laptop.json(&["device", "list", "--json"]);
        let all_online = list
            .as_array()
            .is_some_and(|l| l.len() == 2 && l.iter().all(|d| d["online"] == true));
        all_online.then_some(list)
    });
    let this: Vec<&Value> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter(|d| d["this"] == true)
        .collect();
    assert_eq!(this.len(), 1, "{listed}");
    assert!(listed
        .as_array()
        .expect("list")
        .iter()
        .any(|d| d["device_id"] == desktop_id.as_str() && d["label"] == "desktop"));
    wait_for("bob and the desktop to be connected", DEADLINE, || {
        devices_seen(&bob, &alice_id)
            .iter()
            .any(|p| p["device_id"] == desktop_id.as_str() && p["online"] == true)
            .then_some(())
    });

    // Bob's message reaches both of alice's devices.
    bob.send_delivered("alice", "hello alice");
    for device in [&laptop, &desktop] {
        device.wait_history("bob", "bob's message", |h| has(h, "in", "hello alice"));
    }

    // What alice sends from the laptop shows as outgoing on the desktop.
    laptop.send_delivered("bob", "sent from the laptop");
    let synced = desktop.wait_history("bob", "the laptop's message", |h| {
        has(h, "out", "sent from the laptop")
    });
    assert!(!has(&synced, "in", "sent from the laptop"), "{synced:?}");
    bob.wait_history("alice", "the laptop's message once", |h| {
        texts(h, "in")
            .iter()
            .filter(|t| *t == "sent from the laptop")
            .count()
            == 1
    });

    // Read on the laptop: read on the desktop too, with no second receipt.
    bob.send_delivered("alice", "read me");
    desktop.wait_history("bob", "read me", |h| has(h, "in", "read me"));
    let read = laptop.json(&["read", "bob", "--json"]);
    assert!(read["marked"].as_u64().unwrap_or(0) >= 1, "{read}");
    desktop.wait_history("bob", "read me read", |h| {
        h.iter()
            .any(|m| m["text"] == "read me" && m["state"] == "read")
    });
    let again = desktop.json(&["read", "bob", "--json"]);
    assert_eq!(again["marked"], 0, "already read on the desktop: {again}");
    assert_eq!(again["receipts"], 0, "no second read receipt: {again}");
    bob.wait_history("alice", "read me read by alice", |h| {
        h.iter()
            .any(|m| m["text"] == "read me" && m["state"] == "read")
    });

    // Remove the desktop from the laptop.
    let removed = laptop.json(&["device", "remove", &desktop_id[..8], "--json"]);
    assert_eq!(removed["device_id"], desktop_id.as_str(), "{removed}");
    let told = wait_for("the desktop to be told it was removed", DEADLINE, || {
        let out = desktop.run(&["device", "list", "--json"]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (!out.status.success() && err.contains("removed")).then_some(err)
    });
    assert!(told.contains("alice"), "{told}");
    let refused = desktop.run(&["send", "bob", "still here?"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("removed"));
    wait_for("bob to forget the removed device", DEADLINE, || {
        (devices_seen(&bob, &alice_id).len() == 1).then_some(())
    });
    let list = laptop.json(&["device", "list", "--json"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

    // Bob's next message reaches the laptop only; nothing waits for the desktop.
    bob.send_delivered("alice", "after the removal");
    laptop.wait_history("bob", "the message after removal", |h| {
        has(h, "in", "after the removal")
    });
    wait_for("bob's outbox to be empty", DEADLINE, || {
        (bob.json(&["status", "--json"])["outbox"] == 0).then_some(())
    });
    assert!(!has(&desktop.history("bob"), "in", "after the removal"));

    // Everything persists: restart all three; the desktop stays removed.
    laptop.kill();
    bob.kill();
    desktop.kill();
    laptop.start();
    bob.start();
    desktop.start();
    bob.wait_peer("alice", "online again", |p| p["online"] == true);
    assert_eq!(devices_seen(&bob, &alice_id).len(), 1);
    let out = desktop.run(&["device", "list"]);
    assert!(!out.status.success(), "still removed after a restart");
    bob.send_delivered("alice", "after the restart");
    laptop.wait_history("bob", "after the restart", |h| {
        has(h, "in", "after the restart")
    });
    wait_for(
        "bob's outbox to be empty after the restart",
        DEADLINE,
        || (bob.json(&["status", "--json"])["outbox"] == 0).then_some(()),
    );
    assert!(!has(&desktop.history("bob"), "in", "after the restart"));
    assert!(
        desktop.logs().contains("this device was removed"),
        "the desktop logs why"
    );

    // Paired again: a home with history needs --force, which moves the
    // history aside and makes a new device key.
    desktop.kill();
    let (pairing, out, code) = show_code(&laptop);
    let refused = desktop.run(&["device", "add", &code, "--peer", &peer]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("history") && err.contains("--force"), "{err}");
    let again = desktop.json(&[
        "device", "add", &code, "--peer", &peer, "--label", "desktop", "--force", "--json",
    ]);
    let (outcome, ok, stderr) = finish(pairing, out);
    assert!(ok, "second pairing failed: {outcome} {stderr}");
    assert_eq!(again["user_id"], alice_id.as_str());
    assert_ne!(again["device_id"], desktop_id.as_str(), "a new device key");
    let moved_aside = std::fs::read_dir(desktop.home())
        .expect("read home")
        .flatten()
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("tincan.db.before-pairing-")
        });
    assert!(moved_aside, "the old history is kept aside");
    desktop.start();
    let new_id = again["device_id"].as_str().expect("id").to_string();
    wait_for("bob and the new desktop to be connected", DEADLINE, || {
        devices_seen(&bob, &alice_id)
            .iter()
            .any(|p| p["device_id"] == new_id.as_str() && p["online"] == true)
            .then_some(())
    });
    bob.send_delivered("alice", "welcome back");
    desktop.wait_history("bob", "welcome back", |h| has(h, "in", "welcome back"));
}

/// Bob's message was sealed while alice had one device; she paired a second
/// before it was delivered. The laptop passes it on, so the desktop shows
/// it as if it had come from bob, once.
#[test]
fn a_message_sealed_before_a_device_was_paired_reaches_it_through_the_other() {
    let mut laptop = User::init("alice");
    let mut bob = User::init("bob");
    let mut desktop = User::init("alice-desktop");
    laptop.knows(&bob);
    bob.knows(&laptop);
    desktop.knows(&laptop);
    laptop.start();
    bob.start();
    bob.wait_peer("alice", "online", |p| p["online"] == true);
    let alice_id = laptop.user_id();

    // Queued for the laptop alone (the only device bob knows), kept in
    // bob's outbox while both are down.
    laptop.kill();
    let queued = bob.json(&["send", "alice", "sealed for one device", "--json"]);
    assert_eq!(queued["state"], "queued", "{queued}");
    bob.kill();

    laptop.start();
    let (pairing, out, code) = show_code(&laptop);
    let peer = format!("127.0.0.1:{}", laptop.port);
    let joined = desktop.json(&[
        "device", "add", &code, "--peer", &peer, "--label", "desktop", "--json",
    ]);
    assert_eq!(joined["user_id"], alice_id.as_str(), "{joined}");
    let (outcome, ok, stderr) = finish(pairing, out);
    assert!(ok, "device pair failed: {outcome} {stderr}");
    desktop.start();
    wait_for("the laptop to see the desktop online", DEADLINE, || {
        let list = laptop.json(&["device", "list", "--json"]);
        list.as_array()
            .is_some_and(|l| l.len() == 2 && l.iter().all(|d| d["online"] == true))
            .then_some(())
    });

    bob.start();
    laptop.wait_history("bob", "bob's queued message", |h| {
        has(h, "in", "sealed for one device")
    });
    let copied = desktop.wait_history("bob", "the copy from the laptop", |h| {
        has(h, "in", "sealed for one device")
    });
    let row = copied
        .iter()
        .find(|m| m["text"] == "sealed for one device")
        .expect("row");
    assert_eq!(row["id"], queued["id"], "the original id: {row}");
    assert_eq!(row["from"], bob.user_id().as_str(), "from bob: {row}");
    assert_eq!(row["sent_at"], queued["sent_at"], "bob's time: {row}");
    wait_for("bob's outbox to be empty", DEADLINE, || {
        (bob.json(&["status", "--json"])["outbox"] == 0).then_some(())
    });
    for device in [&laptop, &desktop] {
        let once = texts(&device.history("bob"), "in")
            .iter()
            .filter(|t| *t == "sealed for one device")
            .count();
        assert_eq!(once, 1, "once on each device");
    }
}

#[test]
fn a_wrong_pairing_code_is_refused_on_both_sides_and_enrols_nothing() {
    let mut laptop = User::init("alice");
    let desktop = User::init("desk");
    laptop.start();
    let before = desktop.json(&["whoami", "--json"]);

    let (pairing, out, code) = show_code(&laptop);
    // Same shape, other characters: a typo, or a guess.
    let wrong: String = code
        .chars()
        .map(|c| match c {
            '-' => '-',
            '0' => '1',
            _ => '0',
        })
        .collect();
    let peer = format!("127.0.0.1:{}", laptop.port);
    let refused = desktop.run(&["device", "add", &wrong, "--peer", &peer]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("wrong pairing code"), "{err}");
    let (outcome, ok, stderr) = finish(pairing, out);
    assert!(!ok, "device pair must fail: {outcome}");
    assert!(
        outcome["error"]
            .as_str()
            .is_some_and(|e| e.contains("wrong pairing code")),
        "{outcome} {stderr}"
    );
    assert_eq!(
        desktop.json(&["whoami", "--json"]),
        before,
        "nothing enrolled"
    );
    let list = laptop.json(&["device", "list", "--json"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

    // The code is spent: even the right one is refused now, and says so.
    let late = desktop.run(&["device", "add", &code, "--peer", &peer]);
    assert!(!late.status.success());
    let err = String::from_utf8_lossy(&late.stderr);
    assert!(err.contains("not waiting"), "{err}");

    // A code that is not a code is refused before any network traffic.
    let bad = desktop.run(&["device", "add", "hello", "--peer", &peer]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid pairing code"));
}

fn roster_frame(
    certs: Vec<tincan_core::DeviceCert>,
    revocations: Vec<tincan_core::DeviceRevocation>,
) -> Vec<u8> {
    tincan_core::wire::encode(&tincan_core::wire::Frame::Devices(tincan_core::Roster {
        certs,
        revocations,
        labels: Vec::new(),
    }))
    .expect("encode roster")
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_device_statements_and_stray_pairing_steps_change_nothing() {
    use common::raw_peer::{envelope_frame, new_identity, now_ms, seal, RawPeer};
    use tincan_core::pairing::{PairMessage, PairRefusal};
    use tincan_core::wire::Frame;
    use tincan_core::DeviceRevocation;

    let mut alice = User::init("alice");
    alice.start();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", alice.port).parse().expect("addr");
    let mallory = RawPeer::new("mallory").expect("peer");
    let conn = mallory.connect(addr).await.expect("connect");
    let alice_device = conn.node_cert().device_id();

    // Mallory's user key cannot remove Alice's device.
    let mallory_key = mallory.identity.user.as_ref().expect("user key");
    let forged = DeviceRevocation::sign(mallory_key, alice_device, now_ms() / 1000);
    match conn.deliver(&roster_frame(Vec::new(), vec![forged])).await {
        Ok(Frame::Error(e)) => assert!(e.contains("statement is about user"), "{e}"),
        other => panic!("forged revocation taken: {other:?}"),
    }
    // Tampered: the signature no longer covers it.
    let mut tampered = DeviceRevocation::sign(mallory_key, alice_device, 1);
    tampered.revoked_at = 2;
    match conn
        .deliver(&roster_frame(Vec::new(), vec![tampered]))
        .await
    {
        Ok(Frame::Error(e)) => assert!(e.contains("signature"), "{e}"),
        other => panic!("tampered revocation taken: {other:?}"),
    }
    // Nobody may pass off another user's device as their own.
    let bob = new_identity("bob");
    match conn
        .deliver(&roster_frame(vec![bob.cert.clone()], Vec::new()))
        .await
    {
        Ok(Frame::Error(e)) => assert!(e.contains("expected"), "{e}"),
        other => panic!("foreign roster taken: {other:?}"),
    }
    // Only alice's own devices may pass on a message from someone else.
    let passed = tincan_core::Content::MissedCopy {
        message: tincan_core::MessageId::random(&mut tincan_node::keystore::OsEntropy),
        from: bob.cert.clone(),
        from_name: "bob".into(),
        sent_at_ms: now_ms(),
        content: Box::new(tincan_core::Content::Text {
            text: "forged".into(),
        }),
    };
    let envelope = seal(&mallory.identity, &[conn.node_cert().clone()], &passed);
    match conn.deliver(&envelope_frame(&envelope)).await {
        Ok(Frame::Refused { reason, .. }) => {
            assert!(format!("{reason:?}").contains("own devices"), "{reason:?}")
        }
        other => panic!("a passed-on message from a stranger taken: {other:?}"),
    }
    let list = alice.json(&["device", "list", "--json"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["this"], true, "{list}");
    let bob_id = bob.user_id().to_string();
    assert!(
        devices_seen(&alice, &bob_id).is_empty(),
        "bob's device was not learnt"
    );

    // A pairing connection while no code is shown: refused, nothing changes.
    let prober = new_identity("prober");
    let tls = tincan_node::tls::pairing_client_config(&prober).expect("tls");
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("quic tls");
    let mut endpoint =
        quinn::Endpoint::client(std::net::SocketAddr::from(([127, 0, 0, 1], 0))).expect("endpoint");
    endpoint.set_default_client_config(quinn::ClientConfig::new(std::sync::Arc::new(crypto)));
    let pairing = endpoint
        .connect(addr, tincan_node::tls::SERVER_NAME)
        .expect("connect")
        .await
        .expect("pairing handshake");
    let start = Frame::Pair(PairMessage::Start {
        spake: vec![0x42; 33],
    });
    let answer = tincan_node::rpc::request(&pairing, &start, DEADLINE)
        .await
        .expect("answer");
    assert_eq!(
        answer,
        Frame::Pair(PairMessage::Refused(PairRefusal::NotWaiting))
    );
    // Not a pairing step on a pairing connection: it is closed.
    let _ = tincan_node::rpc::request(&pairing, &Frame::Goodbye, DEADLINE).await;
    tokio::time::timeout(DEADLINE, pairing.closed())
        .await
        .expect("pairing connection closed");
    assert!(
        devices_seen(&alice, &prober.user_id().to_string()).is_empty(),
        "a pairing connection is never a peer"
    );
    let list = alice.json(&["device", "list", "--json"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
}

/// Device labels are typed by the user ("home laptop"): a peer of another
/// user (here a stranger on the LAN) is told which devices alice has, and
/// which she removed, never what she calls them.
#[tokio::test(flavor = "multi_thread")]
async fn device_labels_reach_no_one_but_the_users_own_devices() {
    use common::raw_peer::RawPeer;
    use tincan_core::wire::{self, Frame};

    let mut laptop = User::init("alice");
    let desktop = User::init("alice-desktop");
    laptop.start();
    let (pairing, out, code) = show_code(&laptop);
    let peer = format!("127.0.0.1:{}", laptop.port);
    desktop.json(&[
        "device", "add", &code, "--peer", &peer, "--label", "desktop", "--json",
    ]);
    let (outcome, ok, stderr) = finish(pairing, out);
    assert!(ok, "device pair failed: {outcome} {stderr}");

    let addr: std::net::SocketAddr = peer.parse().expect("addr");
    let mallory = RawPeer::new("mallory").expect("peer");
    let conn = mallory.connect(addr).await.expect("connect");
    // The laptop tells a new peer its user's devices on connect.
    let roster = tokio::time::timeout(DEADLINE, async {
        loop {
            let (mut send, mut recv) = conn.conn.accept_bi().await.expect("a stream");
            let bytes = recv.read_to_end(1 << 20).await.expect("read");
            let (frame, _) = wire::decode(&bytes).expect("a frame");
            let _ = send
                .write_all(&wire::encode(&Frame::Ack).expect("ack"))
                .await;
            let _ = send.finish();
            if let Frame::Devices(roster) = frame {
                return roster;
            }
        }
    })
    .await
    .expect("a roster within the deadline");
    assert_eq!(roster.certs.len(), 2, "both devices: {roster:?}");
    assert!(
        roster.labels.is_empty(),
        "labels went to a stranger: {:?}",
        roster.labels
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_strangers_forged_removal_neither_acts_nor_blocks_the_users_real_one() {
    use common::raw_peer::{now_ms, RawPeer};
    use tincan_core::DeviceRevocation;

    let mut alice = User::init("alice");
    alice.start();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", alice.port).parse().expect("addr");
    let mallory = RawPeer::new("mallory").expect("peer");
    let bob = RawPeer::new("bob").expect("peer");
    let bob_device = bob.identity.device_id();
    let bob_user = bob.identity.user_id().to_string();

    // Mallory, a stranger with no organisation, "removes" bob's device
    // before alice has ever met it.
    let m = mallory.connect(addr).await.expect("mallory connects");
    let mallory_key = mallory.identity.user.as_ref().expect("user key");
    let forged = DeviceRevocation::sign(mallory_key, bob_device, now_ms() / 1000);
    m.deliver(&roster_frame(Vec::new(), vec![forged]))
        .await
        .expect("an answer to the forged removal");

    // Bob's device is met, and usable, as if nothing happened.
    let b = bob.connect(addr).await.expect("bob connects");
    wait_for("alice knows bob's device", DEADLINE, || {
        (!devices_seen(&alice, &bob_user).is_empty()).then_some(())
    });
    assert!(b
        .closed_within(std::time::Duration::from_millis(300))
        .await
        .is_none());

    // Bob's own removal of it (passed on by anyone) still takes effect:
    // alice hangs up on the device and forgets it.
    let bob_key = bob.identity.user.as_ref().expect("user key");
    let real = DeviceRevocation::sign(bob_key, bob_device, now_ms() / 1000);
    m.deliver(&roster_frame(Vec::new(), vec![real]))
        .await
        .expect("an answer to the real removal");
    let closed = b.closed_within(DEADLINE).await;
    assert!(
        matches!(
            closed,
            Some(quinn::ConnectionError::ApplicationClosed(ref c)) if c.error_code == quinn::VarInt::from_u32(6)
        ),
        "the removed device is hung up on: {closed:?}"
    );
    wait_for("alice forgets bob's device", DEADLINE, || {
        devices_seen(&alice, &bob_user).is_empty().then_some(())
    });
}

/// Mallory removes her desktop: its messages are then refused as coming
/// from a removed device (core's `inbound::admit`, with the removal the
/// daemon holds), here passed on by her laptop; before, they were taken.
#[tokio::test(flavor = "multi_thread")]
async fn messages_of_a_removed_device_are_refused_as_device_removed() {
    use common::raw_peer::{envelope_frame, now_ms, seal_text, RawPeer};
    use tincan_core::wire::{Frame, RefuseReason};
    use tincan_core::{DeviceKey, DeviceRevocation, Identity};
    use tincan_node::keystore::OsEntropy;

    let mut alice = User::init("alice");
    alice.start();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", alice.port).parse().expect("addr");
    let laptop = RawPeer::new("mallory").expect("peer");
    let user = laptop.identity.user.clone().expect("user key");
    let desktop_key = DeviceKey::generate(&mut OsEntropy);
    let desktop = Identity {
        user: None,
        cert: user.certify(&desktop_key, now_ms() / 1000),
        device: desktop_key,
        name: "mallory".into(),
    };
    let conn = laptop.connect(addr).await.expect("connect");
    // The desktop says hello too, so alice knows the certificate the
    // removal is about (a removal of an unknown device is only held).
    let desktop_peer = RawPeer::with_identity(desktop.clone()).expect("peer");
    let _desktop_conn = desktop_peer.connect(addr).await.expect("connect");
    let alice_cert = conn.node_cert().clone();

    let before = seal_text(&desktop, std::slice::from_ref(&alice_cert), "still mine");
    match conn.deliver(&envelope_frame(&before)).await {
        Ok(Frame::Receipt(receipt)) => assert_eq!(receipt.message_id, before.id),
        other => panic!("a message of a current device refused: {other:?}"),
    }

    let removal = DeviceRevocation::sign(&user, desktop.device_id(), now_ms() / 1000);
    let answer = conn
        .deliver(&roster_frame(
            vec![laptop.identity.cert.clone()],
            vec![removal],
        ))
        .await
        .expect("roster answered");
    assert_eq!(answer, Frame::Ack);

    let after = seal_text(&desktop, std::slice::from_ref(&alice_cert), "after removal");
    match conn.deliver(&envelope_frame(&after)).await {
        Ok(Frame::Refused { message_id, reason }) => {
            assert_eq!(message_id, after.id);
            assert_eq!(reason, RefuseReason::DeviceRemoved);
        }
        other => panic!("a removed device's message taken: {other:?}"),
    }
    let history = alice.json(&["history", "mallory", "--json"]);
    let history = history.as_array().cloned().unwrap_or_default();
    assert!(has(&history, "in", "still mine"), "{history:?}");
    assert!(!has(&history, "in", "after removal"), "{history:?}");
}
