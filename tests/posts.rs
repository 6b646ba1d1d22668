//! Replies, mentions, edits, retractions, broadcasts, contacts and
//! notifications end to end: real daemons on 127.0.0.1 (`--no-mdns`,
//! static peers) driven through the CLI with `--json` and the control
//! socket.
//!
//! Safety: loopback only. Deadlines bound a hang; nothing asserts speed.

mod common;

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use common::loopback::{started, started_with, User};
use serde_json::Value;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn find<'a>(history: &'a [Value], id: &str) -> &'a Value {
    history
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("message {id} not in {history:?}"))
}

fn id_of(message: &Value) -> String {
    message["id"].as_str().expect("message id").to_string()
}

#[test]
fn reply_mention_edit_and_delete_reach_every_conversation() {
    let users = started(&["Ann", "Bob", "Cat"]);
    let (ann, bob, cat) = (&users[0], &users[1], &users[2]);
    let bob_id = bob.user_id();

    let question = bob.send_delivered("Ann", "lunch at 12?");
    let question_id = id_of(&question);
    ann.wait_history("Bob", "the question", |h| {
        h.iter().any(|m| m["id"] == question_id)
    });

    // A reply to Bob and Cat at once, quoting by a short id prefix and
    // mentioning Bob.
    let mut bob_events = bob.watch();
    let reply = ann.json(&[
        "send",
        "Bob,Cat",
        "yes! @Bob bring the menu",
        "--reply-to",
        &question_id[..8],
        "--wait",
        "--timeout",
        "30",
        "--json",
    ]);
    assert_eq!(reply["state"], "delivered", "{reply}");
    assert_eq!(reply["reply_to"]["id"], question_id.as_str(), "{reply}");
    assert_eq!(reply["reply_to"]["excerpt"], "lunch at 12?", "{reply}");
    assert_eq!(reply["mentions"], serde_json::json!([bob_id]), "{reply}");
    let reply_id = id_of(&reply);
    for (user, what) in [(bob, "Bob"), (cat, "Cat")] {
        let history = user.wait_history("Ann", "the reply", |h| {
            h.iter().any(|m| m["id"] == reply_id)
        });
        let got = find(&history, &reply_id);
        assert_eq!(got["reply_to"]["excerpt"], "lunch at 12?", "{what}: {got}");
        assert_eq!(
            got["mentions"],
            serde_json::json!([bob_id]),
            "{what}: {got}"
        );
    }
    let note = bob_events.expect("mention notification", |e| {
        e["type"] == "notification" && e["message_id"] == reply_id.as_str()
    });
    assert_eq!(note["urgency"], "mention", "{note}");
    assert_eq!(note["title"], "Ann", "{note}");

    // The author edits it: both conversations change, Bob hears of it.
    let edited = ann.json(&["edit", &reply_id[..10], "yes, at 12:30", "--json"]);
    assert_eq!(
        edited.as_array().map(Vec::len),
        Some(2),
        "one row per conversation: {edited}"
    );
    bob_events.expect("the edit", |e| {
        e["type"] == "message_changed" && e["message"]["text"] == "yes, at 12:30"
    });
    for user in [bob, cat] {
        let history = user.wait_history("Ann", "the edit", |h| {
            h.iter()
                .any(|m| m["id"] == reply_id && m["text"] == "yes, at 12:30")
        });
        assert!(find(&history, &reply_id)["edited_at"].is_u64());
    }

    // Nobody else can change it; bad ids and texts are refused clearly.
    let forged = bob.run(&["edit", &reply_id, "I said no"]);
    assert!(!forged.status.success());
    assert!(
        stderr(&forged).contains("no message"),
        "{}",
        stderr(&forged)
    );
    let short = ann.run(&["edit", "abc", "x"]);
    assert!(
        stderr(&short).contains("at least 6 hex"),
        "{}",
        stderr(&short)
    );
    let empty = ann.run(&["edit", &reply_id, "   "]);
    assert!(stderr(&empty).contains("empty"), "{}", stderr(&empty));

    // Retracted: the text is gone everywhere, also from search.
    let secret = ann.send_delivered("Bob", "the password is swordfish");
    let secret_id = id_of(&secret);
    bob.wait_history("Ann", "the secret", |h| {
        h.iter().any(|m| m["id"] == secret_id)
    });
    let deleted = ann.json(&["delete", &secret_id, "--json"]);
    assert_eq!(deleted[0]["deleted"], true, "{deleted}");
    let history = bob.wait_history("Ann", "the retraction", |h| {
        h.iter()
            .any(|m| m["id"] == secret_id && m["deleted"] == true)
    });
    assert_eq!(find(&history, &secret_id)["text"], "");
    let hits = bob.json(&["search", "swordfish", "--json"]);
    assert_eq!(
        hits,
        serde_json::json!([]),
        "a retracted text is not searchable"
    );
    let again = ann.run(&["edit", &secret_id, "undo"]);
    assert!(stderr(&again).contains("deleted"), "{}", stderr(&again));
}

#[test]
fn broadcast_goes_to_everyone_online_or_to_one_group() {
    let users = started(&["Ann", "Bob", "Cat", "Dan"]);
    let (ann, bob, cat, dan) = (&users[0], &users[1], &users[2], &users[3]);

    let sent = ann.json(&["broadcast", "fire drill at 3", "--json"]);
    assert_eq!(sent["to"].as_array().map(Vec::len), Some(3), "{sent}");
    let id = id_of(&sent["message"]);
    for user in [bob, cat, dan] {
        let history =
            user.wait_history("Ann", "the broadcast", |h| h.iter().any(|m| m["id"] == id));
        assert_eq!(find(&history, &id)["broadcast"], true);
    }

    // A group is the accepted contacts in it: Bob accepts, Cat not yet.
    ann.json(&["contact", "add", "Bob", "--group", "Sales", "--json"]);
    ann.json(&["contact", "add", "Cat", "--group", "Sales", "--json"]);
    bob.wait_contact("Ann", "incoming");
    bob.json(&["contact", "accept", "Ann", "--json"]);
    ann.wait_contact("Bob", "accepted");
    let sent = ann.json(&["broadcast", "quota met", "--group", "sales", "--json"]);
    assert_eq!(sent["names"], serde_json::json!(["Bob"]), "{sent}");
    let id = id_of(&sent["message"]);
    bob.wait_history("Ann", "the group broadcast", |h| {
        h.iter().any(|m| m["id"] == id)
    });
    assert!(!cat.history("Ann").iter().any(|m| m["id"] == id));

    let none = ann.run(&["broadcast", "hello", "--group", "Nobody"]);
    assert!(!none.status.success());
    assert!(stderr(&none).contains("Nobody"), "{}", stderr(&none));
}

#[test]
fn contact_requests_are_accepted_rejected_and_kept_across_restarts() {
    let mut users = started(&["Ann", "Bob", "Cat"]);
    let view = users[0].json(&[
        "contact",
        "add",
        "Bob",
        "--message",
        "we met at the fair",
        "--json",
    ]);
    assert_eq!(view["state"], "requested", "{view}");
    let incoming = users[1].wait_contact("Ann", "incoming");
    assert_eq!(incoming["message"], "we met at the fair", "{incoming}");

    // A restart loses nothing.
    users[1].kill();
    users[1].start();
    assert_eq!(
        users[1].contact("Ann").expect("still listed")["state"],
        "incoming"
    );
    users[1].json(&["contact", "accept", "Ann", "--json"]);
    users[0].wait_contact("Bob", "accepted");

    // Rejected: Cat's new requests are ignored, and Cat is told once.
    let (ann, cat) = (&users[0], &users[2]);
    cat.json(&["contact", "add", "Ann", "--json"]);
    ann.wait_contact("Cat", "incoming");
    let declined = ann.json(&["contact", "reject", "Cat", "--json"]);
    assert_eq!(declined["state"], "declined", "{declined}");
    cat.wait_contact("Ann", "rejected");
    cat.json(&["contact", "add", "Ann", "--json"]);
    cat.wait_contact("Ann", "requested");
    // Cat's second request reached Ann (delivered) yet changed nothing.
    cat.send_delivered("Ann", "after my request");
    assert_eq!(ann.contact("Cat").expect("listed")["state"], "declined");

    let nothing = ann.run(&["contact", "accept", "Bob"]);
    assert!(!nothing.status.success());
    assert!(
        stderr(&nothing).contains("no pending"),
        "{}",
        stderr(&nothing)
    );
    let me = ann.run(&["contact", "add", "Ann"]);
    assert!(stderr(&me).contains("yourself"), "{}", stderr(&me));
    let long = "x".repeat(300);
    let huge = ann.run(&["contact", "add", "Bob", "--message", &long]);
    assert!(stderr(&huge).contains("exceeds"), "{}", stderr(&huge));
}

#[test]
fn organisation_members_are_contacts_without_asking() {
    let org_dir = tempfile::tempdir().expect("tempdir");
    let admin: RefCell<Option<PathBuf>> = RefCell::new(None);
    let users = started_with(&["Ann", "Bob"], |user| {
        let mut admin = admin.borrow_mut();
        match admin.as_ref() {
            None => {
                user.json(&["org", "init", "--name", "Acme", "--json"]);
                *admin = Some(user.home().to_path_buf());
            }
            Some(admin_home) => {
                let file = org_dir.path().join(format!("{}.membership", user.name));
                let file = file.to_str().expect("utf-8 path");
                common::cli_json(
                    admin_home,
                    &["org", "issue", &user.user_id(), "--out", file, "--json"],
                );
                user.json(&["org", "join", file, "--json"]);
            }
        }
    });
    let (ann, bob) = (&users[0], &users[1]);
    let listed = ann.wait_contact("Bob", "org");
    assert_eq!(listed["online"], true, "{listed}");
    bob.wait_contact("Ann", "org");
    // The user's own group for a member needs no handshake either.
    let grouped = ann.json(&["contact", "add", "Bob", "--group", "Ops", "--json"]);
    assert_eq!(
        (&grouped["state"], &grouped["group"]),
        (&Value::from("org"), &Value::from("Ops"))
    );
}

#[test]
fn notifications_respect_busy_and_a_focused_window() {
    let users = started(&["Ann", "Bob"]);
    let (ann, bob) = (&users[0], &users[1]);
    let mut events = ann.watch();

    // Busy: the first message raises nothing; back online the second does,
    // and it is the first notification the stream sees.
    ann.json(&["presence", "set", "busy", "--json"]);
    let quiet = id_of(&bob.send_delivered("Ann", "while busy"));
    ann.json(&["presence", "set", "online", "--json"]);
    let loud = id_of(&bob.send_delivered("Ann", "now online"));
    let first = events.expect("a notification", |e| e["type"] == "notification");
    assert_eq!(
        first["message_id"],
        loud.as_str(),
        "nothing for {quiet}: {first}"
    );
    assert_eq!(first["urgency"], "normal");
    assert_eq!(first["body"], "now online");

    // Muted: nothing, except a message that mentions Ann.
    ann.json(&["mute", "Bob", "--json"]);
    let quiet = id_of(&bob.send_delivered("Ann", "muted chatter"));
    let mention = id_of(&bob.send_delivered("Ann", "@Ann look"));
    let next = events.expect("a notification", |e| e["type"] == "notification");
    assert_eq!(
        next["message_id"],
        mention.as_str(),
        "nothing for {quiet}: {next}"
    );
    assert_eq!(next["urgency"], "mention");
    ann.json(&["unmute", "Bob", "--json"]);

    // A focused window silences them, for as long as it stays connected.
    let focus = Focus::hold(ann);
    let quiet = id_of(&bob.send_delivered("Ann", "while focused"));
    drop(focus);
    // The node clears the focus once it sees the connection close; a
    // message sent after that is notified, and is the next one seen.
    let loud = common::wait_for("focus released", common::loopback::DEADLINE, || {
        let id = id_of(&bob.send_delivered("Ann", "after focus"));
        events
            .next_matching(std::time::Duration::from_secs(2), |e| {
                e["type"] == "notification"
            })
            .map(|e| (id, e))
    });
    assert_ne!(loud.1["message_id"], quiet.as_str(), "{}", loud.1);
}

/// A control connection that told the node a window has the focus; the
/// node keeps the focus while the connection stays open.
struct Focus {
    _connection: UnixStream,
}

impl Focus {
    fn hold(user: &User) -> Focus {
        let mut stream =
            UnixStream::connect(user.home().join("control.sock")).expect("connect control.sock");
        stream
            .write_all(b"{\"cmd\":\"focus\",\"focused\":true}\n")
            .expect("send focus");
        let mut line = String::new();
        BufReader::new(&stream)
            .read_line(&mut line)
            .expect("focus answer");
        let answer: Value = serde_json::from_str(&line).expect("JSON answer");
        assert_eq!(answer["ok"], true, "{answer}");
        Focus {
            _connection: stream,
        }
    }
}
