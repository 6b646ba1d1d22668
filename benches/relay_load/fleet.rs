//! Many simulated devices in one process, speaking the relay's real
//! protocol with the real libraries: core identities and memberships, the
//! device TLS of `tincan_transport::tls` (mutual, as the node's), one
//! request and one answer per stream (`tincan_transport::rpc`), keepalive
//! every second as the node's relay link.
//!
//! Devices share a few quinn endpoints (one UDP socket each, many
//! connections), each bound to its own address in 127.0.0.0/8, so the
//! relay's per-address limits (64 open connections, 50 attempts a second)
//! hold with its defaults: [`PER_ADDRESS`] devices per address.
//!
//! A device asks for versioned directory pushes as the node does, and
//! answers what the relay pushes: `DirectoryUpdate`, `Directory`,
//! `Neighbours` and `Revocations` with `Ack`, a routed envelope with a receipt signed by
//! its device key (it does not open the envelope: that is the node's cost,
//! not the relay's).

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quinn::crypto::rustls::QuicClientConfig;
use tincan_core::route::{Answer, DeviceAnswer, Register, Routed};
use tincan_core::wire::Frame;
use tincan_core::{Identity, Membership, MessageId, OrgKey, Receipt, ReceiptKind};
use tincan_transport::entropy::OsEntropy;
use tincan_transport::{rpc, tls};

/// Devices per source address: under the relay's default of 64 open
/// connections per address.
pub const PER_ADDRESS: usize = 48;
/// Bounds one exchange (a hang, not a speed limit).
pub const EXCHANGE: Duration = Duration::from_secs(60);
/// Attempts to register before the bench gives up on a device.
const ATTEMPTS: u32 = 60;

/// Unix time, ms.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What every device counts, summed over the fleet.
#[derive(Default)]
pub struct Counters {
    /// Directory frames received.
    pub directory_frames: AtomicU64,
    /// Directory entries received.
    pub directory_entries: AtomicU64,
    /// Routed envelopes received.
    pub envelopes: AtomicU64,
    /// Register attempts that failed and were tried again.
    pub retries: AtomicU64,
    /// Ids of envelopes received that the bench waits for (held mail).
    pub watched: Mutex<HashSet<MessageId>>,
}

/// One simulated device.
pub struct Device {
    /// Its identity (device key and certificate).
    pub identity: Identity,
    membership: Membership,
    config: quinn::ClientConfig,
    endpoint: usize,
    conn: Mutex<Option<quinn::Connection>>,
}

impl Device {
    /// Its current connection.
    pub fn conn(&self) -> Option<quinn::Connection> {
        self.conn.lock().expect("conn").clone()
    }
}

/// The devices and their endpoints.
pub struct Fleet {
    /// The devices.
    pub devices: Vec<Arc<Device>>,
    endpoints: Vec<quinn::Endpoint>,
    /// Counters.
    pub counters: Arc<Counters>,
}

/// Source address number `i` (127.0.1.1 onwards, 250 per /24).
fn source_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8)
}

impl Fleet {
    /// `n` devices of organisation `org` (named `org_name`), each a user of
    /// its own, on `n / PER_ADDRESS` endpoints. Call inside a runtime.
    pub fn new(org: &OrgKey, org_name: &str, n: usize) -> Fleet {
        let now = now_ms() / 1000;
        let count = n.div_ceil(PER_ADDRESS);
        assert!(count <= 250 * 254, "too many devices for 127.0.0.0/8");
        let endpoints = (0..count)
            .map(|i| {
                let addr = SocketAddr::from((source_ip(i), 0));
                tincan_transport::quic::bind(None, addr).expect("bind a client endpoint")
            })
            .collect();
        let devices = (0..n)
            .map(|i| {
                let identity = Identity::generate(&format!("dev{i}"), now, &mut OsEntropy);
                let membership = org
                    .issue(org_name, identity.user_id(), now - 10, now + 86_400)
                    .expect("membership");
                let (_, client_tls) = tls::rustls_configs(&identity).expect("tls");
                let crypto = QuicClientConfig::try_from(client_tls).expect("quic tls");
                let mut transport = quinn::TransportConfig::default();
                // As the node's relay link (node/src/node/link/endpoint.rs).
                transport.keep_alive_interval(Some(Duration::from_secs(1)));
                let mut config = quinn::ClientConfig::new(Arc::new(crypto));
                config.transport_config(Arc::new(transport));
                Arc::new(Device {
                    identity,
                    membership,
                    config,
                    endpoint: i / PER_ADDRESS,
                    conn: Mutex::new(None),
                })
            })
            .collect();
        Fleet {
            devices,
            endpoints,
            counters: Arc::new(Counters::default()),
        }
    }

    /// Connects and registers device `i` at `relay`, trying again (after a
    /// pause) when the relay refuses or the attempt fails; `Err` with the
    /// last error after [`ATTEMPTS`].
    pub async fn register(&self, i: usize, relay: SocketAddr) -> Result<(), String> {
        let device = &self.devices[i];
        let endpoint = &self.endpoints[device.endpoint];
        let register = Frame::Register(Register {
            name: device.identity.name.clone(),
            membership: device.membership.clone(),
            lan_addrs: Vec::new(),
            lonely: false,
        });
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
                let pause = 100 + (i as u64 * 37 + u64::from(attempt) * 101) % 400;
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            let connecting =
                match endpoint.connect_with(device.config.clone(), relay, tls::SERVER_NAME) {
                    Ok(c) => c,
                    Err(e) => {
                        last = e.to_string();
                        continue;
                    }
                };
            let conn = match tokio::time::timeout(EXCHANGE, connecting).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => {
                    last = e.to_string();
                    continue;
                }
                Err(_) => {
                    last = "handshake timed out".into();
                    continue;
                }
            };
            match rpc::request(&conn, &register, EXCHANGE).await {
                Ok(Frame::Welcome(_)) => {
                    tokio::spawn(serve(conn.clone(), device.clone(), self.counters.clone()));
                    // As the node does: versioned directory pushes (a relay
                    // that predates them answers an error and pushes the
                    // whole directory instead).
                    let _ = rpc::request(&conn, &Frame::DirectoryVersions, EXCHANGE).await;
                    *device.conn.lock().expect("conn") = Some(conn);
                    return Ok(());
                }
                Ok(other) => last = format!("answered {other:?}"),
                Err(e) => last = e.to_string(),
            }
            conn.close(0u32.into(), b"again");
        }
        Err(last)
    }

    /// Closes device `i`'s connection, if any.
    pub fn disconnect(&self, i: usize) {
        if let Some(conn) = self.devices[i].conn.lock().expect("conn").take() {
            conn.close(0u32.into(), b"bye");
        }
    }

    /// Forgets every connection (after the relay went away).
    pub fn forget_all(&self) {
        for d in &self.devices {
            d.conn.lock().expect("conn").take();
        }
    }
}

/// Answers what the relay sends on `conn` until it closes.
async fn serve(conn: quinn::Connection, device: Arc<Device>, counters: Arc<Counters>) {
    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
        let device = device.clone();
        let counters = counters.clone();
        tokio::spawn(async move {
            let Ok(frame) = rpc::read_request(&mut recv, EXCHANGE).await else {
                return;
            };
            let answer = match frame {
                Frame::Directory(entries) => {
                    counters.directory_frames.fetch_add(1, Ordering::Relaxed);
                    counters
                        .directory_entries
                        .fetch_add(entries.len() as u64, Ordering::Relaxed);
                    Frame::Ack
                }
                Frame::DirectoryUpdate(update) => {
                    counters.directory_frames.fetch_add(1, Ordering::Relaxed);
                    counters
                        .directory_entries
                        .fetch_add(update.entries.len() as u64, Ordering::Relaxed);
                    Frame::Ack
                }
                Frame::Neighbours(_) | Frame::Revocations(_) => Frame::Ack,
                Frame::Route(route) => Frame::Answers(answer_route(&device, &counters, route)),
                other => Frame::Error(format!("unexpected {}", other.name())),
            };
            let _ = rpc::answer(&mut send, &answer).await;
        });
    }
}

/// A receipt for each destination that is this device.
fn answer_route(
    device: &Device,
    counters: &Counters,
    route: tincan_core::route::Route,
) -> Vec<DeviceAnswer> {
    let me = device.identity.device_id();
    let Routed::Envelope(envelope) = &route.item else {
        return route
            .to
            .iter()
            .map(|d| DeviceAnswer {
                device: *d,
                answer: Answer::Accepted,
            })
            .collect();
    };
    counters.envelopes.fetch_add(1, Ordering::Relaxed);
    {
        let mut watched = counters.watched.lock().expect("watched");
        // Only ids the bench put there are removed: held mail arriving.
        watched.remove(&envelope.id);
    }
    route
        .to
        .iter()
        .map(|d| DeviceAnswer {
            device: *d,
            answer: if *d == me {
                Answer::Receipt(Receipt::sign(
                    &device.identity.device,
                    envelope.id,
                    envelope.sender.device_id(),
                    ReceiptKind::Delivered,
                    now_ms(),
                ))
            } else {
                Answer::Failed("not here".into())
            },
        })
        .collect()
}
