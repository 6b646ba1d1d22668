//! QUIC endpoints as the node and the relay bind them: a UDP socket with
//! a large receive buffer, then quinn on tokio.
//!
//! Why the buffer: a 1 MiB file chunk arrives as ~800 datagrams in one
//! burst. With the kernel's default socket buffer (~208 KiB) a busy host
//! (a gateway serving its LAN while it pulls from the relay) drops part of
//! the burst and QUIC sends it again, which costs WAN bytes and time. The
//! kernel caps the request at `net.core.rmem_max`; a smaller buffer than
//! asked is not an error.

use std::net::SocketAddr;
use std::sync::Arc;

/// Receive buffer asked for (bytes).
pub const UDP_RECV_BUFFER: usize = 4 * 1024 * 1024;

/// Binds `addr` and starts a quinn endpoint on it (a server when
/// `server` is given; clients may always dial out).
pub fn bind(
    server: Option<quinn::ServerConfig>,
    addr: SocketAddr,
) -> std::io::Result<quinn::Endpoint> {
    let socket = std::net::UdpSocket::bind(addr)?;
    match quinn::udp::UdpSocketState::new((&socket).into()) {
        Ok(state) => {
            if let Err(e) = state.set_recv_buffer_size((&socket).into(), UDP_RECV_BUFFER) {
                tracing::debug!(error = %e, "cannot enlarge the UDP receive buffer");
            }
        }
        Err(e) => tracing::debug!(error = %e, "cannot inspect the UDP socket"),
    }
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        server,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
}
