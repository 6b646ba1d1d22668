//! The QUIC server: the endpoint, the connection lifecycle (handshake,
//! registration, streams, departure) and the state every task shares.
//!
//! # Connection lifecycle
//! 1. An `Incoming` is judged before any crypto ([`crate::admission`]:
//!    stateless Retry under load, a cap on unregistered connections,
//!    per-address rate and connection limits); an admitted one must finish
//!    its TLS handshake within [`HANDSHAKE_TIMEOUT`] with a valid device
//!    certificate.
//! 2. The first bidirectional stream must carry `Register` within
//!    [`REGISTER_TIMEOUT`] (see [`crate::register`]).
//! 3. Afterwards every stream is one request and one answer
//!    ([`tincan_transport::rpc`]); streams are served concurrently, bounded by
//!    the transport's stream limit.
//! 4. When the connection ends, the device's registration (if still this
//!    connection's) and its leases end.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quinn::crypto::rustls::QuicServerConfig;
use tincan_core::wire::{self, Frame};
use tincan_core::{DeviceId, OrgId, RelayId, UserId};
use tincan_transport::rpc;
use tokio::sync::mpsc;

use crate::admission::{Admission, Verdict};
use crate::config::RelayConfig;
use crate::engine::RelayStore;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::router::TokenBucket;
use crate::store::Store;
use crate::{close, gateway, register, revoke, router};

/// Longest a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a connection may stay unregistered.
pub const REGISTER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a request may take to arrive once its stream is open.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent bidirectional streams a device may open.
const MAX_STREAMS: u32 = 32;
/// Bytes one stream may have in flight towards the relay: a sealed file
/// chunk of an upload in one go.
const FILE_STREAM_WINDOW: u32 = 1024 * 1024 + 64 * 1024;
/// Idle timeout of a connection (clients keep alive every second).
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// Two clocks: monotonic ms for leases, Unix ms for storage.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// A clock started now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    /// Monotonic ms since start (never 0).
    pub fn mono_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }

    /// Unix time, ms.
    pub fn wall_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }

    /// Unix time, s.
    pub fn wall_secs(&self) -> u64 {
        self.wall_ms() / 1000
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// What tasks ask the housekeeping actor to do.
#[derive(Debug, Clone, Copy)]
pub enum Event {
    /// The devices or reachability of an organisation changed: push its
    /// directory soon (debounced).
    Dirty(OrgId),
}

/// Where a relay keeps things: the engine (this host's SQLite, or the
/// cluster's NATS JetStream) and this host's own SQLite store.
#[derive(Debug)]
pub struct Storage {
    /// Mail, devices, revocations and epochs.
    pub engine: Arc<dyn RelayStore>,
    /// Rows of the sealed file content kept on this host.
    pub store: Store,
    /// This relay node's id (`HOME/node.id`).
    pub node_id: String,
}

/// State shared by every task of a running relay.
#[derive(Debug)]
pub struct Shared {
    /// The configuration.
    pub config: RelayConfig,
    /// The relay's fingerprint.
    pub fingerprint: RelayId,
    /// The relay's signing key (its fingerprint's key): signs lease grants,
    /// which gateways show their LAN as proof.
    pub key: tincan_core::DeviceKey,
    /// The bound QUIC address.
    pub listen: SocketAddr,
    /// What the relay keeps (mail, devices, revocations, epochs): SQLite
    /// on one host, NATS JetStream in a cluster.
    pub engine: Arc<dyn RelayStore>,
    /// This host's own SQLite store: the rows of the sealed file content
    /// under `HOME/files`, which stays on the host that received it.
    pub store: Store,
    /// This relay node's id among the nodes of its cluster.
    pub node_id: String,
    registry: Mutex<Registry>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Route rate limits per device.
    pub limits: Mutex<HashMap<DeviceId, TokenBucket>>,
    /// Rate limits per device of the other requests (same rate).
    pub request_limits: Mutex<HashMap<DeviceId, TokenBucket>>,
    /// Connections with a flush in progress.
    pub flushing: Mutex<HashSet<usize>>,
    /// Admission of new connections (per-address and handshake limits).
    admission: Mutex<Admission>,
    /// Directory pushes in flight
    /// ([`crate::housekeeping::DIRECTORY_PUSHES`] at most).
    pub directory_pushes: tokio::sync::Semaphore,
    /// To the housekeeping actor.
    pub events: mpsc::UnboundedSender<Event>,
    /// The clocks.
    pub clock: Clock,
}

impl Shared {
    /// Builds the shared state.
    pub(crate) fn new(
        config: RelayConfig,
        key: tincan_core::DeviceKey,
        fingerprint: RelayId,
        listen: SocketAddr,
        storage: Storage,
        registry: Registry,
        events: mpsc::UnboundedSender<Event>,
    ) -> Self {
        Self {
            config,
            key,
            fingerprint,
            listen,
            engine: storage.engine,
            store: storage.store,
            node_id: storage.node_id,
            registry: Mutex::new(registry),
            metrics: Arc::new(Metrics::new()),
            limits: Mutex::new(HashMap::new()),
            request_limits: Mutex::new(HashMap::new()),
            flushing: Mutex::new(HashSet::new()),
            admission: Mutex::new(Admission::new(Instant::now())),
            directory_pushes: tokio::sync::Semaphore::new(crate::housekeeping::DIRECTORY_PUSHES),
            events,
            clock: Clock::new(),
        }
    }

    /// The registry, locked (held briefly, never across an await).
    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a token of `device`'s bucket for requests other than routes
    /// ([`RelayConfig::rate`] per second, bursts of twice that).
    pub fn take_request_token(&self, device: DeviceId) -> bool {
        let rate = self.config.rate;
        let now = Instant::now();
        self.request_limits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(device)
            .or_insert_with(|| TokenBucket::new(rate, now))
            .take(rate, now)
    }

    /// The admission state, locked (held briefly, never across an await).
    pub fn admission(&self) -> MutexGuard<'_, Admission> {
        self.admission.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for a directory push to `org`.
    pub fn dirty(&self, org: OrgId) {
        let _ = self.events.send(Event::Dirty(org));
    }
}

/// A registered device's connection, as stream handlers see it.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Its organisation.
    pub org: OrgId,
    /// The device.
    pub device: DeviceId,
    /// Its user.
    pub user: UserId,
    /// The connection.
    pub conn: quinn::Connection,
}

/// Why the endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The TLS identity could not be built.
    #[error("tls: {0}")]
    Tls(#[from] tincan_transport::tls::TlsIdentityError),
    /// The QUIC configuration was refused.
    #[error("quic configuration: {0}")]
    Config(String),
    /// The UDP socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Binds the relay's QUIC endpoint with the device TLS identity of `key`.
pub fn bind_endpoint(
    key: &tincan_core::Identity,
    listen: SocketAddr,
) -> Result<quinn::Endpoint, EndpointError> {
    let (server_tls, _) = tincan_transport::tls::rustls_configs(key)?;
    let mut transport = quinn::TransportConfig::default();
    // Devices only use bidirectional request/answer streams; each is read
    // up to one frame, and the windows bound what one peer can pin.
    transport.max_concurrent_uni_streams(0u32.into());
    transport.max_concurrent_bidi_streams(MAX_STREAMS.into());
    // A stream may carry a whole sealed file chunk (1 MiB + tag) of an
    // upload; the connection window still bounds what one device pins.
    transport.stream_receive_window(quinn::VarInt::from_u32(FILE_STREAM_WINDOW));
    transport.receive_window(quinn::VarInt::from_u32(8 * FILE_STREAM_WINDOW));
    transport.max_idle_timeout(Some(
        IDLE_TIMEOUT
            .try_into()
            .map_err(|_| EndpointError::Config("idle timeout".into()))?,
    ));
    let crypto =
        QuicServerConfig::try_from(server_tls).map_err(|e| EndpointError::Config(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(transport));
    tincan_transport::quic::bind(Some(server), listen).map_err(|source| EndpointError::Bind {
        addr: listen,
        source,
    })
}

pub use crate::admission::flood_key;

/// Accepts connections until the endpoint closes, judging each attempt
/// first ([`crate::admission`]).
pub async fn accept_loop(shared: Arc<Shared>, endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        let ip = flood_key(incoming.remote_address().ip());
        let validated = incoming.remote_address_validated();
        let verdict = shared
            .admission()
            .judge(&shared.config, ip, validated, Instant::now());
        match verdict {
            Verdict::Accept => {
                shared.metrics.handshakes_pending.inc();
                let slot = Slot {
                    shared: shared.clone(),
                    ip,
                    registered: false,
                };
                tokio::spawn(run_connection(shared.clone(), incoming, slot));
            }
            Verdict::Retry => {
                shared.metrics.retries.inc();
                if let Err(e) = incoming.retry() {
                    // Only when the attempt carried a token already, which
                    // `validated` rules out; refuse rather than serve it.
                    tracing::debug!(error = %e, "retry impossible; refused");
                    e.into_incoming().refuse();
                }
            }
            Verdict::Refuse(reason) => {
                shared.metrics.refused(reason);
                tracing::debug!(%ip, reason, "connection attempt refused");
                incoming.refuse();
            }
        }
    }
}

/// An admitted connection's place in [`Admission`]: pending until
/// [`Slot::registered`], given back when dropped.
struct Slot {
    shared: Arc<Shared>,
    ip: IpAddr,
    registered: bool,
}

impl Slot {
    /// The device registered: its handshake slot is free for others.
    fn registered(&mut self) {
        if !self.registered {
            self.registered = true;
            self.shared.admission().registered();
            self.shared.metrics.handshakes_pending.dec();
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.registered {
            self.shared.metrics.handshakes_pending.dec();
        }
        self.shared.admission().closed(self.ip, self.registered);
    }
}

/// Decrements the open-connection gauge when dropped.
struct ConnGauge(Arc<Metrics>);

impl Drop for ConnGauge {
    fn drop(&mut self) {
        self.0.connections.dec();
    }
}

async fn run_connection(shared: Arc<Shared>, incoming: quinn::Incoming, mut slot: Slot) {
    let remote = incoming.remote_address();
    let conn = match tokio::time::timeout(HANDSHAKE_TIMEOUT, incoming).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            shared.metrics.refused("handshake");
            tracing::info!(%remote, error = %e, "handshake failed");
            return;
        }
        Err(_) => {
            shared.metrics.refused("handshake_timeout");
            tracing::info!(%remote, "handshake timed out");
            return;
        }
    };
    shared.metrics.connections.inc();
    shared.metrics.connections_accepted.inc();
    let _gauge = ConnGauge(shared.metrics.clone());
    let Some(cert) = tincan_transport::tls::peer_device_cert(&conn) else {
        shared.metrics.refused("certificate");
        conn.close(close::REFUSED, b"no valid device certificate");
        return;
    };
    let Some(peer) = register::first_register(&shared, &conn, cert).await else {
        return;
    };
    slot.registered();
    tracing::info!(%remote, device = %peer.device, org = %peer.org, "device registered");
    let reason = loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                tokio::spawn(serve_stream(shared.clone(), peer.clone(), send, recv));
            }
            Err(e) => break e,
        }
    };
    tracing::info!(%remote, device = %peer.device, reason = %reason, "device disconnected");
    register::departed(&shared, &peer);
}

async fn serve_stream(
    shared: Arc<Shared>,
    peer: Peer,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    // The first frame alone first: a file upload's bytes follow its
    // header and are streamed to disk, never read into memory whole.
    let head = match rpc::read_head(&mut recv, REQUEST_TIMEOUT).await {
        Ok(head) => head,
        Err(e) => {
            tracing::debug!(device = %peer.device, error = %e, "stream broke or oversize; reset");
            let _ = send.reset(close::STREAM_MALFORMED);
            let _ = recv.stop(close::STREAM_MALFORMED);
            return;
        }
    };
    if let Ok((Frame::FileUpload(header), _)) = wire::decode(&head) {
        let answer = crate::file::upload(&shared, &peer, header, &mut recv).await;
        if let Err(e) = rpc::answer(&mut send, &answer).await {
            tracing::debug!(device = %peer.device, error = %e, "answer not delivered");
        }
        return;
    }
    let limit = rpc::STREAM_LIMIT.saturating_sub(head.len());
    let read = tokio::time::timeout(REQUEST_TIMEOUT, recv.read_to_end(limit)).await;
    let bytes = match read {
        Ok(Ok(rest)) => [head, rest].concat(),
        Ok(Err(e)) => {
            tracing::debug!(device = %peer.device, error = %e, "stream broke or oversize; reset");
            let _ = send.reset(close::STREAM_MALFORMED);
            let _ = recv.stop(close::STREAM_MALFORMED);
            return;
        }
        Err(_) => {
            tracing::debug!(device = %peer.device, "stream stalled; reset");
            let _ = send.reset(close::STREAM_MALFORMED);
            let _ = recv.stop(close::STREAM_MALFORMED);
            return;
        }
    };
    let request = match wire::decode(&bytes) {
        Ok((frame, _)) => frame,
        Err(e) => {
            if let Some(kind) = unknown_frame_kind(&bytes) {
                // A frame kind of a newer protocol revision: say so.
                let answer = Frame::Error(format!("unknown frame kind {kind}"));
                let _ = rpc::answer(&mut send, &answer).await;
                return;
            }
            tracing::warn!(device = %peer.device, error = %e, "malformed frame; stream reset");
            let _ = send.reset(close::STREAM_MALFORMED);
            return;
        }
    };
    if let Frame::FileRequest(request) = request {
        // Answered with raw bytes after the header (`FileData`).
        crate::file::serve(&shared, &peer, request, send).await;
        return;
    }
    let free = matches!(request, Frame::Route(_) | Frame::DirectoryVersions);
    if !free && !shared.take_request_token(peer.device) {
        // Routes have their own bucket with per-device answers; every other
        // request (lease claims, site members, rosters, revocations) costs
        // signature checks and durable writes, so it is rationed too. Asking
        // for versioned directory pushes costs a flag, once per connection
        // (again changes nothing).
        shared.metrics.rate_limited.inc();
        let answer = Frame::Error(format!(
            "rate limited: at most {} requests per second besides routes",
            shared.config.rate
        ));
        let _ = rpc::answer(&mut send, &answer).await;
        return;
    }
    let name = request.name();
    let answer = dispatch(&shared, &peer, request).await;
    if let Frame::Error(reason) = &answer {
        tracing::info!(device = %peer.device, request = name, %reason, "request refused");
    }
    if let Err(e) = rpc::answer(&mut send, &answer).await {
        tracing::debug!(device = %peer.device, error = %e, "answer not delivered");
    }
}

/// Frame kinds this build knows (`Frame` variants `Hello` …
/// `DirectoryUpdate`; raise it with every variant appended: a test checks
/// it against the last one).
const KNOWN_FRAME_KINDS: u64 = 30;

/// The variant index of a well-framed, current-version body whose kind
/// this build does not know (a later protocol addition), if it is one:
/// asked of a request that did not decode, to answer it with an error
/// rather than a stream reset.
pub fn unknown_frame_kind(bytes: &[u8]) -> Option<u64> {
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let body = bytes.get(4..)?;
    if body.len() != len || *body.first()? != wire::PROTOCOL_VERSION {
        return None;
    }
    // postcard writes the discriminant as a LEB128 varint.
    let mut kind: u64 = 0;
    for (i, b) in body.get(1..)?.iter().take(5).enumerate() {
        kind |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (kind >= KNOWN_FRAME_KINDS).then_some(kind);
        }
    }
    None
}

async fn dispatch(shared: &Arc<Shared>, peer: &Peer, request: Frame) -> Frame {
    match request {
        Frame::Register(reg) => register::re_register(shared, peer, reg),
        Frame::Route(route) => router::handle_route(shared, peer, route).await,
        Frame::LeaseClaim { site, epoch } => gateway::claim(shared, peer, site, epoch).await,
        Frame::LeaseRelease { site, epoch } => gateway::release(shared, peer, site, epoch).await,
        Frame::SiteMembers {
            site,
            epoch,
            members,
        } => gateway::site_members(shared, peer, site, epoch, members).await,
        Frame::Revocations(list) => revoke::handle(shared, peer, list).await,
        Frame::Devices(roster) => crate::devices::handle(shared, peer, roster).await,
        Frame::DirectoryVersions => {
            let stable_id = peer.conn.stable_id();
            if shared
                .registry()
                .directory_versioned(&peer.org, &peer.device, stable_id)
            {
                shared.dirty(peer.org);
            }
            Frame::Ack
        }
        other => Frame::Error(format!(
            "unexpected {} request: the relay takes register, route, lease-claim, lease-release, site-members, revocations, devices, file-request and file-upload",
            other.name()
        )),
    }
}

/// Sends `frame` to `conn` and expects `Ack` (pushes: directory,
/// neighbours, revocations); logs anything else.
pub async fn push(conn: quinn::Connection, frame: Frame) {
    let what = frame.name();
    match rpc::request(&conn, &frame, router::HOP_TIMEOUT).await {
        Ok(Frame::Ack) => {}
        Ok(other) => tracing::debug!(push = what, answer = other.name(), "push not acknowledged"),
        Err(e) => tracing::debug!(push = what, error = %e, "push failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_frame_kinds_are_told_from_garbage() {
        let ack = wire::encode(&Frame::Ack).expect("encode");
        assert_eq!(unknown_frame_kind(&ack), None);
        assert_eq!(unknown_frame_kind(&[0, 0, 0, 2, 2, 30]), Some(30));
        assert_eq!(unknown_frame_kind(&[0, 0, 0, 3, 2, 0x80, 0x01]), Some(128));
        assert_eq!(unknown_frame_kind(&[0, 0, 0, 2, 9, 30]), None);
        assert_eq!(unknown_frame_kind(&[0, 0, 0, 9, 2, 30]), None);
        assert_eq!(unknown_frame_kind(&[0, 0]), None);
    }

    #[test]
    fn the_last_known_frame_kind_is_the_last_variant() {
        let last = Frame::DirectoryUpdate(tincan_core::route::directory::DirectoryUpdate {
            base: 0,
            version: 0,
            part: 0,
            last: true,
            entries: Vec::new(),
            gone: Vec::new(),
        });
        let bytes = wire::encode(&last).expect("encode");
        assert_eq!(u64::from(bytes[5]), KNOWN_FRAME_KINDS - 1);
    }
}
