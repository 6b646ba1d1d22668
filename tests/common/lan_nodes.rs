//! Named daemons in the namespaces of one test LAN (`tests/mdns_lan.rs`,
//! `tests/dual_stack.rs`): find them by name, look up their peer entries,
//! send between them, and print every daemon's log when a test fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::{cli, cli_json, wait_for, Daemon};

/// One named daemon.
pub struct Node {
    /// The display name it was initialised with.
    pub name: &'static str,
    /// Its home directory.
    pub home: PathBuf,
    /// The running daemon.
    pub daemon: Daemon,
}

/// The running nodes. When a test panics, their logs are printed before the
/// daemons are killed, so a failure shows what each daemon saw.
pub struct Nodes(pub Vec<Node>);

impl Nodes {
    /// The node called `name`.
    pub fn get(&self, name: &str) -> &Node {
        self.0.iter().find(|n| n.name == name).expect("known node")
    }

    /// The node called `name`, to kill or restart it.
    pub fn get_mut(&mut self, name: &str) -> &mut Node {
        self.0
            .iter_mut()
            .find(|n| n.name == name)
            .expect("known node")
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for node in &self.0 {
                eprintln!(
                    "===== log of {} ({}) =====\n{}",
                    node.name,
                    node.home.display(),
                    node.daemon.log()
                );
            }
        }
    }
}

/// The entry of the peer called `name` in `home`'s `peers --json`, if listed.
pub fn peer(home: &Path, name: &str) -> Option<Value> {
    match cli_json(home, &["peers", "--json"]) {
        Value::Array(peers) => peers.into_iter().find(|p| {
            p["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        }),
        other => panic!("peers --json is not an array: {other}"),
    }
}

/// Sends `text` from `from` to `to` with `send --wait`, then waits (up to
/// `delivery`) until `to`'s history with `from` holds it, sent by `from`'s
/// user.
pub fn send_and_check(nodes: &Nodes, from: &str, to: &str, text: &str, delivery: Duration) {
    let (sender, receiver) = (nodes.get(from), nodes.get(to));
    let to_arg = to.to_lowercase();
    let out = cli(
        &sender.home,
        &["send", &to_arg, text, "--wait", "--timeout", "20"],
    );
    assert!(
        out.status.success(),
        "{from}: send to {to} failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let from_id = sender.daemon.status()["user_id"]
        .as_str()
        .expect("status has user_id")
        .to_owned();
    let from_arg = from.to_lowercase();
    wait_for(
        &format!("{to}'s history to show {text:?}"),
        delivery,
        || {
            let history = cli_json(&receiver.home, &["history", &from_arg, "--json"]);
            history
                .as_array()
                .expect("history --json is an array")
                .iter()
                .any(|m| m["text"] == text && m["from"] == from_id.as_str())
                .then_some(())
        },
    );
}
