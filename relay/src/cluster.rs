//! This relay node among the nodes of its cluster: its node id (made at
//! its first run, kept in `HOME/node.id`) and a heartbeat through the
//! engine, so `status` can list the nodes alive.
//!
//! Every node of a cluster shares the relay key (one fingerprint for users
//! to pin); the node id tells the nodes apart. A single-host relay has a
//! node id too and is a cluster of one.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::engine::RevocationEvent;
use crate::server::Shared;

/// How often a node says it is alive.
pub const BEAT_EVERY: Duration = Duration::from_secs(1);
/// A node not heard from for this long is not listed as alive.
pub const ALIVE_FOR_MS: u64 = 3_000;

/// One relay node as the others see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNode {
    /// Its node id (32 hex characters).
    pub node_id: String,
    /// The QUIC address it listens on.
    pub listen: String,
    /// When it last said it was alive, ms since the Unix epoch.
    pub seen_ms: u64,
}

/// Why the node id could not be loaded or made.
#[derive(Debug, thiserror::Error)]
#[error("node id file {path}: {source}")]
pub struct NodeIdError {
    path: String,
    #[source]
    source: std::io::Error,
}

/// The node id kept in `path`, made (16 random bytes, hex) if there is
/// none or it is not one.
pub fn load_or_create_node_id(path: &Path) -> Result<String, NodeIdError> {
    let err = |source| NodeIdError {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) if is_node_id(text.trim()) => return Ok(text.trim().to_string()),
        Ok(_) => {
            tracing::warn!(path = %path.display(), "replacing a node id file that holds no node id")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| err(std::io::Error::other("the OS gave no randomness")))?;
    let id = data_encoding::HEXLOWER.encode(&bytes);
    tincan_transport::secret::write_secret(path, format!("{id}\n").as_bytes()).map_err(err)?;
    Ok(id)
}

fn is_node_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Learns the devices other nodes register (their certificates and
/// names), so this node knows them too: it routes to them, stores their
/// receipts and lists them in its directory pushes. Ends at shutdown or
/// on a single host, where nobody else registers devices.
pub async fn follow_devices(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let feed = shared.engine.watch_devices().await;
    follow(
        &shared,
        feed,
        shutdown,
        "devices",
        |shared, device| async move {
            let org = device.org;
            shared
                .registry()
                .know(org, device.cert, device.name, device.last_seen_ms);
            shared.dirty(org);
        },
    )
    .await;
}

/// Enforces the revocations other nodes store: a revoked user's devices
/// and removed devices are disconnected and refused here too. Ends at
/// shutdown or on a single host.
pub async fn follow_revocations(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let feed = shared.engine.watch_revocations().await;
    follow(
        &shared,
        feed,
        shutdown,
        "revocations",
        |shared, event| async move {
            match event {
                RevocationEvent::List(list) => crate::revoke::apply(&shared, list, None).await,
                RevocationEvent::Device(org, revocation) => {
                    let device = revocation.device;
                    let removed = shared.registry().remove_device(
                        shared.clock.mono_ms(),
                        org,
                        revocation,
                        None,
                    );
                    if let Some(conn) = removed {
                        tracing::info!(%org, %device, "device removed at another relay node");
                        if let Some(conn) = conn {
                            conn.close(crate::close::DEVICE_REMOVED, b"device removed by its user");
                        }
                        shared.dirty(org);
                    }
                }
            }
        },
    )
    .await;
}

/// Hands every item of an engine feed to `apply`, one at a time, until
/// shutdown or the feed ends (no feed: a single host, nothing to follow).
async fn follow<T, F, Fut>(
    shared: &Arc<Shared>,
    feed: Result<Option<futures_util::stream::BoxStream<'static, T>>, crate::engine::EngineError>,
    mut shutdown: watch::Receiver<bool>,
    what: &'static str,
    apply: F,
) where
    F: Fn(Arc<Shared>, T) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut feed = match feed {
        Ok(Some(feed)) => feed,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(error = %e, what, "cannot follow the cluster");
            return;
        }
    };
    loop {
        let item = tokio::select! {
            next = feed.next() => match next {
                Some(item) => item,
                None => {
                    tracing::error!(what, "the cluster's feed ended");
                    return;
                }
            },
            _ = shutdown.changed() => return,
        };
        apply(shared.clone(), item).await;
    }
}

/// Says every [`BEAT_EVERY`] that this node is alive, until shutdown.
pub async fn beat(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(BEAT_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        let me = ClusterNode {
            node_id: shared.node_id.clone(),
            listen: shared.listen.to_string(),
            seen_ms: shared.clock.wall_ms(),
        };
        if let Err(e) = shared.engine.beat(me).await {
            tracing::warn!(error = %e, "cannot tell the cluster this node is alive");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.id");
        let first = load_or_create_node_id(&path).expect("create");
        assert!(is_node_id(&first));
        assert_eq!(load_or_create_node_id(&path).expect("load"), first);
        std::fs::write(&path, "garbage").expect("write");
        let replaced = load_or_create_node_id(&path).expect("replace");
        assert!(is_node_id(&replaced));
        assert_ne!(replaced, first);
    }
}
