//! What a running relay is configured with, the files of its home
//! directory, and the parsers for the values an operator types.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tincan_core::OrgId;

/// Default lease time to live: core's, which nodes assume until this
/// relay's welcome tells them its own (1.2 s; it was 3 s).
pub const DEFAULT_LEASE_TTL_MS: u64 = tincan_core::lease::DEFAULT_LEASE_TTL_MS;

/// Why an operator-typed value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Neither an org id (32 base32 characters) nor a 64-hex public key.
    #[error("{0:?} is neither an organisation id (32 base32 characters) nor an organisation public key (64 hex characters)")]
    Org(String),
    /// Not a byte size such as `65536`, `64KiB`, `64MiB` or `1GiB`.
    #[error("{0:?} is not a size (examples: 65536, 512KiB, 64MiB, 1GiB)")]
    Size(String),
    /// Not a list of `nats://HOST:PORT` addresses.
    #[error(
        "{0:?} is not a list of NATS servers (example: nats://10.0.0.1:4222,nats://10.0.0.2:4222)"
    )]
    Engine(String),
}

/// Parses `--engine`: one or more `nats://HOST:PORT`, comma-separated.
pub fn parse_engine(text: &str) -> Result<Vec<String>, ParseError> {
    let urls: Vec<String> = text
        .split(',')
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    let valid = |u: &String| {
        u.strip_prefix("nats://").is_some_and(|rest| {
            rest.rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
        })
    };
    if urls.is_empty() || !urls.iter().all(valid) {
        return Err(ParseError::Engine(text.to_string()));
    }
    Ok(urls)
}

/// Parses an organisation given as its id or as its public key in hex.
pub fn parse_org(text: &str) -> Result<OrgId, ParseError> {
    let text = text.trim();
    if text.len() == 64 {
        let key = data_encoding::HEXLOWER_PERMISSIVE
            .decode(text.as_bytes())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| ParseError::Org(text.to_string()))?;
        return Ok(OrgId::from_public_key(&key));
    }
    text.parse::<OrgId>()
        .map_err(|_| ParseError::Org(text.to_string()))
}

/// Parses a byte size with an optional binary (KiB, MiB, GiB) or decimal
/// (KB, MB, GB) suffix.
pub fn parse_size(text: &str) -> Result<u64, ParseError> {
    let bad = || ParseError::Size(text.to_string());
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(factor).ok_or_else(bad)
}

/// The files of a relay home directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayHome {
    root: PathBuf,
}

impl RelayHome {
    /// A home rooted at `root` (not created yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The platform data directory `tincan-relay`, if the OS has one.
    pub fn platform_default() -> Option<Self> {
        directories::ProjectDirs::from("", "", "tincan-relay").map(|d| Self::new(d.data_dir()))
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// This relay node's id among the nodes of its cluster.
    pub fn node_id_path(&self) -> PathBuf {
        self.root.join("node.id")
    }

    /// The relay's secret key (0600).
    pub fn key_path(&self) -> PathBuf {
        self.root.join("relay.key")
    }

    /// The SQLite database (mail, devices, revocations, epochs).
    pub fn database_path(&self) -> PathBuf {
        self.root.join("relay.db")
    }

    /// Sealed file content of cross-branch transfers
    /// (`files/ORG/TRANSFER/ITEM`; rows in the database say what is there).
    pub fn files_dir(&self) -> PathBuf {
        self.root.join("files")
    }

    /// The control socket of the running relay.
    pub fn control_socket_path(&self) -> PathBuf {
        self.root.join("relay.sock")
    }

    /// Creates the directory (0700: it holds the key).
    pub fn create(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.root)?;
        tincan_transport::secret::restrict_dir(&self.root)
    }
}

/// Everything `tincan-relay run` needs.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// The home directory.
    pub home: RelayHome,
    /// UDP address of the QUIC endpoint.
    pub listen: SocketAddr,
    /// Organisations served; devices of any other are refused.
    pub orgs: Vec<OrgId>,
    /// TCP address of the Prometheus endpoint, if any.
    pub metrics: Option<SocketAddr>,
    /// How long stored mail is kept for an offline device.
    pub mail_ttl: Duration,
    /// Most stored items per device.
    pub mailbox_quota: u64,
    /// Most stored bytes per device.
    pub mailbox_quota_bytes: u64,
    /// Routes per second one device may send (token bucket, burst 2×);
    /// its other requests (besides file transfers) have a bucket of the
    /// same rate.
    pub rate: u32,
    /// Lease time to live, ms.
    pub lease_ttl_ms: u64,
    /// Most connections (registered or not) from one source IP.
    pub max_conns_per_ip: usize,
    /// Most bytes of sealed file content stored per organisation (files
    /// sent across branches, kept for [`Self::mail_ttl`]).
    pub file_quota_bytes: u64,
    /// Most bytes of stored mail per organisation (each item counted once,
    /// however many devices it waits for); beyond it senders are told to
    /// retry later.
    pub org_mail_quota_bytes: u64,
    /// Most devices one user may have known to the relay (a member could
    /// otherwise certify devices without end, each with a mailbox).
    pub max_devices_per_user: usize,
    /// Most connections not yet registered (TLS handshake or waiting for
    /// `Register`) at once; beyond it new connection attempts are refused
    /// before any crypto, so strangers cannot starve members of CPU.
    pub max_handshakes: usize,
    /// Above this many unregistered connections, a new attempt from an
    /// address that has not proved it can receive (QUIC address
    /// validation) is sent a stateless Retry first; 0 retries always.
    pub retry_above: usize,
    /// New connection attempts per second one address (IPv4 address,
    /// IPv6 /64) may make, in bursts of twice that.
    pub conn_rate_per_ip: u32,
    /// The NATS JetStream cluster this relay is a node of; `None` keeps
    /// everything in `HOME/relay.db` (a single-host relay).
    pub engine: Option<crate::engine::NatsEngineConfig>,
}

impl RelayConfig {
    /// The mailbox limits of [`crate::store::Db::put_mail`].
    pub fn mail_quota(&self) -> crate::store::MailQuota {
        crate::store::MailQuota {
            items: self.mailbox_quota,
            bytes: self.mailbox_quota_bytes,
            org_bytes: self.org_mail_quota_bytes,
        }
    }
}

impl RelayConfig {
    /// A configuration with the defaults of the CLI.
    pub fn new(home: RelayHome, listen: SocketAddr, orgs: Vec<OrgId>) -> Self {
        Self {
            home,
            listen,
            orgs,
            metrics: None,
            mail_ttl: Duration::from_secs(7 * 24 * 3600),
            mailbox_quota: 10_000,
            mailbox_quota_bytes: 64 << 20,
            rate: 50,
            lease_ttl_ms: DEFAULT_LEASE_TTL_MS,
            max_conns_per_ip: 64,
            file_quota_bytes: 1 << 30,
            org_mail_quota_bytes: 1 << 30,
            max_devices_per_user: 32,
            max_handshakes: 512,
            retry_above: 32,
            conn_rate_per_ip: 50,
            engine: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orgs_parse_as_ids_or_hex_keys() {
        let key = [7u8; 32];
        let id = OrgId::from_public_key(&key);
        assert_eq!(parse_org(&id.to_string()), Ok(id));
        assert_eq!(parse_org(&data_encoding::HEXLOWER.encode(&key)), Ok(id));
        assert!(parse_org("acme").is_err());
        assert!(parse_org(&"z".repeat(64)).is_err());
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("10 kb"), Ok(10_000));
        assert_eq!(parse_size("123"), Ok(123));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
    }

    #[test]
    fn engines_parse_as_nats_urls() {
        assert_eq!(
            parse_engine("nats://a:4222, nats://10.0.0.2:4223"),
            Ok(vec!["nats://a:4222".into(), "nats://10.0.0.2:4223".into()])
        );
        assert!(parse_engine("").is_err());
        assert!(parse_engine("a:4222").is_err());
        assert!(parse_engine("nats://a").is_err());
        assert!(parse_engine("nats://a:99999").is_err());
    }
}
