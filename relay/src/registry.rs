//! Who is where: the in-memory picture of every served organisation —
//! devices ever seen, devices registered directly, sites with their
//! gateway's latest member list, leases, revocation lists.
//!
//! # Locations
//! A device is reachable *direct* if it has a registered connection; else
//! *via site S* if the live lease holder of S (connected) listed it in its
//! latest `SiteMembers` for the current epoch; else it is offline. Direct is
//! preferred.
//!
//! # Invariants
//! - Organisations are isolated: every query takes an [`OrgId`] and only
//!   ever looks inside that organisation.
//! - A device of a revoked user is neither known, registered nor listed.
//! - Nothing here awaits or does I/O: callers hold the lock briefly and
//!   pass the clocks in (`now_ms` is the monotonic clock of the leases,
//!   `wall_ms` the Unix clock).

mod directory;
mod neighbour;
mod revocation;
mod site;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use tincan_core::site::SiteId;
use tincan_core::{DeviceCert, DeviceId, DeviceRevocation, OrgId, Revocations, UserId};

use tincan_core::lease::LeaseTable;

pub use directory::{DirectoryBatch, DirectoryNext, DirectorySent, PushOutcome};
pub use neighbour::same_lan_prefix;

/// A device the relay has seen (directly or in a gateway's list).
#[derive(Clone, Debug)]
pub struct Known {
    /// Its certificate.
    pub cert: DeviceCert,
    /// Its display name.
    pub name: String,
    /// When it was last reachable, ms since the Unix epoch.
    pub last_seen_ms: u64,
}

/// A registered connection.
#[derive(Clone, Debug)]
pub struct DirectConn {
    /// The connection.
    pub conn: quinn::Connection,
    /// The address the relay sees.
    pub remote: SocketAddr,
    /// The LAN addresses the device announced.
    pub lan_addrs: Vec<SocketAddr>,
    /// Whether it asked for neighbours.
    pub lonely: bool,
    /// When the device's membership ends, unix seconds.
    pub expires_at: u64,
    /// What it has of the directory.
    pub directory: DirectorySent,
}

/// A site as its gateway last described it.
#[derive(Clone, Debug)]
pub struct SiteState {
    /// The epoch of the latest `SiteMembers`.
    pub epoch: u64,
    /// The gateway that sent it.
    pub holder: DeviceId,
    /// The site's devices.
    pub members: Vec<DeviceId>,
    /// Liveness at the last [`Registry::tick`] (to notice expiries).
    pub live: bool,
}

/// One organisation's state.
#[derive(Debug, Default)]
pub struct OrgState {
    /// Every device ever seen and not revoked.
    pub known: HashMap<DeviceId, Known>,
    /// Registered connections.
    pub direct: HashMap<DeviceId, DirectConn>,
    /// Sites by id.
    pub sites: HashMap<SiteId, SiteState>,
    /// The site whose latest list names a device.
    pub site_of: HashMap<DeviceId, SiteId>,
    /// The newest revocation list.
    pub revocations: Option<Revocations>,
    /// Devices removed by their user (`tincan device remove`), each
    /// checked against the certificate it removed: final.
    pub removed: HashMap<DeviceId, DeviceRevocation>,
    /// Removals of devices the relay has not seen, by whom they were handed
    /// in, oldest first: enforced only against a certificate of the same
    /// user key, never stored, bounded (per handing user and per
    /// organisation), and never in the way of another removal.
    pub held_removals: VecDeque<(UserId, DeviceRevocation)>,
    /// The directory as last published (see [`DirectoryBatch`]).
    pub published: tincan_core::route::directory::PublishedDirectory,
}

impl OrgState {
    /// Whether the user that certified `cert` removed that device.
    pub fn is_removed(&self, cert: &DeviceCert) -> bool {
        let device = cert.device_id();
        let by_its_user = |r: &DeviceRevocation| r.device == device && r.user_key == cert.user_key;
        self.removed.get(&device).is_some_and(by_its_user)
            || self.held_removals.iter().any(|(_, r)| by_its_user(r))
    }
}

/// Where a device can be reached.
#[derive(Clone, Debug)]
pub enum Location {
    /// Over its own connection.
    Direct(quinn::Connection),
    /// Through the gateway of a site.
    Site {
        /// The site.
        site: SiteId,
        /// The gateway's connection.
        conn: quinn::Connection,
    },
    /// Nowhere now.
    Offline,
}

impl Location {
    /// The connection to use, if any.
    pub fn conn(&self) -> Option<&quinn::Connection> {
        match self {
            Location::Direct(c) | Location::Site { conn: c, .. } => Some(c),
            Location::Offline => None,
        }
    }
}

/// Everything the relay knows about served organisations.
#[derive(Debug)]
pub struct Registry {
    orgs: HashMap<OrgId, OrgState>,
    /// Gateway leases per (organisation, site).
    pub leases: LeaseTable<(OrgId, SiteId)>,
    /// The epochs already persisted (a renewal writes nothing).
    pub persisted_epochs: HashMap<(OrgId, SiteId), u64>,
}

impl Registry {
    /// A registry serving `orgs`, with leases of `lease_ttl_ms`.
    pub fn new(orgs: &[OrgId], lease_ttl_ms: u64) -> Self {
        Self {
            orgs: orgs.iter().map(|o| (*o, OrgState::default())).collect(),
            leases: LeaseTable::new(lease_ttl_ms),
            persisted_epochs: HashMap::new(),
        }
    }

    /// Whether `org` is served.
    pub fn serves(&self, org: &OrgId) -> bool {
        self.orgs.contains_key(org)
    }

    /// The served organisations.
    pub fn org_ids(&self) -> Vec<OrgId> {
        self.orgs.keys().copied().collect()
    }

    /// One organisation's state.
    pub fn org(&self, org: &OrgId) -> Option<&OrgState> {
        self.orgs.get(org)
    }

    /// Puts back a persisted epoch after a restart.
    pub fn restore_epoch(&mut self, org: OrgId, site: SiteId, epoch: u64) {
        self.leases.restore((org, site), epoch);
        self.persisted_epochs.insert((org, site), epoch);
    }

    /// Records a device as known (cert, name, last seen).
    pub fn know(&mut self, org: OrgId, cert: DeviceCert, name: String, wall_ms: u64) {
        let Some(state) = self.orgs.get_mut(&org) else {
            return;
        };
        let revoked = state
            .revocations
            .as_ref()
            .is_some_and(|l| l.is_revoked(&cert.user_id()));
        if revoked || state.is_removed(&cert) {
            return;
        }
        let entry = state.known.entry(cert.device_id()).or_insert(Known {
            cert: cert.clone(),
            name: name.clone(),
            last_seen_ms: wall_ms,
        });
        entry.cert = cert;
        entry.name = name;
        entry.last_seen_ms = entry.last_seen_ms.max(wall_ms);
    }

    /// For each of `certs`, whether `org` may know it with at most `max`
    /// devices per user: a device known already may, a new one while its
    /// user has room (earlier new ones of `certs` take room too).
    pub fn within_device_cap<'a>(
        &self,
        org: &OrgId,
        certs: impl IntoIterator<Item = &'a DeviceCert>,
        max: usize,
    ) -> Vec<bool> {
        let Some(state) = self.orgs.get(org) else {
            return certs.into_iter().map(|_| false).collect();
        };
        let mut per_user: HashMap<UserId, usize> = HashMap::new();
        for k in state.known.values() {
            *per_user.entry(k.cert.user_id()).or_default() += 1;
        }
        certs
            .into_iter()
            .map(|cert| {
                if state.known.contains_key(&cert.device_id()) {
                    return true;
                }
                let n = per_user.entry(cert.user_id()).or_default();
                let room = *n < max;
                if room {
                    *n += 1;
                }
                room
            })
            .collect()
    }

    /// The known device `device` of `org`.
    pub fn known(&self, org: &OrgId, device: &DeviceId) -> Option<&Known> {
        self.orgs.get(org)?.known.get(device)
    }

    /// Registers a direct connection; returns the older connection of the
    /// same device, which the caller closes.
    pub fn register(
        &mut self,
        org: OrgId,
        device: DeviceId,
        direct: DirectConn,
    ) -> Option<quinn::Connection> {
        let state = self.orgs.get_mut(&org)?;
        let new_id = direct.conn.stable_id();
        state
            .direct
            .insert(device, direct)
            .map(|old| old.conn)
            .filter(|old| old.stable_id() != new_id)
    }

    /// Updates the LAN data and membership expiry of a registered connection
    /// (a second Register).
    pub fn update_lan(
        &mut self,
        org: &OrgId,
        device: &DeviceId,
        lan: Vec<SocketAddr>,
        lonely: bool,
        expires_at: u64,
    ) {
        if let Some(d) = self
            .orgs
            .get_mut(org)
            .and_then(|s| s.direct.get_mut(device))
        {
            d.lan_addrs = lan;
            d.lonely = lonely;
            d.expires_at = expires_at;
        }
    }

    /// Forgets the connection `stable_id` of `device` (if still current) and
    /// ends its leases; returns whether it was the current one.
    pub fn unregister(
        &mut self,
        now_ms: u64,
        wall_ms: u64,
        org: OrgId,
        device: DeviceId,
        stable_id: usize,
    ) -> bool {
        let Some(state) = self.orgs.get_mut(&org) else {
            return false;
        };
        let current = state
            .direct
            .get(&device)
            .is_some_and(|d| d.conn.stable_id() == stable_id);
        if !current {
            return false;
        }
        state.direct.remove(&device);
        if let Some(k) = state.known.get_mut(&device) {
            k.last_seen_ms = k.last_seen_ms.max(wall_ms);
        }
        self.leases.handle_holder_gone(now_ms, device);
        true
    }

    /// Registered connections whose membership has ended at `now_secs`.
    pub fn expired(&self, now_secs: u64) -> Vec<quinn::Connection> {
        self.orgs
            .values()
            .flat_map(|s| s.direct.values())
            .filter(|d| d.expires_at <= now_secs)
            .map(|d| d.conn.clone())
            .collect()
    }

    /// The registered connections of `org`.
    pub fn connections(&self, org: &OrgId) -> Vec<(DeviceId, quinn::Connection)> {
        self.orgs
            .get(org)
            .map(|s| s.direct.iter().map(|(d, c)| (*d, c.conn.clone())).collect())
            .unwrap_or_default()
    }
}
