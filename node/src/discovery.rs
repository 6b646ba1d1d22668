//! LAN discovery over mDNS (`_tincan._udp.local.`), with mdns-sd.
//!
//! A TXT record is a hint, never proof: it only tells the node where to
//! dial. Who is at that address is established by the mutually
//! authenticated QUIC handshake. Each node announces its own instance name
//! (derived from its device id), so several users on one host each appear
//! as themselves.

use std::net::SocketAddr;

use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};
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

/// A running mDNS announcer + browser.
pub struct Discovery {
    daemon: ServiceDaemon,
    fullname: String,
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
        let host = format!("{}.local.", instance_name(&device));
        let info = ServiceInfo::new(
            SERVICE_TYPE,
            &instance_name(&device),
            &host,
            "",
            port,
            &properties[..],
        )?
        .enable_addr_auto();
        let fullname = info.get_fullname().to_string();
        daemon.register(info)?;
        let browse = daemon.browse(SERVICE_TYPE)?;
        tokio::spawn(async move {
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
                    _ => None,
                };
                if let Some(out) = out {
                    if events.send(out).await.is_err() {
                        break;
                    }
                }
            }
        });
        tracing::info!(%fullname, port, "announcing on mdns");
        Ok(Self { daemon, fullname })
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
    let addrs = info
        .addresses
        .iter()
        .map(|ip| SocketAddr::new(ip.to_ip_addr(), port))
        .filter(|a| !a.ip().is_unspecified())
        .collect();
    Some(DiscoveryEvent::Found {
        device,
        user,
        name,
        addrs,
    })
}
