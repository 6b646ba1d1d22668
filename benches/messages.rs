//! Benchmark (not a test): short messages over loopback, in one run on one
//! machine, three ways:
//!
//! 1. **tincan**: two real release daemons (Alice and Bob, each in a temp
//!    home, `--no-mdns`, each the other's static peer on 127.0.0.1).
//!    Alice's control socket gets `send` requests of 200-byte texts with
//!    `"wait": true`, which the daemon answers once Bob's device's signed
//!    receipt is back. A control connection serves its requests one after
//!    the other (`node/src/control.rs`), so *k in flight* is k
//!    connections, each sending its next message when the last is
//!    answered. Per level: messages per second, latency p50 / p99 (send to
//!    answer) and the CPU both daemons spent per message.
//! 2. **raw quinn**: a minimal quinn client and server in this process on
//!    127.0.0.1 (the same UDP sockets as tincan's), one bidirectional
//!    stream per request like tincan's deliveries: 200 bytes each way, at
//!    the same levels. Round trips per second, their latency and the CPU
//!    this process spent per round trip. It is a few hundred times faster,
//!    so it runs more round trips than tincan sends messages.
//! 3. **the floor**: one thread doing, per message, what no implementation
//!    can skip, with core's real functions: seal an envelope for Bob's
//!    device (which signs it with Alice's device key), verify its
//!    signature (as a hop does), open it as Bob, sign Bob's receipt and
//!    verify it as Alice; plus one fdatasync'd SQLite commit (WAL,
//!    `synchronous=FULL`, a real file in the temp dir) per 64 messages.
//!    Also one `fdatasync` of a 4 KiB write in that dir, p50 (100 samples
//!    before the rest and 100 after).
//!
//! The parts run one after the other (tincan, then raw quinn once the
//! daemons are stopped, then the floor), so each has both cores; the load
//! average before and after is printed, since on a shared machine other
//! work can slow any of them.
//!
//! It prints a table (absolute figures, tincan / raw quinn at each level,
//! tincan at 64 in flight / the floor, the CPU model and core count) and
//! the latency terms: tincan's serial p50 against raw quinn's serial round
//! trip p50 + one fdatasync p50 + 0.25 ms. The last line of stdout is one
//! JSON object (`"bench":"messages"`). It judges nothing: no figure fails
//! the run; only a message that is not delivered does.
//!
//! ```text
//! cargo bench --bench messages                            # 2,000 messages per level
//! TINCAN_BENCH_MESSAGES=500 cargo bench --bench messages  # a quick look
//! TINCAN_BENCH_RAW_ROUND_TRIPS=50000 cargo bench --bench messages  # raw quinn (default 20,000)
//! TINCAN_BENCH_KEEP=1 cargo bench --bench messages        # keep the homes and daemon logs
//! ```
//!
//! Progress goes to stderr, with the daemons' process ids, for a profiler
//! (`perf record -g -p PID`). Safety: everything listens on and dials
//! 127.0.0.1 only; no mDNS.

#[path = "../tests/common/bench.rs"]
mod bench;
#[path = "../tests/common/cargo.rs"]
mod cargo;
#[path = "messages/floor.rs"]
mod floor;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::{cpu_time, env_u64, load_average, machine, round, DaemonPair};
use floor::{fdatasyncs, floor, Floor};
use serde_json::{json, Value};
use tincan_node::{ControlClient, Home, Request};

/// Bytes of each message's text (and of each raw quinn request and answer).
const TEXT_LEN: usize = 200;
/// Messages in flight at each level.
const LEVELS: [usize; 3] = [1, 8, 64];
/// Messages the floor commits to SQLite at once.
const COMMIT_EVERY: usize = 64;
/// The latency target's allowance on top of the network and the disk.
const TARGET_SLACK_MS: f64 = 0.25;

/// One level's run: how long it took, each message's latency and the CPU
/// it cost.
struct Level {
    inflight: usize,
    wall: Duration,
    /// Sorted.
    latencies: Vec<Duration>,
    cpu: Duration,
}

impl Level {
    fn new(inflight: usize, wall: Duration, mut latencies: Vec<Duration>, cpu: Duration) -> Self {
        latencies.sort();
        Level {
            inflight,
            wall,
            latencies,
            cpu,
        }
    }

    fn per_s(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }

    /// Latency percentile `p` (0..=1), in ms.
    fn ms(&self, p: f64) -> f64 {
        percentile_ms(&self.latencies, p)
    }

    fn cpu_ms_each(&self) -> f64 {
        self.cpu.as_secs_f64() * 1000.0 / self.latencies.len() as f64
    }
}

/// Percentile `p` (0..=1) of sorted `samples`, in ms.
fn percentile_ms(samples: &[Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let i = ((samples.len() - 1) as f64 * p).round() as usize;
    samples[i].as_secs_f64() * 1000.0
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs bench
    // targets too, without it: a benchmark is not a test, so skip there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("messages is a benchmark: run it with `cargo bench --bench messages`");
        return;
    }
    let messages = env_u64("TINCAN_BENCH_MESSAGES", 2000).max(1) as usize;
    let round_trips = env_u64("TINCAN_BENCH_RAW_ROUND_TRIPS", 20_000).max(1) as usize;
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_path = dir.path().to_path_buf();
    let _guard = if std::env::var("TINCAN_BENCH_KEEP").is_ok() {
        eprintln!("keeping {}", dir_path.display());
        let _ = dir.keep();
        None
    } else {
        Some(dir)
    };
    let (cpu_model, cores) = machine();
    println!(
        "messages benchmark: {messages} messages of {TEXT_LEN} bytes per level ({round_trips} raw quinn round trips), {levels} in flight, over 127.0.0.1",
        levels = LEVELS.map(|k| k.to_string()).join(", ")
    );
    let load_before = load_average();
    // A shared disk's flush time moves with the neighbours' writes: half
    // the samples now, half at the end.
    let mut fsyncs = fdatasyncs(&dir_path, 100);
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    eprintln!("building and starting two daemons");
    let pair = DaemonPair::start(&dir_path);
    let alice = Home::new(&pair.homes[0]);
    eprintln!(
        "daemons: Alice pid {}, Bob pid {}",
        pair.daemons[0].0.id(),
        pair.daemons[1].0.id()
    );
    eprintln!("tincan: warming up");
    rt.block_on(tincan_level(&alice, 0, 20, 1));
    let mut tincan = Vec::new();
    for (i, &inflight) in LEVELS.iter().enumerate() {
        eprintln!("tincan: {messages} messages, {inflight} in flight");
        let before = pair.daemons_cpu();
        let first = 20 + i * messages;
        let (wall, latencies) = rt.block_on(tincan_level(&alice, first, messages, inflight));
        let cpu = pair.daemons_cpu().saturating_sub(before);
        tincan.push(Level::new(inflight, wall, latencies, cpu));
    }
    // The daemons stop here, so the rest has both cores to itself.
    drop(pair);

    eprintln!("raw quinn: {round_trips} round trips per level");
    let raw = rt.block_on(raw_quinn(round_trips));
    drop(rt);

    eprintln!("floor: {messages} messages");
    let floor = floor(&dir_path, messages);
    fsyncs.extend(fdatasyncs(&dir_path, 100));
    fsyncs.sort();
    let fsync_p50 = percentile_ms(&fsyncs, 0.5);

    report(&Report {
        messages,
        cpu_model,
        cores,
        load: (load_before, load_average()),
        tincan: &tincan,
        raw: &raw,
        floor,
        fsync_p50,
    });
}

/// Text number `i`: its number, padded to [`TEXT_LEN`] bytes.
fn text(i: usize) -> String {
    let mut text = format!("bench message {i:08} ");
    let pad = TEXT_LEN.saturating_sub(text.len());
    text.extend(std::iter::repeat_n('x', pad));
    text
}

/// Sends texts `first..first + count` from `alice` to Bob, `inflight`
/// control connections at a time, each with `wait`; the wall time from the
/// first send to the last answer, and each send's latency.
async fn tincan_level(
    alice: &Home,
    first: usize,
    count: usize,
    inflight: usize,
) -> (Duration, Vec<Duration>) {
    let mut clients = Vec::new();
    for _ in 0..inflight {
        clients.push(ControlClient::connect(alice).await.expect("control socket"));
    }
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let next = next.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return latencies;
                    }
                    let sent = Instant::now();
                    let request = Request::Send {
                        peer: "Bob".into(),
                        text: text(first + i),
                        wait: true,
                        timeout_secs: Some(120),
                        reply_to: None,
                    };
                    let answer = client
                        .request(&request)
                        .await
                        .unwrap_or_else(|e| panic!("send {}: {e}", first + i));
                    latencies.push(sent.elapsed());
                    let state = answer["state"].as_str();
                    assert!(
                        matches!(state, Some("delivered" | "read")),
                        "not delivered: {answer}"
                    );
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(count);
    for task in tasks {
        latencies.extend(task.await.expect("sender task"));
    }
    (start.elapsed(), latencies)
}

/// A quinn server answering each bidirectional stream's request with
/// [`TEXT_LEN`] bytes, and a client connected to it, both on 127.0.0.1 in
/// this process; the levels of [`LEVELS`] over that one connection.
async fn raw_quinn(count: usize) -> Vec<Level> {
    let (server, client) = bench::raw_quinn_pair();
    let addr = server.local_addr().expect("addr");
    let serving = tokio::spawn(async move {
        let conn = server
            .accept()
            .await
            .expect("incoming")
            .await
            .expect("conn");
        // Like tincan: a task per request stream, read to its end, answer.
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            tokio::spawn(async move {
                if recv.read_to_end(64 * 1024).await.is_err() {
                    return;
                }
                if send.write_all(&[b'r'; TEXT_LEN]).await.is_ok() {
                    let _ = send.finish();
                }
            });
        }
    });
    let conn = client
        .connect(addr, "localhost")
        .expect("connect")
        .await
        .expect("handshake");
    raw_level(&conn, 100, 1).await;
    let mut levels = Vec::new();
    for &inflight in &LEVELS {
        let before = cpu_time("self");
        let (wall, latencies) = raw_level(&conn, count, inflight).await;
        let cpu = cpu_time("self").saturating_sub(before);
        levels.push(Level::new(inflight, wall, latencies, cpu));
    }
    conn.close(0u32.into(), b"done");
    client.wait_idle().await;
    serving.abort();
    levels
}

/// `count` round trips over `conn`, `inflight` at a time.
async fn raw_level(
    conn: &quinn::Connection,
    count: usize,
    inflight: usize,
) -> (Duration, Vec<Duration>) {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..inflight)
        .map(|_| {
            let (conn, next) = (conn.clone(), next.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    let sent = Instant::now();
                    let (mut send, mut recv) = conn.open_bi().await.expect("open stream");
                    send.write_all(&[b'q'; TEXT_LEN]).await.expect("write");
                    send.finish().expect("finish");
                    let answer = recv.read_to_end(64 * 1024).await.expect("answer");
                    assert_eq!(answer.len(), TEXT_LEN);
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(count);
    for task in tasks {
        latencies.extend(task.await.expect("client task"));
    }
    (start.elapsed(), latencies)
}

/// Everything measured, for [`report`].
struct Report<'a> {
    messages: usize,
    cpu_model: String,
    cores: usize,
    /// The 1-minute load average before and after.
    load: (f64, f64),
    tincan: &'a [Level],
    raw: &'a [Level],
    floor: Floor,
    fsync_p50: f64,
}

/// Prints the table, the latency terms and, last, the JSON line.
fn report(r: &Report) {
    let row = |label: &str, cell: &dyn Fn(usize) -> String| {
        let cells: Vec<String> = (0..LEVELS.len()).map(cell).collect();
        println!("| {label} | {} |", cells.join(" | "));
    };
    println!();
    println!(
        "machine: {}, {} cores; load average {:.2} before, {:.2} after",
        r.cpu_model, r.cores, r.load.0, r.load.1
    );
    println!();
    let heads: Vec<String> = LEVELS.iter().map(|k| format!("{k} in flight")).collect();
    println!("| | {} |", heads.join(" | "));
    println!("|---|{}", "---|".repeat(LEVELS.len()));
    row("tincan, msg/s", &|i| format!("{:.0}", r.tincan[i].per_s()));
    row("raw quinn, round trips/s", &|i| {
        format!("{:.0}", r.raw[i].per_s())
    });
    row("tincan / raw quinn", &|i| {
        format!("{:.3}", r.tincan[i].per_s() / r.raw[i].per_s())
    });
    row("tincan latency p50 / p99, ms", &|i| {
        format!("{:.2} / {:.2}", r.tincan[i].ms(0.5), r.tincan[i].ms(0.99))
    });
    row("raw quinn latency p50 / p99, ms", &|i| {
        format!("{:.3} / {:.3}", r.raw[i].ms(0.5), r.raw[i].ms(0.99))
    });
    row("tincan CPU per message, ms (both daemons)", &|i| {
        format!("{:.2}", r.tincan[i].cpu_ms_each())
    });
    row("raw quinn CPU per round trip, ms (both ends)", &|i| {
        format!("{:.3}", r.raw[i].cpu_ms_each())
    });
    let top = r.tincan.len() - 1;
    let (tincan_top, raw_top) = (&r.tincan[top], &r.raw[top]);
    let floor_ratio = tincan_top.per_s() / r.floor.per_s();
    println!();
    println!(
        "floor (seal+sign, verify, open, receipt sign + verify; one fdatasync'd SQLite commit per {COMMIT_EVERY}): {:.0} msg/s ({:.0} µs of cryptography per message, {:.0} µs of CPU per message, {:.2} ms per commit)",
        r.floor.per_s(),
        r.floor.crypto_us_each(),
        r.floor.cpu_us_each(),
        r.floor.commit_ms(),
    );
    println!(
        "tincan at {} in flight / floor: {floor_ratio:.4}",
        tincan_top.inflight
    );
    let (serial, raw_serial) = (&r.tincan[0], &r.raw[0]);
    let target = raw_serial.ms(0.5) + r.fsync_p50 + TARGET_SLACK_MS;
    println!(
        "latency, serial: tincan p50 {:.2} ms (p99 {:.2} ms); raw quinn round trip p50 {:.3} ms + fdatasync p50 {:.3} ms + {TARGET_SLACK_MS} ms = {target:.3} ms",
        serial.ms(0.5),
        serial.ms(0.99),
        raw_serial.ms(0.5),
        r.fsync_p50,
    );
    let mut line = json!({
        "bench": "messages",
        "messages": r.messages,
        "inflight": tincan_top.inflight,
        "msg_per_s": round(tincan_top.per_s(), 1),
        "ratio": round(tincan_top.per_s() / raw_top.per_s(), 4),
        "p50_ms": round(serial.ms(0.5), 3),
        "p99_ms": round(serial.ms(0.99), 3),
        "floor_ratio": round(floor_ratio, 4),
        "raw_per_s": round(raw_top.per_s(), 1),
        "raw_p50_ms": round(raw_serial.ms(0.5), 3),
        "floor_per_s": round(r.floor.per_s(), 1),
        "floor_crypto_us": round(r.floor.crypto_us_each(), 1),
        "floor_cpu_us": round(r.floor.cpu_us_each(), 1),
        "floor_commit_ms": round(r.floor.commit_ms(), 3),
        "raw_round_trips": r.raw[0].latencies.len(),
        "load": [r.load.0, r.load.1],
        "fdatasync_p50_ms": round(r.fsync_p50, 3),
        "target_p50_ms": round(target, 3),
        "cpu": r.cpu_model,
        "cores": r.cores,
    });
    if let Value::Object(map) = &mut line {
        for (t, raw) in r.tincan.iter().zip(r.raw) {
            let k = t.inflight;
            map.insert(format!("msg_per_s_{k}"), json!(round(t.per_s(), 1)));
            map.insert(format!("raw_per_s_{k}"), json!(round(raw.per_s(), 1)));
            map.insert(
                format!("ratio_{k}"),
                json!(round(t.per_s() / raw.per_s(), 4)),
            );
            map.insert(
                format!("cpu_ms_per_msg_{k}"),
                json!(round(t.cpu_ms_each(), 3)),
            );
        }
    }
    println!("{line}");
}
