//! Benchmark (not a test): one large file over loopback, with tincan (two
//! real daemons, end-to-end encryption, blake3 verification, staging and
//! the final whole-file check) and with a raw quinn stream (a minimal
//! client and server in this process sending the same file from disk to
//! disk), in the same run; and the transport's limit: the same raw quinn
//! stream memory to memory (a buffer sent, the bytes counted and
//! dropped). Prints the throughputs, tincan's ratio to each baseline, the
//! CPU time each spent per GiB, the peak RSS (VmHWM) of both tincan
//! daemons, the CPU model and cores, and as its last line one JSON object
//! (`"bench":"file_transfer"`).
//!
//! They alternate for several rounds (raw memory, raw files, tincan, ...)
//! and the median ratios are the result: on a shared machine one round can
//! be disturbed. Each run starts by deleting the copy the run before it
//! made, so both start alike: with a gigabyte of page cache just freed.
//! (On a VM this matters: memory freed a while ago goes back to the host,
//! and writing a file into it costs several times more CPU in the guest
//! than writing into memory freed a moment ago.)
//!
//! ```text
//! cargo bench --bench file_transfer                      # 1 GiB, 3 rounds
//! TINCAN_BENCH_MIB=256 TINCAN_BENCH_ROUNDS=5 cargo bench --bench file_transfer
//! ```
//!
//! Safety: everything listens on and dials 127.0.0.1 only; no mDNS.

#[path = "../tests/common/bench.rs"]
mod bench;
#[path = "../tests/common/cargo.rs"]
mod cargo;

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use bench::{cli, cpu_time, env_u64, load_average, machine, round, status_kib, Daemon, DaemonPair};
use serde_json::json;
use serde_json::Value;

const MIB: u64 = 1024 * 1024;

/// Wall time and CPU time (user + system, all threads) of one send.
#[derive(Clone, Copy)]
struct Measured {
    wall: Duration,
    cpu: Duration,
}

impl Measured {
    fn mib_per_s(&self, size: u64) -> f64 {
        size as f64 / MIB as f64 / self.wall.as_secs_f64()
    }

    fn cpu_s_per_gib(&self, size: u64) -> f64 {
        self.cpu.as_secs_f64() * (1024.0 * MIB as f64) / size as f64
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs bench
    // targets too, without it: a benchmark is not a test, so skip there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("file_transfer is a benchmark: run it with `cargo bench --bench file_transfer`");
        return;
    }
    let mib = env_u64("TINCAN_BENCH_MIB", 1024);
    let rounds = env_u64("TINCAN_BENCH_ROUNDS", 3).max(1);
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
    let want = hash(&src);
    let plural = if rounds == 1 { "" } else { "s" };
    println!("file transfer benchmark: {mib} MiB over 127.0.0.1, {rounds} round{plural}");

    let (cpu_model, cores) = machine();
    let load_before = load_average();
    let payload = bytes::Bytes::from(std::fs::read(&src).expect("read payload"));
    let mut pair = Pair::start(&dir_path);
    let mut rounds_done = Vec::new();
    let mut previous: Option<PathBuf> = None;
    let mut forget = |copy: PathBuf| {
        if let Some(old) = previous.replace(copy) {
            let _ = std::fs::remove_file(&old).or_else(|_| std::fs::remove_dir_all(&old));
        }
    };
    for round in 1..=rounds {
        let raw_out = dir_path.join(format!("raw-out-{round}.bin"));
        let inbox = dir_path.join(format!("inbox-{round}"));
        let memory = raw_quinn(RawEnds::Memory(payload.clone()), size);
        forget(raw_out.clone());
        let files = raw_quinn(
            RawEnds::Files {
                src: &src,
                dst: &raw_out,
            },
            size,
        );
        assert_eq!(&hash(&raw_out), &want, "raw quinn copy differs");
        forget(inbox.clone());
        let t = pair.transfer(&src, &inbox, size, &want);
        let r = Round {
            memory,
            files,
            tincan: t,
        };
        println!(
            "round {round}: raw quinn memory {:>6.1} MiB/s | raw quinn files {:>6.1} MiB/s ({:.2} CPU-s/GiB) | tincan {:>6.1} MiB/s ({:.2} CPU-s/GiB, both daemons) | tincan / files {:.2}, / memory {:.2}",
            memory.mib_per_s(size),
            files.mib_per_s(size),
            files.cpu_s_per_gib(size),
            t.mib_per_s(size),
            t.cpu_s_per_gib(size),
            r.ratio_files(size),
            r.ratio_memory(size),
        );
        rounds_done.push(r);
    }
    let median = |f: &dyn Fn(&Round) -> f64| {
        let mut v: Vec<f64> = rounds_done.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ratio_files = median(&|r| r.ratio_files(size));
    let ratio_memory = median(&|r| r.ratio_memory(size));
    let tincan = median(&|r| r.tincan.mib_per_s(size));
    let raw_files = median(&|r| r.files.mib_per_s(size));
    let raw_memory = median(&|r| r.memory.mib_per_s(size));
    let (sender, receiver) = pair.peak_rss_kib();
    let load_after = load_average();
    println!();
    println!("machine: {cpu_model}, {cores} cores; load average {load_before:.2} before, {load_after:.2} after");
    println!("medians of {rounds} rounds, {mib} MiB:");
    println!("| | MiB/s | tincan / it |");
    println!("|---|---|---|");
    println!("| tincan, `file accept` to the file in place | {tincan:.1} | |");
    println!("| raw quinn, file to file (read, send, write, fsync) | {raw_files:.1} | {ratio_files:.2} |");
    println!("| raw quinn, memory to memory (the transport's limit) | {raw_memory:.1} | {ratio_memory:.2} |");
    if let Some(r) = rounds_done.last() {
        println!(
            "CPU per byte, last round: tincan {:.2}x raw quinn file to file",
            r.tincan.cpu.as_secs_f64() / r.files.cpu.as_secs_f64()
        );
    }
    println!(
        "peak RSS: sender {} MiB, receiver {} MiB",
        sender / 1024,
        receiver / 1024
    );
    println!(
        "{}",
        json!({
            "bench": "file_transfer",
            "mib": mib,
            "rounds": rounds,
            "tincan_mib_s": round(tincan, 2),
            "raw_files_mib_s": round(raw_files, 2),
            "raw_memory_mib_s": round(raw_memory, 2),
            "ratio_files": round(ratio_files, 2),
            "ratio_memory": round(ratio_memory, 2),
            "peak_rss_sender_mib": sender / 1024,
            "peak_rss_receiver_mib": receiver / 1024,
            "cpu": cpu_model,
            "cores": cores,
            "load": [load_before, load_after],
        })
    );
}

/// One round's three measurements.
struct Round {
    memory: Measured,
    files: Measured,
    tincan: Measured,
}

impl Round {
    fn ratio_files(&self, size: u64) -> f64 {
        self.tincan.mib_per_s(size) / self.files.mib_per_s(size)
    }

    fn ratio_memory(&self, size: u64) -> f64 {
        self.tincan.mib_per_s(size) / self.memory.mib_per_s(size)
    }
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

/// Where a raw quinn run takes its bytes from and puts them.
enum RawEnds<'a> {
    /// Read from `src`, written to `dst` and fsynced: what tincan does.
    Files { src: &'a Path, dst: &'a Path },
    /// Sent from memory, counted and dropped: the transport's limit.
    Memory(bytes::Bytes),
}

/// Sends `size` bytes over one quinn stream; measures from connect to the
/// last byte in place (after the fsync, for files).
fn raw_quinn(ends: RawEnds<'_>, size: u64) -> Measured {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let (server, client) = bench::raw_quinn_pair();
        let addr = server.local_addr().expect("addr");
        let dst = match &ends {
            RawEnds::Files { dst, .. } => Some(dst.to_path_buf()),
            RawEnds::Memory(_) => None,
        };
        let receiver = tokio::spawn(async move {
            let conn = server
                .accept()
                .await
                .expect("incoming")
                .await
                .expect("conn");
            let mut recv = conn.accept_uni().await.expect("stream");
            let mut out = dst.map(|d| std::fs::File::create(d).expect("create"));
            let mut got = 0u64;
            while let Some(chunk) = recv.read_chunk(usize::MAX, true).await.expect("read") {
                got += chunk.bytes.len() as u64;
                if let Some(out) = out.as_mut() {
                    out.write_all(&chunk.bytes).expect("write");
                }
            }
            if let Some(out) = out {
                out.sync_all().expect("fsync");
            }
            conn.close(0u32.into(), b"done");
            got
        });
        let start = (Instant::now(), cpu_time("self"));
        let conn = client
            .connect(addr, "localhost")
            .expect("connect")
            .await
            .expect("handshake");
        let mut send = conn.open_uni().await.expect("open");
        match ends {
            RawEnds::Files { src, .. } => {
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
            }
            RawEnds::Memory(payload) => {
                let mut at = 0usize;
                while at < payload.len() {
                    let end = (at + MIB as usize).min(payload.len());
                    send.write_chunk(payload.slice(at..end))
                        .await
                        .expect("send");
                    at = end;
                }
            }
        }
        send.finish().expect("finish");
        let got = receiver.await.expect("receiver");
        assert_eq!(got, size, "raw quinn lost bytes");
        Measured {
            wall: start.0.elapsed(),
            cpu: cpu_time("self").saturating_sub(start.1),
        }
    })
}

/// Two tincan daemons on 127.0.0.1 that know each other (static peers),
/// and Bob's event stream.
struct Pair {
    daemons: DaemonPair,
    /// Kept for its Drop (stops `tincan watch`).
    _watch: Daemon,
    events: std::io::Lines<std::io::BufReader<ChildStdout>>,
}

impl Pair {
    fn start(dir: &Path) -> Pair {
        let daemons = DaemonPair::start(dir);
        // Completion is read from the event stream (one `tincan watch`),
        // not by polling, so measuring costs the daemons nothing.
        let mut watch = Command::new(&daemons.bin)
            .arg("--home")
            .arg(&daemons.homes[1])
            .arg("watch")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("watch");
        let events = std::io::BufReader::new(watch.stdout.take().expect("watch stdout")).lines();
        Pair {
            daemons,
            _watch: Daemon(watch),
            events,
        }
    }

    /// Bob's next event of `kind` (`file_offered`, `file_state`) for
    /// transfer `id`.
    fn next_event(&mut self, kind: &str, id: &str) -> Value {
        loop {
            let line = self
                .events
                .next()
                .expect("watch ended")
                .expect("watch line");
            let event: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if event["type"] == kind && event["transfer"]["id"] == id {
                return event["transfer"].clone();
            }
        }
    }

    /// Alice offers `src`, Bob accepts into folder `dest`; measured from
    /// the accept to Bob's `done` event. The copy is checked.
    fn transfer(&mut self, src: &Path, dest: &Path, size: u64, want: &blake3::Hash) -> Measured {
        let offer = cli(
            &self.daemons.bin,
            &self.daemons.homes[0],
            &["file", "send", "Bob", src.to_str().unwrap(), "--json"],
        );
        let id = offer["id"].as_str().expect("id").to_string();
        // Seeing the offer arrive on the stream also proves the stream is
        // subscribed before the clock starts.
        self.next_event("file_offered", &id);
        let start = (Instant::now(), self.daemons.daemons_cpu());
        cli(
            &self.daemons.bin,
            &self.daemons.homes[1],
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
            let t = self.next_event("file_state", &id);
            assert_ne!(t["state"], "failed", "{t}");
            if t["state"] == "done" {
                assert_eq!(t["bytes_done"].as_u64(), Some(size));
                break;
            }
        }
        let measured = Measured {
            wall: start.0.elapsed(),
            cpu: self.daemons.daemons_cpu().saturating_sub(start.1),
        };
        assert_eq!(
            &hash(&dest.join("payload.bin")),
            want,
            "tincan copy differs"
        );
        measured
    }

    fn peak_rss_kib(&self) -> (u64, u64) {
        (
            status_kib(self.daemons.daemons[0].0.id(), "VmHWM"),
            status_kib(self.daemons.daemons[1].0.id(), "VmHWM"),
        )
    }
}
