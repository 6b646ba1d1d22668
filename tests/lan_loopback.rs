//! The real `tincan` binary end to end on loopback: several daemons on
//! 127.0.0.1, each with its own home and port, connected by static peers.
//! Covers messaging and history, `send --wait`, the outbox across restarts
//! and SIGKILL, CLI error messages, name-spoof disambiguation, several
//! users on one host and `tincan watch`.
//!
//! Safety: every daemon runs with `--no-mdns`, listens on `127.0.0.1` and
//! dials only static `127.0.0.1` peers, so no traffic leaves the host.
//! Deadlines are generous: they bound a hang, they never measure speed.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{cli, cli_json, free_udp_port, tincan_bin, wait_for, Daemon};
use serde_json::Value;

/// Bounds a wait for connections, deliveries and state changes.
const DEADLINE: Duration = Duration::from_secs(30);
/// Bounds a wait for a killed peer to be noticed (QUIC idle timeout).
const GONE: Duration = Duration::from_secs(20);

/// One user's device: a temporary home, a fixed loopback port and, while
/// it runs, a daemon. On a failing test its daemon log is printed.
struct Node {
    name: &'static str,
    port: u16,
    /// Static peers (ports on 127.0.0.1) the daemon dials.
    peers: Vec<u16>,
    /// Declared before `dir` so the daemon dies before its home is removed.
    daemon: Option<Daemon>,
    dir: tempfile::TempDir,
}

impl Node {
    /// A new home with an identity named `name` (`tincan init --name`).
    fn init(name: &'static str) -> Node {
        let node = Node::uninit(name);
        let who = cli_json(node.home(), &["init", "--name", name, "--json"]);
        assert_eq!(who["name"], name, "init --json: {who}");
        node
    }

    /// A new, empty home (no identity yet).
    fn uninit(name: &'static str) -> Node {
        Node {
            name,
            port: free_udp_port(),
            peers: Vec::new(),
            daemon: None,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn home(&self) -> &Path {
        self.dir.path()
    }

    /// Dial `other` (by its loopback address) whenever this daemon runs.
    fn knows(&mut self, other: &Node) {
        self.peers.push(other.port);
    }

    /// The daemon's arguments: loopback only, no mDNS, static peers.
    fn run_args(&self) -> Vec<String> {
        let mut args = vec![
            "--no-mdns".to_string(),
            "--listen".to_string(),
            format!("127.0.0.1:{}", self.port),
        ];
        for port in &self.peers {
            args.push("--peer".to_string());
            args.push(format!("127.0.0.1:{port}"));
        }
        args
    }

    /// Starts (or restarts) the daemon on the same home and port.
    fn start(&mut self) {
        self.start_with_env(&[]);
    }

    fn start_with_env(&mut self, env: &[(&str, &str)]) {
        assert!(self.daemon.is_none(), "{} is already running", self.name);
        let args = self.run_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.daemon = Some(Daemon::start_with_env(self.home(), &args, None, env));
    }

    /// SIGKILLs the daemon (no goodbye to peers, no clean shutdown).
    fn kill(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            daemon.kill();
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        cli(self.home(), args)
    }

    fn json(&self, args: &[&str]) -> Value {
        cli_json(self.home(), args)
    }

    fn whoami(&self) -> Value {
        self.json(&["whoami", "--json"])
    }

    fn user_id(&self) -> String {
        self.whoami()["user_id"]
            .as_str()
            .expect("whoami user_id")
            .to_string()
    }

    fn peers(&self) -> Vec<Value> {
        as_array(self.json(&["peers", "--json"]), "peers --json")
    }

    /// The peer entry displayed exactly as `name`.
    fn peer(&self, name: &str) -> Option<Value> {
        self.peers().into_iter().find(|p| p["name"] == name)
    }

    /// Waits until the peer displayed as `name` is listed with `online`.
    fn wait_online(&self, name: &str, online: bool) -> Value {
        let what = format!(
            "{} to see {name} {}",
            self.name,
            if online { "online" } else { "offline" }
        );
        let timeout = if online { DEADLINE } else { GONE };
        wait_for(&what, timeout, || {
            self.peer(name).filter(|p| p["online"] == online)
        })
    }

    fn history(&self, peer: &str) -> Vec<Value> {
        as_array(self.json(&["history", peer, "--json"]), "history --json")
    }

    /// Sends `text` to `peer` without waiting; the CLI must exit 0.
    fn send(&self, peer: &str, text: &str) -> Value {
        self.json(&["send", peer, text, "--json"])
    }

    /// Waits until `peer`'s conversation satisfies `done`; returns it.
    fn wait_history(
        &self,
        peer: &str,
        what: &str,
        mut done: impl FnMut(&[Value]) -> bool,
    ) -> Vec<Value> {
        let what = format!("{} history with {peer}: {what}", self.name);
        wait_for(&what, DEADLINE, || {
            let history = self.history(peer);
            done(&history).then_some(history)
        })
    }

    /// Everything the daemon logged in this home (all runs).
    fn logs(&self) -> String {
        common::daemon_logs(self.home())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "===== log of {} ({}) =====\n{}",
                self.name,
                self.home().display(),
                self.logs()
            );
        }
    }
}

fn as_array(value: Value, what: &str) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        other => panic!("{what} is not an array: {other}"),
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn texts(history: &[Value]) -> Vec<&str> {
    history.iter().filter_map(|m| m["text"].as_str()).collect()
}

/// How often `text` occurs in a conversation.
fn count(history: &[Value], text: &str) -> usize {
    history.iter().filter(|m| m["text"] == text).count()
}

/// The state of the (single) message with `text`.
fn state_of<'a>(history: &'a [Value], text: &str) -> Option<&'a str> {
    history
        .iter()
        .find(|m| m["text"] == text)
        .and_then(|m| m["state"].as_str())
}

/// Asserts a `peers --json` entry's shape and values.
fn assert_peer_entry(entry: &Value, who: &Node, via: &str) {
    let who_json = who.whoami();
    assert_eq!(entry["name"], who.name, "{entry}");
    assert_eq!(entry["user_id"], who_json["user_id"], "{entry}");
    assert_eq!(entry["device_id"], who_json["device_id"], "{entry}");
    assert_eq!(entry["online"], true, "{entry}");
    assert_eq!(entry["via"], via, "{entry}");
    let addrs = entry["addrs"].as_array().expect("addrs is an array");
    let expected = format!("127.0.0.1:{}", who.port);
    assert!(
        addrs.iter().any(|a| a == &Value::String(expected.clone())),
        "addrs {addrs:?} lack {expected}"
    );
}

/// Asserts one `history --json` entry's shape and values.
fn assert_message(m: &Value, from: &str, to: &str, text: &str, state: &str) {
    for field in ["id", "from", "to", "text", "sent_at", "state"] {
        assert!(m.get(field).is_some(), "message lacks {field}: {m}");
    }
    assert!(m["id"].as_str().is_some_and(|id| !id.is_empty()), "id: {m}");
    assert!(m["sent_at"].as_u64().is_some_and(|t| t > 0), "sent_at: {m}");
    assert_eq!(m["from"], from, "{m}");
    assert_eq!(m["to"], to, "{m}");
    assert_eq!(m["text"], text, "{m}");
    assert_eq!(m["state"], state, "{m}");
}

/// Alice and Bob, each dialling the other, both running and connected.
fn alice_and_bob() -> (Node, Node) {
    let mut alice = Node::init("Alice");
    let mut bob = Node::init("Bob");
    alice.knows(&bob);
    bob.knows(&alice);
    alice.start();
    bob.start();
    alice.wait_online("Bob", true);
    bob.wait_online("Alice", true);
    (alice, bob)
}

#[test]
fn message_both_ways_with_history_on_both_sides() {
    let (alice, bob) = alice_and_bob();
    let (alice_id, bob_id) = (alice.user_id(), bob.user_id());

    assert_peer_entry(&alice.wait_online("Bob", true), &bob, "static");
    assert_peer_entry(&bob.wait_online("Alice", true), &alice, "static");
    assert_eq!(alice.peers().len(), 1, "alice knows only bob");

    let out = alice.run(&["send", "bob", "hi bob", "--wait"]);
    assert!(out.status.success(), "send --wait: {}", stderr(&out));
    bob.wait_history("alice", "hi bob arrived", |h| count(h, "hi bob") == 1);
    let out = bob.run(&["send", "alice", "hi alice", "--wait"]);
    assert!(out.status.success(), "send --wait: {}", stderr(&out));

    // Alice: her message delivered, Bob's received; oldest first.
    let history = alice.wait_history("bob", "both messages", |h| h.len() == 2);
    assert_message(&history[0], &alice_id, &bob_id, "hi bob", "delivered");
    assert_message(&history[1], &bob_id, &alice_id, "hi alice", "delivered");
    assert_eq!(history[0]["direction"], "out");
    assert_eq!(history[1]["direction"], "in");

    // Bob: the mirror image.
    let history = bob.wait_history("alice", "both messages", |h| h.len() == 2);
    assert_message(&history[0], &alice_id, &bob_id, "hi bob", "delivered");
    assert_message(&history[1], &bob_id, &alice_id, "hi alice", "delivered");
    assert_eq!(history[0]["direction"], "in");
    assert_eq!(history[1]["direction"], "out");
    assert!(history[0]["sent_at"].as_u64() <= history[1]["sent_at"].as_u64());

    for node in [&alice, &bob] {
        let who = node.whoami();
        assert_eq!(who["name"], node.name);
        for field in ["user_id", "device_id"] {
            assert!(who[field].as_str().is_some_and(|s| !s.is_empty()), "{who}");
        }
        let status = node.json(&["status", "--json"]);
        assert_eq!(status["user_id"], who["user_id"], "{status}");
        assert_eq!(status["device_id"], who["device_id"], "{status}");
        assert_eq!(status["listen"], format!("127.0.0.1:{}", node.port));
        assert_eq!(status["peers_online"], 1, "{status}");
        assert_eq!(status["mdns"], false, "{status}");
    }
}

#[test]
fn wait_semantics() {
    let (mut alice, mut bob) = alice_and_bob();
    bob.kill();
    alice.wait_online("Bob", false);

    // --wait with a timeout: fails, and says the message stays queued here.
    let out = alice.run(&["send", "bob", "waited", "--wait", "--timeout", "3"]);
    assert!(
        !out.status.success(),
        "send --wait to an offline peer succeeded"
    );
    assert!(
        stderr(&out).contains("stays queued on this device (state: queued)"),
        "unclear error: {}",
        stderr(&out)
    );
    // Without --wait: accepted at once.
    let sent = alice.send("bob", "plain");
    assert_eq!(sent["state"], "queued", "{sent}");
    let history = alice.history("bob");
    for text in ["waited", "plain"] {
        let state = state_of(&history, text);
        assert!(
            matches!(state, Some("queued" | "sent")),
            "{text}: state {state:?}"
        );
    }

    // The receiver comes back on the same home and port: both arrive.
    bob.start();
    bob.wait_history("alice", "queued messages arrived", |h| {
        count(h, "waited") == 1 && count(h, "plain") == 1
    });
    alice.wait_history("bob", "queued messages delivered", |h| {
        state_of(h, "waited") == Some("delivered") && state_of(h, "plain") == Some("delivered")
    });

    // The sender restarts while the receiver is down: still exactly once.
    bob.kill();
    alice.wait_online("Bob", false);
    alice.send("bob", "across a sender restart");
    alice.kill();
    alice.start();
    let history = alice.history("bob");
    assert!(
        matches!(
            state_of(&history, "across a sender restart"),
            Some("queued" | "sent")
        ),
        "{history:?}"
    );
    bob.start();
    alice.wait_history("bob", "delivered after both restarts", |h| {
        state_of(h, "across a sender restart") == Some("delivered")
    });
    let history = bob.wait_history("alice", "arrived after both restarts", |h| {
        count(h, "across a sender restart") >= 1
    });
    assert_eq!(count(&history, "across a sender restart"), 1, "{history:?}");
    assert_eq!(count(&history, "waited"), 1, "{history:?}");
    assert_eq!(count(&history, "plain"), 1, "{history:?}");
}

#[test]
fn sigkill_mid_send_loses_nothing() {
    let (mut alice, bob) = alice_and_bob();
    let sent: Vec<String> = (0..20).map(|i| format!("burst {i:02}")).collect();
    for text in &sent {
        let out = alice.run(&["send", "bob", text]);
        assert!(out.status.success(), "send {text}: {}", stderr(&out));
    }
    alice.kill();
    alice.start();

    let history = bob.wait_history("alice", "all 20 arrived", |h| {
        sent.iter().all(|t| count(h, t) >= 1)
    });
    for text in &sent {
        assert_eq!(count(&history, text), 1, "{text} in {:?}", texts(&history));
    }
    let history = alice.wait_history("bob", "all 20 delivered", |h| {
        sent.iter().all(|t| state_of(h, t) == Some("delivered"))
    });
    assert_eq!(history.len(), 20, "{:?}", texts(&history));
}

/// The receiver dies after it committed a message and before its receipt
/// left (a test hook aborts it there): the sender never shows that message
/// delivered before the receipt, keeps it, sends it again once the receiver
/// is back, and the receiver acknowledges the copy it already has: one row,
/// delivered.
#[test]
fn a_receiver_killed_between_commit_and_receipt_shows_the_message_once() {
    let (alice, mut bob) = alice_and_bob();
    bob.kill();
    bob.start_with_env(&[("TINCAN_TEST_ABORT_BEFORE_RECEIPT", "1")]);
    alice.wait_online("Bob", true);
    let sent = alice.json(&["send", "bob", "committed, not acknowledged", "--json"]);
    let status = bob.daemon.as_mut().expect("bob runs").wait_exit(DEADLINE);
    assert!(!status.success(), "bob aborted at the hook: {status}");
    bob.daemon = None;
    let logs = common::daemon_logs(bob.home());
    assert!(
        logs.contains("aborting between the commit and the receipt"),
        "bob died at the hook, not elsewhere:\n{logs}"
    );
    let history = alice.history("bob");
    assert_ne!(
        state_of(&history, "committed, not acknowledged"),
        Some("delivered"),
        "no receipt left bob: {history:?}"
    );

    bob.start();
    let history = alice.wait_history("bob", "delivered after bob's restart", |h| {
        state_of(h, "committed, not acknowledged") == Some("delivered")
    });
    assert_eq!(history.len(), 1, "{:?}", texts(&history));
    let received = bob.wait_history("alice", "the message", |h| {
        count(h, "committed, not acknowledged") >= 1
    });
    assert_eq!(
        count(&received, "committed, not acknowledged"),
        1,
        "once: {:?}",
        texts(&received)
    );
    let row = received.iter().find(|m| m["id"] == sent["id"]);
    assert!(row.is_some(), "the same message id: {received:?}");
}

#[test]
fn cli_errors_are_clear() {
    // No daemon: one clear line, non-zero exit.
    let idle = Node::init("Idle");
    for args in [&["peers"][..], &["status"], &["send", "bob", "hi"]] {
        let out = idle.run(args);
        assert!(!out.status.success(), "{args:?} without a daemon succeeded");
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("not running"), "{args:?}: {err}");
    }
    // history reads the database without a daemon; before any node ran
    // there is none, and it says so.
    let out = idle.run(&["history", "bob"]);
    assert!(!out.status.success());
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("tincan run"), "{}", stderr(&out));
    // whoami needs no daemon.
    let who = idle.whoami();
    assert_eq!(who["name"], "Idle");
    assert!(who["user_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(who["device_id"].as_str().is_some_and(|s| !s.is_empty()));

    // init twice: refused, pointing at --force; the identity is unchanged.
    let out = idle.run(&["init", "--name", "Other"]);
    assert!(!out.status.success(), "second init succeeded");
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(idle.whoami(), who);

    // A running daemon: unknown peer, oversized text.
    let (alice, _bob) = alice_and_bob();
    let out = alice.run(&["send", "nobody", "hi"]);
    assert!(!out.status.success(), "send to nobody succeeded");
    let err = stderr(&out);
    assert!(err.contains("no peer matches"), "{err}");
    assert!(err.contains("Bob"), "candidates not listed: {err}");

    let big = "x".repeat(70_000);
    let out = alice.run(&["send", "bob", &big]);
    assert!(!out.status.success(), "a 70 000-byte text was accepted");
    assert!(stderr(&out).contains("file"), "{}", stderr(&out));
    assert!(alice.history("bob").is_empty(), "oversized text stored");

    // `run` on a fresh home creates an identity named after the OS user.
    let mut fresh = Node::uninit("tester");
    assert!(!fresh.run(&["whoami"]).status.success());
    fresh.start_with_env(&[("USER", "tester")]);
    assert_eq!(fresh.whoami()["name"], "tester");
    assert_eq!(fresh.json(&["status", "--json"])["name"], "tester");
}

#[test]
fn name_spoof_is_disambiguated() {
    let (mut alice, mut bob) = alice_and_bob();
    let real_bob = bob.user_id();

    // A second user, also called Bob, connects to Alice.
    let mut impostor = Node::init("Bob");
    impostor.knows(&alice);
    impostor.start();
    let impostor_id = impostor.user_id();
    impostor.wait_online("Alice", true);
    let fingerprint = format!("{}-{}", &impostor_id[..4], &impostor_id[4..8]);
    let shown = format!("Bob ({fingerprint})");
    alice.wait_online(&shown, true);
    let peers = alice.peers();
    let plain: Vec<&Value> = peers.iter().filter(|p| p["name"] == "Bob").collect();
    assert_eq!(plain.len(), 1, "{peers:?}");
    assert_eq!(plain[0]["user_id"], real_bob, "{peers:?}");
    let marked: Vec<&Value> = peers.iter().filter(|p| p["name"] == shown).collect();
    assert_eq!(marked.len(), 1, "{peers:?}");
    assert_eq!(marked[0]["user_id"], impostor_id, "{peers:?}");

    // `bob` means the pinned, real Bob.
    let out = alice.run(&["send", "bob", "for the real bob", "--wait"]);
    assert!(out.status.success(), "{}", stderr(&out));
    bob.wait_history("alice", "message for the real bob", |h| {
        count(h, "for the real bob") == 1
    });
    assert!(
        impostor.history("alice").is_empty(),
        "impostor got a message"
    );

    // The pin survives a restart, even when the impostor reconnects first.
    bob.kill();
    alice.kill();
    alice.start();
    alice.wait_online(&shown, true);
    assert!(alice.peer("Bob").is_some_and(|p| p["user_id"] == real_bob));
    alice.send("bob", "after restart");
    bob.start();
    alice.wait_history("bob", "delivered to the real bob", |h| {
        state_of(h, "after restart") == Some("delivered")
    });
    bob.wait_history("alice", "real bob got it", |h| {
        count(h, "after restart") == 1
    });
    assert!(
        impostor.history("alice").is_empty(),
        "impostor got a message"
    );
}

#[test]
fn several_users_on_one_host() {
    let mut nodes = [Node::init("Ann"), Node::init("Ben"), Node::init("Cat")];
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    for node in &mut nodes {
        node.peers = ports.iter().copied().filter(|p| *p != node.port).collect();
        node.start();
    }
    for node in &nodes {
        for other in &nodes {
            if other.name != node.name {
                assert_peer_entry(&node.wait_online(other.name, true), other, "static");
            }
        }
        let status = node.json(&["status", "--json"]);
        assert_eq!(status["peers_online"], 2, "{}: {status}", node.name);
    }
    // And they can talk: one IP, three users.
    let out = nodes[0].run(&["send", "cat", "hello cat", "--wait"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = nodes[2].run(&["send", "ben", "hello ben", "--wait"]);
    assert!(out.status.success(), "{}", stderr(&out));
    nodes[1].wait_history("cat", "message from cat", |h| count(h, "hello ben") == 1);
    assert!(nodes[1].history("ann").is_empty());
}

/// A `tincan watch` child whose stdout lines arrive on a channel.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Watch {
    fn start(home: &Path) -> Watch {
        let mut child = Command::new(tincan_bin())
            .arg("--home")
            .arg(home)
            .arg("watch")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tincan watch");
        let stdout = child.stdout.take().expect("watch stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Watch { child, lines }
    }

    /// The next event line matching `check`, within `timeout`.
    fn next_matching(
        &mut self,
        timeout: Duration,
        mut check: impl FnMut(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            let event: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("watch printed a non-JSON line ({e}): {line}"));
            if check(&event) {
                return Some(event);
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn watch_streams_events() {
    let (mut alice, bob) = alice_and_bob();
    let mut watch = Watch::start(bob.home());

    // `watch` prints nothing until an event, so it cannot say when it is
    // subscribed: send until one message is seen (any of them will do).
    let deadline = Instant::now() + DEADLINE;
    let mut sent = Vec::new();
    let received = loop {
        assert!(
            Instant::now() < deadline,
            "no message_received event for {sent:?}"
        );
        let text = format!("watch me {}", sent.len());
        alice.send("bob", &text);
        sent.push(text);
        let seen = watch.next_matching(Duration::from_secs(3), |e| e["type"] == "message_received");
        if let Some(event) = seen {
            break event;
        }
    };
    let text = received["message"]["text"].as_str().expect("message.text");
    assert!(sent.iter().any(|t| t == text), "{received}");
    assert_eq!(received["from_name"], "Alice", "{received}");
    assert_eq!(received["message"]["from"], alice.user_id(), "{received}");

    alice.kill();
    let offline = watch
        .next_matching(GONE, |e| e["type"] == "peer_offline")
        .expect("a peer_offline event after alice was killed");
    assert_eq!(offline["peer"]["name"], "Alice", "{offline}");
    assert_eq!(offline["peer"]["online"], false, "{offline}");
}
