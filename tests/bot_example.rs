//! The example bot (`examples/ping_bot.rs`) answers "ping" with "pong"
//! through a real daemon's control socket.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{cli, cli_json, free_udp_port, wait_for, Daemon};

fn build_example() -> std::path::PathBuf {
    if !common::cargo::prebuilt() {
        let status = common::cargo::cargo()
            .args(["build", "-q", "--example", "ping_bot"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build --example");
        assert!(status.success(), "building the example failed");
    }
    let bin = common::tincan_bin()
        .parent()
        .expect("target dir")
        .join("examples/ping_bot");
    assert!(bin.exists(), "example not found at {}", bin.display());
    bin
}

struct KillOnDrop(std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ping_bot_answers_pong() {
    let bot_bin = build_example();
    let dir = tempfile::tempdir().expect("tempdir");
    let (alice_home, bot_home) = (dir.path().join("alice"), dir.path().join("bot"));
    assert!(cli(&alice_home, &["init", "--name", "Alice"])
        .status
        .success());
    assert!(cli(&bot_home, &["init", "--name", "pingbot"])
        .status
        .success());
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let la = format!("127.0.0.1:{pa}");
    let lb = format!("127.0.0.1:{pb}");
    let _alice = Daemon::start(
        &alice_home,
        &["--no-mdns", "--listen", &la, "--peer", &lb],
        None,
    );
    let _bot = Daemon::start(
        &bot_home,
        &["--no-mdns", "--listen", &lb, "--peer", &la],
        None,
    );
    let _bot_process = KillOnDrop(
        Command::new(bot_bin)
            .arg(&bot_home)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ping_bot"),
    );
    wait_for("alice sees the bot", Duration::from_secs(30), || {
        let peers = cli_json(&alice_home, &["peers", "--json"]);
        peers
            .as_array()?
            .iter()
            .any(|p| p["name"] == "pingbot" && p["online"] == true)
            .then_some(())
    });
    // The bot may still be subscribing: ping until a pong comes back.
    wait_for("a pong from the bot", Duration::from_secs(30), || {
        let out = cli(
            &alice_home,
            &["send", "pingbot", "ping", "--wait", "--timeout", "10"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let history = cli_json(&alice_home, &["history", "pingbot", "--json"]);
        history
            .as_array()?
            .iter()
            .any(|m| m["text"] == "pong" && m["direction"] == "in")
            .then_some(())
    });
}
