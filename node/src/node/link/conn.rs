//! One task per connection: dial or accept, prove who the peer is, say
//! hello, then serve its streams and datagrams until it goes.
//!
//! Kept apart from the per-stream code because a connection's checks
//! (certificate, hello naming the same device, a valid display name) come
//! once, before the actor hears of the peer at all, and whether it ended
//! lost or closed is what the LAN mesh's liveness runs on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tincan_core::wire::{self, Frame, Hello};
use tincan_core::DeviceId;
use tokio::sync::{mpsc, oneshot};

use super::inbound::serve_stream;
use super::LinkEvent;
use crate::rpc::STREAM_LIMIT;
use crate::{keystore, tls};

/// Longest the peer may take to send its Hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest datagram accepted (beacons are ~100 bytes).
const DATAGRAM_LIMIT: usize = 1200;

/// Dials `addr` and runs the connection.
pub(crate) async fn dial(
    endpoint: quinn::Endpoint,
    addr: SocketAddr,
    hello: Arc<Hello>,
    tx: mpsc::Sender<LinkEvent>,
) {
    let connected = match endpoint.connect(addr, tls::SERVER_NAME) {
        Ok(connecting) => connecting.await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match connected {
        Ok(conn) => run_connection(conn, hello, tx, Some(addr)).await,
        Err(reason) => {
            let _ = tx.send(LinkEvent::DialFailed { addr, reason }).await;
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
