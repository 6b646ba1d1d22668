//! Rooms end to end: real daemons on 127.0.0.1 (`--no-mdns`, static
//! peers) driven through `tincan room ... --json`, plus scripted peers
//! (`common::raw_peer`) sending forged membership ops and room messages.
//!
//! Safety: loopback only. Deadlines bound a hang; nothing asserts speed.

mod common;

use std::net::SocketAddr;

use common::loopback::{started, User, DEADLINE};
use common::raw_peer::{now_ms, RawConn, RawPeer};
use common::room::{has_text, member_names, room_history, room_of, rooms, wait_members, wait_text};
use common::wait_for;
use serde_json::Value;
use tincan_core::entropy::SeededEntropy;
use tincan_core::room::{RoomAction, RoomContent, RoomOp, SenderKey};
use tincan_core::wire::{self, Frame, RefuseReason};
use tincan_core::{Content, DeviceCert, Envelope, MessageId, RoomEnvelope, RoomId, RoomLog};
use tincan_node::keystore::OsEntropy;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a command that must fail; returns its error output.
fn fails(user: &User, args: &[&str]) -> String {
    let out = user.run(args);
    assert!(!out.status.success(), "{args:?} should fail");
    stderr(&out)
}

#[test]
fn a_room_of_five_with_invite_join_leave_topic_on_every_member() {
    let users = started(&["Ann", "Bob", "Cat", "Dan", "Eve"]);
    let (ann, bob, cat, dan, eve) = (&users[0], &users[1], &users[2], &users[3], &users[4]);

    // Ann creates it with Bob and Cat (ad-hoc: a 1:1 plus one), invites Dan.
    let created = ann.json(&["room", "create", "Lunch", "--with", "Bob,Cat", "--json"]);
    let id = created["id"].as_str().expect("room id").to_string();
    assert_eq!(created["name"], "Lunch", "{created}");
    assert_eq!(created["admin"], true, "{created}");
    let invited = ann.json(&["room", "invite", "Lunch", "Dan", "--json"]);
    assert_eq!(member_names(&invited), ["Ann", "Bob", "Cat", "Dan"]);
    for user in [bob, cat, dan] {
        let room = wait_members(user, &id, &["Ann", "Bob", "Cat", "Dan"]);
        assert_eq!(room["name"], "Lunch", "{room}");
        assert_eq!(room["joined"], true, "{room}");
        assert_eq!(room["admin"], false, "{room}");
    }

    // Eve was not added: she joins with a link Ann made.
    assert!(fails(eve, &["room", "send", &id, "hi"]).contains("no room"));
    let link = ann.json(&["room", "link", "Lunch", "--json"]);
    let link = link["link"].as_str().expect("link").to_string();
    let join = eve.json(&["room", "join", &link, "--json"]);
    assert_eq!(join["requested"], true, "{join}");
    let all = ["Ann", "Bob", "Cat", "Dan", "Eve"];
    for user in &users {
        wait_members(user, &id, &all);
    }
    // Only admins make links.
    assert!(fails(bob, &["room", "link", "Lunch"]).contains("not an admin"));

    // The topic is set by the admin; a member may not.
    assert!(fails(bob, &["room", "topic", "Lunch", "mine now"]).contains("not an admin"));
    let topic = ann.json(&["room", "topic", "Lunch", "Fridays at noon", "--json"]);
    assert_eq!(topic["topic"], "Fridays at noon");
    for user in &users {
        wait_for("the topic everywhere", DEADLINE, || {
            room_of(user, &id).filter(|r| r["topic"] == "Fridays at noon")
        });
    }

    // A message reaches all five, with the room in history --json.
    let sent = ann.json(&["room", "send", "Lunch", "hello everyone", "--json"]);
    assert_eq!(sent["room"], id.as_str(), "{sent}");
    for user in &users[1..] {
        let m = wait_text(user, &id, "hello everyone");
        for field in ["id", "from", "to", "text", "sent_at", "state", "direction"] {
            assert!(m.get(field).is_some(), "{field} missing: {m}");
        }
        assert_eq!(m["room"], id.as_str(), "{m}");
        assert_eq!(m["direction"], "in", "{m}");
        assert_eq!(m["from"], ann.user_id().as_str(), "{m}");
    }
    wait_for("Ann's room message delivered", DEADLINE, || {
        room_history(ann, &id)
            .into_iter()
            .find(|m| m["text"] == "hello everyone" && m["state"] == "delivered")
    });

    // Bob leaves: later messages do not reach him.
    let left = bob.json(&["room", "leave", "Lunch", "--json"]);
    assert_eq!(left["joined"], false, "{left}");
    for user in [ann, cat, dan, eve] {
        wait_members(user, &id, &["Ann", "Cat", "Dan", "Eve"]);
    }
    assert!(fails(bob, &["room", "send", "Lunch", "still here?"]).contains("not a member"));
    cat.json(&["room", "send", "Lunch", "after Bob left", "--json"]);
    for user in [ann, dan, eve] {
        wait_text(user, &id, "after Bob left");
    }
    assert!(!has_text(bob, &id, "after Bob left"));

    // He comes back by himself, and gets what is sent from then on.
    let back = bob.json(&["room", "join", "Lunch", "--json"]);
    assert_eq!(back["joined"], true, "{back}");
    for user in &users {
        wait_members(user, &id, &all);
    }
    dan.json(&["room", "send", "Lunch", "welcome back", "--json"]);
    for user in [ann, bob, cat, eve] {
        wait_text(user, &id, "welcome back");
    }
    assert!(
        !has_text(bob, &id, "after Bob left"),
        "nothing from while he was away"
    );

    // Membership lines are in the room's history on every member.
    for user in &users {
        let lines: Vec<String> = room_history(user, &id)
            .iter()
            .filter(|m| m["system"] == true)
            .map(|m| m["text"].as_str().unwrap_or_default().to_string())
            .collect();
        for want in [
            "Ann added Dan",
            "Ann added Eve",
            "Ann set the topic: Fridays at noon",
            "Bob left",
            "Bob joined",
        ] {
            assert!(
                lines.iter().any(|l| l == want),
                "{}: {want:?} not in {lines:?}",
                user.name
            );
        }
    }
    let ann_lines = room_history(ann, &id);
    assert!(ann_lines
        .iter()
        .any(|m| m["system"] == true && m["text"] == "Ann created the room \u{201c}Lunch\u{201d}"));

    // Search finds room messages, with the room.
    let hits = dan.json(&["search", "everyone", "--json"]);
    let hit = hits
        .as_array()
        .and_then(|h| h.iter().find(|m| m["text"] == "hello everyone"))
        .unwrap_or_else(|| panic!("no hit: {hits}"));
    assert_eq!(hit["room"], id.as_str(), "{hit}");
    // A full export holds the room, and reads back.
    let out = dan.home().join("all.json");
    let out = out.to_str().expect("path");
    let summary = dan.json(&["export", "--out", out, "--json"]);
    assert_eq!(summary["rooms"], 1, "{summary}");
    let export: tincan_node::ExportView =
        serde_json::from_slice(&std::fs::read(out).expect("export file")).expect("reads back");
    let room = export.rooms.iter().find(|r| r.id == id).expect("the room");
    assert!(room.messages.iter().any(|m| m.text == "hello everyone"));
    // Room messages are not part of the 1:1 conversation with their author.
    assert!(dan
        .history("Ann")
        .iter()
        .all(|m| m["text"] != "hello everyone"));
}

#[test]
fn removed_members_get_nothing_later_and_disabled_rooms_stay_readable() {
    let mut users = started(&["Ann", "Bob", "Cat"]);
    let (ann, bob, cat) = (&users[0], &users[1], &users[2]);
    let created = ann.json(&["room", "create", "Ops", "--with", "Bob,Cat", "--json"]);
    let id = created["id"].as_str().expect("id").to_string();
    wait_members(cat, &id, &["Ann", "Bob", "Cat"]);
    wait_members(bob, &id, &["Ann", "Bob", "Cat"]);
    bob.json(&["room", "send", &id, "before", "--json"]);
    wait_text(cat, &id, "before");

    // Only admins remove; Ann removes Cat.
    assert!(fails(bob, &["room", "remove", "Ops", "Cat"]).contains("not an admin"));
    ann.json(&["room", "remove", "Ops", "Cat", "--json"]);
    let seen = wait_for("Cat to see she was removed", DEADLINE, || {
        room_of(cat, &id).filter(|r| r["joined"] == false)
    });
    assert_eq!(member_names(&seen), ["Ann", "Bob"]);
    wait_members(bob, &id, &["Ann", "Bob"]);
    // A removed member cannot rejoin by herself.
    assert!(fails(cat, &["room", "join", "Ops"]).contains("ask an admin"));
    assert!(fails(cat, &["room", "send", "Ops", "hello?"]).contains("not a member"));
    bob.json(&["room", "send", "Ops", "the secret plan", "--json"]);
    wait_text(ann, &id, "the secret plan");
    assert!(!has_text(cat, &id, "the secret plan"));
    assert!(has_text(cat, &id, "before"), "her history stays readable");
    assert!(room_history(cat, &id)
        .iter()
        .any(|m| m["system"] == true && m["text"] == "Ann removed Cat"));

    // Admins: Ann makes Bob an admin; Bob may then set the topic.
    ann.json(&["room", "admin", "Ops", "Bob", "--json"]);
    wait_for("Bob an admin", DEADLINE, || {
        room_of(bob, &id).filter(|r| r["admin"] == true)
    });
    bob.json(&["room", "topic", "Ops", "ship it", "--json"]);
    wait_for("Ann sees Bob's topic", DEADLINE, || {
        room_of(ann, &id).filter(|r| r["topic"] == "ship it")
    });

    // Typing reaches the members as an event, never stored (once Ann's
    // key of this epoch is out: her first message hands it out).
    ann.json(&["room", "send", "Ops", "typing next", "--json"]);
    wait_text(bob, &id, "typing next");
    let mut watch = bob.watch();
    let typing = ann.json(&["room", "typing", "Ops", "--json"]);
    assert_eq!(typing["sent"], true, "{typing}");
    let event = watch.expect("room typing", |e| e["type"] == "room_typing");
    assert_eq!(event["room"], id.as_str(), "{event}");
    assert_eq!(event["from_name"], "Ann", "{event}");

    // Disabled: readable, no new messages.
    ann.json(&["room", "disable", "Ops", "--json"]);
    wait_for("Bob sees it disabled", DEADLINE, || {
        room_of(bob, &id).filter(|r| r["disabled"] == true)
    });
    assert!(fails(bob, &["room", "send", "Ops", "too late"]).contains("disabled"));
    assert!(has_text(bob, &id, "the secret plan"));

    // Bad input: clear errors, nothing stored.
    let before = rooms(ann).len();
    let long = "n".repeat(101);
    assert!(fails(ann, &["room", "create", &long]).contains("room name is invalid"));
    assert!(fails(ann, &["room", "create", "  "]).contains("room name is invalid"));
    assert_eq!(rooms(ann).len(), before, "no room stored");
    let unknown = "00112233445566778899aabbccddeeff";
    assert!(fails(ann, &["room", "send", unknown, "hi"]).contains("no room"));
    assert!(fails(ann, &["room", "history", unknown]).contains("no room"));
    assert!(fails(ann, &["room", "join", "tincan-room:zz"]).contains("not a room"));
    let other = ann.json(&["room", "create", "Side", "--json"]);
    let huge = "t".repeat(1001);
    assert!(fails(
        ann,
        &["room", "topic", other["id"].as_str().unwrap(), &huge]
    )
    .contains("room topic is invalid"));

    // Everything survives a restart (kill -9).
    users[0].kill();
    users[0].start();
    let ann = &users[0];
    let after = room_of(ann, &id).expect("room after restart");
    assert_eq!(after["disabled"], true, "{after}");
    assert_eq!(after["topic"], "ship it", "{after}");
    assert!(has_text(ann, &id, "the secret plan"));
    assert!(fails(ann, &["room", "send", "Ops", "again"]).contains("disabled"));
}

fn seal(from: &RawPeer, to: &DeviceCert, content: &Content) -> Vec<u8> {
    let envelope = Envelope::seal(
        &from.identity.device,
        &from.identity.cert,
        std::slice::from_ref(to),
        MessageId::random(&mut OsEntropy),
        now_ms(),
        content,
        &mut OsEntropy,
    )
    .expect("seal");
    wire::encode(&Frame::Envelope(envelope)).expect("encode")
}

async fn deliver(conn: &RawConn, bytes: &[u8]) -> Frame {
    conn.deliver(bytes).await.expect("an answer")
}

fn refused_with(frame: &Frame, words: &str) -> bool {
    matches!(frame, Frame::Refused { reason: RefuseReason::Other(text), .. } if text.contains(words))
}

/// `creator` makes a room (entropy `seed`), adds Ann and sends her the log
/// over `conn`; returns the log once Ann lists the room.
async fn invite_ann(creator: &RawPeer, conn: &RawConn, ann: &User, seed: u64) -> RoomLog {
    let ann_cert = conn.node_cert().clone();
    let name = format!("{}'s room", creator.identity.name);
    let (mut log, _) = RoomLog::create(
        &creator.identity.device,
        &creator.identity.cert,
        &name,
        now_ms(),
        &mut SeededEntropy::new(seed),
    )
    .expect("create");
    let add = RoomAction::Add {
        users: vec![ann_cert.user_id()],
    };
    log.author(
        &creator.identity.device,
        &creator.identity.cert,
        add,
        now_ms(),
    )
    .expect("add");
    let invite = Content::RoomOps {
        room: log.id(),
        ops: log.ops_in_order(),
        log_len: 2,
    };
    let answer = deliver(conn, &seal(creator, &ann_cert, &invite)).await;
    assert!(matches!(answer, Frame::Receipt(_)), "{answer:?}");
    let id = log.id().to_string();
    let seen = wait_for("Ann added to the room", DEADLINE, || room_of(ann, &id));
    assert_eq!(seen["name"], name.as_str());
    log
}

fn room_frame(from: &RawPeer, room: RoomId, log: &RoomLog, to: &DeviceCert, text: &str) -> Vec<u8> {
    let envelope = RoomEnvelope::seal(
        &from.identity.device,
        &from.identity.cert,
        room,
        log.state().epoch,
        &SenderKey([9; 32]),
        vec![to.device_id()],
        MessageId::random(&mut OsEntropy),
        now_ms(),
        &RoomContent::Text { text: text.into() },
        &mut OsEntropy,
    )
    .expect("seal");
    wire::encode(&Frame::RoomEnvelope(envelope)).expect("encode")
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_membership_ops_and_unknown_rooms_are_refused() {
    let mut ann = User::init("Ann");
    ann.start();
    let addr = SocketAddr::from(([127, 0, 0, 1], ann.port));
    let mallory = RawPeer::new("Mallory").expect("raw peer");
    let conn = mallory.connect(addr).await.expect("connect");
    let bob = RawPeer::new("Bob").expect("raw peer");
    let _bob_conn = bob.connect(addr).await.expect("connect");
    let ann_cert = conn.node_cert().clone();

    // Mallory makes a room and adds Ann: a normal invitation, taken.
    let log = invite_ann(&mallory, &conn, &ann, 1).await;
    let room = log.id();
    let id = room.to_string();

    // Bob, no member, sets the topic: refused, nothing stored.
    let heads = log.heads().to_vec();
    let by_bob = RoomOp::sign(
        &bob.identity.device,
        &bob.identity.cert,
        Some(room),
        heads.clone(),
        now_ms(),
        RoomAction::SetTopic {
            topic: "owned".into(),
        },
    );
    let content = Content::RoomOps {
        room,
        ops: vec![by_bob],
        log_len: 0,
    };
    let answer = deliver(&conn, &seal(&bob, &ann_cert, &content)).await;
    assert!(refused_with(&answer, "is not a member"), "{answer:?}");
    // Mallory forges an op as Bob (his certificate, her signature).
    let mut forged = RoomOp::sign(
        &mallory.identity.device,
        &mallory.identity.cert,
        Some(room),
        heads.clone(),
        now_ms(),
        RoomAction::Disable,
    );
    forged.author = bob.identity.cert.clone();
    let content = Content::RoomOps {
        room,
        ops: vec![forged],
        log_len: 0,
    };
    let answer = deliver(&conn, &seal(&mallory, &ann_cert, &content)).await;
    assert!(refused_with(&answer, "signature is invalid"), "{answer:?}");
    // A log of a room Ann is not in is not taken.
    let (alone, _) = RoomLog::create(
        &bob.identity.device,
        &bob.identity.cert,
        "Elsewhere",
        now_ms(),
        &mut SeededEntropy::new(2),
    )
    .expect("create");
    let content = Content::RoomOps {
        room: alone.id(),
        ops: alone.ops_in_order(),
        log_len: 1,
    };
    let answer = deliver(&conn, &seal(&bob, &ann_cert, &content)).await;
    assert!(refused_with(&answer, "not a member"), "{answer:?}");
    let now = room_of(&ann, &id).expect("room");
    assert_eq!(now["topic"], "", "{now}");
    assert_eq!(now["disabled"], false, "{now}");
    assert!(room_of(&ann, &alone.id().to_string()).is_none());

    // Room messages: an unknown room id, and a sender who is no member.
    let answer = deliver(&conn, &room_frame(&bob, alone.id(), &alone, &ann_cert, "x")).await;
    assert!(refused_with(&answer, "unknown room"), "{answer:?}");
    let answer = deliver(&conn, &room_frame(&bob, room, &log, &ann_cert, "y")).await;
    assert!(refused_with(&answer, "not a member"), "{answer:?}");
    // A tampered room envelope fails its signature.
    let mut bytes = room_frame(&mallory, room, &log, &ann_cert, "z");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let answer = deliver(&conn, &bytes).await;
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
    assert!(room_history(&ann, &id).iter().all(|m| m["system"] == true));
}

#[test]
fn a_long_log_reaches_a_new_member_in_parts() {
    let users = started(&["Ann", "Bob"]);
    let (ann, bob) = (&users[0], &users[1]);
    let created = ann.json(&["room", "create", "Archive", "--json"]);
    let id = created["id"].as_str().expect("id").to_string();
    // 41 ops: more than one part (32 ops each) of the log.
    for i in 0..40 {
        ann.json(&["room", "topic", &id, &format!("topic {i}"), "--json"]);
    }
    ann.json(&["room", "invite", &id, "Bob", "--json"]);
    let room = wait_for("Bob to get the whole log", DEADLINE, || {
        room_of(bob, &id).filter(|r| r["topic"] == "topic 39")
    });
    assert_eq!(member_names(&room), ["Ann", "Bob"]);
    let lines = wait_for("every membership line on Bob", DEADLINE, || {
        let lines = room_history(bob, &id);
        (lines.len() == 42).then_some(lines)
    });
    assert!(lines.iter().all(|m| m["system"] == true));
    assert_eq!(
        lines.last().map(|m| m["text"].clone()),
        Some("Ann added Bob".into())
    );
    ann.json(&["room", "send", &id, "all caught up", "--json"]);
    wait_text(bob, &id, "all caught up");
}

#[test]
fn a_muted_room_notifies_only_mentions_and_room_messages_can_be_edited() {
    let users = started(&["Ann", "Bob"]);
    let (ann, bob) = (&users[0], &users[1]);
    let created = ann.json(&["room", "create", "Standup", "--with", "Bob", "--json"]);
    let id = created["id"].as_str().expect("room id").to_string();
    wait_members(bob, &id, &["Ann", "Bob"]);
    let muted = ann.json(&["mute", "Standup", "--json"]);
    assert_eq!(
        (&muted["peer"], &muted["muted"]),
        (&Value::from(id.clone()), &Value::from(true))
    );

    let mut events = ann.watch();
    bob.json(&["room", "send", &id, "status: all green", "--json"]);
    wait_text(ann, &id, "status: all green");
    let mention = bob.json(&["room", "send", &id, "@Ann can you review?", "--json"]);
    let got = wait_text(ann, &id, "@Ann can you review?");
    assert_eq!(got["mentions"], serde_json::json!([ann.user_id()]), "{got}");
    // The chatter raised nothing: the first notification is the mention.
    let first = events.expect("a notification", |e| e["type"] == "notification");
    assert_eq!(first["message_id"], mention["id"], "{first}");
    assert_eq!(
        (&first["urgency"], &first["room"]),
        (&Value::from("mention"), &Value::from(id.clone()))
    );

    // The author edits and retracts room messages; every member sees it.
    let mention_id = mention["id"].as_str().expect("id");
    bob.json(&["edit", mention_id, "@Ann can you review PR 12?", "--json"]);
    let edited = wait_text(ann, &id, "@Ann can you review PR 12?");
    assert!(edited["edited_at"].is_u64(), "{edited}");
    let chatter = room_history(bob, &id)
        .into_iter()
        .find(|m| m["text"] == "status: all green")
        .expect("bob's own copy");
    bob.json(&["delete", chatter["id"].as_str().expect("id"), "--json"]);
    wait_for("the retraction in Ann's room", DEADLINE, || {
        room_history(ann, &id)
            .into_iter()
            .find(|m| m["id"] == chatter["id"] && m["deleted"] == true)
    });
}

#[test]
fn files_sent_to_a_room_are_offered_to_its_members() {
    let users = started(&["Ann", "Bob", "Cat"]);
    let (ann, bob, cat) = (&users[0], &users[1], &users[2]);
    let created = ann.json(&["room", "create", "Design", "--with", "Bob,Cat", "--json"]);
    let id = created["id"].as_str().expect("room id").to_string();
    wait_members(bob, &id, &["Ann", "Bob", "Cat"]);
    wait_members(cat, &id, &["Ann", "Bob", "Cat"]);
    let file = ann.home().join("mockup.txt");
    std::fs::write(&file, b"a mockup for the room\n".repeat(1000)).expect("write file");
    let sent = ann.json(&[
        "file",
        "send",
        "Design",
        file.to_str().expect("utf-8"),
        "--json",
    ]);
    let transfer = sent["id"].as_str().expect("transfer id").to_string();
    for user in [bob, cat] {
        let dir = user.home().join("inbox");
        wait_for(
            &format!("{} to be offered the file", user.name),
            DEADLINE,
            || {
                let list = user.json(&["file", "list", "--json"]);
                list.as_array()?
                    .iter()
                    .find(|t| t["id"] == transfer.as_str() && t["state"] == "offered")
                    .cloned()
            },
        );
        user.json(&[
            "file",
            "accept",
            &transfer,
            "--to",
            dir.to_str().expect("utf-8"),
            "--json",
        ]);
        let got = wait_for(&format!("{} to have the file", user.name), DEADLINE, || {
            std::fs::read(dir.join("mockup.txt")).ok()
        });
        assert_eq!(
            got,
            std::fs::read(&file).expect("read"),
            "{} got other bytes",
            user.name
        );
    }
}

/// Mallory's desktop is in her room through her user; once she removes
/// the desktop, its room messages are refused as coming from a removed
/// device, by whatever path they arrive (here passed on by her laptop).
#[tokio::test(flavor = "multi_thread")]
async fn room_messages_of_a_removed_device_are_refused() {
    use tincan_core::device::Roster;
    use tincan_core::{DeviceKey, DeviceRevocation, Identity};

    let mut ann = User::init("Ann");
    ann.start();
    let addr = SocketAddr::from(([127, 0, 0, 1], ann.port));
    let laptop = RawPeer::new("Mallory").expect("raw peer");
    let user = laptop.identity.user.clone().expect("user key");
    let desktop_key = DeviceKey::generate(&mut OsEntropy);
    let desktop = RawPeer::with_identity(Identity {
        user: None,
        cert: user.certify(&desktop_key, now_ms() / 1000),
        device: desktop_key,
        name: "Mallory".into(),
    })
    .expect("raw peer");
    let conn = laptop.connect(addr).await.expect("connect");
    let _desktop_conn = desktop.connect(addr).await.expect("connect");
    let ann_cert = conn.node_cert().clone();

    let log = invite_ann(&laptop, &conn, &ann, 3).await;
    let room = log.id();
    let id = room.to_string();
    let removed = |answer: &anyhow::Result<Frame>| {
        matches!(
            answer,
            Ok(Frame::Refused {
                reason: RefuseReason::DeviceRemoved,
                ..
            })
        )
    };
    // Before the removal the desktop speaks for Mallory, a member.
    let answer = conn
        .deliver(&room_frame(&desktop, room, &log, &ann_cert, "still mine"))
        .await;
    assert!(!removed(&answer), "{answer:?}");

    let revocation = DeviceRevocation::sign(&user, desktop.identity.device_id(), now_ms() / 1000);
    let roster = Frame::Devices(Roster {
        certs: vec![laptop.identity.cert.clone()],
        revocations: vec![revocation],
        labels: Vec::new(),
    });
    let answer = deliver(&conn, &wire::encode(&roster).expect("encode")).await;
    assert_eq!(answer, Frame::Ack);
    let answer = conn
        .deliver(&room_frame(
            &desktop,
            room,
            &log,
            &ann_cert,
            "after removal",
        ))
        .await;
    assert!(removed(&answer), "{answer:?}");
    assert!(!has_text(&ann, &id, "after removal"));
}
