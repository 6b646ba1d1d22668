//! Benchmark (not a test): one real release `tincan-relay` on 127.0.0.1
//! with its default limits, serving one organisation, and N simulated
//! devices of that organisation in this process ([`fleet`]: real QUIC,
//! real device TLS, real registration, spread over source addresses in
//! 127.0.0.0/8). In one run:
//!
//! 1. **raw quinn handshakes** (the registration baseline, [`raw`]): a
//!    quinn server in this process with the relay's Retry policy; each
//!    handshake is followed by one exchange of a Register's and a
//!    Welcome's size.
//! 2. **registration**: all N devices connect and register, `C` at a time
//!    (`TINCAN_BENCH_CONCURRENCY`, default 256); registrations per second.
//!    Then the bench waits until the relay's directory pushes are over
//!    and reads its resident memory: (RSS after − RSS before) / N is the
//!    memory per registered idle device. The relay's CPU over the next
//!    five idle seconds is printed too (keepalives of N devices).
//! 3. **routing**: node → relay → node, 64 in flight over up to 1,000
//!    sender/receiver pairs (so that no device exceeds the relay's default
//!    50 routes a second): the relay checks the envelope's signature,
//!    forwards it to the receiver's connection, and the receiver answers
//!    with a signed receipt. Against raw quinn request/answer round trips
//!    of the same sizes, 64 in flight on one connection.
//! 4. **reconnect storm**: N / 100 devices (at least one) go offline and
//!    each is sent an envelope, which the relay holds (`Custody`); the
//!    relay is stopped (SIGTERM) and started again on the same home and
//!    port; every device reconnects (`C` at a time). `storm_secs` runs from
//!    the relay's listening line until every device is registered again
//!    and every held envelope has reached its device.
//!
//! It prints a table (absolute figures, baselines, ratios, the issue's
//! targets, CPU model and cores) and, as the last line of stdout, one
//! JSON object (`"bench":"relay_load"`). It judges nothing: only a device
//! that cannot register or a message that is not delivered fails it.
//!
//! ```text
//! cargo bench --bench relay_load                               # 10,000 devices
//! TINCAN_BENCH_DEVICES=300 cargo bench --bench relay_load      # a quick look
//! TINCAN_BENCH_ROUTES=50000 cargo bench --bench relay_load     # routed messages (default 20,000)
//! TINCAN_BENCH_KEEP=1 cargo bench --bench relay_load           # keep the relay's home and log
//! TINCAN_BENCH_RELAY_BIN=/path/tincan-relay cargo bench --bench relay_load  # another relay build
//! ```
//!
//! Progress goes to stderr with the relay's process id, for a profiler
//! (`perf record -g -p PID`). Safety: everything listens on and dials
//! 127.0.0.0/8 only; no mDNS.

#[allow(dead_code, reason = "the daemon helpers serve the other benches")]
#[path = "../tests/common/bench.rs"]
mod bench;
#[path = "../tests/common/cargo.rs"]
mod cargo;
#[path = "relay_load/fleet.rs"]
mod fleet;
#[path = "../relay/tests/common/nats.rs"]
#[allow(dead_code)]
mod nats;
#[path = "relay_load/raw.rs"]
mod raw;
#[path = "relay_load/relay.rs"]
mod relay;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::{cpu_time, env_u64, machine, round, rss_kib};
use fleet::{now_ms, Fleet, EXCHANGE};
use relay::Relay;
use serde_json::json;
use tincan_core::route::{Answer, Register, Route, Routed, Welcome};
use tincan_core::wire::{self, Frame};
use tincan_core::{Content, Envelope, MessageId, OrgKey};
use tincan_transport::entropy::OsEntropy;
use tincan_transport::rpc;
use tokio::sync::Semaphore;

/// Routed messages in flight, and raw round trips in flight.
const INFLIGHT: usize = 64;
/// Most sender/receiver pairs of the routing phase.
const MAX_PAIRS: usize = 1000;
/// Bytes of each routed text.
const TEXT_LEN: usize = 200;

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs bench
    // targets too, without it: a benchmark is not a test, so skip there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("relay_load is a benchmark: run it with `cargo bench --bench relay_load`");
        return;
    }
    raise_fd_limit();
    let n = env_u64("TINCAN_BENCH_DEVICES", 10_000).max(4) as usize;
    let concurrency = env_u64("TINCAN_BENCH_CONCURRENCY", 256).max(1) as usize;
    let routes = env_u64("TINCAN_BENCH_ROUTES", 20_000).max(1) as usize;
    let raw_n = env_u64("TINCAN_BENCH_RAW_HANDSHAKES", n.min(2000) as u64).max(1) as usize;
    // Another build of the relay (an older commit's, to compare) if given.
    let bin = std::env::var_os("TINCAN_BENCH_RELAY_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(bench::relay_bin);
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("relay");
    if std::env::var("TINCAN_BENCH_KEEP").is_ok() {
        eprintln!("keeping {}", dir.path().display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let report = runtime.block_on(run(&bin, &home, n, concurrency, routes, raw_n));
    if std::env::var("TINCAN_BENCH_KEEP").is_ok() {
        let _ = dir.keep();
    }
    print_report(&report);
    // Thousands of connections close at once otherwise; nothing to wait for.
    runtime.shutdown_background();
}

/// The NATS server of `TINCAN_BENCH_ENGINE=nats` (started once, on
/// 127.0.0.1), for the relay to run as a node of a cluster; `None` runs
/// the single-host relay on SQLite.
fn engine_url() -> Option<&'static str> {
    static SERVER: std::sync::OnceLock<Option<nats::NatsServer>> = std::sync::OnceLock::new();
    SERVER
        .get_or_init(|| {
            (std::env::var("TINCAN_BENCH_ENGINE").as_deref() == Ok("nats"))
                .then(nats::NatsServer::start)
        })
        .as_ref()
        .map(|s| s.url.as_str())
}

/// Lifts the soft limit of open files to the hard one (the relay inherits
/// it; it needs one UDP socket, this process one per source address).
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `limit`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// What the run measured.
struct Report {
    devices: usize,
    concurrency: usize,
    rss_before_kib: u64,
    rss_after_kib: u64,
    rss_storm_kib: u64,
    settle: Duration,
    idle_cpu_pct: f64,
    register: Duration,
    raw_handshakes: usize,
    raw_handshake: Duration,
    routes: usize,
    route: Duration,
    raw_route: Duration,
    held: usize,
    storm: Duration,
    retries: u64,
    directory_frames: u64,
    directory_entries: u64,
    cpu_model: String,
    cores: usize,
}

impl Report {
    fn rss_per_device_kb(&self) -> f64 {
        (self.rss_after_kib.saturating_sub(self.rss_before_kib)) as f64 / self.devices as f64
    }
    fn register_per_s(&self) -> f64 {
        self.devices as f64 / self.register.as_secs_f64()
    }
    fn raw_handshakes_per_s(&self) -> f64 {
        self.raw_handshakes as f64 / self.raw_handshake.as_secs_f64()
    }
    fn route_per_s(&self) -> f64 {
        self.routes as f64 / self.route.as_secs_f64()
    }
    fn raw_route_per_s(&self) -> f64 {
        self.routes as f64 / self.raw_route.as_secs_f64()
    }
}

/// Registers devices `range` of `fleet`, `concurrency` at a time.
async fn register_all(
    fleet: &Arc<Fleet>,
    relay: std::net::SocketAddr,
    range: std::ops::Range<usize>,
    concurrency: usize,
) {
    let gate = Arc::new(Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(range.len());
    for i in range {
        let permit = gate.clone().acquire_owned().await.expect("gate");
        let fleet = fleet.clone();
        tasks.push(tokio::spawn(async move {
            let result = fleet.register(i, relay).await;
            drop(permit);
            if let Err(e) = result {
                panic!("device {i} could not register: {e}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("register task");
    }
}

/// Waits until no directory frame has arrived for two seconds; how long
/// that took (the two quiet seconds not counted).
async fn settle(fleet: &Fleet) -> Duration {
    let start = Instant::now();
    let mut last = (u64::MAX, Instant::now());
    loop {
        let now = fleet.counters.directory_frames.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() >= Duration::from_secs(2) {
            return last.1.saturating_duration_since(start);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A sealed 200-byte text from device `from` to device `to` of `fleet`.
fn seal(fleet: &Fleet, from: usize, to: usize) -> Envelope {
    let (a, b) = (&fleet.devices[from].identity, &fleet.devices[to].identity);
    let text = "x".repeat(TEXT_LEN);
    Envelope::seal(
        &a.device,
        &a.cert,
        std::slice::from_ref(&b.cert),
        MessageId::random(&mut OsEntropy),
        now_ms(),
        &Content::Text { text },
        &mut OsEntropy,
    )
    .expect("seal")
}

/// Routes the encoded `frame` from device `from`, once the relay takes it
/// (a rate-limited attempt waits and tries again); the answer.
async fn route_once(fleet: &Fleet, from: usize, frame: &[u8]) -> Answer {
    loop {
        let conn = fleet.devices[from].conn().expect("sender connected");
        let answer = rpc::request_encoded(&conn, frame, EXCHANGE)
            .await
            .expect("relay answers a route");
        let Frame::Answers(answers) = answer else {
            panic!("route answered {answer:?}");
        };
        let answer = answers.into_iter().next().expect("one answer").answer;
        match &answer {
            Answer::Failed(why) if why.contains("rate limited") => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => return answer,
        }
    }
}

/// Routes `count` messages, `INFLIGHT` at a time, over `pairs` pairs
/// (device `i` to device `pairs + i`); the time it took and the encoded
/// sizes of a route and its answer.
async fn route_phase(fleet: &Arc<Fleet>, pairs: usize, count: usize) -> (Duration, usize, usize) {
    let frames: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..pairs)
            .map(|i| {
                let envelope = seal(fleet, i, pairs + i);
                let route = Frame::Route(Route {
                    to: vec![fleet.devices[pairs + i].identity.device_id()],
                    item: Routed::Envelope(Box::new(envelope)),
                });
                wire::encode(&route).expect("encode route")
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let answer_len = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..INFLIGHT)
        .map(|_| {
            let (fleet, frames, next) = (fleet.clone(), frames.clone(), next.clone());
            let answer_len = answer_len.clone();
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return;
                    }
                    let pair = i % pairs;
                    let answer = route_once(&fleet, pair, &frames[pair]).await;
                    let Answer::Receipt(_) = &answer else {
                        panic!("message {i} not delivered: {answer:?}");
                    };
                    let encoded =
                        wire::encode(&Frame::Answers(vec![tincan_core::route::DeviceAnswer {
                            device: fleet.devices[pairs + pair].identity.device_id(),
                            answer,
                        }]))
                        .map_or(0, |b| b.len());
                    answer_len.store(encoded, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("route worker");
    }
    let took = start.elapsed();
    (took, frames[0].len(), answer_len.load(Ordering::Relaxed))
}

async fn run(
    bin: &std::path::Path,
    home: &std::path::Path,
    n: usize,
    concurrency: usize,
    routes: usize,
    raw_n: usize,
) -> Report {
    let (cpu_model, cores) = machine();
    let org = OrgKey::generate(&mut OsEntropy);
    let org_name = "Bench Org";
    eprintln!("creating {n} device identities...");
    let fleet = Arc::new(Fleet::new(&org, org_name, n));
    let sizes = {
        let d = &fleet.devices[0];
        let register = wire::encode(&Frame::Register(Register {
            name: d.identity.name.clone(),
            membership: org
                .issue(org_name, d.identity.user_id(), 0, u64::MAX)
                .expect("membership"),
            lan_addrs: Vec::new(),
            lonely: false,
        }))
        .expect("encode");
        let welcome = wire::encode(&Frame::Welcome(Welcome {
            public_addr: std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
            lease_ttl_ms: 3000,
        }))
        .expect("encode");
        (register.len(), welcome.len())
    };
    eprintln!("raw quinn: {raw_n} handshakes, {concurrency} at a time...");
    let raw_handshake = raw::handshakes(raw_n, concurrency, sizes.0, sizes.1).await;
    let mut relay = Relay::start(bin, home, &org.id().to_string(), 0, engine_url());
    eprintln!("relay pid {} on {}", relay.pid(), relay.addr);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before_kib = rss_kib(relay.pid());
    eprintln!("registering {n} devices, {concurrency} at a time...");
    let start = Instant::now();
    register_all(&fleet, relay.addr, 0..n, concurrency).await;
    let register = start.elapsed();
    eprintln!("registered in {register:.2?}; waiting for directory pushes to end...");
    let settle_time = settle(&fleet).await;
    let rss_after_kib = rss_kib(relay.pid());
    let cpu = cpu_time(&relay.pid().to_string());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle_cpu_pct =
        (cpu_time(&relay.pid().to_string()).saturating_sub(cpu)).as_secs_f64() / 5.0 * 100.0;
    eprintln!(
        "settled after {settle_time:.2?}: relay RSS {rss_before_kib} -> {rss_after_kib} KiB; idle CPU {idle_cpu_pct:.0} %"
    );
    let pairs = (n / 2).min(MAX_PAIRS);
    eprintln!("routing {routes} messages over {pairs} pairs, {INFLIGHT} in flight...");
    let (route, route_len, answer_len) = route_phase(&fleet, pairs, routes).await;
    eprintln!("routed in {route:.2?}; raw quinn round trips...");
    let raw_route = raw::round_trips(routes, INFLIGHT, route_len, answer_len).await;
    // Held mail: the last devices go offline and are each sent one envelope.
    let held = (n / 100).max(1);
    for i in n - held..n {
        fleet.disconnect(i);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (j, to) in (n - held..n).enumerate() {
        let from = j % pairs;
        let envelope = seal(&fleet, from, to);
        fleet
            .counters
            .watched
            .lock()
            .expect("watched")
            .insert(envelope.id);
        let frame = wire::encode(&Frame::Route(Route {
            to: vec![fleet.devices[to].identity.device_id()],
            item: Routed::Envelope(Box::new(envelope)),
        }))
        .expect("encode");
        let answer = route_once(&fleet, from, &frame).await;
        assert!(
            matches!(answer, Answer::Custody),
            "mail for offline device {to} not held: {answer:?}"
        );
    }
    eprintln!("{held} envelopes held; restarting the relay...");
    let port = relay.addr.port();
    relay.terminate();
    fleet.forget_all();
    let mut relay = Relay::start(bin, home, &org.id().to_string(), port, engine_url());
    eprintln!("relay pid {}: reconnect storm...", relay.pid());
    let start = Instant::now();
    register_all(&fleet, relay.addr, 0..n, concurrency).await;
    while !fleet.counters.watched.lock().expect("watched").is_empty() {
        assert!(start.elapsed() < Duration::from_secs(600), "held mail lost");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let storm = start.elapsed();
    eprintln!("storm over in {storm:.2?}; waiting for directory pushes to end...");
    settle(&fleet).await;
    let rss_storm_kib = rss_kib(relay.pid());
    relay.terminate();
    Report {
        devices: n,
        concurrency,
        rss_before_kib,
        rss_after_kib,
        rss_storm_kib,
        settle: settle_time,
        idle_cpu_pct,
        register,
        raw_handshakes: raw_n,
        raw_handshake,
        routes,
        route,
        raw_route,
        held,
        storm,
        retries: fleet.counters.retries.load(Ordering::Relaxed),
        directory_frames: fleet.counters.directory_frames.load(Ordering::Relaxed),
        directory_entries: fleet.counters.directory_entries.load(Ordering::Relaxed),
        cpu_model,
        cores,
    }
}

/// Prints the table and, last, the JSON line.
fn print_report(r: &Report) {
    let register_ratio = r.register_per_s() / r.raw_handshakes_per_s();
    let route_ratio = r.route_per_s() / r.raw_route_per_s();
    println!();
    println!(
        "relay_load: {} devices of one organisation, {} registering at a time; machine: {}, {} cores",
        r.devices, r.concurrency, r.cpu_model, r.cores
    );
    println!();
    println!("| | tincan relay | baseline | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| RSS per registered idle device, KB | {:.1} ({} -> {} KiB) | | | <= 64 |",
        r.rss_per_device_kb(),
        r.rss_before_kib,
        r.rss_after_kib
    );
    println!(
        "| registrations/s vs raw quinn handshakes/s | {:.0} | {:.0} ({} handshakes) | {register_ratio:.3} | >= 0.5 |",
        r.register_per_s(),
        r.raw_handshakes_per_s(),
        r.raw_handshakes
    );
    println!(
        "| routed msgs/s vs raw quinn round trips/s, {INFLIGHT} in flight | {:.0} | {:.0} | {route_ratio:.3} | >= 0.3 |",
        r.route_per_s(),
        r.raw_route_per_s()
    );
    println!(
        "| reconnect storm: all {} back, {} held envelopes delivered, s | {:.2} | | | printed |",
        r.devices,
        r.held,
        r.storm.as_secs_f64()
    );
    println!();
    println!(
        "directory pushes done {:.2} s after the last registration; {} frames, {} entries received in all; relay idle CPU {:.0} % of a core; RSS after the storm {} KiB; {} register attempts retried",
        r.settle.as_secs_f64(),
        r.directory_frames,
        r.directory_entries,
        r.idle_cpu_pct,
        r.rss_storm_kib,
        r.retries
    );
    let line = json!({
        "bench": "relay_load",
        "engine": if engine_url().is_some() { "nats" } else { "sqlite" },
        "devices": r.devices,
        "rss_per_device_kb": round(r.rss_per_device_kb(), 2),
        "register_per_s": round(r.register_per_s(), 1),
        "register_ratio": round(register_ratio, 4),
        "route_per_s": round(r.route_per_s(), 1),
        "route_ratio": round(route_ratio, 4),
        "storm_secs": round(r.storm.as_secs_f64(), 3),
        "raw_handshakes_per_s": round(r.raw_handshakes_per_s(), 1),
        "raw_route_per_s": round(r.raw_route_per_s(), 1),
        "rss_before_kib": r.rss_before_kib,
        "rss_after_kib": r.rss_after_kib,
        "rss_after_storm_kib": r.rss_storm_kib,
        "settle_secs": round(r.settle.as_secs_f64(), 3),
        "idle_cpu_pct": round(r.idle_cpu_pct, 1),
        "directory_frames": r.directory_frames,
        "directory_entries": r.directory_entries,
        "held": r.held,
        "retries": r.retries,
        "concurrency": r.concurrency,
        "cpu": r.cpu_model,
        "cores": r.cores,
    });
    println!("{line}");
}
