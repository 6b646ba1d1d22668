//! The control socket (`HOME/relay.sock`): JSON lines over a Unix socket,
//! for `tincan-relay status` and operators' scripts.
//!
//! # Format
//! Request: one JSON object per line, `{"cmd":"status"}`. Answer: one line,
//! `{"ok":true,"data":STATUS}` or `{"ok":false,"error":"..."}`, where
//! STATUS is a [`StatusView`]. A connection may carry several requests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::cluster::ClusterNode;
use crate::server::Shared;

/// Longest request line accepted.
const MAX_LINE: u64 = 64 * 1024;

/// One device in [`OrgStatus`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStatus {
    /// The device id.
    pub device_id: String,
    /// Its user id.
    pub user_id: String,
    /// Its display name.
    pub name: String,
    /// Reachable now (directly or through its site's gateway).
    pub online: bool,
    /// Registered directly with the relay.
    pub direct: bool,
    /// Its live site (hex), when behind a gateway.
    pub site: Option<String>,
}

/// One site in [`OrgStatus`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteStatus {
    /// The site id (hex).
    pub site: String,
    /// The live lease holder, if any.
    pub holder: Option<String>,
    /// The site's current epoch.
    pub epoch: u64,
    /// The devices of the holder's latest list.
    pub members: Vec<String>,
}

/// One served organisation in [`StatusView`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgStatus {
    /// The organisation id.
    pub org_id: String,
    /// Every known device.
    pub devices: Vec<DeviceStatus>,
    /// Every site with a lease epoch.
    pub sites: Vec<SiteStatus>,
    /// Items stored for its devices.
    pub mail: u64,
    /// Bytes of sealed file content stored for it (cross-branch files).
    #[serde(default)]
    pub file_bytes: u64,
}

/// What `tincan-relay status --json` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    /// The relay fingerprint (its RelayId).
    pub fingerprint: String,
    /// The QUIC address it listens on.
    pub listen: String,
    /// Served organisations.
    pub orgs: Vec<OrgStatus>,
    /// Items stored in all.
    pub mail_total: u64,
    /// `"sqlite"` (a single host) or `"nats"` (a node of a cluster).
    pub engine: String,
    /// This relay node's id.
    pub node_id: String,
    /// The relay nodes alive, this one included once it has said so.
    pub cluster: Vec<ClusterNode>,
}

/// Why the control client failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// No relay listens on the socket.
    #[error("no relay is running with home {0} (cannot reach its control socket)")]
    NotRunning(String),
    /// The socket broke or the answer is not what was expected.
    #[error("control socket: {0}")]
    Protocol(String),
    /// The relay answered with an error.
    #[error("relay: {0}")]
    Relay(String),
}

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// The status of a running relay.
pub async fn status_view(shared: &Shared) -> StatusView {
    let counts: BTreeMap<_, _> = shared
        .engine
        .mail_counts()
        .await
        .unwrap_or_default()
        .into_iter()
        .collect();
    let file_bytes: BTreeMap<_, _> = shared
        .store
        .run(|db| db.blob_bytes_by_org())
        .await
        .unwrap_or_default()
        .into_iter()
        .collect();
    let engine = shared.engine.name().to_string();
    let cluster = shared
        .engine
        .cluster(shared.clock.wall_ms())
        .await
        .unwrap_or_default();
    let now = shared.clock.mono_ms();
    let registry = shared.registry();
    let mut org_ids = registry.org_ids();
    org_ids.sort();
    let mut orgs = Vec::new();
    for org in org_ids {
        let Some(state) = registry.org(&org) else {
            continue;
        };
        let mut devices: Vec<DeviceStatus> = state
            .known
            .iter()
            .map(|(d, k)| {
                let direct = state.direct.contains_key(d);
                let site = registry.live_site(now, &org, d);
                DeviceStatus {
                    device_id: d.to_string(),
                    user_id: k.cert.user_id().to_string(),
                    name: k.name.clone(),
                    online: direct || site.is_some(),
                    direct,
                    site: site.map(|s| hex(&s.0)),
                }
            })
            .collect();
        devices.sort_by(|a, b| a.name.cmp(&b.name).then(a.device_id.cmp(&b.device_id)));
        let mut sites: Vec<SiteStatus> = registry
            .leases
            .epochs()
            .filter(|((o, _), _)| *o == org)
            .map(|((_, site), epoch)| SiteStatus {
                site: hex(&site.0),
                holder: registry
                    .leases
                    .holder(now, &(org, *site))
                    .map(|(h, _)| h.to_string()),
                epoch,
                members: state
                    .sites
                    .get(site)
                    .map(|s| s.members.iter().map(|m| m.to_string()).collect())
                    .unwrap_or_default(),
            })
            .collect();
        sites.sort_by(|a, b| a.site.cmp(&b.site));
        orgs.push(OrgStatus {
            org_id: org.to_string(),
            devices,
            sites,
            mail: counts.get(&org).copied().unwrap_or(0),
            file_bytes: file_bytes.get(&org).copied().unwrap_or(0),
        });
    }
    StatusView {
        engine,
        node_id: shared.node_id.clone(),
        cluster,
        fingerprint: shared.fingerprint.to_string(),
        listen: shared.listen.to_string(),
        mail_total: counts.values().sum(),
        orgs,
    }
}

/// A running control socket; dropping it does not remove the file, call
/// [`ControlServer::stop`].
#[derive(Debug)]
pub struct ControlServer {
    task: tokio::task::JoinHandle<()>,
    path: PathBuf,
}

impl ControlServer {
    /// Stops serving and removes the socket file.
    pub fn stop(self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Why the control socket could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Another relay answers on the socket.
    #[error("another relay is already running with home {0}")]
    Running(String),
    /// The socket could not be bound.
    #[error("cannot open control socket {path}: {source}")]
    Io {
        /// The socket path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Fails if a relay already answers on the socket at `path` (checked
/// before the database is opened, and again when serving).
pub async fn ensure_not_running(path: &Path) -> Result<(), ServeError> {
    if tokio::net::UnixStream::connect(path).await.is_ok() {
        let home = path.parent().unwrap_or(path).display().to_string();
        return Err(ServeError::Running(home));
    }
    Ok(())
}

/// Serves the control socket at `path`.
pub async fn serve(path: &Path, shared: Arc<Shared>) -> Result<ControlServer, ServeError> {
    let io = |source| ServeError::Io {
        path: path.display().to_string(),
        source,
    };
    ensure_not_running(path).await?;
    // Nobody answers: a leftover of a killed relay.
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path).map_err(io)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve_client(stream, shared.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(ControlServer {
        task,
        path: path.to_owned(),
    })
}

#[derive(Deserialize)]
struct Request {
    cmd: String,
}

async fn serve_client(stream: tokio::net::UnixStream, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    loop {
        let mut line = String::new();
        let limited = (&mut lines).take(MAX_LINE).read_line(&mut line).await;
        match limited {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(r) if r.cmd == "status" => {
                serde_json::json!({"ok": true, "data": status_view(&shared).await})
            }
            Ok(r) => {
                serde_json::json!({"ok": false, "error": format!("unknown command {:?}", r.cmd)})
            }
            Err(e) => serde_json::json!({"ok": false, "error": format!("bad request: {e}")}),
        };
        let mut out = reply.to_string();
        out.push('\n');
        if write.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Asks the relay of the socket at `path` for its status.
pub async fn status(path: &Path) -> Result<StatusView, ControlError> {
    let home = path.parent().unwrap_or(path).display().to_string();
    let stream = tokio::net::UnixStream::connect(path)
        .await
        .map_err(|_| ControlError::NotRunning(home))?;
    let (read, mut write) = stream.into_split();
    write
        .write_all(b"{\"cmd\":\"status\"}\n")
        .await
        .map_err(|e| ControlError::Protocol(e.to_string()))?;
    let mut line = String::new();
    let read = BufReader::new(read)
        .take(16 << 20)
        .read_line(&mut line)
        .await;
    read.map_err(|e| ControlError::Protocol(e.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_str(&line).map_err(|e| ControlError::Protocol(e.to_string()))?;
    if value["ok"] != true {
        let error = value["error"]
            .as_str()
            .unwrap_or("unknown error")
            .to_string();
        return Err(ControlError::Relay(error));
    }
    serde_json::from_value(value["data"].clone()).map_err(|e| ControlError::Protocol(e.to_string()))
}
