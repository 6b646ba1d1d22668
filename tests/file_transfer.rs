//! File transfer end to end with the real binary: two daemons on
//! 127.0.0.1 with static peers. A 200 MiB file byte-exact, a receiver
//! killed (SIGKILL) mid-way that resumes from its last verified chunk, a
//! corrupted chunk (test hook) detected and fetched again, reject and
//! cancel seen on both ends (with an offer that waits in the outbox while
//! the recipient is offline), a cancel that overtakes its offer (scripted
//! peer), a full disk on the receiver (a small tmpfs in a private mount
//! namespace), and a folder with nested files.
//!
//! Safety: `--no-mdns`, loopback addresses only. Deadlines bound hangs,
//! they never measure speed; the slow transfers are slowed by the
//! sender's documented `upload_limit` setting, not by timing.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{cli, cli_json, free_udp_port, wait_for, Daemon};
use serde_json::Value;

/// Bounds connections and state changes.
const DEADLINE: Duration = Duration::from_secs(60);
/// Bounds a whole transfer (debug builds on a loaded 2-core machine).
const TRANSFER: Duration = Duration::from_secs(300);
const MIB: u64 = 1024 * 1024;

struct Node {
    name: &'static str,
    port: u16,
    peers: Vec<u16>,
    env: Vec<(String, String)>,
    daemon: Option<Daemon>,
    dir: tempfile::TempDir,
}

impl Node {
    fn init(name: &'static str) -> Node {
        let node = Node {
            name,
            port: free_udp_port(),
            peers: Vec::new(),
            env: Vec::new(),
            daemon: None,
            dir: tempfile::tempdir().expect("tempdir"),
        };
        cli_json(node.home(), &["init", "--name", name, "--json"]);
        node
    }

    fn home(&self) -> &Path {
        self.dir.path()
    }

    /// A folder of this node's own for test files.
    fn files(&self) -> PathBuf {
        let dir = self.home().join("files");
        std::fs::create_dir_all(&dir).expect("files dir");
        dir
    }

    fn start(&mut self) {
        let mut args = vec![
            "--no-mdns".to_string(),
            "--listen".to_string(),
            format!("127.0.0.1:{}", self.port),
        ];
        for port in &self.peers {
            args.push("--peer".into());
            args.push(format!("127.0.0.1:{port}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.daemon = Some(Daemon::start_with_env(self.home(), &args, None, &env));
    }

    /// Starts the daemon with `dir` on a small tmpfs of its own (`size`).
    fn start_on_tmpfs(&mut self, dir: &Path, size: &str) {
        let mut args = vec![
            "--no-mdns".to_string(),
            "--listen".to_string(),
            format!("127.0.0.1:{}", self.port),
        ];
        for port in &self.peers {
            args.push("--peer".into());
            args.push(format!("127.0.0.1:{port}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.daemon = Some(Daemon::start_with_tmpfs(self.home(), &args, dir, size));
    }

    fn kill(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.kill();
        }
    }

    fn json(&self, args: &[&str]) -> Value {
        cli_json(self.home(), args)
    }

    fn wait_online(&self, name: &str) {
        wait_for(&format!("{} to see {name}", self.name), DEADLINE, || {
            let peers = self.json(&["peers", "--json"]);
            peers
                .as_array()?
                .iter()
                .any(|p| p["name"] == name && p["online"] == true)
                .then_some(())
        });
    }

    fn transfers(&self) -> Vec<Value> {
        match self.json(&["file", "list", "--json"]) {
            Value::Array(items) => items,
            other => panic!("file list --json is not an array: {other}"),
        }
    }

    fn transfer(&self, id: &str) -> Option<Value> {
        self.transfers().into_iter().find(|t| t["id"] == id)
    }

    /// Waits until transfer `id` is in `state`; returns it.
    fn wait_state(&self, id: &str, state: &str, timeout: Duration) -> Value {
        let what = format!("{}: transfer {id} {state}", self.name);
        wait_for(&what, timeout, || {
            let t = self.transfer(id)?;
            if t["state"] == "failed" && state != "failed" {
                panic!("{}: transfer failed: {t}", self.name);
            }
            (t["state"] == state).then_some(t)
        })
    }

    /// `file accept ID --to DEST --wait --json`, which must succeed; the
    /// finished transfer.
    fn accept_and_wait(&self, id: &str, dest: &Path) -> Value {
        let out = cli(
            self.home(),
            &[
                "file",
                "accept",
                id,
                "--to",
                dest.to_str().expect("utf-8 path"),
                "--wait",
                "--json",
            ],
        );
        assert!(
            out.status.success(),
            "accept --wait failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    }

    /// Waits until the offer `id` has arrived.
    fn wait_offer(&self, id: &str) -> Value {
        self.wait_state(id, "offered", DEADLINE)
    }

    fn logs(&self) -> String {
        common::daemon_logs(self.home())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("===== log of {} =====\n{}", self.name, self.logs());
        }
    }
}

/// Alice and Bob, each dialling the other.
fn pair() -> (Node, Node) {
    let mut alice = Node::init("Alice");
    let mut bob = Node::init("Bob");
    alice.peers.push(bob.port);
    bob.peers.push(alice.port);
    (alice, bob)
}

fn start_pair(alice: &mut Node, bob: &mut Node) {
    alice.start();
    bob.start();
    alice.wait_online("Bob");
    bob.wait_online("Alice");
}

/// Writes `size` deterministic pseudo-random bytes (blake3 XOF of `seed`).
fn make_file(path: &Path, size: u64, seed: u64) {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("parent");
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut reader = blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        reader.fill(&mut buf[..n]);
        out.write_all(&buf[..n]).expect("write");
        left -= n as u64;
    }
    out.flush().expect("flush");
}

fn hash_file(path: &Path) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    let mut file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::io::copy(&mut file, &mut hasher).expect("read");
    hasher.finalize()
}

fn send(from: &Node, to: &str, paths: &[&Path]) -> Value {
    let mut args = vec!["file", "send", to];
    let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    args.push("--json");
    from.json(&args)
}

fn id_of(view: &Value) -> String {
    view["id"].as_str().expect("transfer id").to_string()
}

fn u64_of(view: &Value, field: &str) -> u64 {
    view[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} missing: {view}"))
}

fn saved(view: &Value) -> Vec<PathBuf> {
    view["saved_as"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(PathBuf::from))
                .collect()
        })
        .unwrap_or_default()
}

fn no_part_files(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .all(|e| !e.file_name().to_string_lossy().ends_with(".part"))
        })
        .unwrap_or(true)
}

#[test]
fn a_200_mib_file_arrives_byte_exact() {
    let (mut alice, mut bob) = pair();
    start_pair(&mut alice, &mut bob);
    let src = alice.files().join("big.bin");
    make_file(&src, 200 * MIB, 1);
    let offer = send(&alice, "Bob", &[&src]);
    assert_eq!(offer["direction"], "out");
    assert_eq!(offer["state"], "offered");
    assert_eq!(u64_of(&offer, "size"), 200 * MIB);
    let id = id_of(&offer);
    let incoming = bob.wait_offer(&id);
    assert_eq!(incoming["name"], "big.bin");
    assert_eq!(incoming["direction"], "in");
    assert_eq!(u64_of(&incoming, "count"), 1);

    let dest = bob.home().join("inbox");
    let done = bob.accept_and_wait(&id[..8], &dest);
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(u64_of(&done, "bytes_done"), 200 * MIB);
    let saved = saved(&done);
    assert_eq!(saved, [dest.join("big.bin")]);
    assert_eq!(hash_file(&saved[0]), hash_file(&src), "byte-exact");
    assert!(no_part_files(&dest));
    let sent = alice.wait_state(&id, "done", DEADLINE);
    assert_eq!(u64_of(&sent, "bytes_done"), 200 * MIB);
}

#[test]
fn a_killed_receiver_resumes_from_its_last_verified_chunk() {
    let (mut alice, mut bob) = pair();
    // Slow the sender down so that the kill lands mid-way.
    std::fs::write(
        alice.home().join("config.toml"),
        "upload_limit = \"12MiB\"\n",
    )
    .unwrap();
    start_pair(&mut alice, &mut bob);
    let size = 128 * MIB;
    let src = alice.files().join("video.mp4");
    make_file(&src, size, 2);
    let id = id_of(&send(&alice, "Bob", &[&src]));
    bob.wait_offer(&id);
    // A file where the folder should be, or a folder whose parent is
    // missing, is refused in words, and nothing is created.
    let not_a_folder = bob.home().join("notes.txt");
    std::fs::write(&not_a_folder, "").expect("write a file");
    let out = cli(
        bob.home(),
        &[
            "file",
            "accept",
            &id,
            "--to",
            not_a_folder.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("is not a folder"),
        "{err}"
    );
    let deep = bob.home().join("nonexistent/dl");
    let out = cli(
        bob.home(),
        &["file", "accept", &id, "--to", deep.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("does not exist"),
        "{err}"
    );
    assert!(!bob.home().join("nonexistent").exists());
    let dest = bob.home().join("inbox");
    bob.json(&[
        "file",
        "accept",
        &id,
        "--to",
        dest.to_str().unwrap(),
        "--json",
    ]);
    let before = wait_for("a quarter of the file", TRANSFER, || {
        let t = bob.transfer(&id)?;
        (u64_of(&t, "bytes_done") >= size / 4).then_some(t)
    });
    assert_eq!(before["state"], "transferring", "{before}");
    assert!(before["rate"].is_u64(), "rate while transferring: {before}");
    bob.kill();
    assert!(
        dest.read_dir()
            .unwrap()
            .any(|e| e.unwrap().file_name() == "video.mp4.part"),
        "the partial file is staged as NAME.part"
    );
    assert!(
        !dest.join("video.mp4").exists(),
        "nothing in place before the end"
    );
    bob.start();
    let done = bob.wait_state(&id, "done", TRANSFER);
    assert_eq!(hash_file(&dest.join("video.mp4")), hash_file(&src));
    let received = u64_of(&done, "bytes_received_total");
    let sent = alice.wait_state(&id, "done", DEADLINE);
    let sent_total = u64_of(&sent, "bytes_sent_total");
    // What Bob had verified before the kill was not fetched again: he
    // counted every chunk byte he ever took in, and it is the file once.
    assert!(received < size + size / 8, "received {received} of {size}");
    // Alice re-sent at most the chunks that were in flight at the kill.
    assert!(
        sent_total - size < size / 4,
        "sent {sent_total} for a {size}-byte file"
    );
}

#[test]
fn a_corrupted_chunk_is_detected_and_fetched_again() {
    let (mut alice, mut bob) = pair();
    alice
        .env
        .push(("TINCAN_TEST_CORRUPT_CHUNK".into(), "3".into()));
    start_pair(&mut alice, &mut bob);
    let size = 8 * MIB + 12345;
    let src = alice.files().join("data.bin");
    make_file(&src, size, 3);
    let id = id_of(&send(&alice, "Bob", &[&src]));
    bob.wait_offer(&id);
    let dest = bob.home().join("inbox");
    bob.json(&[
        "file",
        "accept",
        &id,
        "--to",
        dest.to_str().unwrap(),
        "--json",
    ]);
    let done = bob.wait_state(&id, "done", TRANSFER);
    assert_eq!(hash_file(&dest.join("data.bin")), hash_file(&src));
    // Chunk 3 came twice: once corrupted (refused), once good.
    let received = u64_of(&done, "bytes_received_total");
    assert_eq!(received, size + MIB, "{done}");
    assert!(alice.logs().contains("corrupting this chunk once"));
    assert!(bob.logs().contains("does not decrypt") || received > size);
}

#[test]
fn reject_and_cancel_reach_the_other_end() {
    let (mut alice, mut bob) = pair();
    std::fs::write(
        alice.home().join("config.toml"),
        "upload_limit = \"2MiB\"\n",
    )
    .unwrap();
    start_pair(&mut alice, &mut bob);
    let src = alice.files().join("report.pdf");
    make_file(&src, 24 * MIB, 4);

    // Offered while Bob is offline: the offer waits in the outbox.
    bob.kill();
    let rejected = id_of(&send(&alice, "Bob", &[&src]));
    let cancelled_offer = id_of(&send(&alice, "Bob", &[&src]));
    bob.start();
    bob.wait_offer(&rejected);
    bob.wait_offer(&cancelled_offer);

    // Bob rejects one: Alice sees it rejected.
    let view = bob.json(&["file", "reject", &rejected, "--json"]);
    assert_eq!(view["state"], "rejected");
    alice.wait_state(&rejected, "rejected", DEADLINE);

    // Bob cancels an offer he has not accepted: Alice sees it cancelled.
    bob.json(&["file", "cancel", &cancelled_offer, "--json"]);
    alice.wait_state(&cancelled_offer, "cancelled", DEADLINE);

    // Alice cancels one that is transferring: Bob sees it cancelled and
    // nothing is left behind.
    let id = id_of(&send(&alice, "Bob", &[&src]));
    bob.wait_offer(&id);
    let dest = bob.home().join("inbox");
    bob.json(&[
        "file",
        "accept",
        &id,
        "--to",
        dest.to_str().unwrap(),
        "--json",
    ]);
    wait_for("bytes moving", DEADLINE, || {
        let t = bob.transfer(&id)?;
        (u64_of(&t, "bytes_done") > 0).then_some(())
    });
    let view = alice.json(&["file", "cancel", &id, "--json"]);
    assert_eq!(view["state"], "cancelled");
    bob.wait_state(&id, "cancelled", DEADLINE);
    wait_for("staging removed", DEADLINE, || {
        no_part_files(&dest).then_some(())
    });
    assert!(!dest.join("report.pdf").exists());

    // And a receiver cancelling mid-way is seen by the sender.
    let id = id_of(&send(&alice, "Bob", &[&src]));
    bob.wait_offer(&id);
    bob.json(&[
        "file",
        "accept",
        &id,
        "--to",
        dest.to_str().unwrap(),
        "--json",
    ]);
    wait_for("bytes moving", DEADLINE, || {
        let t = bob.transfer(&id)?;
        (u64_of(&t, "bytes_done") > 0).then_some(())
    });
    bob.json(&["file", "cancel", &id, "--json"]);
    alice.wait_state(&id, "cancelled", DEADLINE);
    wait_for("staging removed", DEADLINE, || {
        no_part_files(&dest).then_some(())
    });

    // Commands on finished transfers are refused with a clear error.
    let out = cli(bob.home(), &["file", "accept", &rejected]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rejected"));
}

#[test]
fn a_folder_arrives_with_its_tree_and_never_overwrites() {
    let (mut alice, mut bob) = pair();
    start_pair(&mut alice, &mut bob);
    let root = alice.files().join("photos");
    make_file(&root.join("a.jpg"), 3 * MIB + 7, 10);
    make_file(&root.join("2024/summer/b.jpg"), 100_000, 11);
    make_file(&root.join("2024/c.raw"), 2 * MIB, 12);
    make_file(&root.join("2024/empty.txt"), 0, 13);
    std::fs::create_dir_all(root.join("drafts/none")).unwrap();
    let dest = bob.home().join("inbox");
    // Something named photos is there already: it must stay untouched.
    std::fs::create_dir_all(dest.join("photos")).unwrap();
    std::fs::write(dest.join("photos/mine.txt"), b"mine").unwrap();

    let offer = send(&alice, "Bob", &[&root]);
    assert_eq!(u64_of(&offer, "count"), 4);
    let id = id_of(&offer);
    let incoming = bob.wait_offer(&id);
    assert_eq!(incoming["name"], "photos");
    let done = bob.accept_and_wait(&id, &dest);
    let got = dest.join("photos (1)");
    assert_eq!(saved(&done), std::slice::from_ref(&got));
    for rel in ["a.jpg", "2024/summer/b.jpg", "2024/c.raw", "2024/empty.txt"] {
        assert_eq!(
            hash_file(&got.join(rel)),
            hash_file(&root.join(rel)),
            "{rel}"
        );
    }
    assert!(got.join("drafts/none").is_dir(), "empty folders arrive too");
    assert_eq!(
        std::fs::read(dest.join("photos/mine.txt")).unwrap(),
        b"mine"
    );
    assert!(no_part_files(&dest));
    alice.wait_state(&id, "done", DEADLINE);
}

#[test]
fn a_hidden_file_is_named_in_the_offer_and_saved_as_shown() {
    let (mut alice, mut bob) = pair();
    start_pair(&mut alice, &mut bob);
    let photo = alice.files().join("photo.jpg");
    let hidden = alice.files().join(".bash_profile");
    make_file(&photo, 1000, 20);
    make_file(&hidden, 100, 21);

    // A dot file never hides behind "and 1 more".
    let id = id_of(&send(&alice, "Bob", &[&photo, &hidden]));
    let incoming = bob.wait_offer(&id);
    assert_eq!(
        incoming["name"],
        "photo.jpg and 1 more, including .bash_profile"
    );
    let dest = bob.home().join("inbox");
    let done = bob.accept_and_wait(&id, &dest);
    let mut got = saved(&done);
    got.sort();
    assert_eq!(got, [dest.join(".bash_profile"), dest.join("photo.jpg")]);
    assert_eq!(hash_file(&dest.join(".bash_profile")), hash_file(&hidden));
}

#[test]
fn a_file_changed_on_the_sender_fails_clearly_on_both_ends() {
    let (mut alice, mut bob) = pair();
    std::fs::write(
        alice.home().join("config.toml"),
        "upload_limit = \"2MiB\"\n",
    )
    .unwrap();
    start_pair(&mut alice, &mut bob);
    let src = alice.files().join("draft.doc");
    make_file(&src, 16 * MIB, 5);
    let id = id_of(&send(&alice, "Bob", &[&src]));
    bob.wait_offer(&id);
    let dest = bob.home().join("inbox");
    bob.json(&[
        "file",
        "accept",
        &id,
        "--to",
        dest.to_str().unwrap(),
        "--json",
    ]);
    wait_for("bytes moving", DEADLINE, || {
        let t = bob.transfer(&id)?;
        (u64_of(&t, "bytes_done") > 0).then_some(())
    });
    // The user keeps editing the file while it is being sent.
    make_file(&src, 16 * MIB + 1, 6);
    let failed = bob.wait_state(&id, "failed", DEADLINE);
    let error = failed["error"].as_str().unwrap_or_default().to_string();
    assert!(
        error.contains("draft.doc") && error.contains("changed"),
        "{failed}"
    );
    let sender = alice.wait_state(&id, "failed", DEADLINE);
    assert!(
        sender["error"]
            .as_str()
            .unwrap_or_default()
            .contains("changed"),
        "{sender}"
    );
    wait_for("staging removed", DEADLINE, || {
        no_part_files(&dest).then_some(())
    });
    assert!(
        !dest.join("draft.doc").exists(),
        "nothing half-written in place"
    );
}

#[test]
fn a_full_disk_fails_the_transfer_clearly_and_nothing_else() {
    if !common::private_mounts_available() {
        println!("skipping: private mount namespaces unavailable (needs root)");
        return;
    }
    let (mut alice, mut bob) = pair();
    // Bob's download folder is a 1 MiB disk of his daemon's own.
    let small = bob.home().join("small-disk");
    alice.start();
    bob.start_on_tmpfs(&small, "1m");
    alice.wait_online("Bob");
    bob.wait_online("Alice");
    let src = alice.files().join("big.bin");
    make_file(&src, 3 * MIB, 11);
    let id = id_of(&send(&alice, "Bob", &[&src]));
    bob.wait_offer(&id);
    let out = cli(
        bob.home(),
        &[
            "file",
            "accept",
            &id,
            "--to",
            small.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "accept failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let failed = bob.wait_state(&id, "failed", TRANSFER);
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(error.contains("no space left"), "unclear error: {failed}");
    let theirs = alice.wait_state(&id, "failed", DEADLINE);
    assert!(
        theirs["error"]
            .as_str()
            .unwrap_or_default()
            .contains("no space left"),
        "the sender is not told why: {theirs}"
    );
    // The daemon keeps running and nothing else is lost: messages flow.
    assert!(bob.json(&["status", "--json"])["user_id"].is_string());
    let sent = alice.json(&["send", "Bob", "still there?", "--wait", "--json"]);
    assert_eq!(sent["state"], "delivered", "{sent}");
    let history = bob.json(&["history", "Alice", "--json"]);
    assert!(
        history
            .as_array()
            .is_some_and(|h| h.iter().any(|m| m["text"] == "still there?")),
        "{history}"
    );
    // The partial file was removed from the small disk (seen from inside
    // the daemon's mount namespace).
    let pid = bob.daemon.as_ref().and_then(Daemon::pid).expect("pid");
    wait_for("the partial file removed", DEADLINE, || {
        let out = std::process::Command::new("nsenter")
            .args(["--target", &pid.to_string(), "--mount", "ls", "-A"])
            .arg(&small)
            .output()
            .ok()?;
        let listing = String::from_utf8_lossy(&out.stdout).to_string();
        (out.status.success() && !listing.contains(".part")).then_some(())
    });
}

/// `content` sealed by a scripted peer's `from` to the devices `to`.
fn seal(
    from: &tincan_core::Identity,
    to: &[tincan_core::DeviceCert],
    content: &tincan_core::Content,
) -> tincan_core::Envelope {
    use tincan_node::keystore::OsEntropy;
    tincan_core::Envelope::seal(
        &from.device,
        &from.cert,
        to,
        tincan_core::MessageId::random(&mut OsEntropy),
        common::raw_peer::now_ms(),
        content,
        &mut OsEntropy,
    )
    .expect("seal")
}

/// The offer of a 10-byte file `name` a scripted peer sends (it never
/// serves the file: these tests are about the offer).
fn raw_offer(transfer: tincan_core::file::TransferId, name: &str) -> tincan_core::file::FileOffer {
    tincan_core::file::FileOffer {
        transfer,
        name: name.into(),
        size: 10,
        count: 1,
        chunk_size: tincan_core::file::CHUNK_SIZE,
        manifest_hash: [0; 32],
        manifest_len: 100,
        key: [7; 32],
    }
}

#[test]
fn a_cancel_that_overtakes_its_offer_is_not_lost() {
    use common::raw_peer::{envelope_frame, RawPeer};
    use tincan_core::file::{FileAction, TransferId};
    use tincan_core::wire::Frame;
    use tincan_core::Content;
    use tincan_node::keystore::OsEntropy;

    let mut bob = Node::init("Bob");
    bob.start();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], bob.port));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    // The peer's QUIC endpoint lives on this runtime.
    let _entered = runtime.enter();
    let carl = RawPeer::new("Carl").expect("raw peer");
    let transfer = TransferId::random(&mut OsEntropy);
    let offer = raw_offer(transfer, "late.bin");
    // The cancel arrives first (it overtook the offer on another path).
    let cancel = Content::FileControl {
        transfer,
        action: FileAction::Cancelled,
    };
    runtime.block_on(async {
        let conn = carl.connect(addr).await.expect("connect");
        let envelope = seal(&carl.identity, &[conn.node_cert().clone()], &cancel);
        let answer = conn
            .deliver(&envelope_frame(&envelope))
            .await
            .expect("answer");
        assert!(matches!(answer, Frame::Receipt(_)), "{answer:?}");
    });
    assert!(bob.transfers().is_empty(), "a cancel alone shows nothing");
    // It is kept across a restart of the recipient.
    bob.kill();
    bob.start();
    runtime.block_on(async {
        let conn = carl.connect(addr).await.expect("connect again");
        let envelope = seal(
            &carl.identity,
            &[conn.node_cert().clone()],
            &Content::FileOffer(offer.clone()),
        );
        let answer = conn
            .deliver(&envelope_frame(&envelope))
            .await
            .expect("answer");
        assert!(matches!(answer, Frame::Receipt(_)), "{answer:?}");
    });
    let id = transfer.to_string();
    let view = wait_for("the late offer listed", DEADLINE, || bob.transfer(&id));
    assert_eq!(view["state"], "cancelled", "{view}");
    assert!(
        cli(bob.home(), &["file", "accept", &id, "--json"])
            .status
            .code()
            != Some(0),
        "a cancelled offer cannot be accepted"
    );
}

/// Offers wait for the user's answer, so one peer cannot pile them up: the
/// 65th unanswered offer from one device is refused at once (its sender is
/// told), and the 64 before it are listed.
#[test]
fn unanswered_offers_from_one_device_are_bounded() {
    use common::raw_peer::{envelope_frame, RawPeer};
    use tincan_core::file::TransferId;
    use tincan_core::wire::{Frame, RefuseReason};
    use tincan_core::Content;
    use tincan_node::keystore::OsEntropy;

    let mut bob = Node::init("Bob");
    bob.start();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], bob.port));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let _entered = runtime.enter();
    let carl = RawPeer::new("Carl").expect("raw peer");
    let answers = runtime.block_on(async {
        let conn = carl.connect(addr).await.expect("connect");
        let mut answers = Vec::new();
        for i in 0..65 {
            let offer = raw_offer(TransferId::random(&mut OsEntropy), &format!("f{i}.bin"));
            let envelope = seal(
                &carl.identity,
                &[conn.node_cert().clone()],
                &Content::FileOffer(offer),
            );
            answers.push(
                conn.deliver(&envelope_frame(&envelope))
                    .await
                    .expect("answer"),
            );
        }
        answers
    });
    assert!(
        answers[..64].iter().all(|a| matches!(a, Frame::Receipt(_))),
        "{:?}",
        &answers[..64]
    );
    assert!(
        matches!(&answers[64], Frame::Refused { reason: RefuseReason::Other(why), .. } if why.contains("too many file offers")),
        "{:?}",
        answers[64]
    );
    assert_eq!(bob.transfers().len(), 64);
}
