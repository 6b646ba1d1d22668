//! What a person reads and pipes, end to end: `history` and `room history`
//! with local times and authors (and `history` with no node running, read
//! straight from the database), `send -` and `send --file` for scripts,
//! and errors that say what is wrong once and in the user's terms.
//!
//! Safety: real daemons on 127.0.0.1 only (`--no-mdns`, static peers).
//! Deadlines bound a hang; nothing asserts speed.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::loopback::{started, User, DEADLINE};
use common::{cli, tincan_bin, wait_for};
use serde_json::Value;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `tincan send PEER ARGS...` with `input` on standard input.
fn send_piped(user: &User, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = Command::new(tincan_bin())
        .arg("--home")
        .arg(user.home())
        .arg("send")
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tincan send");
    let mut stdin = child.stdin.take().expect("stdin");
    // A refused send may exit before reading everything: a broken pipe is
    // part of that, not a failure of the test.
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().expect("send output")
}

#[test]
fn history_reads_as_a_conversation_with_or_without_a_node() {
    let mut users = started(&["Alice", "Bob"]);
    let (alice, bob) = (&users[0], &users[1]);
    alice.send_delivered("Bob", "hi bob");
    bob.send_delivered("Alice", "hi alice");
    alice.wait_history("Bob", "bob's answer", |h| h.len() == 2);

    let shown = stdout(&alice.run(&["history", "bob"]));
    let lines: Vec<&str> = shown.lines().collect();
    assert!(
        lines[0].starts_with("— ") && lines[0].ends_with(" —"),
        "{shown}"
    );
    assert!(lines[1].ends_with(" you: hi bob [delivered]"), "{shown}");
    assert!(lines[2].ends_with(" Bob: hi alice"), "{shown}");
    let online: Vec<Value> = alice.history("Bob");
    let sent_at = online[0]["sent_at"].as_u64().expect("sent_at");
    assert!(!shown.contains(&sent_at.to_string()), "no Unix ms: {shown}");

    // No node: the same history, read from the database.
    users[0].kill();
    let alice = &users[0];
    let out = alice.run(&["history", "bob", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let offline: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(offline, Value::Array(online), "the JSON does not change");
    assert_eq!(stdout(&alice.run(&["history", "bob"])), shown);
    let out = alice.run(&["history", "nobody"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nobody"), "{}", stderr(&out));
}

#[test]
fn room_history_names_authors_and_a_member_is_told_they_are_no_admin() {
    let users = started(&["Ann", "Bob"]);
    let (ann, bob) = (&users[0], &users[1]);
    let room = ann.json(&["room", "create", "Lunch", "--with", "Bob", "--json"]);
    let id = room["id"].as_str().expect("room id").to_string();
    wait_for("bob in the room", DEADLINE, || {
        let rooms = bob.json(&["room", "list", "--json"]);
        rooms
            .as_array()?
            .iter()
            .any(|r| r["id"] == id.as_str())
            .then_some(())
    });
    ann.json(&["room", "send", "Lunch", "noon?", "--json"]);
    bob.json(&["room", "send", "Lunch", "yes", "--json"]);
    wait_for("both messages at ann's", DEADLINE, || {
        let h = ann.json(&["room", "history", "Lunch", "--json"]);
        (h.as_array()?.iter().filter(|m| m["system"] != true).count() == 2).then_some(())
    });
    let shown = stdout(&ann.run(&["room", "history", "Lunch"]));
    assert!(shown.contains(" you: noon?"), "{shown}");
    assert!(shown.contains(" Bob: yes"), "{shown}");

    let out = bob.run(&["room", "topic", "Lunch", "mine now"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("you are not an admin of Lunch"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn send_takes_the_text_from_a_pipe_or_a_file_up_to_the_limit() {
    let users = started(&["Alice", "Bob"]);
    let (alice, bob) = (&users[0], &users[1]);

    let out = send_piped(alice, &["bob", "-", "--json"], b"disk 93% full\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let file = alice.home().join("report.txt");
    std::fs::write(&file, "line one\nline two\n").expect("write");
    let out = alice.run(&["send", "bob", "--file", file.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let texts = |h: &[Value]| -> Vec<String> {
        h.iter()
            .filter_map(|m| m["text"].as_str().map(str::to_string))
            .collect()
    };
    let got = bob.wait_history("Alice", "both texts", |h| h.len() == 2);
    assert_eq!(texts(&got), ["disk 93% full", "line one\nline two"]);

    // Over 64 KiB: refused, nothing queued.
    let big = vec![b'x'; 64 * 1024 + 10];
    let out = send_piped(alice, &["bob", "-"], &big);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("standard input is over the 64-KiB limit"),
        "{}",
        stderr(&out)
    );
    let out = send_piped(alice, &["bob", "-"], &[0xff, 0xfe, b'a']);
    assert!(stderr(&out).contains("not UTF-8"), "{}", stderr(&out));
    assert_eq!(alice.history("Bob").len(), 2, "nothing more was sent");
}

#[test]
fn a_port_in_use_is_said_once() {
    let users = started(&["Alice"]);
    let other = tempfile::tempdir().expect("tempdir");
    let init = cli(other.path(), &["init", "--name", "Carol"]);
    assert!(init.status.success(), "{}", stderr(&init));
    let listen = format!("127.0.0.1:{}", users[0].port);
    let mut second = Command::new(tincan_bin())
        .arg("--home")
        .arg(other.path())
        .args(["run", "--no-mdns", "--listen", &listen])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tincan");
    let status = wait_for("the second node to give up", DEADLINE, || {
        second.try_wait().expect("poll")
    });
    let mut err = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().expect("stderr"), &mut err)
        .expect("read stderr");
    assert!(!status.success());
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(
        line.contains(&format!("cannot listen on {listen}")),
        "{line}"
    );
    assert_eq!(line.matches("in use").count(), 1, "{line}");
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let user = User::init("Alice");
    // The reader is gone before tincan writes (`tincan whoami | true`).
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(tincan_bin())
        .arg("--home")
        .arg(user.home())
        .arg("whoami")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run tincan");
    assert_eq!(out.status.code(), Some(141), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}
