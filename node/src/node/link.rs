//! QUIC plumbing: the endpoint, one task per connection and one per
//! delivery attempt. These tasks decide nothing; they move frames between
//! streams and the actor, and report what happened.
//!
//! Stream protocol (all frames are `tincan_core::wire` frames):
//! - each side opens one unidirectional stream and sends `Hello`;
//! - a delivery is one bidirectional stream: the sender writes `Envelope`
//!   and finishes, the recipient answers `Receipt` or `Refused` and finishes;
//! - every other request (`Route`, `Directory`, `Neighbours`,
//!   `Revocations`) is one bidirectional stream too, answered with one frame
//!   (`crate::rpc`);
//! - election beacons are QUIC datagrams (unreliable, latest wins);
//! - a file request (`FileRequest`) is one bidirectional stream answered
//!   with `FileData` and the raw sealed bytes (`crate::file::stream`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use tincan_core::election::Beacon;
use tincan_core::pairing::PairMessage;
use tincan_core::route::{DeviceAnswer, Route, Routed, Welcome};
use tincan_core::wire::{self, Frame, Hello};
use tincan_core::{DeviceCert, DeviceId, Envelope, MessageId};
use tokio::sync::{mpsc, oneshot};

use super::StartError;
use crate::config::DEFAULT_PORT;
use crate::{keystore, tls};

/// Longest a whole delivery attempt may take before it counts as failed.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest a routed exchange may take across hops (gateway → relay →
/// gateway → device, each with its own shorter deadline).
const ROUTE_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest the peer may take to send its Hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
use crate::rpc::STREAM_LIMIT;
/// Bytes one stream may have in flight towards us: a whole file chunk
/// (`tincan_core::file::CHUNK_SIZE` + tag + header) in one go.
const FILE_STREAM_WINDOW: u32 = 1024 * 1024 + 64 * 1024;
/// Bytes one connection may have in flight towards us, over all streams.
const FILE_RECEIVE_WINDOW: u32 = 16 * 1024 * 1024;
/// Largest datagram accepted (beacons are ~100 bytes).
const DATAGRAM_LIMIT: usize = 1200;

/// What connection and delivery tasks tell the actor.
pub(crate) enum LinkEvent {
    /// A peer proved who it is and said hello.
    Up {
        conn: quinn::Connection,
        cert: DeviceCert,
        hello: Box<Hello>,
        /// Where the peer listens (its address with its announced port).
        addr: SocketAddr,
        /// The address we dialled, when we did.
        dialed: Option<SocketAddr>,
    },
    /// A connection ended.
    Down {
        /// Whether it was lost (timed out, reset) rather than closed.
        lost: bool,
        device: DeviceId,
        stable_id: usize,
        reason: String,
    },
    /// A static peer's host name resolved to these addresses.
    Resolved(Vec<SocketAddr>),
    /// Dialling an address failed before a peer was authenticated.
    DialFailed { addr: SocketAddr, reason: String },
    /// A peer delivered an envelope; the actor answers on `reply`.
    Inbound {
        device: DeviceId,
        envelope: Box<Envelope>,
        reply: oneshot::Sender<Frame>,
    },
    /// A peer delivered a room envelope; the actor answers on `reply`.
    InboundRoom {
        device: DeviceId,
        envelope: Box<tincan_core::RoomEnvelope>,
        reply: oneshot::Sender<Frame>,
    },
    /// A delivery attempt wrote its envelope completely.
    Written {
        message_id: MessageId,
        device: DeviceId,
    },
    /// A delivery attempt ended with the peer's answer or an error.
    Attempted {
        message_id: MessageId,
        device: DeviceId,
        result: Result<Frame, String>,
    },
    /// A peer (LAN device, gateway or the relay) hands us a routed item.
    RouteIn {
        from: DeviceId,
        route: Box<Route>,
        reply: oneshot::Sender<Frame>,
    },
    /// Directory, neighbours or revocations from the relay or the gateway.
    Control {
        from: DeviceId,
        frame: Box<Frame>,
        reply: oneshot::Sender<Frame>,
    },
    /// A LAN peer's election beacon.
    Beacon { from: DeviceId, beacon: Beacon },
    /// A routed send (one copy for `devices`) ended.
    Routed {
        message_id: MessageId,
        devices: Vec<DeviceId>,
        result: Result<Vec<DeviceAnswer>, String>,
    },
    /// The relay accepted our registration.
    RelayUp {
        conn: quinn::Connection,
        welcome: Welcome,
        relay_device: DeviceId,
    },
    /// Connecting or registering to the relay failed.
    RelayFailed { reason: String },
    /// The relay connection ended.
    RelayDown { stable_id: usize, reason: String },
    /// The relay answered a lease claim or release.
    LeaseAnswer {
        sent_at: u64,
        result: Result<Frame, String>,
    },
    /// File transfer traffic (`node/file_task.rs`).
    Files(super::file_task::FilesEvent),
    /// A device being paired (TLS-authenticated as `joiner`, on a
    /// pairing connection) sent one pairing step; the actor answers.
    Pair {
        joiner: DeviceCert,
        message: PairMessage,
        reply: oneshot::Sender<PairMessage>,
    },
}

/// Binds the one QUIC endpoint of the node (server and client).
pub(crate) fn bind_endpoint(
    listen: Option<SocketAddr>,
    server_tls: rustls::ServerConfig,
    client_tls: rustls::ClientConfig,
) -> Result<quinn::Endpoint, StartError> {
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_secs(1)));
    // Bound what one peer can make us buffer. The protocol needs a single
    // uni stream per side (the Hello); further ones would never be read
    // and, with quinn's defaults (100 streams, ~1.25 MB each, unlimited per
    // connection), let any peer pin over 100 MB of our memory. Delivery
    // streams are read as they arrive and cut at one frame.
    transport.max_concurrent_uni_streams(1u32.into());
    // Beacons only: a few small datagrams a second per peer.
    transport.datagram_receive_buffer_size(Some(16 * 1024));
    transport.stream_receive_window(quinn::VarInt::from_u32(FILE_STREAM_WINDOW));
    // File chunks (1 MiB, 16 in flight: `crate::file::stream`) need more
    // than a few frames' worth in flight per connection to run at link
    // speed; this still caps what one peer can make us buffer.
    transport.receive_window(quinn::VarInt::from_u32(FILE_RECEIVE_WINDOW));
    transport.max_idle_timeout(Some(
        super::IDLE_TIMEOUT
            .try_into()
            .map_err(|_| bind_error(listen, std::io::Error::other("idle timeout")))?,
    ));
    let transport = Arc::new(transport);
    let server_crypto = QuicServerConfig::try_from(server_tls)
        .map_err(|e| bind_error(listen, std::io::Error::other(e.to_string())))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
    server.transport_config(transport.clone());
    let client_crypto = QuicClientConfig::try_from(client_tls)
        .map_err(|e| bind_error(listen, std::io::Error::other(e.to_string())))?;
    let mut client = quinn::ClientConfig::new(Arc::new(client_crypto));
    client.transport_config(transport);

    // The default, and a wildcard of either family, mean every address of
    // both families: IPv6 (link-local too) as well as IPv4.
    let wanted = listen.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)));
    let bind = |server: quinn::ServerConfig, port: u16| {
        if wanted.ip().is_unspecified() {
            crate::quic::bind_every_address(Some(server), port)
        } else {
            crate::quic::bind(Some(server), SocketAddr::new(wanted.ip(), port))
        }
    };
    let endpoint = match bind(server.clone(), wanted.port()) {
        Ok(e) => e,
        // Another user's node on this host holds the default port: take any
        // port; mDNS announces whichever we got.
        Err(e) if listen.is_none() && e.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::info!(
                "port {DEFAULT_PORT} is taken (another node on this host?); using a random port"
            );
            bind(server, 0).map_err(|e| bind_error(listen, e))?
        }
        Err(e) => return Err(bind_error(listen, e)),
    };
    let mut endpoint = endpoint;
    endpoint.set_default_client_config(client);
    Ok(endpoint)
}

fn bind_error(listen: Option<SocketAddr>, source: std::io::Error) -> StartError {
    StartError::Bind {
        addr: listen.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT))),
        source,
    }
}

/// Dials `addr` and runs the connection.
pub(crate) async fn dial(
    endpoint: quinn::Endpoint,
    addr: SocketAddr,
    hello: Arc<Hello>,
    tx: mpsc::Sender<LinkEvent>,
) {
    let connecting = match endpoint.connect(addr, tls::SERVER_NAME) {
        Ok(c) => c,
        Err(e) => {
            let _ = tx
                .send(LinkEvent::DialFailed {
                    addr,
                    reason: e.to_string(),
                })
                .await;
            return;
        }
    };
    match connecting.await {
        Ok(conn) => run_connection(conn, hello, tx, Some(addr)).await,
        Err(e) => {
            let _ = tx
                .send(LinkEvent::DialFailed {
                    addr,
                    reason: e.to_string(),
                })
                .await;
        }
    }
}

/// Completes an incoming handshake and runs the connection.
pub(crate) async fn accept(
    incoming: quinn::Incoming,
    hello: Arc<Hello>,
    tx: mpsc::Sender<LinkEvent>,
) {
    let remote = crate::addr::canonical(incoming.remote_address());
    match incoming.await {
        Ok(conn) if tls::is_pairing(&conn) => serve_pairing(conn, tx).await,
        Ok(conn) => run_connection(conn, hello, tx, None).await,
        // Garbage, scanners and peers with bad keys end here: log, move on.
        Err(e) => tracing::info!(%remote, error = %e, "refused incoming connection"),
    }
}

/// Most pairing steps one pairing connection may send (start, confirm,
/// and an abort).
const PAIR_STEPS: usize = 3;

/// A pairing connection (`tls::PAIR_ALPN`): no hello, no peer; each
/// stream carries one `Frame::Pair` step, answered by the actor.
async fn serve_pairing(conn: quinn::Connection, tx: mpsc::Sender<LinkEvent>) {
    let remote = conn.remote_address();
    let Some(joiner) = tls::peer_device_cert(&conn) else {
        conn.close(1u32.into(), b"bad certificate");
        return;
    };
    tracing::info!(%remote, device = %joiner.device_id(), "pairing connection");
    for _ in 0..PAIR_STEPS {
        let Ok((mut send, mut recv)) = conn.accept_bi().await else {
            return;
        };
        let message = match crate::rpc::read_request(&mut recv, HELLO_TIMEOUT).await {
            Ok(Frame::Pair(message)) => message,
            Ok(other) => {
                tracing::info!(%remote, frame = other.name(), "not a pairing step; closing");
                break;
            }
            Err(e) => {
                tracing::info!(%remote, error = %e, "bad pairing step; closing");
                break;
            }
        };
        let (reply, answer) = oneshot::channel();
        let event = LinkEvent::Pair {
            joiner: joiner.clone(),
            message,
            reply,
        };
        if tx.send(event).await.is_err() {
            return;
        }
        let Ok(answer) = answer.await else {
            break;
        };
        let _ = crate::rpc::answer(&mut send, &Frame::Pair(answer)).await;
    }
    conn.close(0u32.into(), b"pairing done");
}

async fn exchange_hello(conn: &quinn::Connection, hello: &Hello) -> Result<Hello, String> {
    let bytes = wire::encode(&Frame::Hello(hello.clone())).map_err(|e| e.to_string())?;
    let mut out = conn.open_uni().await.map_err(|e| e.to_string())?;
    out.write_all(&bytes).await.map_err(|e| e.to_string())?;
    out.finish().map_err(|e| e.to_string())?;
    let mut inbound = tokio::time::timeout(HELLO_TIMEOUT, conn.accept_uni())
        .await
        .map_err(|_| "no hello from peer".to_string())?
        .map_err(|e| e.to_string())?;
    let bytes = tokio::time::timeout(HELLO_TIMEOUT, inbound.read_to_end(STREAM_LIMIT))
        .await
        .map_err(|_| "hello timed out".to_string())?
        .map_err(|e| e.to_string())?;
    match wire::decode(&bytes) {
        Ok((Frame::Hello(h), _)) => Ok(h),
        Ok((other, _)) => Err(format!("expected hello, got {}", other.name())),
        Err(e) => Err(format!("bad hello: {e}")),
    }
}

async fn run_connection(
    conn: quinn::Connection,
    hello: Arc<Hello>,
    tx: mpsc::Sender<LinkEvent>,
    dialed: Option<SocketAddr>,
) {
    // IPv4 peers of a dual-stack socket show as `::ffff:a.b.c.d`.
    let remote = crate::addr::canonical(conn.remote_address());
    let Some(cert) = tls::peer_device_cert(&conn) else {
        tracing::warn!(%remote, "peer presented no valid device certificate");
        conn.close(1u32.into(), b"bad certificate");
        return;
    };
    let device = cert.device_id();
    let peer_hello = match exchange_hello(&conn, &hello).await {
        Ok(h) if h.cert != cert => {
            tracing::warn!(%remote, %device, "hello names another device than the tls certificate; closing");
            conn.close(2u32.into(), b"hello mismatch");
            return;
        }
        // Names end up in peer lists and terminals: hold them to the rules
        // every node's own name already obeys (no control characters, at
        // most 64 characters, trimmed), so no peer can inject escapes.
        Ok(h) if keystore::validate_name(&h.name).ok().as_deref() != Some(h.name.as_str()) => {
            tracing::warn!(%remote, %device, "hello carries an invalid display name; closing");
            conn.close(4u32.into(), b"invalid name");
            if let Some(addr) = dialed {
                let reason = "peer announced an invalid name".to_string();
                let _ = tx.send(LinkEvent::DialFailed { addr, reason }).await;
            }
            return;
        }
        Ok(h) => h,
        Err(reason) => {
            tracing::info!(%remote, %device, %reason, "handshake incomplete");
            conn.close(3u32.into(), b"no hello");
            if let Some(addr) = dialed {
                let _ = tx.send(LinkEvent::DialFailed { addr, reason }).await;
            }
            return;
        }
    };
    // `set_port` keeps a link-local address's scope (`SocketAddr::new` would not).
    let mut addr = remote;
    addr.set_port(peer_hello.listen_port);
    let stable_id = conn.stable_id();
    if tx
        .send(LinkEvent::Up {
            conn: conn.clone(),
            cert,
            hello: Box::new(peer_hello),
            addr,
            dialed,
        })
        .await
        .is_err()
    {
        return;
    }
    tokio::spawn(read_beacons(conn.clone(), device, tx.clone()));
    let reason = serve_streams(&conn, device, &tx).await;
    let lost = conn.close_reason().is_some_and(|e| is_lost(&e));
    let _ = tx
        .send(LinkEvent::Down {
            device,
            stable_id,
            reason,
            lost,
        })
        .await;
}

/// Whether a connection ended without either side closing it (the peer
/// may be gone), as opposed to a deliberate close.
fn is_lost(e: &quinn::ConnectionError) -> bool {
    use quinn::ConnectionError as E;
    matches!(
        e,
        E::TimedOut | E::Reset | E::TransportError(_) | E::CidsExhausted
    )
}

/// Serves the peer's request streams until the connection ends; returns
/// why it ended.
pub(crate) async fn serve_streams(
    conn: &quinn::Connection,
    device: DeviceId,
    tx: &mpsc::Sender<LinkEvent>,
) -> String {
    loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                tokio::spawn(serve_stream(send, recv, device, tx.clone()));
            }
            Err(e) => break e.to_string(),
        }
    }
}

/// Forwards the peer's beacon datagrams to the actor.
async fn read_beacons(conn: quinn::Connection, device: DeviceId, tx: mpsc::Sender<LinkEvent>) {
    while let Ok(bytes) = conn.read_datagram().await {
        if bytes.len() > DATAGRAM_LIMIT {
            continue;
        }
        match wire::decode(&bytes) {
            Ok((Frame::Beacon(beacon), _)) => {
                if tx
                    .send(LinkEvent::Beacon {
                        from: device,
                        beacon,
                    })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Ok((other, _)) => {
                tracing::debug!(%device, frame = other.name(), "ignoring datagram")
            }
            Err(e) => tracing::debug!(%device, error = %e, "malformed datagram"),
        }
    }
}

async fn serve_stream(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    device: DeviceId,
    tx: mpsc::Sender<LinkEvent>,
) {
    // The first frame alone: a member's file upload (to its gateway) is
    // followed by raw bytes that are piped on, never buffered whole.
    let head = match crate::rpc::read_head(&mut recv, ATTEMPT_TIMEOUT).await {
        Ok(head) => head,
        Err(e) => {
            tracing::warn!(%device, error = %e, "refused a stream (oversize, broken or stalled)");
            let _ = send.reset(1u32.into());
            return;
        }
    };
    if let Ok((Frame::FileUpload(header), _)) = wire::decode(&head) {
        let event = super::file_task::FilesEvent::Upload {
            from: device,
            header,
            send,
            recv,
        };
        let _ = tx.send(LinkEvent::Files(event)).await;
        return;
    }
    let limit = STREAM_LIMIT.saturating_sub(head.len());
    let bytes = match tokio::time::timeout(ATTEMPT_TIMEOUT, recv.read_to_end(limit)).await {
        Ok(Ok(rest)) => [head, rest].concat(),
        Ok(Err(e)) => {
            tracing::warn!(%device, error = %e, "refused a stream (oversize or broken)");
            let _ = send.reset(1u32.into());
            return;
        }
        Err(_) => {
            tracing::warn!(%device, "stream stalled; dropped");
            let _ = send.reset(2u32.into());
            return;
        }
    };
    let (reply, answer) = oneshot::channel();
    let event = match wire::decode(&bytes) {
        Ok((Frame::Envelope(envelope), _)) => LinkEvent::Inbound {
            device,
            envelope: Box::new(envelope),
            reply,
        },
        Ok((Frame::RoomEnvelope(envelope), _)) => LinkEvent::InboundRoom {
            device,
            envelope: Box::new(envelope),
            reply,
        },
        Ok((Frame::Route(route), _)) => LinkEvent::RouteIn {
            from: device,
            route: Box::new(route),
            reply,
        },
        Ok((
            frame @ (Frame::Directory(_)
            | Frame::Lan(_)
            | Frame::Neighbours(_)
            | Frame::Revocations(_)
            | Frame::Devices(_)),
            _,
        )) => LinkEvent::Control {
            from: device,
            frame: Box::new(frame),
            reply,
        },
        Ok((Frame::FileRequest(request), _)) => {
            // The answer is streamed by a file task (`crate::file::stream`).
            let event = super::file_task::FilesEvent::Request {
                from: device,
                request,
                send,
            };
            let _ = tx.send(LinkEvent::Files(event)).await;
            return;
        }
        Ok((other, _)) => {
            tracing::debug!(%device, frame = other.name(), "refusing unexpected request");
            let _ = crate::rpc::answer(&mut send, &Frame::Error("unexpected request".into())).await;
            return;
        }
        Err(e) => {
            tracing::warn!(%device, error = %e, "malformed frame refused");
            let _ = send.reset(4u32.into());
            return;
        }
    };
    if tx.send(event).await.is_err() {
        return;
    }
    let frame = match answer.await {
        Ok(frame) => frame,
        // The actor could not store it: no answer, the sender retries.
        Err(_) => {
            let _ = send.reset(3u32.into());
            return;
        }
    };
    if let Err(e) = crate::rpc::answer(&mut send, &frame).await {
        tracing::debug!(%device, error = %e, "answer not delivered");
    }
}

/// One routed send of `route` over `conn` (to a gateway or the relay):
/// one copy of the item for all of `route.to`.
pub(crate) async fn route(conn: quinn::Connection, route: Route, tx: mpsc::Sender<LinkEvent>) {
    let message_id = route.item.message_id();
    let devices = route.to.clone();
    let result = match crate::rpc::request(&conn, &Frame::Route(route), ROUTE_TIMEOUT).await {
        Ok(Frame::Answers(answers)) => Ok(answers),
        Ok(Frame::Error(e)) => Err(format!("refused by hop: {e}")),
        Ok(other) => Err(format!("unexpected answer {}", other.name())),
        Err(e) => Err(e.to_string()),
    };
    let _ = tx
        .send(LinkEvent::Routed {
            message_id,
            devices,
            result,
        })
        .await;
}

/// Asks `conn` to take `route` and returns its answers (for a gateway
/// forwarding a member's or the relay's item). Devices the hop did not
/// answer for, or all of them when it failed, are `Failed`.
pub(crate) async fn forward(conn: quinn::Connection, route: Route) -> Vec<DeviceAnswer> {
    use tincan_core::route::Answer;
    let to = route.to.clone();
    let answers = match crate::rpc::request(&conn, &Frame::Route(route), ROUTE_TIMEOUT).await {
        Ok(Frame::Answers(answers)) => answers,
        Ok(other) => {
            tracing::debug!(answer = other.name(), "hop gave no answers");
            Vec::new()
        }
        Err(e) => {
            tracing::debug!(error = %e, "forwarding failed");
            Vec::new()
        }
    };
    to.into_iter()
        .map(|device| {
            answers
                .iter()
                .find(|a| a.device == device)
                .cloned()
                .unwrap_or(DeviceAnswer {
                    device,
                    answer: Answer::Failed("no answer from the next hop".into()),
                })
        })
        .collect()
}

/// The item of a delivered envelope frame, for routing.
pub(crate) fn routed_envelope(frame: &[u8]) -> Option<Routed> {
    match wire::decode(frame) {
        Ok((Frame::Envelope(envelope), _)) => Some(Routed::Envelope(Box::new(envelope))),
        Ok((Frame::RoomEnvelope(envelope), _)) => Some(Routed::Room(Box::new(envelope))),
        _ => None,
    }
}

/// Sends a small request and forgets the answer (directory pushes).
pub(crate) async fn notify(conn: quinn::Connection, frame: Arc<Frame>) {
    if let Err(e) = crate::rpc::request(&conn, &frame, ROUTE_TIMEOUT).await {
        tracing::debug!(frame = frame.name(), error = %e, "notification not taken");
    }
}

/// One delivery attempt of an encoded envelope frame over `conn`.
pub(crate) async fn deliver(
    conn: quinn::Connection,
    frame: Arc<Vec<u8>>,
    message_id: MessageId,
    device: DeviceId,
    tx: mpsc::Sender<LinkEvent>,
) {
    let attempt = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        send.write_all(&frame).await.map_err(|e| e.to_string())?;
        send.finish().map_err(|e| e.to_string())?;
        let _ = tx.send(LinkEvent::Written { message_id, device }).await;
        let answer = recv
            .read_to_end(STREAM_LIMIT)
            .await
            .map_err(|e| e.to_string())?;
        wire::decode(&answer)
            .map(|(frame, _)| frame)
            .map_err(|e| format!("bad answer: {e}"))
    };
    let result = match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await {
        Ok(result) => result,
        Err(_) => Err("no answer in time".to_string()),
    };
    let _ = tx
        .send(LinkEvent::Attempted {
            message_id,
            device,
            result,
        })
        .await;
}

/// Sends an encoded envelope frame once and ignores the answer: for
/// ephemeral content that is worth nothing if late (typing, presence).
pub(crate) async fn deliver_once(conn: quinn::Connection, frame: Arc<Vec<u8>>) {
    let attempt = async {
        let (mut send, mut recv) = conn.open_bi().await.ok()?;
        send.write_all(&frame).await.ok()?;
        send.finish().ok()?;
        recv.read_to_end(STREAM_LIMIT).await.ok()
    };
    let _ = tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await;
}
