//! Presence, typing, read receipts, blocking and offline messages end to
//! end: real daemons on 127.0.0.1 (`--no-mdns`, static peers) driven
//! through the CLI with `--json` and the control socket, plus a scripted
//! peer (`common::raw_peer`) sending forged and malformed presence.
//!
//! Safety: loopback only. Deadlines bound a hang; nothing asserts speed.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::loopback::{started, started_with, User, DEADLINE};
use common::raw_peer::{envelope_frame, now_ms, RawConn, RawPeer};
use common::wait_for;
use serde_json::Value;
use tincan_core::presence::{PresenceUpdate, ShownPresence};
use tincan_core::wire::{Frame, RefuseReason};
use tincan_core::{Content, DeviceCert, Envelope, Identity, MessageId};
use tincan_node::keystore::OsEntropy;

/// `OFFLINE_AFTER_MS` of the node: how late a message must arrive to be
/// marked as received while offline.
const OFFLINE_AFTER: Duration = Duration::from_millis(tincan_node::event::OFFLINE_AFTER_MS);

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn presence_event(name: &'static str, presence: &'static str) -> impl Fn(&Value) -> bool {
    move |e: &Value| {
        e["type"] == "presence" && e["peer"]["name"] == name && e["peer"]["presence"] == presence
    }
}

#[test]
fn presence_with_a_note_auto_away_and_back_on_activity() {
    let mut users = started_with(&["Ann", "Bob"], |u| {
        if u.name == "Ann" {
            u.config("away_after_secs = 2\n");
        }
    });
    let (ann, bob) = (&users[0], &users[1]);

    // Idle: away by itself, and Bob sees it.
    let own = wait_for("Ann auto-away", DEADLINE, || {
        let p = ann.json(&["presence", "--json"]);
        (p["presence"] == "away").then_some(p)
    });
    assert_eq!(own["auto_away"], true, "{own}");
    assert_eq!(own["chosen"], "online", "{own}");
    assert_eq!(own["away_after_secs"], 2, "{own}");
    bob.wait_peer("Ann", "away", |p| {
        p["presence"] == "away" && p["online"] == true
    });

    // Activity clears it at once; Bob's stream (subscribed first) shows
    // the short online spell and the next auto-away.
    let mut watch = bob.watch();
    let view = ann.json(&["activity", "--json"]);
    assert_eq!(view["presence"], "online", "{view}");
    assert_eq!(view["auto_away"], false, "{view}");
    let back = watch.expect("Ann online", presence_event("Ann", "online"));
    assert_eq!(back["peer"]["online"], true, "{back}");
    watch.expect("Ann away again", presence_event("Ann", "away"));

    // Explicit states with a note; they never turn away by themselves.
    let set = ann.json(&[
        "presence",
        "set",
        "busy",
        "--note",
        "  in a meeting ",
        "--json",
    ]);
    assert_eq!(set["presence"], "busy", "{set}");
    assert_eq!(set["note"], "in a meeting", "trimmed: {set}");
    bob.wait_peer("Ann", "busy with the note", |p| {
        p["presence"] == "busy" && p["note"] == "in a meeting" && p["online"] == true
    });
    for state in ["on-the-phone", "out-to-lunch"] {
        ann.json(&["presence", "set", state, "--json"]);
        // Without --note the note stays.
        bob.wait_peer("Ann", state, |p| {
            p["presence"] == state && p["note"] == "in a meeting"
        });
    }
    ann.json(&[
        "presence",
        "set",
        "out-to-lunch",
        "--note",
        "back at 1",
        "--json",
    ]);
    bob.wait_peer("Ann", "with the new note", |p| p["note"] == "back at 1");

    // Bad input: clear errors, nothing changes.
    for (args, says) in [
        (vec!["presence", "set", "sleeping"], "unknown presence"),
        (
            vec!["presence", "set", "busy", "--note", &"x".repeat(300)],
            "more than 256",
        ),
        (
            vec!["presence", "set", "busy", "--note", "a\u{1b}[2Jb"],
            "control characters",
        ),
    ] {
        let out = ann.run(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(
        ann.json(&["presence", "--json"])["presence"],
        "out-to-lunch"
    );

    // Persisted: after a restart Ann is still out to lunch, and Bob, who
    // reconnects, learns it again.
    users[0].kill();
    users[1].wait_peer("Ann", "gone", |p| p["online"] == false);
    users[0].start();
    let own = users[0].json(&["presence", "--json"]);
    assert_eq!(own["presence"], "out-to-lunch", "{own}");
    assert_eq!(own["note"], "back at 1", "{own}");
    users[1].wait_peer("Ann", "out to lunch after her restart", |p| {
        p["presence"] == "out-to-lunch" && p["online"] == true
    });
}

#[test]
fn appear_offline_looks_offline_yet_messages_arrive() {
    let mut users = started(&["Ann", "Bob"]);
    let own = users[0].json(&[
        "presence",
        "set",
        "appear-offline",
        "--note",
        "secret plans",
        "--json",
    ]);
    assert_eq!(own["presence"], "appear-offline", "{own}");
    assert_eq!(own["shown"], "offline", "{own}");
    users[1].wait_peer("Ann", "offline", |p| {
        p["online"] == false && p["presence"] == "offline" && p["note"].is_null()
    });

    // Messages still arrive and are acknowledged, both ways.
    users[1].send_delivered("ann", "are you there?");
    users[0].wait_history("bob", "Bob's message", |h| {
        h.iter().any(|m| m["text"] == "are you there?")
    });
    users[0].send_delivered("bob", "quietly here");

    // A reconnecting Bob learns it too: once he is connected again (a
    // delivered message proves it), Ann is shown offline to him.
    users[1].kill();
    users[1].start();
    users[1].send_delivered("ann", "after my restart");
    users[1].wait_peer("Ann", "offline after Bob's restart", |p| {
        p["online"] == false && p["presence"] == "offline"
    });
    let ann_seen = users[1].peer("Ann").expect("Ann listed");
    assert!(ann_seen["note"].is_null(), "no note leaks: {ann_seen}");

    // Visible again.
    users[0].json(&["presence", "set", "online", "--note", "", "--json"]);
    users[1].wait_peer("Ann", "online again", |p| {
        p["online"] == true && p["presence"] == "online" && p["note"].is_null()
    });
}

#[test]
fn typing_is_seen_rate_limited_and_never_stored() {
    let users = started(&["Ann", "Bob"]);
    let (ann, bob) = (&users[0], &users[1]);
    let mut watch = bob.watch();
    let asked = Instant::now();
    let first = ann.json(&["typing", "bob", "--json"]);
    assert_eq!(first["sent"], true, "{first}");
    assert_eq!(first["peer"], bob.user_id(), "{first}");
    let second = ann.json(&["typing", "bob", "--json"]);
    // At most one per 3 s per peer (checked only if the CLI was quick
    // enough to ask twice within that time).
    if asked.elapsed() < Duration::from_secs(3) {
        assert_eq!(second["sent"], false, "rate-limited: {second}");
    }
    let event = watch.expect("typing", |e| e["type"] == "typing");
    assert_eq!(event["from"], ann.user_id(), "{event}");
    assert_eq!(event["from_name"], "Ann", "{event}");
    assert!(event["device_id"].is_string(), "{event}");
    assert!(bob.history("ann").is_empty(), "typing is never stored");
    assert!(ann.history("bob").is_empty(), "typing is never stored");

    let out = ann.run(&["typing", "nobody"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nobody"), "{}", stderr(&out));
}

#[test]
fn read_receipts_turn_messages_read_unless_turned_off() {
    let mut users = started_with(&["Ann", "Bob", "Carol"], |u| {
        if u.name == "Carol" {
            u.with_flags(&["--no-read-receipts"]);
        }
    });
    let (ann, bob, carol) = (&users[0], &users[1], &users[2]);
    let mut watch = ann.watch();
    let sent = ann.send_delivered("bob", "did you read this?");
    let id = sent["id"].as_str().expect("id").to_string();
    let read = bob.json(&["read", "ann", "--json"]);
    assert_eq!(read["marked"], 1, "{read}");
    assert_eq!(read["receipts"], 1, "{read}");
    assert_eq!(read["peer"], ann.user_id(), "{read}");
    let event = watch.expect("message_state read", |e| {
        e["type"] == "message_state" && e["id"] == id.as_str() && e["state"] == "read"
    });
    assert_eq!(event["to"], bob.user_id(), "{event}");
    ann.wait_history("bob", "read", |h| {
        h.last().is_some_and(|m| m["state"] == "read")
    });
    let mine = bob.history("ann");
    assert_eq!(mine[0]["state"], "read", "read on Bob's side too: {mine:?}");
    let again = bob.json(&["read", "ann", "--json"]);
    assert_eq!(again["marked"], 0, "nothing new: {again}");

    // Carol runs with --no-read-receipts: marked read for her, Ann is not told.
    ann.send_delivered("carol", "private reading");
    let read = carol.json(&["read", "ann", "--json"]);
    assert_eq!(read["marked"], 1, "{read}");
    assert_eq!(read["receipts"], 0, "{read}");
    assert_eq!(carol.json(&["status", "--json"])["outbox"], 0);
    assert_eq!(carol.history("ann")[0]["state"], "read");
    assert_eq!(ann.history("carol")[0]["state"], "delivered");

    // Durable: a receipt for a sender that is offline waits in the outbox
    // and arrives when she is back.
    ann.send_delivered("bob", "read me later");
    users[0].kill();
    let read = users[1].json(&["read", "ann", "--json"]);
    assert_eq!(read["receipts"], 1, "{read}");
    assert!(users[1].json(&["status", "--json"])["outbox"].as_u64() >= Some(1));
    users[0].start();
    users[0].wait_history("bob", "read after her restart", |h| {
        h.iter()
            .any(|m| m["text"] == "read me later" && m["state"] == "read")
    });
}

#[test]
fn blocking_is_honoured_both_ways_and_persisted() {
    let mut users = started(&["Ann", "Bob", "Carol"]);
    users[0].json(&["presence", "set", "busy", "--note", "at my desk", "--json"]);
    for other in [&users[1], &users[2]] {
        other.wait_peer("Ann", "busy", |p| p["presence"] == "busy");
    }
    let blocked = users[0].json(&["block", "bob", "--json"]);
    assert_eq!(blocked["name"], "Bob", "{blocked}");
    assert_eq!(blocked["user_id"], users[1].user_id(), "{blocked}");
    let list = users[0].json(&["blocked", "--json"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(users[0].peer("Bob").expect("Bob listed")["blocked"], true);

    // Bob sees Ann offline (no presence, no note); Carol still sees her.
    users[1].wait_peer("Ann", "offline", |p| {
        p["online"] == false && p["presence"] == "offline" && p["note"].is_null()
    });
    let carol_sees = users[2].peer("Ann").expect("Ann at Carol");
    assert_eq!(carol_sees["presence"], "busy", "{carol_sees}");

    // Bob's message is refused: failed with the reason, never stored at Ann.
    assert_blocked_send(&users[1], "let me in");
    assert!(
        !users[0]
            .history("bob")
            .iter()
            .any(|m| m["text"] == "let me in"),
        "a blocked user's message was stored"
    );
    // Ann cannot message or type to Bob while he is blocked.
    for args in [vec!["send", "bob", "hi"], vec!["typing", "bob"]] {
        let out = users[0].run(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr(&out).contains("you blocked Bob"), "{}", stderr(&out));
    }

    // Persisted: after Ann's restart Bob is still blocked and sees her offline.
    users[0].kill();
    users[0].start();
    assert_eq!(users[0].json(&["blocked", "--json"]), list);
    assert_blocked_send(&users[1], "still blocked?");
    users[1].wait_peer("Ann", "offline after her restart", |p| p["online"] == false);

    // Unblocked: Bob sees her again and his messages arrive.
    let out = users[0].json(&["unblock", "Bob", "--json"]);
    assert_eq!(out["user_id"], users[1].user_id(), "{out}");
    users[1].wait_peer("Ann", "busy again", |p| {
        p["online"] == true && p["presence"] == "busy" && p["note"] == "at my desk"
    });
    users[1].send_delivered("ann", "thanks");
    assert!(users[0]
        .history("bob")
        .iter()
        .any(|m| m["text"] == "thanks"));
    assert_eq!(users[0].json(&["blocked", "--json"]), Value::Array(vec![]));

    let out = users[0].run(&["unblock", "bob"]);
    assert!(stderr(&out).contains("is not blocked"), "{}", stderr(&out));
    let out = users[0].run(&["block", "ann"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot block yourself") || stderr(&out).contains("ann"));
}

/// `send --wait` from `user` to Ann fails with the Blocked reason and the
/// message is `failed` in the sender's history.
fn assert_blocked_send(user: &User, text: &str) {
    let out = user.run(&["send", "ann", text, "--wait", "--timeout", "30"]);
    assert!(!out.status.success(), "a blocked send succeeded");
    assert!(stderr(&out).contains("Blocked"), "{}", stderr(&out));
    let history = user.history("ann");
    let m = history
        .iter()
        .find(|m| m["text"] == text)
        .expect("the message is in the sender's history");
    assert_eq!(m["state"], "failed", "{m}");
    assert!(
        m["error"].as_str().is_some_and(|e| e.contains("Blocked")),
        "{m}"
    );
}

#[test]
fn messages_queued_for_an_offline_user_arrive_in_order_once_it_is_back() {
    let mut users = started(&["Ann", "Bob"]);
    users[1].kill();
    for text in ["first while you were away", "second while you were away"] {
        users[0].json(&["send", "bob", text, "--json"]);
    }
    users[1].start();
    let history = users[1].wait_history("ann", "both messages", |h| h.len() == 2);
    let texts: Vec<&str> = history.iter().filter_map(|m| m["text"].as_str()).collect();
    assert_eq!(
        texts,
        ["first while you were away", "second while you were away"]
    );
    for m in &history {
        assert!(m["received_at"].as_u64() >= m["sent_at"].as_u64(), "{m}");
    }
    // The sender's own rows are never "offline".
    assert!(users[0]
        .history("bob")
        .iter()
        .all(|m| m["offline"] == false && m["received_at"].is_null()));
}

/// The mark says "arrived well after it was sent", judged by the
/// envelope's signed send time: a message sent a minute ago (as a device
/// that was offline meanwhile would deliver it) is marked, a fresh one is
/// not. Sent by a scripted peer, so no test waits for the clock.
#[tokio::test(flavor = "multi_thread")]
async fn a_message_that_arrives_long_after_it_was_sent_is_marked() {
    let mut ann = User::init("Ann");
    ann.start();
    let addr = SocketAddr::from(([127, 0, 0, 1], ann.port));
    let old = RawPeer::new("Olga").expect("raw peer");
    let conn = old.connect(addr).await.expect("connect");
    let to = [conn.node_cert().clone()];
    let late_by = OFFLINE_AFTER.as_millis() as u64 + 50_000;
    for (text, sent_at) in [
        ("written a minute ago", now_ms() - late_by),
        ("written now", now_ms()),
    ] {
        let content = Content::Text { text: text.into() };
        let envelope = seal_at(&old.identity, &to, &content, sent_at);
        assert!(matches!(deliver(&conn, &envelope).await, Frame::Receipt(_)));
    }
    let history = ann.wait_history("Olga", "both messages", |h| h.len() == 2);
    for m in &history {
        let late = m["text"] == "written a minute ago";
        assert_eq!(m["offline"], late, "{m}");
    }
}

/// Seals `content` from `from` to `to`, sent now.
fn seal(from: &Identity, to: &[DeviceCert], content: &Content) -> Envelope {
    seal_at(from, to, content, now_ms())
}

/// Seals `content` from `from` to `to` with the send time `sent_at`.
fn seal_at(from: &Identity, to: &[DeviceCert], content: &Content, sent_at: u64) -> Envelope {
    Envelope::seal(
        &from.device,
        &from.cert,
        to,
        MessageId::random(&mut OsEntropy),
        sent_at,
        content,
        &mut OsEntropy,
    )
    .expect("seal")
}

fn presence(shown: ShownPresence, note: &str, version: u64) -> Content {
    Content::Presence(PresenceUpdate {
        shown,
        note: note.into(),
        version,
        ask: false,
    })
}

async fn deliver(conn: &RawConn, envelope: &Envelope) -> Frame {
    conn.deliver(&envelope_frame(envelope))
        .await
        .expect("an answer")
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_and_malformed_presence_is_refused() {
    let mut ann = User::init("Ann");
    ann.start();
    let addr = SocketAddr::from(([127, 0, 0, 1], ann.port));
    let mallory = RawPeer::new("Mallory").expect("raw peer");
    let conn = mallory.connect(addr).await.expect("connect");
    let bob = RawPeer::new("Bob").expect("raw peer");
    let _bob_conn = bob.connect(addr).await.expect("connect");
    let to = [conn.node_cert().clone()];

    // A valid presence is taken (a receipt) and shown.
    let good = seal(
        &mallory.identity,
        &to,
        &presence(ShownPresence::Busy, "hello", 10),
    );
    assert!(matches!(deliver(&conn, &good).await, Frame::Receipt(_)));
    ann.wait_peer("Mallory", "busy", |p| {
        p["presence"] == "busy" && p["note"] == "hello"
    });

    // Bob's presence forged by Mallory (his certificate, her signature),
    // and a tampered signature: refused by construction.
    let mut forged = seal(
        &mallory.identity,
        &to,
        &presence(ShownPresence::Offline, "", 20),
    );
    forged.sender = bob.identity.cert.clone();
    let answer = deliver(&conn, &forged).await;
    assert!(
        matches!(
            answer,
            Frame::Refused {
                reason: RefuseReason::BadSignature | RefuseReason::Undecryptable,
                ..
            }
        ),
        "{answer:?}"
    );
    let mut tampered = seal(
        &mallory.identity,
        &to,
        &presence(ShownPresence::Offline, "", 21),
    );
    tampered.signature.0[3] ^= 1;
    let answer = deliver(&conn, &tampered).await;
    assert!(
        matches!(
            answer,
            Frame::Refused {
                reason: RefuseReason::BadSignature,
                ..
            }
        ),
        "{answer:?}"
    );

    // Notes too long, with escape sequences, or on an offline update.
    for (shown, note) in [
        (ShownPresence::Busy, "x".repeat(300)),
        (ShownPresence::Busy, "a\u{1b}[2Jb".to_string()),
        (ShownPresence::Offline, "hidden".to_string()),
    ] {
        let bad = seal(&mallory.identity, &to, &presence(shown, &note, 30));
        let answer = deliver(&conn, &bad).await;
        assert!(
            matches!(
                answer,
                Frame::Refused {
                    reason: RefuseReason::Other(_),
                    ..
                }
            ),
            "{note:?}: {answer:?}"
        );
    }
    // An older version is acknowledged and ignored.
    let stale = seal(
        &mallory.identity,
        &to,
        &presence(ShownPresence::Online, "", 5),
    );
    assert!(matches!(deliver(&conn, &stale).await, Frame::Receipt(_)));

    let bob_seen = ann.peer("Bob").expect("Bob listed");
    assert_eq!(bob_seen["online"], true, "Bob untouched: {bob_seen}");
    assert_eq!(bob_seen["presence"], "online", "{bob_seen}");
    let mallory_seen = ann.peer("Mallory").expect("Mallory listed");
    assert_eq!(mallory_seen["presence"], "busy", "{mallory_seen}");
    assert_eq!(mallory_seen["note"], "hello", "{mallory_seen}");
}
