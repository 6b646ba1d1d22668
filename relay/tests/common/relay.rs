//! The real `tincan-relay` binary as a child process on 127.0.0.1.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tincan_core::OrgId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_tincan-relay");

/// A running relay process; killed when dropped.
pub struct Relay {
    child: Child,
    pub home: PathBuf,
    pub addr: SocketAddr,
    pub fingerprint: String,
    pub metrics: Option<SocketAddr>,
}

/// Runs `tincan-relay --home HOME ARGS...` to completion.
pub fn cli(home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("TINCAN_RELAY_HOME")
        .output()
        .expect("run tincan-relay")
}

impl Relay {
    /// Starts a relay serving `orgs` with extra `run` arguments and waits
    /// for its "listening" line.
    pub fn start(home: &Path, orgs: &[OrgId], extra: &[&str]) -> Relay {
        let mut cmd = Command::new(BIN);
        cmd.arg("--home")
            .arg(home)
            .args(["run", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info,quinn=warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for org in orgs {
            cmd.arg("--org").arg(org.to_string());
        }
        let mut child = cmd.spawn().expect("spawn tincan-relay");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("relay stdout: {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut addr = None;
        let mut fingerprint = String::new();
        let mut metrics = None;
        let want_metrics = extra.contains(&"--metrics");
        while addr.is_none() || (want_metrics && metrics.is_none()) {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("relay prints its listening line");
            let words: Vec<&str> = line.split_whitespace().collect();
            if let ["tincan-relay", "listening", "on", a, "fingerprint", f] = words.as_slice() {
                addr = Some(a.parse().expect("listen addr"));
                fingerprint = f.to_string();
            }
            if let ["metrics", "on", url] = words.as_slice() {
                let a = url
                    .trim_start_matches("http://")
                    .trim_end_matches("/metrics");
                metrics = Some(a.parse().expect("metrics addr"));
            }
        }
        Relay {
            child,
            home: home.to_owned(),
            addr: addr.expect("addr"),
            fingerprint,
            metrics,
        }
    }

    /// SIGKILL: no graceful anything (mail must already be durable).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().expect("wait relay")
    }

    /// `status --json` parsed.
    pub fn status(&self) -> serde_json::Value {
        let out = cli(&self.home, &["status", "--json"]);
        assert!(
            out.status.success(),
            "status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status json")
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The sum of every sample of `name` in the relay's metrics.
pub async fn metric(addr: SocketAddr, name: &str) -> u64 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("metrics");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let mut body = String::new();
    stream.read_to_string(&mut body).await.expect("response");
    body.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}
