//! The relay connection: dial, check the relay's key against the pinned
//! fingerprint, register, then serve the relay's requests until it ends.
//! Like `link`, this decides nothing; it reports to the actor.

use std::time::Duration;

use tincan_core::route::Register;
use tincan_core::wire::Frame;
use tincan_core::RelayId;
use tokio::sync::mpsc;

use super::link::{self, LinkEvent};
use crate::config::RelayAddr;
use crate::{rpc, tls};

/// Longest the relay may take to answer the registration.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `relay`, registers with `register`, reports `RelayUp`, then
/// serves the relay's requests; reports `RelayFailed` or `RelayDown`.
pub(crate) async fn run(
    endpoint: quinn::Endpoint,
    relay: RelayAddr,
    register: Register,
    tx: mpsc::Sender<LinkEvent>,
) {
    let conn = match connect(&endpoint, &relay, register).await {
        Ok((conn, welcome, relay_device, node)) => {
            let up = LinkEvent::RelayUp {
                conn: conn.clone(),
                welcome,
                relay_device,
                node,
            };
            if tx.send(up).await.is_err() {
                return;
            }
            (conn, relay_device)
        }
        Err(reason) => {
            let _ = tx.send(LinkEvent::RelayFailed { reason }).await;
            return;
        }
    };
    let (conn, relay_device) = conn;
    let stable_id = conn.stable_id();
    let reason = link::serve_streams(&conn, relay_device, &tx).await;
    let reason = close_reason(&conn).unwrap_or(reason);
    let _ = tx.send(LinkEvent::RelayDown { stable_id, reason }).await;
}

/// Dials every node of `relay` at once and keeps the first that proves
/// the pinned key, so a dead node of a cluster costs no time while another
/// answers; the others are dropped before anything is registered there.
async fn dial(
    endpoint: &quinn::Endpoint,
    relay: &RelayAddr,
) -> Result<(quinn::Connection, tincan_core::DeviceCert, String), String> {
    let mut dials = tokio::task::JoinSet::new();
    for host_port in relay.host_ports.clone() {
        let endpoint = endpoint.clone();
        let fingerprint = relay.fingerprint;
        dials.spawn(async move {
            dial_one(&endpoint, &host_port, fingerprint)
                .await
                .map(|(conn, cert)| (conn, cert, host_port))
        });
    }
    let mut errors = Vec::new();
    while let Some(done) = dials.join_next().await {
        match done {
            Ok(Ok(won)) => {
                dials.abort_all();
                return Ok(won);
            }
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(format!("dial task failed: {e}")),
        }
    }
    Err(errors.join("; "))
}

/// Dials one relay node and checks that it proves `fingerprint`.
async fn dial_one(
    endpoint: &quinn::Endpoint,
    host_port: &str,
    fingerprint: RelayId,
) -> Result<(quinn::Connection, tincan_core::DeviceCert), String> {
    let addr = tokio::net::lookup_host(host_port)
        .await
        .map_err(|e| format!("cannot resolve relay {host_port}: {e}"))?
        .next()
        .ok_or_else(|| format!("relay {host_port} resolves to no address"))?;
    let conn = endpoint
        .connect(addr, tls::SERVER_NAME)
        .map_err(|e| format!("cannot dial relay {addr}: {e}"))?
        .await
        .map_err(|e| format!("cannot reach relay {addr}: {e}"))?;
    let cert = tls::peer_device_cert(&conn).ok_or("relay presented no valid certificate")?;
    let seen = RelayId::from_public_key(&cert.device_key);
    if seen != fingerprint {
        conn.close(1u32.into(), b"wrong relay key");
        return Err(format!(
            "relay at {addr} proved key {seen}, not the pinned fingerprint {fingerprint}; refusing it"
        ));
    }
    Ok((conn, cert))
}

/// The relay's own words when it closed the connection on purpose.
fn close_reason(conn: &quinn::Connection) -> Option<String> {
    match conn.close_reason()? {
        quinn::ConnectionError::ApplicationClosed(close) if !close.reason.is_empty() => {
            Some(format!(
                "relay closed the connection: {}",
                String::from_utf8_lossy(&close.reason)
            ))
        }
        other => Some(other.to_string()),
    }
}

/// A registered relay connection: the connection, the relay's welcome,
/// its device id and the `HOST:PORT` of the node that answered.
type Registered = (
    quinn::Connection,
    tincan_core::route::Welcome,
    tincan_core::DeviceId,
    String,
);

async fn connect(
    endpoint: &quinn::Endpoint,
    relay: &RelayAddr,
    register: Register,
) -> Result<Registered, String> {
    let (conn, cert, node) = dial(endpoint, relay).await?;
    match rpc::request(&conn, &Frame::Register(register), REGISTER_TIMEOUT).await {
        Ok(Frame::Welcome(welcome)) => Ok((conn, welcome, cert.device_id(), node)),
        Ok(Frame::Error(reason)) => Err(format!("relay refused this device: {reason}")),
        Ok(other) => Err(format!("relay answered {} to register", other.name())),
        Err(e) => Err(close_reason(&conn)
            .map(|r| format!("relay refused this device: {r}"))
            .unwrap_or_else(|| format!("registering with the relay failed: {e}"))),
    }
}
