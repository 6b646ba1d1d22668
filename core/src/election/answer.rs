//! The relay's answers to this node's claims, and the epochs they move.
//!
//! Kept apart because this is where the relay's authority meets the
//! node's own bookkeeping: a grant counts only when the pinned relay
//! signed it for this device, a late grant is handed back, and a refusal
//! can move the node's epoch *down* to just above the relay's. Epochs
//! change only through [`GatewayElection::see_epoch`] and
//! [`GatewayElection::set_max_epoch`], which report each change for the
//! driver to persist.

use super::{ElectionEvent, ElectionTransmit, GatewayElection};
use crate::lease::{LeaseGrant, VerifiedGrant};
use crate::site::SiteId;
use crate::DeviceId;

impl GatewayElection {
    /// The relay granted (or renewed) a lease, signed: this node shows the
    /// grant in its beacons so that its peers believe it is gateway. A
    /// grant the configured relay did not sign, or for another device, is
    /// ignored.
    pub fn handle_lease_granted(&mut self, now: u64, grant: LeaseGrant) {
        let Some(relay) = self.relay else {
            return;
        };
        if let Ok(verified) = VerifiedGrant::new(grant, &relay) {
            self.handle_verified_grant(now, verified);
        }
    }

    /// [`Self::handle_lease_granted`] for a grant whose signature the
    /// driver checked already (on another thread, say). It counts only
    /// when checked against the relay this node pinned and given to this
    /// device; otherwise it is ignored, as an unsigned grant is.
    pub fn handle_verified_grant(&mut self, now: u64, verified: VerifiedGrant) {
        if self.relay != Some(verified.relay()) || verified.grant().holder != self.config.me {
            return;
        }
        let grant = verified.into_grant();
        let (site, epoch) = (grant.site, grant.epoch);
        self.see_epoch(epoch);
        let config = &self.config;
        match self.claim.as_mut() {
            Some(claim) if claim.site == site && claim.epoch == epoch => {
                if claim.handle_granted(now, config) {
                    claim.grant = Some(grant);
                }
            }
            // A lease this node no longer wants (a late answer to a claim it
            // gave up): hand it back rather than block the site until it
            // lapses.
            _ => self
                .transmits
                .push_back(ElectionTransmit::Release { site, epoch }),
        }
        self.update(now, None);
    }

    /// The relay refused the claim of `site` at `epoch`; `current_epoch` is
    /// the site's epoch there and `holder` its live holder, if any.
    ///
    /// A refusal at or above our epoch means it is stale; one below it with
    /// no other live holder means our epoch was too far above the relay's
    /// (`LeaseRefusal::TooFar`), and one below it with another holder that
    /// the lease is held. The first two move a pending claim to just above
    /// `current_epoch`, down if need be: the relay is the authority.
    pub fn handle_lease_refused(
        &mut self,
        now: u64,
        site: SiteId,
        epoch: u64,
        current_epoch: u64,
        holder: Option<DeviceId>,
    ) {
        // Who holds the lease needs no action here: if the holder is on this
        // LAN its beacons say so; if not, this node waits for it to lapse.
        let me = self.config.me;
        let mut rebase_to = None;
        if let Some(claim) = self
            .claim
            .as_mut()
            .filter(|c| c.site == site && c.epoch == epoch)
        {
            claim.handle_refused(now, &self.config);
            let stale = current_epoch >= epoch;
            let too_far = !stale && holder.is_none_or(|h| h == me);
            // A "held" refusal below our epoch predates any grant of it,
            // so it only matters for a pending claim; a stale one means
            // the relay will never grant (or renew) it.
            if stale && claim.granted {
                self.claim = None;
            } else if (stale || too_far) && !claim.granted {
                // Nothing lies above u64::MAX: then the claim just waits
                // for its retry.
                rebase_to = current_epoch.checked_add(1);
            }
        }
        if let Some(next) = rebase_to {
            self.set_max_epoch(next);
            if let Some(claim) = self.claim.as_mut() {
                claim.rebase(next, now);
            }
        } else {
            self.see_epoch(current_epoch);
        }
        self.update(now, None);
    }

    /// Gives up the current claim or lease, releasing it at the relay when
    /// a claim went out (it may have been granted without our knowing).
    pub(super) fn drop_claim(&mut self) {
        if let Some(claim) = self.claim.take() {
            if claim.ever_sent() {
                self.transmits.push_back(ElectionTransmit::Release {
                    site: claim.site,
                    epoch: claim.epoch,
                });
            }
        }
    }

    pub(super) fn see_epoch(&mut self, epoch: u64) {
        if epoch > self.max_epoch {
            self.set_max_epoch(epoch);
        }
    }

    pub(super) fn set_max_epoch(&mut self, epoch: u64) {
        if epoch != self.max_epoch {
            self.max_epoch = epoch;
            self.events.push_back(ElectionEvent::EpochSeen(epoch));
        }
    }
}
