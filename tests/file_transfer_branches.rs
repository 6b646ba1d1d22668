//! Files across branches with the real binaries in netns topologies: the
//! sender uploads the sealed file once to the relay; each destination
//! branch's gateway pulls it once and serves its LAN from its cache; a
//! roaming recipient pulls from the relay; an organisation over its relay
//! file quota gets a clear failure.
//!
//! - 4 users on a remote branch receive one 4 MiB file: the bytes counted
//!   on that branch's router WAN interface are within 1.1× of the same
//!   measure for one recipient (baseline in the same test), and all four
//!   copies are byte-exact. The sender is a member behind its own gateway
//!   (`--gateway never`), so its upload goes through that gateway.
//! - A recipient alone on its LAN (roaming) receives a file from another
//!   branch's roaming sender.
//! - A relay with a 1 MiB file quota refuses a 3 MiB upload: the sender's
//!   transfer is `failed` with an error naming the quota, the recipient's
//!   too.
//!
//! Needs root and iproute2 (CI has both); skips otherwise. All traffic
//! stays inside the namespaces these tests create. Deadlines bound hangs;
//! nothing here measures speed.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::branches::Branches;
use common::{cli, cli_json, wait_for};
use serde_json::Value;
use tincan_netsim::netns::SiteId;
use tincan_netsim::netns_available;

const ELECTION: Duration = Duration::from_secs(60);
const ONLINE: Duration = Duration::from_secs(60);
const TRANSFER: Duration = Duration::from_secs(240);
const MIB: u64 = 1024 * 1024;
const RECIPIENTS: [&str; 4] = ["Bob", "Carol", "Dave", "Fay"];

/// The topologies of this file run one at a time: each runs up to seven
/// daemons and a relay, and on a loaded 2-core machine several at once
/// starve their UDP sockets, so QUIC retransmits and the byte counts
/// measure the machine rather than the protocol.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes `size` deterministic pseudo-random bytes (blake3 XOF of `seed`).
fn make_file(path: &Path, size: u64, seed: u64) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("parent");
    }
    let mut reader = blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof();
    let mut data = vec![0u8; size as usize];
    reader.fill(&mut data);
    std::fs::write(path, data).expect("write file");
}

fn hash_file(path: &Path) -> blake3::Hash {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    blake3::hash(&data)
}

fn transfers(org: &Branches, name: &str) -> Vec<Value> {
    match cli_json(&org.member(name).home, &["file", "list", "--json"]) {
        Value::Array(items) => items,
        other => panic!("file list --json is not an array: {other}"),
    }
}

fn transfer(org: &Branches, name: &str, id: &str) -> Option<Value> {
    transfers(org, name).into_iter().find(|t| t["id"] == id)
}

/// Waits until `name`'s transfer `id` is `state` (a failure on the way
/// panics with the transfer, unless `failed` is what is awaited).
fn wait_state(org: &Branches, name: &str, id: &str, state: &str) -> Value {
    wait_for(&format!("{name}: transfer {id} {state}"), TRANSFER, || {
        let t = transfer(org, name, id)?;
        if t["state"] == "failed" && state != "failed" {
            panic!("{name}: transfer failed: {t}");
        }
        (t["state"] == state).then_some(t)
    })
}

/// `file send TO PATH` from `from`; returns the transfer id.
fn send(org: &Branches, from: &str, to: &str, path: &Path) -> String {
    let path = path.display().to_string();
    let view = cli_json(
        &org.member(from).home,
        &["file", "send", to, &path, "--json"],
    );
    view["id"].as_str().expect("transfer id").to_string()
}

/// Waits for the offer at `name` and accepts it into its `inbox`.
fn accept(org: &Branches, name: &str, id: &str) -> PathBuf {
    wait_state(org, name, id, "offered");
    let dest = org.member(name).home.join("inbox");
    let out = cli(
        &org.member(name).home,
        &[
            "file",
            "accept",
            id,
            "--to",
            dest.to_str().expect("utf-8"),
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{name}: accept failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dest
}

/// The one path the finished transfer was saved as.
fn saved_as(view: &Value) -> PathBuf {
    let paths = view["saved_as"].as_array().expect("saved_as");
    assert_eq!(paths.len(), 1, "{view}");
    PathBuf::from(paths[0].as_str().expect("path"))
}

/// Sends `file` from Alice to `recipients` (one transfer), accepts it
/// everywhere, waits until every copy is done and checked, and returns
/// the bytes (rx + tx) counted on `site`'s router WAN interface meanwhile
/// and the transfer id.
fn send_and_count(org: &Branches, site: SiteId, file: &Path, recipients: &[&str]) -> (u64, String) {
    let want = hash_file(file);
    let before = org.net.wan_bytes(site).expect("wan counters");
    let id = send(org, "Alice", &recipients.join(","), file);
    for name in recipients {
        accept(org, name, &id);
    }
    for name in recipients {
        let done = wait_state(org, name, &id, "done");
        let path = saved_as(&done);
        assert_eq!(hash_file(&path), want, "{name}'s copy differs");
    }
    let out = wait_state(org, "Alice", &id, "done");
    if recipients.len() > 1 {
        let answers = out["recipients"].as_array().expect("recipients");
        assert_eq!(answers.len(), recipients.len(), "{out}");
        assert!(answers.iter().all(|r| r["state"] == "done"), "{out}");
    }
    let after = org.net.wan_bytes(site).expect("wan counters");
    println!("  rx {} tx {}", after.0 - before.0, after.1 - before.1);
    ((after.0 - before.0) + (after.1 - before.1), id)
}

/// How many times the relay served items of `transfer` (its debug log).
fn relay_serves(org: &Branches, transfer: &str) -> usize {
    org.relay
        .log()
        .lines()
        .filter(|l| l.contains("file item served") && l.contains(transfer))
        .count()
}

#[test]
fn a_file_to_four_users_of_a_remote_branch_crosses_its_wan_once() {
    if !netns_available() {
        println!("skipping: network namespaces unavailable (needs root and iproute2)");
        return;
    }
    let _serial = one_at_a_time();
    let mut org = Branches::new(&[
        ("a", "10.21.1", &["Alice", "Erin"]),
        ("b", "10.22.1", &RECIPIENTS),
    ]);
    let site_b = org.sites[1];
    // Alice is a member behind Erin: her upload goes through her gateway.
    org.start(org.index("Alice"), &["--gateway", "never"]);
    for name in ["Erin", "Bob", "Carol", "Dave", "Fay"] {
        org.start(org.index(name), &[]);
    }
    assert_eq!(org.wait_one_gateway(&["Alice", "Erin"], ELECTION), "Erin");
    let gw = org.wait_one_gateway(&RECIPIENTS, ELECTION);
    println!("site b gateway: {gw}");
    for name in RECIPIENTS {
        org.wait_online("Alice", name, ONLINE);
    }
    // Warm up every path (directory, leases, connections) before counting.
    org.send_delivered("Alice", &RECIPIENTS.join(","), "warm-up");

    let dir = org.member("Alice").home.join("outgoing");
    let one = dir.join("one.bin");
    let four = dir.join("four.bin");
    make_file(&one, 4 * MIB, 1);
    make_file(&four, 4 * MIB, 2);

    let (baseline, one_id) = send_and_count(&org, site_b, &one, &["Bob"]);
    println!("site b WAN bytes, one recipient:   {baseline}");
    let (all, four_id) = send_and_count(&org, site_b, &four, &RECIPIENTS);
    println!("site b WAN bytes, four recipients: {all}");
    // The relay served each item (manifest + 4 chunks) once per transfer:
    // site b's gateway fetched it once for all four.
    println!(
        "relay served {} items of the one-recipient transfer, {} of the four-recipient one",
        relay_serves(&org, &one_id),
        relay_serves(&org, &four_id)
    );
    assert_eq!(
        relay_serves(&org, &four_id),
        5,
        "items served more than once"
    );
    let ratio = all as f64 / baseline as f64;
    println!("ratio {ratio:.3} (4 MiB file; 4 recipients vs 1 on site b's WAN)");
    assert!(
        baseline >= 4 * MIB,
        "the file must cross site b's WAN: {baseline} bytes"
    );
    assert!(
        ratio <= 1.1,
        "four recipients cost {ratio:.3}× one recipient on site b's WAN (≤ 1.1 expected): \
         one {baseline}, four {all}"
    );
    // The gateway of site b pulled from the relay and served its LAN.
    let gw_log = common::daemon_logs(&org.member(&gw).home);
    assert!(
        gw_log.contains("serving a member from the relay's copy"),
        "{gw} never served its members from its cache"
    );
}

#[test]
fn a_roaming_recipient_pulls_a_file_from_the_relay() {
    if !netns_available() {
        println!("skipping: network namespaces unavailable (needs root and iproute2)");
        return;
    }
    let _serial = one_at_a_time();
    let mut org = Branches::new(&[("a", "10.23.1", &["Alice"]), ("b", "10.24.1", &["Rita"])]);
    org.start_all(&[]);
    for name in ["Alice", "Rita"] {
        wait_for(&format!("{name} roaming"), ELECTION, || {
            (org.status(name)["role"] == "roaming").then_some(())
        });
    }
    org.wait_online("Alice", "Rita", ONLINE);
    let file = org.member("Alice").home.join("outgoing").join("report.bin");
    make_file(&file, 3 * MIB + 12_345, 3);
    let id = send(&org, "Alice", "Rita", &file);
    accept(&org, "Rita", &id);
    let done = wait_state(&org, "Rita", &id, "done");
    assert_eq!(hash_file(&saved_as(&done)), hash_file(&file));
    assert_eq!(done["name"], "report.bin");
    wait_state(&org, "Alice", &id, "done");
    // The relay held sealed bytes only: the name is nowhere in its files.
    let stored = org.relay.home.join("files");
    assert!(stored.is_dir(), "the relay stored nothing under {stored:?}");
    for entry in walk(&stored) {
        let name = entry.display().to_string();
        assert!(!name.contains("report"), "a file name leaked: {name}");
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !bytes.windows(10).any(|w| w == b"report.bin"),
            "plaintext name in {name}"
        );
    }
}

#[test]
fn an_upload_over_the_relay_quota_fails_clearly() {
    if !netns_available() {
        println!("skipping: network namespaces unavailable (needs root and iproute2)");
        return;
    }
    let _serial = one_at_a_time();
    let mut org = Branches::new(&[("a", "10.25.1", &["Alice"]), ("b", "10.26.1", &["Rita"])]);
    org.relay.restart_with(&["--file-quota-bytes", "1MiB"]);
    org.start_all(&[]);
    org.wait_online("Alice", "Rita", ONLINE);
    let file = org.member("Alice").home.join("outgoing").join("big.bin");
    make_file(&file, 3 * MIB, 4);
    let id = send(&org, "Alice", "Rita", &file);
    let failed = wait_state(&org, "Alice", &id, "failed");
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("quota") && error.contains("relay"),
        "unclear error: {failed}"
    );
    // The recipient is told and does not wait forever.
    let theirs = wait_state(&org, "Rita", &id, "failed");
    let error = theirs["error"].as_str().unwrap_or_default();
    assert!(error.contains("quota"), "{theirs}");
    // Both daemons keep running.
    assert!(org.status("Alice")["user_id"].is_string());
    assert!(org.status("Rita")["user_id"].is_string());
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn a_pull_resumes_through_the_new_gateway_after_a_failover() {
    if !netns_available() {
        println!("skipping: network namespaces unavailable (needs root and iproute2)");
        return;
    }
    let _serial = one_at_a_time();
    let names = ["Bob", "Carol", "Dave"];
    let mut org = Branches::new(&[("a", "10.27.1", &["Alice"]), ("b", "10.28.1", &names)]);
    // Alice (roaming) caps her WAN uploads, so the transfer is still
    // running when the gateway goes.
    org.start(org.index("Alice"), &["--wan-upload-limit", "1MiB"]);
    for name in names {
        org.start(org.index(name), &[]);
    }
    let gw = org.wait_one_gateway(&names, ELECTION);
    let rest: Vec<&str> = names.into_iter().filter(|n| *n != gw).collect();
    let to = rest[0];
    println!("site b gateway: {gw}; recipient: {to}");
    org.wait_online("Alice", to, ONLINE);
    let size = 8 * MIB;
    let file = org.member("Alice").home.join("outgoing").join("big.bin");
    make_file(&file, size, 5);
    let id = send(&org, "Alice", to, &file);
    accept(&org, to, &id);
    let before = wait_for(&format!("{to} has 2 MiB"), TRANSFER, || {
        let t = transfer(&org, to, &id)?;
        (t["bytes_done"].as_u64()? >= 2 * MIB).then_some(t)
    });
    let done_before = before["bytes_done"].as_u64().expect("bytes_done");
    assert!(done_before < size, "finished before the failover: {before}");
    let i = org.index(&gw);
    if let Some(d) = org.members[i].daemon.as_mut() {
        d.kill();
    }
    println!("killed {gw} with {done_before} of {size} bytes at {to}");
    let new_gw = org.wait_one_gateway(&rest, ELECTION);
    println!("new gateway: {new_gw}");
    let done = wait_state(&org, to, &id, "done");
    assert_eq!(hash_file(&saved_as(&done)), hash_file(&file));
    let received = done["bytes_received_total"].as_u64().expect("received");
    println!("{to} received {received} bytes for a {size}-byte file");
    assert!(
        received <= size + 2 * MIB,
        "the pull started over instead of resuming: {received} bytes for {size}"
    );
    wait_state(&org, "Alice", &id, "done");
}

#[test]
fn a_bad_copy_in_the_gateway_cache_is_dropped_and_fetched_again() {
    if !netns_available() {
        println!("skipping: network namespaces unavailable (needs root and iproute2)");
        return;
    }
    let _serial = one_at_a_time();
    let names = ["Bob", "Carol"];
    let mut org = Branches::new(&[("a", "10.29.1", &["Alice"]), ("b", "10.30.1", &names)]);
    org.start(org.index("Alice"), &[]);
    // Whichever becomes site b's gateway corrupts its cached chunk 1 once.
    let hook = [(tincan_node::file::TEST_CORRUPT_CACHED_CHUNK_ENV, "1")];
    for name in names {
        org.start_with_env(org.index(name), &[], &hook);
    }
    let gw = org.wait_one_gateway(&names, ELECTION);
    let to = if gw == "Bob" { "Carol" } else { "Bob" };
    org.wait_online("Alice", to, ONLINE);
    let size = 3 * MIB;
    let file = org.member("Alice").home.join("outgoing").join("photo.bin");
    make_file(&file, size, 6);
    let id = send(&org, "Alice", to, &file);
    accept(&org, to, &id);
    let done = wait_state(&org, to, &id, "done");
    assert_eq!(hash_file(&saved_as(&done)), hash_file(&file));
    let received = done["bytes_received_total"].as_u64().expect("received");
    assert!(
        received > size,
        "the bad chunk was not fetched again: {received} bytes for {size}"
    );
    let gw_log = common::daemon_logs(&org.member(&gw).home);
    assert!(
        gw_log.contains("test hook: corrupting this cached chunk once")
            && gw_log.contains("dropping the cached item and fetching it again"),
        "{gw} did not drop its bad copy"
    );
}
