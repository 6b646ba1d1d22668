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
    /// its `max_epoch` up to [`MAX_EPOCH_STEP`] above that), if any, and
    /// the grant that proves it.
    ///
    /// `proof` is the grant that proved this peer's lease before. While it
    /// still proves the same lease (holder, site, epoch, not lapsed) the
    /// beacon's newer grant is not verified: it could only extend what is
    /// already proven, and every grant is believed until it lapses anyway.
    /// That saves an ed25519 verification per beacon per peer, which was
    /// most of what an election costs on a LAN.
    pub(super) fn vet(
        &mut self,
        now: u64,
        from: DeviceId,
        relay: Option<&RelayId>,
        proof: Option<Box<LeaseGrant>>,
    ) -> Vetted {
        let claimed = self.gateway.filter(|g| g.device == from);
        let proof = match (claimed, self.site, relay) {
            (Some(gateway), Some(site), Some(relay)) => {
                let still = |g: &LeaseGrant| {
                    RelayId::from_public_key(&g.relay_key) == *relay
                        && g.matches(from, site, gateway.epoch, now).is_ok()
                };
                // The proof moves back out when it still holds: no copy of
                // a grant per beacon.
                let kept = proof.filter(|g| still(g));
                kept.or_else(|| {
                    self.grant
                        .as_ref()
                        .filter(|g| g.proves(relay, from, site, gateway.epoch, now).is_ok())
                        .cloned()
                })
            }
            _ => None,
        };
        let proven = proof.as_ref().map(|g| g.epoch);
        if claimed.is_some() && proven.is_none() {
            self.gateway = None;
        }
        let epoch = proven.map(|epoch| {
            self.max_epoch
                .clamp(epoch, epoch.saturating_add(MAX_EPOCH_STEP))
        });
        Vetted { epoch, proof }
    }
}

impl Beacon {
    /// Whether `other` (vetted) says what this one (vetted) said, for the
    /// election's decisions: the grant may be a newer renewal of the same
    /// lease, which changes nothing.
    pub(super) fn says_the_same(&self, other: &Beacon) -> bool {
        (self.site, self.rank, self.gateway, self.max_epoch)
            == (other.site, other.rank, other.gateway, other.max_epoch)
    }
}

/// What a beacon proved; see [`Beacon::vet`].
pub(super) struct Vetted {
    /// The epoch it proves, if any.
    pub(super) epoch: Option<u64>,
    /// The verified grant that proves the sender's lease, if it is gateway.
    pub(super) proof: Option<Box<LeaseGrant>>,
}
