//! LAN discovery over mDNS (`_tincan._udp.local.`), with mdns-sd.
//!
//! A TXT record is a hint, never proof: it only tells the node where to
//! dial. Who is at that address is established by the mutually
//! authenticated QUIC handshake. Each node announces its own instance name
//! (derived from its device id), so several users on one host each appear
//! as themselves.
//!
//! mdns-sd announces every address of every interface, both families
//! (`A` and `AAAA` records), with the same SRV port and TXT; the node
//! listens on both. A hint's addresses are in dial order: IPv4, then
//! routable IPv6, then IPv6 link-local with its interface (scope id).

use std::net::SocketAddr;

use mdns_sd::{ScopedIp, ServiceDaemon, ServiceEvent, ServiceInfo};
use tincan_core::{wire::PROTOCOL_VERSION, DeviceId, Identity, UserId};
use tokio::sync::mpsc;

/// The DNS-SD service type of tincan nodes.
pub const SERVICE_TYPE: &str = "_tincan._udp.local.";

/// What the LAN told us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscoveryEvent {
    /// A node announced itself (or refreshed its announcement).
    Found {
        /// The device it claims to be (checked when we connect).
        device: DeviceId,
        /// The user it claims.
        user: UserId,
        /// The display name it claims.
        name: String,
        /// Where to dial it.
        addrs: Vec<SocketAddr>,
    },
    /// A node said goodbye (or its record expired).
    Lost {
        /// The device whose announcement is gone.
        device: DeviceId,
    },
}

/// Why mDNS could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// mdns-sd refused.
    #[error("mdns: {0}")]
    Mdns(#[from] mdns_sd::Error),
}

/// TXT key set while this node shows a pairing code (`tincan device
/// pair`), so `tincan device add` without `--peer` knows whom to dial.
const PAIRING_KEY: &str = "pair";

/// A running mDNS announcer + browser.
pub struct Discovery {
    daemon: ServiceDaemon,
    fullname: String,
    announcer: Announcer,
    browser: Browser,
}

/// Starts and stops looking for other nodes (cheap to clone).
///
/// Why stop: a browsing mdns-sd daemon re-queries every cached peer's
/// address records before their two-minute TTL runs out, so on a LAN of n
/// browsing nodes each one receives about n²/100 multicast queries a
/// second. A node that holds LAN links learns newcomers from its peers
/// (`tincan_core::lan`), and a newcomer, browsing, finds the others (they
/// keep announcing and answering); so a linked node needs no browse.
#[derive(Clone)]
pub struct Browser {
    daemon: ServiceDaemon,
    me: DeviceId,
    events: mpsc::Sender<DiscoveryEvent>,
    browsing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Browser {
    /// Browses (`true`) or stops browsing (`false`); idempotent.
    pub fn set_browsing(&self, on: bool) {
        use std::sync::atomic::Ordering;
        if self.browsing.swap(on, Ordering::SeqCst) == on {
            return;
        }
        if on {
            match self.daemon.browse(SERVICE_TYPE) {
                Ok(browse) => {
                    tracing::debug!("mdns browsing");
                    tokio::spawn(forward(browse, self.me, self.events.clone()));
                }
                Err(e) => {
                    self.browsing.store(false, Ordering::SeqCst);
                    tracing::warn!(error = %e, "cannot browse mdns");
                }
            }
        } else {
            tracing::debug!("mdns browse stopped (linked to the lan)");
            if let Err(e) = self.daemon.stop_browse(SERVICE_TYPE) {
                tracing::warn!(error = %e, "cannot stop the mdns browse");
            }
        }
    }
}

/// Passes what one browse hears to `events`, until the browse stops.
async fn forward(
    browse: mdns_sd::Receiver<ServiceEvent>,
    device: DeviceId,
    events: mpsc::Sender<DiscoveryEvent>,
) {
    let mut by_fullname = std::collections::HashMap::new();
    while let Ok(event) = browse.recv_async().await {
        let out = match event {
            ServiceEvent::ServiceResolved(info) => {
                let found = parse(&info);
                match found {
                    Some(DiscoveryEvent::Found { device: d, .. }) if d == device => None,
                    Some(DiscoveryEvent::Found { device: d, .. }) => {
                        by_fullname.insert(info.fullname.clone(), d);
                        found
                    }
                    _ => {
                        tracing::debug!(name = %info.fullname, "ignoring malformed mdns record");
                        None
                    }
                }
            }
            ServiceEvent::ServiceRemoved(_, fullname) => by_fullname
                .remove(&fullname)
                .map(|device| DiscoveryEvent::Lost { device }),
            ServiceEvent::SearchStopped(_) => break,
            _ => None,
        };
        if let Some(out) = out {
            if events.send(out).await.is_err() {
                break;
            }
        }
    }
}

/// Re-announces this node with changed TXT hints (cheap to clone).
#[derive(Clone)]
pub struct Announcer {
    daemon: ServiceDaemon,
    host: String,
    instance: String,
    port: u16,
    properties: Vec<(String, String)>,
}

impl Announcer {
    fn info(&self, pairing: bool) -> Result<ServiceInfo, DiscoveryError> {
        let mut properties = self.properties.clone();
        if pairing {
            properties.push((PAIRING_KEY.to_string(), "1".to_string()));
        }
        Ok(ServiceInfo::new(
            SERVICE_TYPE,
            &self.instance,
            &self.host,
            "",
            self.port,
            &properties[..],
        )?
        .enable_addr_auto())
    }

    /// Says (or stops saying) that this node shows a pairing code. A hint
    /// only: the pairing itself proves the code.
    pub fn set_pairing(&self, pairing: bool) {
        match self.info(pairing) {
            Ok(info) => {
                if let Err(e) = self.daemon.register(info) {
                    tracing::warn!(error = %e, "cannot update the mdns announcement");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot update the mdns announcement"),
        }
    }
}

/// Looks for nodes on the LAN that show a pairing code, for `wait` (or
/// one second after the first one answers); their addresses.
pub async fn find_pairing_hosts(
    wait: std::time::Duration,
) -> Result<Vec<SocketAddr>, DiscoveryError> {
    let daemon = ServiceDaemon::new()?;
    let browse = daemon.browse(SERVICE_TYPE)?;
    let mut deadline = tokio::time::Instant::now() + wait;
    let mut found: Vec<(DeviceId, Vec<SocketAddr>)> = Vec::new();
    while let Ok(Ok(event)) = tokio::time::timeout_at(deadline, browse.recv_async()).await {
        let ServiceEvent::ServiceResolved(info) = event else {
            continue;
        };
        let pairing = info.txt_properties.get_property_val_str(PAIRING_KEY) == Some("1");
        if let (true, Some(DiscoveryEvent::Found { device, addrs, .. })) = (pairing, parse(&info)) {
            if !addrs.is_empty() && found.iter().all(|(d, _)| *d != device) {
                found.push((device, addrs));
                deadline =
                    deadline.min(tokio::time::Instant::now() + std::time::Duration::from_secs(1));
            }
        }
    }
    let _ = daemon.shutdown();
    // One address per device: the first it announced.
    Ok(found
        .into_iter()
        .filter_map(|(_, a)| a.first().copied())
        .collect())
}

fn instance_name(device: &DeviceId) -> String {
    format!("tincan-{}", &device.to_string()[..16])
}

impl Discovery {
    /// Announces this node on `port` and forwards what it hears to `events`.
    pub fn start(
        me: &Identity,
        port: u16,
        events: mpsc::Sender<DiscoveryEvent>,
    ) -> Result<Self, DiscoveryError> {
        let daemon = ServiceDaemon::new()?;
        let device = me.device_id();
        let properties = [
            ("uid", me.user_id().to_string()),
            ("did", device.to_string()),
            ("name", me.name.clone()),
            ("v", PROTOCOL_VERSION.to_string()),
            ("port", port.to_string()),
        ];
        let announcer = Announcer {
            daemon: daemon.clone(),
            host: format!("{}.local.", instance_name(&device)),
            instance: instance_name(&device),
            port,
            properties: properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        };
        let info = announcer.info(false)?;
        let fullname = info.get_fullname().to_string();
        daemon.register(info)?;
        let browser = Browser {
            daemon: daemon.clone(),
            me: device,
            events,
            browsing: Default::default(),
        };
        browser.set_browsing(true);
        tracing::info!(%fullname, port, "announcing on mdns");
        Ok(Self {
            daemon,
            fullname,
            announcer,
            browser,
        })
    }

    /// A handle that re-announces this node with changed hints.
    pub fn announcer(&self) -> Announcer {
        self.announcer.clone()
    }

    /// A handle that starts and stops the browse.
    pub fn browser(&self) -> Browser {
        self.browser.clone()
    }

    /// Says goodbye on the LAN and stops.
    pub fn shutdown(self) {
        if let Ok(done) = self.daemon.unregister(&self.fullname) {
            // Waiting lets the goodbye packets leave before the daemon stops.
            let _ = done.recv_timeout(std::time::Duration::from_millis(500));
        }
        let _ = self.daemon.shutdown();
    }
}

fn parse(info: &mdns_sd::ResolvedService) -> Option<DiscoveryEvent> {
    let prop = |k: &str| info.txt_properties.get_property_val_str(k);
    if prop("v")?.parse::<u8>().ok()? != PROTOCOL_VERSION {
        return None;
    }
    let device: DeviceId = prop("did")?.parse().ok()?;
    let user: UserId = prop("uid")?.parse().ok()?;
    let name = prop("name").unwrap_or_default().to_string();
    let port = prop("port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(info.port);
    let mut addrs: Vec<SocketAddr> = info
        .addresses
        .iter()
        .filter_map(|ip| socket_addr(ip, port))
        .filter(|a| !a.ip().is_unspecified())
        .collect();
    crate::addr::sort_for_dial(&mut addrs);
    Some(DiscoveryEvent::Found {
        device,
        user,
        name,
        addrs,
    })
}

/// Where to dial an address mDNS resolved, on `port`. An IPv6 link-local
/// address keeps the interface it was seen on as its scope id: without
/// it, dialling `fe80::…` fails ("invalid remote address"), and a LAN
/// whose mDNS answers carry only `AAAA` records stays dark.
fn socket_addr(ip: &ScopedIp, port: u16) -> Option<SocketAddr> {
    match ip {
        ScopedIp::V4(v4) => Some(SocketAddr::new((*v4.addr()).into(), port)),
        ScopedIp::V6(v6) => crate::addr::ipv6_socket_addr(*v6.addr(), v6.scope_id().index, port),
        // A future kind of address: not one we know how to dial.
        _ => None,
    }
}
