//! Delay without `tc netem` (not in these kernels): a userspace UDP proxy
//! that runs inside a host's namespace and holds every datagram for a fixed
//! time in each direction.
//!
//! # Invariants
//! - Its sockets live only in the host's namespace: the proxy's first thread
//!   moves itself into the namespace (`setns`, this thread only) before it
//!   opens any socket, and gives up without opening one if that fails. Every
//!   socket is opened by that thread; the others only use them.
//! - Order is kept per direction (a constant delay never reorders).
//! - Dropping the [`DelayProxy`] stops and joins all of its threads, which
//!   closes its sockets; drop it before (or together with) the [`super::Lan`]
//!   or [`super::Internet`] owning the host, so the namespace is not kept
//!   alive by its sockets.

use std::collections::HashMap;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

use super::lan::Host;

/// How often idle threads look at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// A UDP forwarder on a host: datagrams sent to [`DelayProxy::addr`] go to
/// the target `delay` later, from a socket of the proxy's own (one per
/// client), and the target's answers go back to that client `delay` later.
/// Clients use the proxy's address instead of the target's, e.g. a relay's
/// address for a site that should see a long WAN round trip.
#[derive(Debug)]
pub struct DelayProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// A datagram waiting for its time.
struct Pending {
    due: Instant,
    socket: Arc<UdpSocket>,
    to: SocketAddr,
    data: Vec<u8>,
}

impl DelayProxy {
    /// Starts a proxy in `host`'s namespace, listening on UDP `port` of all
    /// its addresses, forwarding to `target` with `delay` each way. Returns
    /// once the proxy is listening.
    pub fn start(
        host: &Host,
        port: u16,
        target: SocketAddr,
        delay: Duration,
    ) -> Result<DelayProxy> {
        let netns = File::open(format!("/run/netns/{}", host.ns))
            .with_context(|| format!("opening namespace {}", host.ns))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name(format!("delay-{}", host.label))
                .spawn(move || {
                    // Into the namespace before any socket exists.
                    let entered =
                        move_into_link_name_space(netns.as_fd(), Some(LinkNameSpaceType::Network))
                            .context("setns into the host's namespace");
                    let listener = entered.and_then(|()| {
                        UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
                            .with_context(|| format!("binding UDP port {port}"))
                    });
                    match listener {
                        Ok(listener) => {
                            let _ = ready_tx.send(Ok(()));
                            serve(listener, target, delay, &stop);
                        }
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                        }
                    }
                })
                .context("spawning the proxy thread")?
        };
        let proxy = DelayProxy {
            addr: SocketAddr::new(host.ip.into(), port),
            stop,
            thread: Some(thread),
        };
        ready_rx.recv().context("the proxy thread ended early")??;
        Ok(proxy)
    }

    /// The address clients send to: the host's address (when started) and the
    /// proxy's port.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The proxy's first thread (inside the namespace): reads clients'
/// datagrams, opens an upstream socket per client, and queues everything
/// for the sender thread. Returns (after joining its threads) on `stop`.
fn serve(listener: UdpSocket, target: SocketAddr, delay: Duration, stop: &AtomicBool) {
    let listener = Arc::new(listener);
    let (queue, pending) = mpsc::channel::<Pending>();
    let mut threads = Vec::new();
    let stop_flag = Arc::new(AtomicBool::new(false));
    {
        let stop_flag = Arc::clone(&stop_flag);
        threads.push(std::thread::spawn(move || {
            send_when_due(&pending, &stop_flag)
        }));
    }
    let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let _ = listener.set_read_timeout(Some(POLL));
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let Ok((len, client)) = listener.recv_from(&mut buf) else {
            continue;
        };
        let upstream = match upstreams.get(&client) {
            Some(upstream) => Arc::clone(upstream),
            None => {
                let Ok(upstream) = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
                else {
                    continue;
                };
                let upstream = Arc::new(upstream);
                let _ = upstream.set_read_timeout(Some(POLL));
                let (socket, back, queue, stop_flag) = (
                    Arc::clone(&upstream),
                    Arc::clone(&listener),
                    queue.clone(),
                    Arc::clone(&stop_flag),
                );
                threads.push(std::thread::spawn(move || {
                    relay_back(&socket, &back, client, delay, &queue, &stop_flag)
                }));
                upstreams.insert(client, Arc::clone(&upstream));
                upstream
            }
        };
        let _ = queue.send(Pending {
            due: Instant::now() + delay,
            socket: upstream,
            to: target,
            data: buf[..len].to_vec(),
        });
    }
    stop_flag.store(true, Ordering::Relaxed);
    drop(queue);
    for thread in threads {
        let _ = thread.join();
    }
}

/// Queues the target's answers on `upstream` for `client`, through `back`
/// (the listening socket, so they come from the address the client used).
fn relay_back(
    upstream: &UdpSocket,
    back: &Arc<UdpSocket>,
    client: SocketAddr,
    delay: Duration,
    queue: &Sender<Pending>,
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let Ok((len, _from)) = upstream.recv_from(&mut buf) else {
            continue;
        };
        let _ = queue.send(Pending {
            due: Instant::now() + delay,
            socket: Arc::clone(back),
            to: client,
            data: buf[..len].to_vec(),
        });
    }
}

/// Sends each queued datagram at its due time (in queue order, which is due
/// order, since the delay is constant).
fn send_when_due(pending: &Receiver<Pending>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let item = match pending.recv_timeout(POLL) {
            Ok(item) => item,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let wait = item.due.saturating_duration_since(Instant::now());
        std::thread::sleep(wait);
        let _ = item.socket.send_to(&item.data, item.to);
    }
}
