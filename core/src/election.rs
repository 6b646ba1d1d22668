//! Gateway election (interim definitions; the election branch brings the state machine).

use serde::{Deserialize, Serialize};

use crate::site::{GatewayRef, SiteId};

/// A LAN peer's election state.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Beacon {
    /// The site the peer is in.
    pub site: Option<SiteId>,
    /// The gateway it believes in.
    pub gateway: Option<GatewayRef>,
    /// The highest epoch it has seen.
    pub max_epoch: u64,
}
