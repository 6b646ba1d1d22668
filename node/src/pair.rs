//! Enrolling this home as a new device of an existing user (`tincan
//! device add CODE --peer ADDR`), before it runs a node.
//!
//! The home's device key is kept (or made, if the home is new); only its
//! certificate changes: the other device certifies it with the user key
//! after both proved the pairing code to each other (`tincan_core::pairing`,
//! SPAKE2 over a mutually authenticated QUIC connection with the pairing
//! ALPN). Then this home holds: the new certificate (without the user
//! secret), the user's name, the organisation membership (memberships are
//! per user), the relay if the other device has one, the user's other
//! devices, and the other device's address as a static peer.
//!
//! A home that already has history belongs to someone: it is refused
//! unless `force`, which moves the old database aside
//! (`tincan.db.before-pairing-UNIXTIME`) instead of mixing two users'
//! conversations, and makes a fresh device key (so a removed device can be
//! paired again). Nothing is written unless pairing succeeded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::QuicClientConfig;
use tincan_core::pairing::{PairError, PairJoin, PairMessage, PairRefusal, PairingCode};
use tincan_core::wire::Frame;
use tincan_core::Identity;

use crate::config::FileConfig;
use crate::event::JoinedView;
use crate::home::Home;
use crate::keystore::{self, KeystoreError, OsEntropy};
use crate::store::{OwnDeviceRecord, PeerRecord, Store};

/// How long `device add` without `--peer` looks for the other device.
const DISCOVERY_WAIT: Duration = Duration::from_secs(5);
/// How long each pairing step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(15);

/// What `tincan device add` is given.
#[derive(Clone, Debug)]
pub struct JoinOptions {
    /// The code shown by `tincan device pair` on the other device.
    pub code: String,
    /// Where that device listens; `None`: look for a device showing a
    /// code on the LAN (mDNS).
    pub peer: Option<SocketAddr>,
    /// What to call this device.
    pub label: String,
    /// Pair even though this home has history of its own.
    pub force: bool,
}

/// Why enrolling failed (nothing was written).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// Pairing itself failed (bad or wrong code, refused).
    #[error(transparent)]
    Pair(#[from] PairError),
    /// A node runs on this home.
    #[error("a tincan node is running with home {0}; stop it first (device add enrols the home before it runs)")]
    Running(String),
    /// The home has its own history.
    #[error("this home already has its own identity with {messages} messages of history; pairing makes it a device of another user. Pass --force to move that history aside (to tincan.db.before-pairing-*) and pair anyway")]
    HasHistory {
        /// How many messages.
        messages: u64,
    },
    /// The home already belongs to the user being paired with.
    #[error("this home is already a device of that user")]
    AlreadyPaired,
    /// No device showing a code was found on the LAN, or several were.
    #[error("{0}; give --peer HOST:PORT (`tincan status` on the other device shows its port)")]
    NotFound(String),
    /// LAN discovery failed.
    #[error(transparent)]
    Discovery(#[from] crate::discovery::DiscoveryError),
    /// The other device could not be reached.
    #[error("cannot reach the other device at {addr}: {reason}")]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The identity could not be read or written.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The membership could not be stored.
    #[error(transparent)]
    Org(#[from] crate::org::OrgError),
    /// The config could not be updated.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> JoinError + '_ {
    move |source| JoinError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Pairs this home with the device at `options.peer`.
pub async fn join(home: &Home, options: &JoinOptions) -> Result<JoinedView, JoinError> {
    let code = PairingCode::parse(&options.code)?;
    home.create().map_err(io_err(home.root()))?;
    let Some(lock) = home.try_lock().map_err(io_err(&home.lock_path()))? else {
        return Err(JoinError::Running(home.root().display().to_string()));
    };
    let existing = match keystore::load(home) {
        Ok(identity) => Some(identity),
        Err(KeystoreError::Missing(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let history = if home.database_path().exists() {
        Store::open(&home.database_path())?.message_count()?
    } else {
        0
    };
    if history > 0 && !options.force {
        return Err(JoinError::HasHistory { messages: history });
    }
    // Until paired, a throwaway user certifies the device key for TLS.
    // `--force` also makes a new device key: a removed device can never
    // come back under its old one.
    let provisional = match (&existing, options.force) {
        (Some(identity), false) => identity.clone(),
        _ => Identity::generate("new device", crate::org::now_secs(), &mut OsEntropy),
    };
    let peer = match options.peer {
        Some(peer) => peer,
        None => {
            let found = crate::discovery::find_pairing_hosts(DISCOVERY_WAIT).await?;
            match found.as_slice() {
                [one] => *one,
                [] => {
                    return Err(JoinError::NotFound(
                        "no device showing a pairing code was found on this LAN".into(),
                    ))
                }
                many => {
                    let list: Vec<String> = many.iter().map(ToString::to_string).collect();
                    return Err(JoinError::NotFound(format!(
                        "several devices show a pairing code ({})",
                        list.join(", ")
                    )));
                }
            }
        }
    };
    let grant = exchange(&provisional, &code, peer, &options.label).await?;
    if existing
        .as_ref()
        .is_some_and(|id| id.user_id() == grant.cert.user_id() && id.user.is_some())
    {
        return Err(JoinError::AlreadyPaired);
    }
    let name = keystore::validate_name(&grant.name)?;
    // Checked before anything is written: an unusable membership is left
    // out rather than failing half-way.
    let membership = grant
        .membership
        .clone()
        .filter(|m| m.user == grant.cert.user_id() && m.verify(crate::org::now_secs()).is_ok());
    let identity = Identity {
        user: None,
        device: provisional.device.clone(),
        cert: grant.cert.clone(),
        name: name.clone(),
    };

    // Paired: from here on, write.
    if history > 0 {
        let aside = home.root().join(format!(
            "tincan.db.before-pairing-{}",
            crate::org::now_secs()
        ));
        std::fs::rename(home.database_path(), &aside).map_err(io_err(&aside))?;
        for ext in ["db-wal", "db-shm"] {
            let _ = std::fs::remove_file(home.database_path().with_extension(ext));
        }
    }
    let path = home.identity_path();
    crate::platform::write_secret(&path, &identity.to_bytes()).map_err(io_err(&path))?;
    if let Some(membership) = &membership {
        crate::org::save_membership(home, &identity, membership)?;
    }
    let mut config = FileConfig::load(home)?;
    let relay = grant.relay.is_some() && config.relay.is_none();
    if relay {
        config.relay = grant.relay.clone();
    }
    // A peer given by hand is kept as a static peer (found by mDNS, it will
    // be found again).
    let peer_text = peer.to_string();
    if options.peer.is_some() && !config.peers.contains(&peer_text) {
        config.peers.push(peer_text.clone());
    }
    config.save(home)?;

    let store = Store::open(&home.database_path())?;
    let host_key = grant
        .roster
        .certs
        .iter()
        .find(|c| c.device_id() != identity.device_id())
        .map(|c| c.device_key);
    for cert in &grant.roster.certs {
        let device = cert.device_id();
        if device != identity.device_id() {
            let addrs = if Some(cert.device_key) == host_key {
                vec![peer_text.clone()]
            } else {
                Vec::new()
            };
            store.upsert_peer(&PeerRecord {
                device,
                user: cert.user_id(),
                name: name.clone(),
                cert: cert.to_bytes(),
                addrs,
                last_seen_ms: 0,
            })?;
        }
        let label = grant
            .roster
            .labels
            .iter()
            .find(|(d, _)| *d == device)
            .and_then(|(_, l)| keystore::validate_name(l).ok())
            .unwrap_or_else(|| {
                if device == identity.device_id() {
                    options.label.clone()
                } else {
                    "device".into()
                }
            });
        store.upsert_own_device(&OwnDeviceRecord {
            device,
            label,
            added_at_ms: cert.issued_at.saturating_mul(1000),
        })?;
    }
    for revocation in &grant.roster.revocations {
        store.save_device_revocation(revocation)?;
    }
    drop(lock);
    Ok(JoinedView {
        user_id: identity.user_id().to_string(),
        device_id: identity.device_id().to_string(),
        name,
        label: options.label.clone(),
        org: membership.as_ref().map(|m| m.org_id().to_string()),
        relay,
        devices: grant.roster.certs.len().max(1),
    })
}

/// The pairing conversation itself, on one connection.
async fn exchange(
    provisional: &Identity,
    code: &PairingCode,
    addr: SocketAddr,
    label: &str,
) -> Result<tincan_core::pairing::PairGrant, JoinError> {
    let connect_err = |reason: String| JoinError::Connect { addr, reason };
    let tls =
        crate::tls::pairing_client_config(provisional).map_err(|e| connect_err(e.to_string()))?;
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| connect_err(e.to_string()))?;
    let bind: SocketAddr = if addr.is_ipv6() {
        "[::]:0".parse().expect("literal")
    } else {
        "0.0.0.0:0".parse().expect("literal")
    };
    let mut endpoint = quinn::Endpoint::client(bind).map_err(|e| connect_err(e.to_string()))?;
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    let conn = tokio::time::timeout(
        STEP_TIMEOUT,
        endpoint
            .connect(addr, crate::tls::SERVER_NAME)
            .map_err(|e| connect_err(e.to_string()))?,
    )
    .await
    .map_err(|_| connect_err("no answer".into()))?
    .map_err(|e| connect_err(e.to_string()))?;
    let host = crate::tls::peer_device_cert(&conn)
        .ok_or_else(|| connect_err("it presented no valid device certificate".into()))?;
    let result = steps(&conn, provisional, code, host.device_key, label).await;
    conn.close(0u32.into(), b"pairing done");
    endpoint.wait_idle().await;
    result
}

async fn steps(
    conn: &quinn::Connection,
    provisional: &Identity,
    code: &PairingCode,
    host_key: [u8; 32],
    label: &str,
) -> Result<tincan_core::pairing::PairGrant, JoinError> {
    let (mut join, start) = PairJoin::start(code, &provisional.device, host_key, &mut OsEntropy);
    let challenge = step(conn, start).await?;
    let confirm = match join.handle_challenge(challenge, label) {
        Ok(confirm) => confirm,
        Err(PairError::WrongCode) => {
            // Tell the other side at once, so it shows the failure too.
            let _ = step(conn, PairMessage::Refused(PairRefusal::WrongCode)).await;
            return Err(PairError::WrongCode.into());
        }
        Err(e) => return Err(e.into()),
    };
    let grant = step(conn, confirm).await?;
    Ok(join.handle_grant(grant)?)
}

async fn step(conn: &quinn::Connection, message: PairMessage) -> Result<PairMessage, JoinError> {
    match crate::rpc::request(conn, &Frame::Pair(message), STEP_TIMEOUT).await {
        Ok(Frame::Pair(answer)) => Ok(answer),
        Ok(other) => Err(PairError::Protocol(format!("unexpected {}", other.name())).into()),
        Err(e) => Err(PairError::Protocol(e.to_string()).into()),
    }
}
