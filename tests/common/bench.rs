//! What the benchmarks (`benches/`) share: sizes from the environment, CPU
//! time from `/proc`, the release `tincan` binary and a pair of real
//! daemons on 127.0.0.1 that know each other. Included by path
//! (`#[path]`) next to `cargo.rs`, which it uses as `super::cargo`.
//!
//! Safety: the daemons listen on and dial 127.0.0.1 only, with `--no-mdns`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The number in variable `name`, or `default` when unset or unreadable.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time (user + system, all threads) of process `pid` ("self" for
/// this one).
pub fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ")".
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat(5): 12 and 13 here.
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / clock_ticks())
}

/// USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK).
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(100)
}

/// Builds the release `tincan` binary (what users run) and returns its
/// path.
pub fn tincan_bin() -> PathBuf {
    release_bin("tincan-node", "tincan")
}

/// Builds binary `bin` of `package` in release mode and returns its path.
fn release_bin(package: &str, bin: &str) -> PathBuf {
    let status = super::cargo::cargo()
        .args(["build", "-q", "--release", "-p", package, "--bin", bin])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo build");
    assert!(status.success(), "building {bin} failed");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("release").join(bin)
}

/// A child process, killed when dropped.
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `tincan --home HOME ARGS...`; its JSON output (`Null` if none).
pub fn cli(bin: &Path, home: &Path, args: &[&str]) -> Value {
    let out = Command::new(bin)
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .expect("run tincan");
    assert!(
        out.status.success(),
        "tincan {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// Polls `f` until it gives a value (a bound on a hang, not a speed limit).
pub fn wait<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two release daemons, Alice and Bob, each in a home under one folder
/// (`alice/`, `bob/`, logs `alice.log`, `bob.log`), on 127.0.0.1 with each
/// other as static peer, both showing the other online.
pub struct DaemonPair {
    /// The `tincan` binary they run.
    #[allow(
        dead_code,
        reason = "the messages bench talks to the control socket, not the CLI"
    )]
    pub bin: PathBuf,
    /// Alice's and Bob's homes.
    pub homes: [PathBuf; 2],
    /// Alice's and Bob's daemons.
    pub daemons: Vec<Daemon>,
}

impl DaemonPair {
    /// Builds the binary, creates both identities, starts both daemons
    /// (`RUST_LOG` from `TINCAN_BENCH_LOG`, default `warn`) and waits until
    /// each lists the other online.
    pub fn start(dir: &Path) -> DaemonPair {
        let bin = tincan_bin();
        let free_port = || {
            std::net::UdpSocket::bind("127.0.0.1:0")
                .and_then(|s| s.local_addr())
                .map(|a| a.port())
                .expect("port")
        };
        let (pa, pb) = (free_port(), free_port());
        let homes = [dir.join("alice"), dir.join("bob")];
        let mut daemons = Vec::new();
        for (i, (home, name)) in homes.iter().zip(["Alice", "Bob"]).enumerate() {
            cli(&bin, home, &["init", "--name", name, "--json"]);
            let (me, other) = if i == 0 { (pa, pb) } else { (pb, pa) };
            let child = Command::new(&bin)
                .arg("--home")
                .arg(home)
                .args(["run", "--no-mdns", "--listen", &format!("127.0.0.1:{me}")])
                .args(["--peer", &format!("127.0.0.1:{other}")])
                .env(
                    "RUST_LOG",
                    std::env::var("TINCAN_BENCH_LOG").unwrap_or("warn".into()),
                )
                .env("TINCAN_NO_NOTIFICATIONS", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(home.with_extension("log")).expect("log"))
                .spawn()
                .expect("spawn daemon");
            daemons.push(Daemon(child));
        }
        let online = |home: &Path, name: &str| {
            wait("peers online", || {
                let out = Command::new(&bin)
                    .arg("--home")
                    .arg(home)
                    .args(["peers", "--json"])
                    .output()
                    .ok()?;
                let peers: Value = serde_json::from_slice(&out.stdout).ok()?;
                peers
                    .as_array()?
                    .iter()
                    .any(|p| p["name"] == name && p["online"] == true)
                    .then_some(())
            })
        };
        online(&homes[0], "Bob");
        online(&homes[1], "Alice");
        DaemonPair {
            bin,
            homes,
            daemons,
        }
    }

    /// CPU time both daemons have spent so far.
    pub fn daemons_cpu(&self) -> Duration {
        self.daemons
            .iter()
            .map(|d| cpu_time(&d.0.id().to_string()))
            .sum()
    }
}

/// The raw quinn baseline's endpoints, on 127.0.0.1 with the node's UDP
/// socket settings (`tincan_node::quic::bind`), so a ratio compares what
/// runs over the sockets, not their settings: a server with a self-signed
/// certificate for `localhost`, and a client that trusts it. Call inside
/// a tokio runtime.
pub fn raw_quinn_pair() -> (quinn::Endpoint, quinn::Endpoint) {
    use std::net::SocketAddr;
    use std::sync::Arc;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
    let cert_der = rustls::pki_types::CertificateDer::from(cert.cert.der().to_vec());
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).expect("key");
    let server_config =
        quinn::ServerConfig::with_single_cert(vec![cert_der.clone()], key).expect("server");
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = tincan_node::quic::bind(Some(server_config), loopback).expect("bind");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).expect("root");
    let client_config =
        quinn::ClientConfig::with_root_certificates(Arc::new(roots)).expect("client");
    let mut client = tincan_node::quic::bind(None, loopback).expect("client");
    client.set_default_client_config(client_config);
    (server, client)
}

/// The CPU model (`/proc/cpuinfo`) and how many cores this process may use.
pub fn machine() -> (String, usize) {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let (key, value) = l.split_once(':')?;
            (key.trim() == "model name").then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (model, cores)
}

/// The 1-minute load average (`/proc/loadavg`).
#[allow(dead_code, reason = "relay_load does not print it")]
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Builds the release `tincan-relay` binary and returns its path.
#[allow(dead_code, reason = "only the relay_load bench runs the relay")]
pub fn relay_bin() -> PathBuf {
    release_bin("tincan-relay", "tincan-relay")
}

/// Field `field` (`VmRSS`, `VmHWM`, ...) of `/proc/PID/status`, in KiB
/// (0 when unreadable).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Resident memory of process `pid`, KiB (`VmRSS` of `/proc/PID/status`).
#[allow(dead_code, reason = "only the relay_load bench reads it")]
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

/// Rounds to `digits` decimals for a JSON line.
pub fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}
