//! Branch gateways: lease claims, releases and site member lists.
//!
//! Leases are per (organisation, site), granted by `tincan_core::lease`. A
//! grant with a new epoch is persisted *before* it is answered, so a
//! restarted relay never grants an epoch it granted before; a claim more
//! than `MAX_EPOCH_STEP` above the current epoch is refused, so nobody can
//! burn a site's epochs. Every grant is signed with the relay's key, for
//! the gateway to prove its lease to its LAN. `SiteMembers` is taken
//! only from the live holder of that epoch, and every card's membership
//! chain must be valid for the organisation.

use std::sync::Arc;

use tincan_core::lease::{LeaseGrant, LeaseRefusal};
use tincan_core::route::MemberCard;
use tincan_core::site::SiteId;
use tincan_core::wire::Frame;
use tincan_core::OrgId;

use crate::server::{Peer, Shared};
use crate::store::StoredDevice;

mod cluster;

/// Most devices one site list may name.
pub const MAX_SITE_MEMBERS: usize = tincan_core::route::MAX_ROUTE_DEVICES;

/// `LeaseClaim{site, epoch}` from `peer`.
pub async fn claim(shared: &Arc<Shared>, peer: &Peer, site: SiteId, epoch: u64) -> Frame {
    if let Some(leases) = shared.engine.shared_leases() {
        return cluster::claim(shared, leases, peer, site, epoch).await;
    }
    let now = shared.clock.mono_ms();
    let key = (peer.org, site);
    let (result, persist) = {
        let mut registry = shared.registry();
        let before = registry.leases.holder(now, &key);
        let result = registry.leases.claim(now, key, peer.device, epoch);
        let evicted: Vec<(OrgId, SiteId)> =
            std::iter::from_fn(|| registry.leases.poll_evicted()).collect();
        for key in &evicted {
            registry.persisted_epochs.remove(key);
        }
        if !evicted.is_empty() {
            let engine = shared.engine.clone();
            tokio::spawn(async move {
                for (org, site) in evicted {
                    if let Err(e) = engine.delete_epoch(org, site).await {
                        tracing::warn!(error = %e, "cannot forget the epoch of an evicted site");
                    }
                }
            });
        }
        let persisted = registry.persisted_epochs.get(&key).copied().unwrap_or(0);
        let persist = result.is_ok() && epoch > persisted;
        if result.is_ok() && before != Some((peer.device, epoch)) {
            // A new holder or epoch: the old member list no longer routes.
            drop(registry);
            shared.dirty(peer.org);
        }
        (result, persist)
    };
    match result {
        Ok(lease) => {
            if persist {
                let org = peer.org;
                match shared.engine.put_epoch(org, site, epoch).await {
                    Ok(()) => {
                        shared.registry().persisted_epochs.insert(key, epoch);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot persist a lease epoch; claim refused");
                        shared
                            .registry()
                            .leases
                            .release(now, &key, peer.device, epoch);
                        return Frame::Error("relay storage unavailable".into());
                    }
                }
                tracing::info!(device = %peer.device, org = %peer.org, epoch, "lease granted");
            }
            // The lease runs on the monotonic clock; members check the
            // grant against their wall clocks (with slack for skew).
            let expires_at_ms = shared
                .clock
                .wall_ms()
                .saturating_add(shared.config.lease_ttl_ms);
            granted(shared, peer, site, lease.epoch, expires_at_ms)
        }
        Err(refusal) => refused(shared, site, epoch, &refusal),
    }
}

/// The answer to a granted claim: the grant, signed with the relay's key
/// for the gateway to show its LAN.
fn granted(shared: &Shared, peer: &Peer, site: SiteId, epoch: u64, expires_at_ms: u64) -> Frame {
    shared.metrics.leases_granted.inc();
    let grant = LeaseGrant::sign(&shared.key, site, epoch, peer.device, expires_at_ms);
    Frame::LeaseGranted {
        site,
        epoch,
        ttl_ms: shared.config.lease_ttl_ms,
        grant: Box::new(grant),
    }
}

/// The answer to a refused claim, with what the claimant needs to claim
/// sensibly next time.
fn refused(shared: &Shared, site: SiteId, epoch: u64, refusal: &LeaseRefusal) -> Frame {
    shared.metrics.leases_refused.inc();
    Frame::LeaseRefused {
        site,
        epoch,
        current_epoch: refusal.current_epoch(),
        holder: refusal.holder(),
    }
}

/// `LeaseRelease{site, epoch}` from `peer`.
pub async fn release(shared: &Arc<Shared>, peer: &Peer, site: SiteId, epoch: u64) -> Frame {
    if let Some(leases) = shared.engine.shared_leases() {
        cluster::release(shared, leases, peer, site, epoch).await;
    }
    let now = shared.clock.mono_ms();
    let released = shared
        .registry()
        .leases
        .release(now, &(peer.org, site), peer.device, epoch);
    if released {
        tracing::info!(device = %peer.device, epoch, "lease released");
        shared.dirty(peer.org);
    }
    Frame::Ack
}

/// `SiteMembers{site, epoch, members}` from `peer`.
pub async fn site_members(
    shared: &Arc<Shared>,
    peer: &Peer,
    site: SiteId,
    epoch: u64,
    members: Vec<MemberCard>,
) -> Frame {
    let now = shared.clock.mono_ms();
    let holder = shared.registry().leases.holder(now, &(peer.org, site));
    if holder != Some((peer.device, epoch)) {
        return Frame::Error(format!(
            "site members refused: this device is not the live lease holder of the site at epoch {epoch}"
        ));
    }
    if members.len() > MAX_SITE_MEMBERS {
        return Frame::Error(format!("at most {MAX_SITE_MEMBERS} site members"));
    }
    let revocations = shared
        .registry()
        .org(&peer.org)
        .and_then(|s| s.revocations.clone());
    let now_secs = shared.clock.wall_secs();
    for card in &members {
        let device = card.cert.device_id();
        match card
            .membership
            .admits(&card.cert, now_secs, revocations.as_ref())
        {
            Ok(org) if org == peer.org => {}
            Ok(_) => {
                return Frame::Error(format!(
                    "member card of device {device} is for another organisation"
                ))
            }
            Err(e) => return Frame::Error(format!("member card of device {device} refused: {e}")),
        }
        let name_ok = tincan_core::name::validate_name(&card.name).is_ok_and(|n| n == card.name);
        if !name_ok {
            return Frame::Error(format!(
                "member card of device {device} has an invalid name"
            ));
        }
    }
    // A user's devices beyond the relay's cap are left out: neither stored
    // nor routed to (a member could otherwise certify devices without end).
    let allowed = shared.registry().within_device_cap(
        &peer.org,
        members.iter().map(|c| &c.cert),
        shared.config.max_devices_per_user,
    );
    let members: Vec<MemberCard> = members
        .into_iter()
        .zip(allowed)
        .filter_map(|(card, ok)| ok.then_some(card))
        .collect();
    let wall = shared.clock.wall_ms();
    let devices: Vec<_> = members.iter().map(|c| c.cert.device_id()).collect();
    let stored: Vec<StoredDevice> = members
        .iter()
        .map(|c| StoredDevice {
            org: peer.org,
            cert: c.cert.clone(),
            name: c.name.clone(),
            last_seen_ms: wall,
        })
        .collect();
    if let Err(e) = shared.engine.upsert_devices(stored).await {
        tracing::warn!(error = %e, "cannot record site members");
    }
    {
        let mut registry = shared.registry();
        // The lease may have ended while storing; only the live holder's
        // list routes.
        if registry.leases.holder(now, &(peer.org, site)) != Some((peer.device, epoch)) {
            return Frame::Error("site members refused: the lease ended".into());
        }
        for c in members {
            registry.know(peer.org, c.cert, c.name, wall);
        }
        registry.set_site_members(peer.org, site, epoch, peer.device, devices.clone());
    }
    tracing::debug!(device = %peer.device, n = devices.len(), "site members updated");
    shared.dirty(peer.org);
    crate::flush::flush_devices(shared, peer.org, &devices);
    Frame::Ack
}
