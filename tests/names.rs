//! Look-alike display names end to end: real daemons on 127.0.0.1
//! (`--no-mdns`, static peers) driven through the CLI with `--json`.
//!
//! A second user whose name only *looks* like a pinned one (a Cyrillic
//! `о` in `Bоb`) is listed with their fingerprint, and typing the name
//! still reaches the pin holder; names that hide characters are refused
//! at `init` (and at the handshake: `bad_input.rs`), while names in any
//! script are fine.
//!
//! Safety: loopback only. Deadlines bound a hang; nothing asserts speed.

mod common;

use common::loopback::{started, User};
use serde_json::Value;

/// `Bob` with a Cyrillic small letter o (U+043E).
const CYRILLIC_BOB: &str = "B\u{043E}b";

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn fingerprint(user_id: &str) -> String {
    format!("{}-{}", &user_id[..4], &user_id[4..8])
}

fn peers(user: &User) -> Vec<Value> {
    match user.json(&["peers", "--json"]) {
        Value::Array(items) => items,
        other => panic!("peers --json is not an array: {other}"),
    }
}

#[test]
fn look_alike_name_is_listed_with_its_fingerprint_and_never_chosen() {
    let mut users = started(&["Alice", "Bob"]);
    let bob = users.pop().expect("bob");
    let alice = users.pop().expect("alice");
    let real_bob = bob.user_id();

    let mut impostor = User::init(CYRILLIC_BOB);
    impostor.knows(&alice);
    impostor.start();
    let impostor_id = impostor.user_id();
    let shown = format!("{CYRILLIC_BOB} ({})", fingerprint(&impostor_id));
    alice.wait_peer(&shown, "online with a fingerprint", |p| {
        p["online"] == true && p["user_id"] == impostor_id.as_str()
    });

    let listed = peers(&alice);
    let plain: Vec<&Value> = listed
        .iter()
        .filter(|p| p["name"] == "Bob" || p["name"] == CYRILLIC_BOB)
        .collect();
    assert_eq!(plain.len(), 1, "{listed:?}");
    assert_eq!(plain[0]["user_id"], real_bob.as_str(), "{listed:?}");
    let text = alice.run(&["peers"]);
    assert!(text.status.success(), "{}", stderr(&text));
    assert!(
        String::from_utf8_lossy(&text.stdout).contains(&shown),
        "peers does not show {shown:?}: {}",
        String::from_utf8_lossy(&text.stdout)
    );

    // Typing the name, in either spelling, reaches the pin holder.
    alice.send_delivered("Bob", "for the real bob");
    alice.send_delivered(CYRILLIC_BOB, "also for the real bob");
    bob.wait_history("Alice", "both messages", |h| h.len() == 2);
    assert!(
        impostor.history("Alice").is_empty(),
        "the impostor got a message"
    );
    // The fingerprinted name picks the impostor, on purpose.
    alice.send_delivered(&shown, "for the other one");
    impostor.wait_history("Alice", "the chosen message", |h| h.len() == 1);
}

#[test]
fn names_that_hide_characters_are_refused_any_script_is_not() {
    for name in ["Ирина Петрова", "Νίκος", "王秀英", "Ana María 李"] {
        let user = User::init(name);
        assert_eq!(user.json(&["whoami", "--json"])["name"], name);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, why) in [
        ("Bob\u{200B}", "invisible character (U+200B)"),
        ("\u{202E}boB", "text-direction control (U+202E)"),
    ] {
        let out = common::cli(dir.path(), &["init", "--name", name]);
        assert!(!out.status.success(), "init accepted {name:?}");
        assert!(stderr(&out).contains(why), "{name:?}: {}", stderr(&out));
    }
}
