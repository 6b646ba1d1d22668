//! Leases in a relay cluster: the engine decides every claim for all
//! nodes (core's rule, written by compare-and-set), and this node mirrors
//! what was granted into its own table, which its routing and
//! `SiteMembers` check read.
//!
//! The engine's leases run on the nodes' wall clocks (a lease granted at
//! one node may be renewed or taken over at another); the mirror runs on
//! this node's monotonic clock like every local lease, so a wall clock
//! step changes only what the engine decides next.

use std::sync::Arc;

use tincan_core::lease::LeaseState;
use tincan_core::site::SiteId;
use tincan_core::wire::Frame;

use super::{granted, refused};
use crate::engine::SharedLeases;
use crate::server::{Peer, Shared};

/// `LeaseClaim{site, epoch}` from `peer`, decided by the engine.
pub(super) async fn claim(
    shared: &Arc<Shared>,
    leases: &dyn SharedLeases,
    peer: &Peer,
    site: SiteId,
    epoch: u64,
) -> Frame {
    let wall = shared.clock.wall_ms();
    let ttl = shared.config.lease_ttl_ms;
    let state = match leases
        .claim_lease(peer.org, site, peer.device, epoch, wall, ttl)
        .await
    {
        Ok(Ok(state)) => state,
        Ok(Err(refusal)) => return refused(shared, site, epoch, &refusal),
        Err(e) => {
            // Not granted is the safe answer: the claimant keeps claiming,
            // and a holder that cannot renew steps down on its own clock.
            tracing::error!(error = %e, "the cluster cannot decide a lease claim; refused");
            return Frame::Error("relay storage unavailable".into());
        }
    };
    let key = (peer.org, site);
    let now = shared.clock.mono_ms();
    let mirror = LeaseState {
        expires_at: now.saturating_add(state.expires_at.saturating_sub(wall)),
        ..state
    };
    let changed = {
        let mut registry = shared.registry();
        let before = registry.leases.holder(now, &key);
        registry.leases.adopt(key, mirror);
        before != Some((peer.device, epoch))
    };
    if changed {
        tracing::info!(device = %peer.device, org = %peer.org, epoch, "lease granted by the cluster");
        // A new holder or epoch: the old member list no longer routes.
        shared.dirty(peer.org);
    }
    granted(shared, peer, site, state.epoch, state.expires_at)
}

/// `LeaseRelease{site, epoch}` from `peer`: ended in the engine too, so
/// another node may grant the site at once.
pub(super) async fn release(
    shared: &Arc<Shared>,
    leases: &dyn SharedLeases,
    peer: &Peer,
    site: SiteId,
    epoch: u64,
) {
    let wall = shared.clock.wall_ms();
    if let Err(e) = leases
        .release_lease(peer.org, site, peer.device, epoch, wall)
        .await
    {
        tracing::warn!(error = %e, "cannot release a lease in the cluster; it lapses at its TTL");
    }
}
