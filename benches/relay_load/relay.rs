//! The release `tincan-relay` as a child process on 127.0.0.1 with its
//! default limits, logging warnings to `relay.log` beside its home.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running relay; killed when dropped.
pub struct Relay {
    child: Child,
    /// Its QUIC address.
    pub addr: SocketAddr,
}

impl Relay {
    /// Starts `bin` on `home` serving `org`, listening on 127.0.0.1:`port`
    /// (0: any), as a node of a relay cluster on the NATS JetStream server
    /// at `engine` (one replica) when given, and waits for its listening
    /// line.
    pub fn start(bin: &Path, home: &Path, org: &str, port: u16, engine: Option<&str>) -> Relay {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(home.with_extension("log"))
            .expect("relay log");
        let mut child = Command::new(bin)
            .arg("--home")
            .arg(home)
            .args([
                "run",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--org",
                org,
            ])
            .args(
                engine
                    .map(|url| vec!["--engine", url, "--engine-replicas", "1"])
                    .unwrap_or_default(),
            )
            .env(
                "RUST_LOG",
                std::env::var("TINCAN_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env_remove("TINCAN_RELAY_HOME")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn tincan-relay");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let words: Vec<&str> = line.split_whitespace().collect();
                if let ["tincan-relay", "listening", "on", a, ..] = words.as_slice() {
                    let _ = tx.send(a.parse::<SocketAddr>());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("relay prints its listening line")
            .expect("listen address");
        Relay { child, addr }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM (a graceful stop, as a restart) and wait for the exit.
    pub fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
