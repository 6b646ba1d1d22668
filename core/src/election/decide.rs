//! The rules of the election (see the [module docs](super)): who is
//! gateway, whom a node follows, and who claims when nobody holds the lease.
//!
//! Kept apart from the inputs and outputs around it so that the rules read
//! as one piece, top to bottom, in the order the module docs give them; it
//! is the part every input ends in and the one that must stay
//! deterministic (it reads `BTreeMap`s only).

use std::cmp::Reverse;

use super::claim::Claim;
use super::{ElectionEvent, GatewayElection};
use crate::site::{GatewayRef, Rank, Role, SiteId};
use crate::{DeviceId, Entropy};

impl GatewayElection {
    /// Applies the rules in the module docs.
    pub(super) fn decide(&mut self, now: u64, entropy: Option<&mut dyn Entropy>) {
        let my_rank = self.my_rank(now);
        if my_rank.is_none() {
            self.drop_claim();
        }
        if self.relay.is_none() {
            return self.set_role(Role::Standalone, None);
        }
        if self.peers.is_empty() {
            self.drop_claim();
            return self.set_role(Role::Roaming, None);
        }
        let best_other = self.best_live_gateway();
        if let Some(claim) = self.claim.as_ref().filter(|c| c.granted) {
            let mine = GatewayRef {
                device: self.config.me,
                epoch: claim.epoch,
            };
            let beaten = best_other
                .is_some_and(|other| gateway_order(other) < gateway_order((claim.site, mine)));
            if !beaten {
                return self.set_role(Role::Gateway, Some(mine));
            }
            self.drop_claim();
        }
        if let Some((site, gateway)) = best_other {
            self.drop_claim();
            self.set_site(site);
            return self.set_role(Role::Member, Some(gateway));
        }
        self.contend(now, my_rank, entropy);
    }

    /// No gateway on the LAN: the best candidate claims the lowest site
    /// heard (minting one if need be) once the settle period is over;
    /// everyone else waits, roaming.
    fn contend(&mut self, now: u64, my_rank: Option<Rank>, entropy: Option<&mut dyn Entropy>) {
        let lowest_site = self
            .peers
            .values()
            .filter_map(|p| p.beacon.site)
            .chain(self.site)
            .min();
        let i_win = my_rank.is_some_and(|mine| {
            self.peers
                .values()
                .filter_map(|p| p.beacon.rank)
                .all(|theirs| theirs < mine)
        });
        if !i_win {
            self.drop_claim();
            if let Some(site) = lowest_site {
                self.set_site(site);
            }
            return self.set_role(Role::Roaming, None);
        }
        let settled_at = self.created_at.saturating_add(self.config.settle_ms);
        if self.claim.is_none() && now < settled_at {
            self.decide_again_at = Some(settled_at);
            return self.set_role(Role::Roaming, None);
        }
        let site = match (lowest_site, entropy) {
            (Some(site), _) => site,
            (None, Some(entropy)) => SiteId::random(entropy),
            (None, None) => {
                self.decide_again_at = Some(now);
                return self.set_role(Role::Roaming, None);
            }
        };
        if self.claim.as_ref().is_some_and(|c| c.site != site) {
            self.drop_claim();
        }
        if self.claim.is_none() {
            self.set_site(site);
            // Only a store written before epochs were fenced can hold
            // u64::MAX: claim low then, and the relay's refusal says where
            // its epoch really is.
            let epoch = self.max_epoch.checked_add(1).unwrap_or(1);
            self.set_max_epoch(epoch);
            self.claim = Some(Claim::new(site, epoch, now));
        }
        self.set_role(Role::Roaming, None);
    }

    /// The best gateway vouching for itself in a fresh beacon.
    fn best_live_gateway(&self) -> Option<(SiteId, GatewayRef)> {
        self.peers
            .iter()
            .filter_map(|(device, peer)| {
                let gateway = peer.beacon.gateway.filter(|g| g.device == *device)?;
                Some((peer.beacon.site?, gateway))
            })
            .min_by_key(|candidate| gateway_order(*candidate))
    }

    pub(super) fn my_rank(&self, now: u64) -> Option<Rank> {
        if !(self.relay.is_some() && self.relay_connected) {
            return None;
        }
        Rank::new(
            self.config.preference,
            now.saturating_sub(self.started_at),
            self.config.me,
        )
    }

    pub(super) fn set_site(&mut self, site: SiteId) {
        if self.site != Some(site) {
            self.site = Some(site);
            self.events.push_back(ElectionEvent::SiteChanged(site));
        }
    }

    fn set_role(&mut self, role: Role, gateway: Option<GatewayRef>) {
        if (self.role, self.gateway) != (role, gateway) {
            self.role = role;
            self.gateway = gateway;
            self.events
                .push_back(ElectionEvent::RoleChanged { role, gateway });
        }
    }
}

/// Sort key of live gateways, best first: lowest site (the merge rule), then
/// highest epoch (the newer lease), then lowest device (a tie the relay
/// cannot produce, broken deterministically anyway).
fn gateway_order((site, gateway): (SiteId, GatewayRef)) -> (SiteId, Reverse<u64>, DeviceId) {
    (site, Reverse(gateway.epoch), gateway.device)
}
