//! One's own identity and the names of others, end to end: real daemons on
//! 127.0.0.1 (`--no-mdns`, static peers) driven through the CLI as a user
//! would. `init` cannot replace the identity a running node uses;
//! `name set` renames (with or without a node) and peers see it; `init`
//! without `--name` takes the OS user's name when nobody is asked; `peers
//! forget` drops a ghost; `send bob` finds "Bob Builder", and a name that
//! fits several users is refused with the candidates listed.
//!
//! Safety: loopback only. Deadlines bound a hang; nothing asserts speed.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::loopback::{started, User};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A user id's short form, as `whoami` prints it (`abcd-efgh`).
fn fingerprint(user_id: &str) -> String {
    format!("{}-{}", &user_id[..4], &user_id[4..8])
}

#[test]
fn init_force_is_refused_while_the_node_runs() {
    let mut alice = User::init("Alice");
    alice.start();
    let before = alice.user_id();

    let out = alice.run(&["init", "--force", "--name", "Mallory"]);
    assert!(
        !out.status.success(),
        "init --force replaced a running node's identity"
    );
    assert!(
        stderr(&out).contains("a tincan node is running"),
        "{}",
        stderr(&out)
    );
    // Nothing changed: the file and the node agree on who this is.
    let who = alice.json(&["whoami", "--json"]);
    assert_eq!(who["name"], "Alice", "{who}");
    assert_eq!(who["user_id"], before.as_str(), "{who}");
    let status = alice.json(&["status", "--json"]);
    assert_eq!(status["user_id"], before.as_str(), "{status}");

    // Once the node is stopped, --force replaces it as before.
    alice.kill();
    let who = alice.json(&["init", "--force", "--name", "Mallory", "--json"]);
    assert_eq!(who["name"], "Mallory", "{who}");
    assert_ne!(who["user_id"], before.as_str(), "{who}");
}

#[test]
fn name_set_renames_a_running_node_and_one_at_rest() {
    let mut users = started(&["Alice", "Bob"]);
    let mut bob = users.pop().expect("bob");
    let alice = users.pop().expect("alice");
    let alice_id = alice.user_id();

    // While the node runs: through it, and everyone sees the new name.
    let who = alice.json(&["name", "set", "Alice Example", "--json"]);
    assert_eq!(who["name"], "Alice Example", "{who}");
    assert_eq!(who["user_id"], alice_id.as_str(), "{who}");
    assert_eq!(alice.json(&["whoami", "--json"])["name"], "Alice Example");
    assert_eq!(alice.json(&["status", "--json"])["name"], "Alice Example");
    bob.wait_peer("Alice Example", "renamed", |p| {
        p["user_id"] == alice_id.as_str()
    });
    bob.send_delivered("Alice Example", "hello under your new name");

    // Names are checked as at init.
    let out = alice.run(&["name", "set", "Alice\u{200B}"]);
    assert!(
        !out.status.success(),
        "name set accepted an invisible character"
    );
    assert!(
        stderr(&out).contains("invisible character (U+200B)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(alice.json(&["whoami", "--json"])["name"], "Alice Example");

    // Without a node: the identity is rewritten, and the next run says so.
    bob.kill();
    let out = bob.run(&["name", "set", "Bob Builder"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Bob Builder"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(bob.json(&["whoami", "--json"])["name"], "Bob Builder");
    bob.start();
    alice.wait_peer("Bob Builder", "renamed and back online", |p| {
        p["online"] == true
    });
}

/// What the system knows as this OS user's full name (the account's GECOS
/// field up to the first comma), or `user` when it knows none: the name
/// `init` offers.
fn full_name_or(user: &str) -> String {
    let uid = Command::new("id").arg("-u").output().expect("run id");
    let uid = String::from_utf8_lossy(&uid.stdout).trim().to_string();
    let entry = Command::new("getent")
        .args(["passwd", &uid])
        .output()
        .expect("run getent");
    let entry = String::from_utf8_lossy(&entry.stdout).into_owned();
    let gecos = entry.split(':').nth(4).unwrap_or_default();
    let full = gecos.split(',').next().unwrap_or_default().trim();
    if full.is_empty() {
        user.to_string()
    } else {
        full.to_string()
    }
}

/// `tincan --home HOME init` on a terminal (a pty from `script`), typing
/// `input`; returns what the terminal showed.
fn init_on_a_terminal(home: &Path, input: &str) -> String {
    let child = on_a_terminal(home, "init", input);
    let out = child.wait_with_output().expect("wait for init");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "init on a terminal failed: {shown}");
    shown
}

/// `tincan --home HOME ARGS` started on a terminal (a pty from `script`),
/// with `input` typed.
fn on_a_terminal(home: &Path, args: &str, input: &str) -> std::process::Child {
    let command = format!(
        "'{}' --home '{}' {args}",
        common::tincan_bin().display(),
        home.display()
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("USER", "tester")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run script");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("type the answer");
    child
}

#[test]
fn init_without_a_name_asks_on_a_terminal_and_takes_the_full_name_otherwise() {
    let default = full_name_or("tester");
    let dir = tempfile::tempdir().expect("tempdir");

    // No terminal (a script, a service): the default, nobody asked.
    let quiet = dir.path().join("quiet");
    let out = Command::new(common::tincan_bin())
        .arg("--home")
        .arg(&quiet)
        .args(["init", "--json"])
        .env("USER", "tester")
        .stdin(Stdio::null())
        .output()
        .expect("run init");
    assert!(out.status.success(), "{}", stderr(&out));
    let who: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(who["name"], default.as_str(), "{who}");
    assert!(!stderr(&out).contains("Your name"), "{}", stderr(&out));

    // A terminal: asked, with the default offered; a refused name is
    // asked again; the answer is the name.
    let asked = dir.path().join("asked");
    let shown = init_on_a_terminal(&asked, "Ann\u{200B}Lee\nAnn Example\n");
    assert!(
        shown.contains(&format!("Your name, as colleagues will see it [{default}]")),
        "{shown}"
    );
    assert!(shown.contains("invisible character (U+200B)"), "{shown}");
    let who = common::cli_json(&asked, &["whoami", "--json"]);
    assert_eq!(who["name"], "Ann Example", "{who}");

    // Enter takes the default.
    let entered = dir.path().join("entered");
    init_on_a_terminal(&entered, "\n");
    let who = common::cli_json(&entered, &["whoami", "--json"]);
    assert_eq!(who["name"], default.as_str(), "{who}");

    // A first `run` on a terminal asks too, then runs under that name.
    let ran = dir.path().join("ran");
    let mut child = on_a_terminal(&ran, "run --no-mdns --listen 127.0.0.1:0", "Dana Run\n");
    let status = common::wait_for("the node to run", common::loopback::DEADLINE, || {
        let out = common::cli(&ran, &["status", "--json"]);
        out.status
            .success()
            .then(|| serde_json::from_slice::<serde_json::Value>(&out.stdout).ok())
            .flatten()
    });
    // The node runs until stopped: stop it (and the terminal around it).
    let _ = Command::new("pkill")
        .args(["-TERM", "-f", &format!("{} run --no-mdns", ran.display())])
        .status();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status["name"], "Dana Run", "{status}");
}

#[test]
fn peers_forget_drops_a_ghost_for_good() {
    let mut users = started(&["Alice", "Bob", "Carol"]);
    let _carol = users.pop().expect("carol");
    let mut bob = users.pop().expect("bob");
    let mut alice = users.pop().expect("alice");
    let bob_id = bob.user_id();
    bob.kill();
    alice.wait_peer("Bob", "offline", |p| p["online"] == false);
    let mut events = alice.watch();
    let queued = alice.json(&["send", "Bob", "are you there?", "--json"]);
    assert_eq!(queued["state"], "queued", "{queued}");

    let forgot = alice.json(&["peers", "forget", "Bob", "--json"]);
    assert_eq!(forgot["user_id"], bob_id.as_str(), "{forgot}");
    assert_eq!(forgot["name"], "Bob", "{forgot}");
    assert_eq!(
        forgot["devices"].as_array().map(Vec::len),
        Some(1),
        "{forgot}"
    );
    assert!(alice.peer("Bob").is_none(), "Bob is still listed");
    // What waited for Bob fails, with the reason, rather than for 7 days.
    let failed = events.expect("the queued message failing", |e| {
        e["type"] == "message_state" && e["id"] == queued["id"] && e["state"] == "failed"
    });
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("forgot")),
        "{failed}"
    );
    let out = alice.run(&["send", "Bob", "hello?"]);
    assert!(!out.status.success(), "send reached a forgotten peer");
    assert!(stderr(&out).contains("no peer matches"), "{}", stderr(&out));

    // An unknown peer, and one that is online (it would be back at once).
    let out = alice.run(&["peers", "forget", "Bob"]);
    assert!(!out.status.success(), "forgot an unknown peer");
    assert!(stderr(&out).contains("no peer matches"), "{}", stderr(&out));
    let out = alice.run(&["peers", "forget", "Carol"]);
    assert!(!out.status.success(), "forgot a peer that is online");
    assert!(stderr(&out).contains("Carol is online"), "{}", stderr(&out));

    // Gone from storage too: a restart does not bring Bob back.
    alice.kill();
    alice.start();
    alice.wait_peer("Carol", "online again", |p| p["online"] == true);
    assert!(alice.peer("Bob").is_none(), "Bob is back after a restart");
}

#[test]
fn send_finds_a_word_of_a_name_and_refuses_an_ambiguous_one() {
    let mut users = started(&["Alice", "Bob Builder"]);
    let builder = users.pop().expect("bob builder");
    let alice = users.pop().expect("alice");
    let builder_fp = fingerprint(&builder.user_id());

    // A word of the name, and the fingerprint as whoami prints it.
    alice.send_delivered("bob", "found by a word");
    alice.send_delivered(&builder_fp, "found by fingerprint");
    builder.wait_history("Alice", "both messages", |h| h.len() == 2);

    // A second Bob: `bob` could be either; both are listed, nothing sent.
    let mut marley = User::init("Bob Marley");
    marley.knows(&alice);
    marley.start();
    alice.wait_peer("Bob Marley", "online", |p| p["online"] == true);
    let marley_fp = fingerprint(&marley.user_id());
    let out = alice.run(&["send", "bob", "which one?"]);
    assert!(!out.status.success(), "an ambiguous name was sent to");
    let error = stderr(&out);
    for listed in [
        format!("Bob Builder ({builder_fp})"),
        format!("Bob Marley ({marley_fp})"),
        "pick one by fingerprint".to_string(),
    ] {
        assert!(error.contains(&listed), "{listed:?} not in: {error}");
    }
    alice.send_delivered(&marley_fp, "picked by fingerprint");
    marley.wait_history("Alice", "the picked message", |h| h.len() == 1);
    assert_eq!(builder.history("Alice").len(), 2, "Bob Builder got more");
}
