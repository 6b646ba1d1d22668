//! The interfaces scripts and bots depend on, pinned before the node's
//! insides move (issue 14): the shape of every `--json` answer (each key
//! and the kind of its value), and the file names in a home. The CLI's
//! commands and flags, the control socket's lines and `watch` events are
//! pinned beside their code (golden files in `node/golden/`).
//!
//! A deliberate change: run with `TINCAN_BLESS=1` and commit the new
//! golden file.
//!
//! Safety: real daemons on 127.0.0.1 only (`--no-mdns`, static peers).

mod common;

use std::collections::BTreeSet;

use common::loopback::{started, User, DEADLINE};
use common::wait_for;
use serde_json::Value;

/// Every path in `value` with the kind of what is there: `peers[].addrs[]:
/// string`. Arrays merge their elements, so optional keys show once.
fn shape(path: &str, value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if map.is_empty() {
                out.insert(format!("{path}: {{}}"));
            }
            for (key, inner) in map {
                shape(&format!("{path}.{key}"), inner, out);
            }
        }
        Value::Array(items) => {
            if items.is_empty() {
                out.insert(format!("{path}[]: (empty)"));
            }
            for item in items {
                shape(&format!("{path}[]"), item, out);
            }
        }
        Value::String(_) => {
            out.insert(format!("{path}: string"));
        }
        Value::Number(_) => {
            out.insert(format!("{path}: number"));
        }
        Value::Bool(_) => {
            out.insert(format!("{path}: bool"));
        }
        Value::Null => {
            out.insert(format!("{path}: null"));
        }
    }
}

/// Records the shape of `tincan ARGS` as `user` runs it.
struct Shapes(BTreeSet<String>);

impl Shapes {
    fn json(&mut self, user: &User, args: &[&str]) -> Value {
        let value = user.json(args);
        // `room list`, `file send`: commands with subcommands take two words.
        let groups = [
            "contact", "device", "file", "name", "org", "peers", "presence", "relay", "room",
        ];
        let words = match args {
            [group, sub, ..] if groups.contains(group) && !sub.starts_with('-') => 2,
            _ => 1,
        };
        let command = args[..words].join(" ");
        shape(&command, &value, &mut self.0);
        value
    }
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_string()
}

#[test]
fn json_answers_keep_their_keys() {
    let users = started(&["Alice", "Bob"]);
    let (alice, bob) = (&users[0], &users[1]);
    let mut shapes = Shapes(BTreeSet::new());

    shapes.json(alice, &["whoami", "--json"]);
    shapes.json(alice, &["status", "--json"]);
    shapes.json(alice, &["peers", "--json"]);

    let sent = shapes.json(
        alice,
        &[
            "send",
            "bob",
            "hi bob",
            "--wait",
            "--timeout",
            "30",
            "--json",
        ],
    );
    assert_eq!(sent["state"], "delivered", "{sent}");
    bob.wait_history("Alice", "the message", |h| !h.is_empty());
    shapes.json(bob, &["read", "alice", "--json"]);
    alice.wait_history("Bob", "read", |h| h[0]["state"] == "read");
    shapes.json(alice, &["history", "bob", "--json"]);
    shapes.json(alice, &["search", "bob", "--json"]);
    shapes.json(alice, &["edit", &id_of(&sent), "hi Bob", "--json"]);
    let second = alice.send_delivered("Bob", "to be deleted");
    shapes.json(alice, &["delete", &id_of(&second), "--json"]);
    shapes.json(alice, &["broadcast", "fire drill", "--json"]);
    shapes.json(alice, &["mute", "bob", "--json"]);
    shapes.json(alice, &["unmute", "bob", "--json"]);
    let exported = tempfile::tempdir().expect("tempdir");
    let out = exported.path().join("all.json");
    shapes.json(
        alice,
        &["export", "--out", out.to_str().expect("utf-8"), "--json"],
    );

    let set = alice.run(&["presence", "set", "away", "--note", "lunch"]);
    assert!(set.status.success(), "{set:?}");
    shapes.json(alice, &["presence", "--json"]);
    shapes.json(alice, &["activity", "--json"]);
    shapes.json(alice, &["typing", "bob", "--json"]);
    shapes.json(alice, &["contact", "list", "--json"]);
    shapes.json(alice, &["block", "bob", "--json"]);
    shapes.json(alice, &["blocked", "--json"]);
    shapes.json(alice, &["unblock", "bob", "--json"]);

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, b"twelve bytes").expect("write file");
    let file = file.to_str().expect("utf-8 path");
    let offer = shapes.json(alice, &["file", "send", "bob", file, "--json"]);
    let offer_id = id_of(&offer);
    wait_for("bob to see the offer", DEADLINE, || {
        let list = bob.json(&["file", "list", "--json"]);
        list.as_array()?
            .iter()
            .any(|t| t["id"] == offer_id.as_str())
            .then_some(())
    });
    let to = dir.path().join("in");
    std::fs::create_dir(&to).expect("mkdir");
    shapes.json(
        bob,
        &[
            "file",
            "accept",
            &offer_id,
            "--to",
            to.to_str().expect("utf-8"),
            "--json",
        ],
    );
    wait_for("the transfer to finish", DEADLINE, || {
        let list = bob.json(&["file", "list", "--json"]);
        let done = list.as_array()?.iter().any(|t| t["state"] == "done");
        done.then_some(())
    });
    shapes.json(bob, &["file", "list", "--json"]);

    shapes.json(
        alice,
        &["room", "create", "Lunch", "--with", "bob", "--json"],
    );
    shapes.json(alice, &["room", "send", "Lunch", "pizza?", "--json"]);
    shapes.json(alice, &["room", "topic", "Lunch", "Fridays", "--json"]);
    shapes.json(alice, &["room", "list", "--json"]);
    shapes.json(alice, &["room", "history", "Lunch", "--json"]);
    shapes.json(alice, &["room", "link", "Lunch", "--json"]);
    shapes.json(alice, &["room", "typing", "Lunch", "--json"]);

    shapes.json(alice, &["device", "list", "--json"]);
    shapes.json(alice, &["name", "set", "Alice Example", "--json"]);

    let mut lines = String::new();
    for line in &shapes.0 {
        lines.push_str(line);
        lines.push('\n');
    }
    tincan_node::golden::check("json_shapes.txt", &lines);
}

#[test]
fn a_home_keeps_its_file_names() {
    let users = started(&["Alice"]);
    let home = users[0].home();
    let names: BTreeSet<String> = std::fs::read_dir(home)
        .expect("read home")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        // SQLite's WAL files come and go; `daemon-PID.log` is the test
        // harness's capture of the daemon's output.
        .filter(|name| !name.ends_with("-wal") && !name.ends_with("-shm"))
        .filter(|name| !name.starts_with("daemon-"))
        .collect();
    for name in ["identity.key", "tincan.db", "control.sock"] {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }
    let mut lines = String::new();
    for name in &names {
        lines.push_str(&format!("in a running home: {name}\n"));
    }
    let home = tincan_node::Home::new(home.to_path_buf());
    for (what, path) in [
        ("identity", home.identity_path()),
        ("database", home.database_path()),
        ("config", home.config_path()),
        ("control socket", home.control_socket_path()),
        ("organisation key", home.org_key_path()),
        ("membership", home.membership_path()),
        ("revocations", home.revocations_path()),
        ("lock", home.lock_path()),
    ] {
        let name = path.strip_prefix(home.root()).expect("inside the home");
        lines.push_str(&format!("{what}: {}\n", name.display()));
    }
    tincan_node::golden::check("home_files.txt", &lines);
}
