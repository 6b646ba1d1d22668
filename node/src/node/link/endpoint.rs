//! The node's one QUIC endpoint, server and client at once.
//!
//! Kept apart because this is where a peer's power over our memory is
//! bounded: every stream and connection window, the single uni stream, the
//! datagram buffer. Change a limit here and every connection gets it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};

use crate::config::DEFAULT_PORT;
use crate::node::StartError;

/// Bytes one stream may have in flight towards us: a whole file chunk
/// (`tincan_core::file::CHUNK_SIZE` + tag + header) in one go.
const FILE_STREAM_WINDOW: u32 = 1024 * 1024 + 64 * 1024;
/// Bytes one connection may have in flight towards us, over all streams.
const FILE_RECEIVE_WINDOW: u32 = 16 * 1024 * 1024;

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
        crate::node::IDLE_TIMEOUT
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
