//! tincan-relay: the internet relay of tincan, usable as a library.
//!
//! The relay accepts devices whose membership chain ends at an organisation
//! key it serves, routes sealed items it cannot read between them (one copy
//! per site), keeps durable mailboxes for offline devices, grants branch
//! gateways their site leases and tells devices who is where. The protocol
//! is described in the crate README.
//!
//! # Layout
//! - [`config`]: configuration, home files, parsers for operator input.
//! - [`key`]: the relay key (a tincan identity) and its fingerprint.
//! - [`store`]: SQLite storage (mail, devices, revocations, epochs).
//! - leases: `tincan_core::lease::LeaseTable` (shared with the simulator).
//! - [`registry`]: who is where (devices, connections, sites).
//! - [`server`]: the QUIC endpoint and the connection lifecycle.
//! - [`admission`]: what a connection attempt may cost before it registers
//!   (Retry, handshake cap, per-address rates).
//! - [`register`]: registration checks, Welcome, neighbours.
//! - [`router`]: Route handling, custody, rate limits.
//! - [`flush`]: delivery of stored mail.
//! - [`file`](mod@file): sealed file content of cross-branch transfers (on disk,
//!   per-organisation quota, mail TTL).
//! - [`gateway`]: lease claims and site member lists.
//! - [`revoke`]: revocation lists.
//! - [`devices`]: device removals (`tincan device remove`), signed by user keys.
//! - [`housekeeping`]: directory pushes and periodic rounds.
//! - [`metrics`]: Prometheus metrics and their HTTP endpoint.
//! - [`control`]: the JSON-lines control socket and its client.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admission;
pub mod cluster;
pub mod config;
pub mod control;
pub mod devices;
pub mod engine;
pub mod file;
pub mod flush;
pub mod gateway;
pub mod hop;
pub mod housekeeping;
pub mod key;
pub mod metrics;
pub mod register;
pub mod registry;
pub mod revoke;
pub mod router;
pub mod server;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tincan_core::RelayId;
use tokio::sync::{mpsc, watch};

pub use config::{RelayConfig, RelayHome};
pub use control::StatusView;

/// QUIC application close codes and stream error codes the relay uses.
pub mod close {
    use quinn::VarInt;

    /// Registration refused; the reason is the close reason.
    pub const REFUSED: VarInt = VarInt::from_u32(0x10);
    /// The user was revoked by the organisation.
    pub const REVOKED: VarInt = VarInt::from_u32(0x11);
    /// The device was removed by its user (`tincan device remove`).
    pub const DEVICE_REMOVED: VarInt = VarInt::from_u32(0x15);
    /// The device connected again; this older connection is closed.
    pub const REPLACED: VarInt = VarInt::from_u32(0x12);
    /// No Register within 5 s.
    pub const REGISTER_TIMEOUT: VarInt = VarInt::from_u32(0x13);
    /// The relay is shutting down.
    pub const SHUTDOWN: VarInt = VarInt::from_u32(0x14);
    /// Stream reset code for a malformed or oversize request.
    pub const STREAM_MALFORMED: VarInt = VarInt::from_u32(0x20);
}

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The key could not be loaded or created.
    #[error(transparent)]
    Key(#[from] key::KeyError),
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The storage engine failed while the relay was starting.
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    /// The node id file could not be read or written.
    #[error(transparent)]
    NodeId(#[from] cluster::NodeIdError),
    /// The QUIC endpoint could not be set up.
    #[error(transparent)]
    Endpoint(#[from] server::EndpointError),
    /// The control socket could not be opened.
    #[error(transparent)]
    Control(#[from] control::ServeError),
    /// The metrics listener could not be bound.
    #[error("cannot listen for metrics on {addr}: {source}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// No organisation was given.
    #[error("no organisation to serve: give at least one --org")]
    NoOrg,
}

/// A running relay.
#[derive(Debug)]
pub struct RelayHandle {
    shared: Arc<server::Shared>,
    endpoint: quinn::Endpoint,
    metrics_addr: Option<SocketAddr>,
    control: Option<control::ControlServer>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts a relay: loads (or creates) the key, opens the database, binds
/// the endpoint, the control socket and the metrics listener.
pub async fn start(config: RelayConfig) -> Result<RelayHandle, StartError> {
    if config.orgs.is_empty() {
        return Err(StartError::NoOrg);
    }
    control::ensure_not_running(&config.home.control_socket_path()).await?;
    let (identity, created) = key::load_or_create(&config.home)?;
    let fingerprint = key::fingerprint(&identity);
    if created {
        tracing::info!(%fingerprint, "created a relay key");
    }
    let db_path = config.home.database_path();
    let store = tokio::task::spawn_blocking(move || store::Store::open(&db_path))
        .await
        .map_err(|e| store::StoreError::Task(e.to_string()))??;
    let node_id = cluster::load_or_create_node_id(&config.home.node_id_path())?;
    let engine = engine::open(config.engine.as_ref(), &store).await;
    let mut registry = registry::Registry::new(&config.orgs, config.lease_ttl_ms);
    let (devices, lists, epochs, removed) = engine::restore(engine.as_ref()).await?;
    for list in lists {
        registry.restore_revocations(list);
    }
    for (org, revocation) in removed {
        registry.restore_device_revocation(org, revocation);
    }
    for d in devices {
        registry.know(d.org, d.cert, d.name, d.last_seen_ms);
    }
    for (org, site, epoch) in epochs {
        registry.restore_epoch(org, site, epoch);
    }
    let endpoint = server::bind_endpoint(&identity, config.listen)?;
    let listen = endpoint
        .local_addr()
        .map_err(|source| server::EndpointError::Bind {
            addr: config.listen,
            source,
        })?;
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let metrics_listen = config.metrics;
    let socket_path = config.home.control_socket_path();
    let shared = Arc::new(server::Shared::new(
        config,
        identity.device.clone(),
        fingerprint,
        listen,
        server::Storage {
            engine,
            store,
            node_id,
        },
        registry,
        events_tx,
    ));
    hop::serve(&shared).await?;
    let control = control::serve(&socket_path, shared.clone()).await?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut metrics_addr = None;
    if let Some(addr) = metrics_listen {
        let listener = metrics::bind(addr)
            .await
            .map_err(|source| StartError::Metrics { addr, source })?;
        metrics_addr = listener.local_addr().ok();
        let from = shared.clone();
        let body = Arc::new(move || {
            let online = from.registry().online_count(from.clock.mono_ms());
            from.metrics.devices_online.set(online as i64);
            from.metrics.encode()
        });
        tasks.push(tokio::spawn(metrics::serve(listener, body)));
    }
    tasks.push(tokio::spawn(cluster::beat(
        shared.clone(),
        shutdown_rx.clone(),
    )));
    tasks.push(tokio::spawn(cluster::follow_devices(
        shared.clone(),
        shutdown_rx.clone(),
    )));
    tasks.push(tokio::spawn(cluster::follow_revocations(
        shared.clone(),
        shutdown_rx.clone(),
    )));
    tasks.push(tokio::spawn(housekeeping::run(
        shared.clone(),
        events_rx,
        shutdown_rx,
    )));
    tasks.push(tokio::spawn(server::accept_loop(
        shared.clone(),
        endpoint.clone(),
    )));
    tracing::info!(%listen, %fingerprint, orgs = shared.config.orgs.len(), "relay running");
    Ok(RelayHandle {
        shared,
        endpoint,
        metrics_addr,
        control: Some(control),
        shutdown,
        tasks,
    })
}

impl RelayHandle {
    /// The bound QUIC address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.listen
    }

    /// The bound metrics address, if metrics are served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The relay fingerprint.
    pub fn fingerprint(&self) -> RelayId {
        self.shared.fingerprint
    }

    /// The current status (what `status --json` prints).
    pub async fn status(&self) -> StatusView {
        control::status_view(&self.shared).await
    }

    /// Closes every connection, waits briefly for them to go, and stops.
    /// Stored mail is durable already; nothing else needs saving.
    pub async fn shutdown(mut self) {
        tracing::info!("relay shutting down");
        let _ = self.shutdown.send(true);
        if let Some(control) = self.control.take() {
            control.stop();
        }
        self.endpoint.close(close::SHUTDOWN, b"relay shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(3), self.endpoint.wait_idle()).await;
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        if let Some(control) = self.control.take() {
            control.stop();
        }
        for task in &self.tasks {
            task.abort();
        }
        self.endpoint.close(close::SHUTDOWN, b"relay shutting down");
    }
}
