//! What a node tells its LAN peers, and how much of it a peer believes.
//!
//! A beacon is sent by an authenticated member of the organisation, but
//! any member could lie in it. So a claim to be gateway counts only with
//! the relay's signed [`LeaseGrant`] for exactly that device, site and
//! epoch, and the epochs a beacon reports are believed only up to that
//! grant plus [`MAX_EPOCH_STEP`]: without a grant, none at all. A forged
//! beacon can neither depose a real gateway nor push anybody's epochs
//! towards `u64::MAX`.

use serde::{Deserialize, Serialize};

use crate::lease::{LeaseGrant, MAX_EPOCH_STEP};
use crate::site::{GatewayRef, Rank, SiteId};
use crate::{DeviceId, RelayId};

/// What a node tells its LAN peers about itself, every beacon interval and
/// on every change. Travels in LAN datagrams to authenticated peers of the
/// same organisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beacon {
    /// The site the sender belongs to (or claims), if it has one.
    pub site: Option<SiteId>,
    /// Its rank, `None` when it is not eligible right now.
    pub rank: Option<Rank>,
    /// The gateway it believes in: itself when it holds the lease.
    pub gateway: Option<GatewayRef>,
    /// The highest lease epoch it has seen.
    pub max_epoch: u64,
    /// The relay's grant of its lease, when it is gateway: the proof that
    /// makes peers follow it.
    pub grant: Option<Box<LeaseGrant>>,
}

impl Beacon {
    /// Keeps of a beacon from `from` only what it proves at `now` against
    /// the pinned `relay`: a claim to be gateway without a matching grant
    /// is dropped. Returns the epoch the beacon proves (the grant's, or
    /// its `max_epoch` up to [`MAX_EPOCH_STEP`] above that), if any.
    pub(super) fn vet(&mut self, now: u64, from: DeviceId, relay: Option<&RelayId>) -> Option<u64> {
        let claimed = self.gateway.filter(|g| g.device == from);
        let proven = match (claimed, self.site, self.grant.as_ref(), relay) {
            (Some(gateway), Some(site), Some(grant), Some(relay)) => grant
                .proves(relay, from, site, gateway.epoch, now)
                .is_ok()
                .then_some(gateway.epoch),
            _ => None,
        };
        if claimed.is_some() && proven.is_none() {
            self.gateway = None;
        }
        proven.map(|epoch| {
            self.max_epoch
                .clamp(epoch, epoch.saturating_add(MAX_EPOCH_STEP))
        })
    }
}
