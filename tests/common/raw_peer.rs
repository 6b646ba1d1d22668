//! A scripted tincan peer for hostile-input tests, built from the real
//! libraries (core's identity and frames, node's TLS configuration, quinn),
//! so that it speaks the stream protocol of `node/src/node/link.rs` exactly
//! while letting a test send whatever bytes it wants:
//! - [`RawPeer::connect`] does the Hello exchange like a real node;
//! - [`RawConn::deliver`] writes arbitrary bytes on one bidirectional stream
//!   and reads the answer, so frames can be duplicated, tampered or garbage.
//!
//! Only ever dial 127.0.0.1 with it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use quinn::crypto::rustls::QuicClientConfig;
use tincan_core::wire::{self, Frame, Hello, MAX_FRAME_LEN};
use tincan_core::{Content, DeviceCert, Envelope, Identity, MessageId};
use tincan_node::keystore::OsEntropy;
use tincan_node::tls;

/// Bytes read from one stream at most, as the node does.
const STREAM_LIMIT: usize = MAX_FRAME_LEN + 4;
/// Bounds a hang of any single step; not a speed requirement.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A fresh identity named `name`, from OS randomness.
pub fn new_identity(name: &str) -> Identity {
    Identity::generate(name, now_ms() / 1000, &mut OsEntropy)
}

/// The quinn client configuration a node with `identity` would use (mutual
/// TLS with the device certificate, tincan ALPN, 1 s keep-alive so the
/// node's idle timeout never fires on a quiet test connection).
pub fn client_config(identity: &Identity) -> Result<quinn::ClientConfig> {
    let (_, client_tls) = tls::rustls_configs(identity)?;
    let crypto = QuicClientConfig::try_from(client_tls)?;
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_secs(1)));
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// A client-only QUIC endpoint on 127.0.0.1 presenting `identity`.
pub fn client_endpoint(identity: &Identity) -> Result<quinn::Endpoint> {
    let mut endpoint = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    endpoint.set_default_client_config(client_config(identity)?);
    Ok(endpoint)
}

/// Seals a text message from `from` to the devices of `to`.
pub fn seal_text(from: &Identity, to: &[DeviceCert], text: &str) -> Envelope {
    seal(from, to, &Content::Text { text: text.into() })
}

/// Seals `content` from `from` to the devices of `to`.
pub fn seal(from: &Identity, to: &[DeviceCert], content: &Content) -> Envelope {
    Envelope::seal(
        &from.device,
        &from.cert,
        to,
        MessageId::random(&mut OsEntropy),
        now_ms(),
        content,
        &mut OsEntropy,
    )
    .expect("seal envelope")
}

/// Encodes an envelope as the frame bytes a node writes on a delivery stream.
pub fn envelope_frame(envelope: &Envelope) -> Vec<u8> {
    wire::encode(&Frame::Envelope(envelope.clone())).expect("encode envelope frame")
}

/// A scripted peer: an identity and a client endpoint.
pub struct RawPeer {
    /// Who this peer is (its TLS certificate is built from it).
    pub identity: Identity,
    endpoint: quinn::Endpoint,
}

impl RawPeer {
    /// A peer with a fresh identity named `name`.
    pub fn new(name: &str) -> Result<RawPeer> {
        RawPeer::with_identity(new_identity(name))
    }

    /// A peer presenting `identity`, consistent or not (tests build
    /// identities whose certificate belongs to another device).
    pub fn with_identity(identity: Identity) -> Result<RawPeer> {
        let endpoint = client_endpoint(&identity)?;
        Ok(RawPeer { identity, endpoint })
    }

    /// The hello a well-behaved node with this identity sends.
    pub fn hello(&self) -> Hello {
        Hello {
            name: self.identity.name.clone(),
            listen_port: self.endpoint.local_addr().map(|a| a.port()).unwrap_or(0),
            cert: self.identity.cert.clone(),
            membership: None,
        }
    }

    /// Completes the QUIC/TLS handshake with `addr` only (no hello).
    pub async fn handshake(&self, addr: SocketAddr) -> Result<quinn::Connection> {
        let connecting = self.endpoint.connect(addr, tls::SERVER_NAME)?;
        tokio::time::timeout(STEP_TIMEOUT, connecting)
            .await
            .context("handshake timed out")?
            .context("handshake failed")
    }

    /// Connects to the node at `addr` and exchanges hellos.
    pub async fn connect(&self, addr: SocketAddr) -> Result<RawConn> {
        self.connect_with_hello(addr, &self.hello()).await
    }

    /// Connects and sends `hello` (possibly a lying one) as the first frame.
    pub async fn connect_with_hello(&self, addr: SocketAddr, hello: &Hello) -> Result<RawConn> {
        let conn = self.handshake(addr).await?;
        let exchange = async {
            let bytes = wire::encode(&Frame::Hello(hello.clone()))?;
            let mut out = conn.open_uni().await?;
            out.write_all(&bytes).await?;
            out.finish()?;
            let mut inbound = conn.accept_uni().await?;
            let bytes = inbound.read_to_end(STREAM_LIMIT).await?;
            match wire::decode(&bytes) {
                Ok((Frame::Hello(h), _)) => Ok(h),
                Ok((other, _)) => Err(anyhow!("expected hello, got {other:?}")),
                Err(e) => Err(anyhow!("bad hello from node: {e}")),
            }
        };
        let node_hello = tokio::time::timeout(STEP_TIMEOUT, exchange)
            .await
            .context("hello exchange timed out")??;
        let tls_cert = tls::peer_device_cert(&conn).context("node presented no device cert")?;
        if node_hello.cert != tls_cert {
            bail!("node's hello names another device than its tls certificate");
        }
        Ok(RawConn { conn, node_hello })
    }
}

/// An established connection to a node, hellos exchanged.
pub struct RawConn {
    /// The QUIC connection.
    pub conn: quinn::Connection,
    /// What the node said in its hello (its cert matches its TLS cert).
    pub node_hello: Hello,
}

impl RawConn {
    /// The node's device certificate.
    pub fn node_cert(&self) -> &DeviceCert {
        &self.node_hello.cert
    }

    /// One delivery: opens a bidirectional stream, writes `bytes`, finishes
    /// and reads the node's answer to the end. `Err` means no decodable
    /// answer (stream reset, stopped, empty or connection lost).
    pub async fn deliver(&self, bytes: &[u8]) -> Result<Frame> {
        let attempt = async {
            let (mut send, mut recv) = self.conn.open_bi().await?;
            // A node that refuses a stream may stop it mid-write; what
            // counts is the answer (or its absence), so keep going.
            let written = match send.write_all(bytes).await {
                Ok(()) => send.finish().map_err(anyhow::Error::from),
                Err(e) => Err(e.into()),
            };
            let answer = recv.read_to_end(STREAM_LIMIT).await;
            match (answer, written) {
                (Ok(answer), _) => match wire::decode(&answer) {
                    Ok((frame, _)) => Ok(frame),
                    Err(e) => Err(anyhow!("no valid answer ({} bytes): {e}", answer.len())),
                },
                (Err(e), Ok(())) => Err(anyhow!("no answer: {e}")),
                (Err(e), Err(w)) => Err(anyhow!("no answer: {e} (write: {w})")),
            }
        };
        tokio::time::timeout(STEP_TIMEOUT, attempt)
            .await
            .context("delivery timed out")?
    }

    /// Waits up to `timeout` for the connection to end; returns why, or
    /// `None` if it is still open.
    pub async fn closed_within(&self, timeout: Duration) -> Option<quinn::ConnectionError> {
        tokio::time::timeout(timeout, self.conn.closed()).await.ok()
    }
}
