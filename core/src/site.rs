//! Sites and roles (interim definitions; the election branch brings the full module).

use serde::{Deserialize, Serialize};

use crate::DeviceId;

/// A site: one LAN broadcast domain of one organisation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct SiteId(pub [u8; 16]);

/// The gateway a node believes in.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct GatewayRef {
    /// The gateway device.
    pub device: DeviceId,
    /// Its lease epoch.
    pub epoch: u64,
}
