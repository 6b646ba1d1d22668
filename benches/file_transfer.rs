//! Benchmark (not a test): one large file over loopback, with tincan (two
//! real daemons, end-to-end encryption, blake3 verification, staging and
//! the final whole-file check) and with a raw quinn stream (a minimal
//! client and server in this process sending the same file from disk to
//! disk), in the same run. Prints both throughputs, their ratio and the
//! peak RSS (VmHWM) of both tincan daemons.
//!
//! ```text
//! cargo bench --bench file_transfer                      # 1 GiB
//! TINCAN_BENCH_MIB=256 cargo bench --bench file_transfer # another size
//! ```
//!
//! Safety: everything listens on and dials 127.0.0.1 only; no mDNS.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

const MIB: u64 = 1024 * 1024;

fn main() {
    let mib: u64 = std::env::var("TINCAN_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let size = mib * MIB;
    let dir = tempfile::tempdir().expect("tempdir");
    // TINCAN_BENCH_KEEP=1 keeps the folder (daemon logs: alice.log, bob.log).
    let dir_path = dir.path().to_path_buf();
    let _guard = if std::env::var("TINCAN_BENCH_KEEP").is_ok() {
        let _ = dir.keep();
        None
    } else {
        Some(dir)
    };
    let src = dir_path.join("payload.bin");
    make_file(&src, size);
    println!("file transfer benchmark: {mib} MiB over 127.0.0.1");

    let raw = raw_quinn(&src, &dir_path.join("raw-out.bin"), size);
    let raw_rate = size as f64 / raw.as_secs_f64();
    println!(
        "raw quinn stream:   {:>8.1} MiB/s  ({:.2} s)",
        raw_rate / MIB as f64,
        raw.as_secs_f64()
    );

    let t = tincan(&dir_path, &src, size);
    let rate = size as f64 / t.transfer.as_secs_f64();
    println!(
        "tincan (E2E on):    {:>8.1} MiB/s  ({:.2} s accept → done; offer hashing took {:.2} s)",
        rate / MIB as f64,
        t.transfer.as_secs_f64(),
        t.offer.as_secs_f64()
    );
    println!(
        "ratio tincan / raw quinn: {:.2} (target ≥ 0.6)",
        rate / raw_rate
    );
    println!(
        "peak RSS: sender {} MiB, receiver {} MiB",
        t.rss_sender_kib / 1024,
        t.rss_receiver_kib / 1024
    );
}

/// Deterministic pseudo-random bytes (blake3 XOF).
fn make_file(path: &Path, size: u64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut xof = blake3::Hasher::new().update(b"bench").finalize_xof();
    let mut buf = vec![0u8; MIB as usize];
    let mut left = size;
    while left > 0 {
        let n = left.min(MIB) as usize;
        xof.fill(&mut buf[..n]);
        out.write_all(&buf[..n]).expect("write");
        left -= n as u64;
    }
    out.flush().expect("flush");
}

fn hash(path: &Path) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    std::io::copy(&mut std::fs::File::open(path).expect("open"), &mut h).expect("read");
    h.finalize()
}

/// Sends `src` over one quinn stream to a server that writes it to `dst`
/// and fsyncs; returns the time from connect to the fsync.
fn raw_quinn(src: &Path, dst: &Path, size: u64) -> Duration {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let elapsed = rt.block_on(async {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        let cert_der = rustls::pki_types::CertificateDer::from(cert.cert.der().to_vec());
        let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der())
            .expect("key");
        let server_config =
            quinn::ServerConfig::with_single_cert(vec![cert_der.clone()], key).expect("server");
        // The same UDP sockets as tincan's (large receive buffers), so the
        // ratio compares protocols, not socket settings.
        let server =
            tincan_node::quic::bind(Some(server_config), SocketAddr::from(([127, 0, 0, 1], 0)))
                .expect("bind");
        let addr = server.local_addr().expect("addr");
        let dst = dst.to_path_buf();
        let receiver = tokio::spawn(async move {
            let conn = server
                .accept()
                .await
                .expect("incoming")
                .await
                .expect("conn");
            let mut recv = conn.accept_uni().await.expect("stream");
            let mut out = std::fs::File::create(&dst).expect("create");
            while let Some(chunk) = recv.read_chunk(usize::MAX, true).await.expect("read") {
                out.write_all(&chunk.bytes).expect("write");
            }
            out.sync_all().expect("fsync");
            conn.close(0u32.into(), b"done");
        });
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert_der).expect("root");
        let client_config =
            quinn::ClientConfig::with_root_certificates(Arc::new(roots)).expect("client");
        let mut client =
            tincan_node::quic::bind(None, SocketAddr::from(([127, 0, 0, 1], 0))).expect("client");
        client.set_default_client_config(client_config);
        let start = Instant::now();
        let conn = client
            .connect(addr, "localhost")
            .expect("connect")
            .await
            .expect("handshake");
        let mut send = conn.open_uni().await.expect("open");
        let mut file = std::fs::File::open(src).expect("open src");
        let mut left = size;
        while left > 0 {
            let n = left.min(MIB) as usize;
            let mut buf = vec![0u8; n];
            std::io::Read::read_exact(&mut file, &mut buf).expect("read src");
            send.write_chunk(bytes::Bytes::from(buf))
                .await
                .expect("send");
            left -= n as u64;
        }
        send.finish().expect("finish");
        receiver.await.expect("receiver");
        start.elapsed()
    });
    assert_eq!(hash(dst), hash(src), "raw quinn copy differs");
    let _ = std::fs::remove_file(dst);
    elapsed
}

struct TincanResult {
    offer: Duration,
    transfer: Duration,
    rss_sender_kib: u64,
    rss_receiver_kib: u64,
}

fn tincan_bin() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "-q",
            "--release",
            "-p",
            "tincan-node",
            "--bin",
            "tincan",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo build");
    assert!(status.success(), "building tincan failed");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("release").join("tincan")
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cli(bin: &Path, home: &Path, args: &[&str]) -> Value {
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

fn wait<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn tincan(dir: &Path, src: &Path, size: u64) -> TincanResult {
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

    let start = Instant::now();
    let offer = cli(
        &bin,
        &homes[0],
        &["file", "send", "Bob", src.to_str().unwrap(), "--json"],
    );
    let offer_time = start.elapsed();
    let id = offer["id"].as_str().expect("id").to_string();
    let list = |home: &Path| -> Option<Value> {
        let v = cli(&bin, home, &["file", "list", "--json"]);
        v.as_array()?
            .iter()
            .find(|t| t["id"] == id.as_str())
            .cloned()
    };
    wait("offer", || list(&homes[1]));
    let dest = dir.join("inbox");
    // Completion is read from the event stream (one `tincan watch`), not
    // by polling, so measuring costs the daemons nothing.
    let mut watch = Command::new(&bin)
        .arg("--home")
        .arg(&homes[1])
        .arg("watch")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("watch");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(
        watch.stdout.take().expect("watch stdout"),
    ));
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    cli(
        &bin,
        &homes[1],
        &[
            "file",
            "accept",
            &id,
            "--to",
            dest.to_str().unwrap(),
            "--json",
        ],
    );
    loop {
        let line = lines.next().expect("watch ended").expect("watch line");
        let event: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        let t = &event["transfer"];
        if event["type"] == "file_state" && t["id"] == id.as_str() {
            assert_ne!(t["state"], "failed", "{t}");
            if t["state"] == "done" {
                break;
            }
        }
    }
    let transfer = start.elapsed();
    let _ = watch.kill();
    let _ = watch.wait();
    let done = list(&homes[1]).expect("transfer listed");
    assert_eq!(done["bytes_done"].as_u64(), Some(size));
    assert_eq!(
        hash(&dest.join("payload.bin")),
        hash(src),
        "tincan copy differs"
    );
    TincanResult {
        offer: offer_time,
        transfer,
        rss_sender_kib: vm_hwm_kib(daemons[0].0.id()),
        rss_receiver_kib: vm_hwm_kib(daemons[1].0.id()),
    }
}
