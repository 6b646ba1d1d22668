//! QUIC endpoints as the node and the relay bind them: a UDP socket with
//! a large receive buffer (one socket for both IPv6 and IPv4 where the
//! node listens on every address), then quinn on tokio.
//!
//! Why the buffer: a 1 MiB file chunk arrives as ~800 datagrams in one
//! burst. With the kernel's default socket buffer (~208 KiB) a busy host
//! (a gateway serving its LAN while it pulls from the relay) drops part of
//! the burst and QUIC sends it again, which costs WAN bytes and time. The
//! kernel caps the request at `net.core.rmem_max`; a smaller buffer than
//! asked is not an error. The relay binds its endpoint the same way, so
//! this lives in the crate both share.

use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Receive buffer asked for (bytes).
pub const UDP_RECV_BUFFER: usize = 4 * 1024 * 1024;

/// Binds `addr` and starts a quinn endpoint on it (a server when
/// `server` is given; clients may always dial out).
pub fn bind(
    server: Option<quinn::ServerConfig>,
    addr: SocketAddr,
) -> std::io::Result<quinn::Endpoint> {
    endpoint_on(server, std::net::UdpSocket::bind(addr)?)
}

/// Binds `[::]:port` with `IPV6_V6ONLY` off: one socket that IPv6 and
/// IPv4 peers both reach (IPv4 ones appear as IPv4-mapped addresses,
/// which the node's `addr::canonical` turns back), whatever the system's
/// default (`net.ipv6.bindv6only`, or Windows and the BSDs, where it is
/// on). Then starts a quinn endpoint on it, which dials IPv4 addresses
/// through the same socket. Fails where the host has no IPv6 (e.g.
/// `ipv6.disable=1`); the caller then binds IPv4 alone.
pub fn bind_dual_stack(
    server: Option<quinn::ServerConfig>,
    port: u16,
) -> std::io::Result<quinn::Endpoint> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_only_v6(false)?;
    socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
    endpoint_on(server, socket.into())
}

/// Binds `port` on every address: one dual-stack socket (`[::]`,
/// [`bind_dual_stack`]), or IPv4 alone (`0.0.0.0`) where the host has no
/// IPv6; logs which. A port in use is an error either way (the caller may
/// pick another port).
pub fn bind_every_address(
    server: Option<quinn::ServerConfig>,
    port: u16,
) -> std::io::Result<quinn::Endpoint> {
    match bind_dual_stack(server.clone(), port) {
        Ok(endpoint) => {
            tracing::info!(port, "listening on IPv6 and IPv4 (one dual-stack socket)");
            Ok(endpoint)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(e),
        Err(e) => {
            tracing::info!(port, error = %e, "no IPv6 on this host; listening on IPv4 only");
            bind(server, SocketAddr::from(([0, 0, 0, 0], port)))
        }
    }
}

/// Starts a quinn endpoint on a bound `socket`, with the larger receive
/// buffer.
fn endpoint_on(
    server: Option<quinn::ServerConfig>,
    socket: std::net::UdpSocket,
) -> std::io::Result<quinn::Endpoint> {
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
