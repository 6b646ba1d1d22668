//! The command line of `tincan-relay` (clap): global `--home`, and the
//! `init`, `run` and `status` commands.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tincan_core::OrgId;
use tincan_relay::config::{parse_engine, parse_org, parse_size, DEFAULT_LEASE_TTL_MS};

/// The tincan internet relay: bridges branch offices and roaming laptops,
/// routing end-to-end encrypted messages it cannot read.
#[derive(Debug, Parser)]
#[command(name = "tincan-relay", version, about)]
pub struct Cli {
    /// The relay's home directory (key, database, control socket).
    #[arg(long, global = true, env = "TINCAN_RELAY_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the relay key and print its fingerprint.
    Init {
        /// Print JSON: {"fingerprint"}.
        #[arg(long)]
        json: bool,
        /// Replace an existing key (devices that pinned it will refuse the relay).
        #[arg(long)]
        force: bool,
    },
    /// Run the relay.
    Run(Box<RunArgs>),
    /// Show devices, sites, leases and stored mail of the running relay.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Checks `--engine` at parse time (clap would take a `Vec` for several
/// values); `main` splits it with [`parse_engine`] again.
fn engine_urls(text: &str) -> Result<String, tincan_relay::config::ParseError> {
    parse_engine(text).map(|_| text.to_string())
}

/// Options of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// UDP address to listen on, e.g. 0.0.0.0:7443.
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Organisation to serve: its id (32 base32 characters) or its public key
    /// (64 hex characters). Repeat for several organisations.
    #[arg(long = "org", required = true, num_args = 1.., value_name = "ORG", value_parser = parse_org)]
    pub orgs: Vec<OrgId>,
    /// Serve Prometheus metrics on this TCP address (GET /metrics).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Days stored mail is kept for an offline device.
    #[arg(long, default_value_t = 7, value_name = "DAYS")]
    pub mail_ttl_days: u64,
    /// Most stored items per device.
    #[arg(long, default_value_t = 10_000, value_name = "ITEMS")]
    pub mailbox_quota: u64,
    /// Most stored bytes per device (e.g. 64MiB).
    #[arg(long, default_value = "64MiB", value_parser = parse_size, value_name = "SIZE")]
    pub mailbox_quota_bytes: u64,
    /// Routes per second one device may send (bursts of twice that), and
    /// as many other requests in a second bucket.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub rate: u32,
    /// Lease time to live in ms (gateways renew every third of it; nodes
    /// take it from the relay's welcome).
    #[arg(long, default_value_t = DEFAULT_LEASE_TTL_MS, value_name = "MS", hide = true)]
    pub lease_ttl_ms: u64,
    /// Most bytes of file content stored per organisation (files sent
    /// across branches wait here for the mail TTL; e.g. 1GiB).
    #[arg(long, default_value = "1GiB", value_parser = parse_size, value_name = "SIZE")]
    pub file_quota_bytes: u64,
    /// Most connections from one source IP address.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_conns_per_ip: usize,
    /// Most bytes of stored mail per organisation, each item counted once
    /// however many devices it waits for (e.g. 1GiB).
    #[arg(long, default_value = "1GiB", value_parser = parse_size, value_name = "SIZE")]
    pub org_mail_quota_bytes: u64,
    /// Most devices per user; the next one is refused at registration.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub max_devices_per_user: usize,
    /// Most connections not registered yet (handshaking) at once; further
    /// attempts are refused until some finish.
    #[arg(long, default_value_t = 512, value_name = "N")]
    pub max_handshakes: usize,
    /// Above this many handshaking connections, new clients must first
    /// prove their address with a QUIC Retry (0: always).
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub retry_above: usize,
    /// New connection attempts per second from one address (bursts of
    /// twice that).
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub conn_rate_per_ip: u32,
    /// Run as a node of a relay cluster whose state lives in NATS
    /// JetStream: one or more servers of the cluster, comma-separated
    /// (nats://HOST:PORT,...). Every node shares the relay key (copy
    /// relay.key into each node's home). Without it, the relay keeps
    /// everything in HOME/relay.db. `run` keeps retrying until JetStream
    /// answers.
    #[arg(long, value_name = "URLS", value_parser = engine_urls)]
    pub engine: Option<String>,
    /// Copies of every stream and bucket in the cluster (3 for a cluster
    /// of three NATS servers; 1 for a single server).
    #[arg(long, default_value_t = 3, value_name = "N", requires = "engine")]
    pub engine_replicas: usize,
    /// Accepted for symmetry with the other commands; `run` prints logs.
    #[arg(long, hide = true)]
    pub json: bool,
}
