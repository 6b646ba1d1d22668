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

use common::loopback::User;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
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
