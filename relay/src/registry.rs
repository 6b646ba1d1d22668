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

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};

use tincan_core::route::{DirectoryEntry, Neighbour};
use tincan_core::site::SiteId;
use tincan_core::{DeviceCert, DeviceId, DeviceRevocation, OrgId, Revocations, UserId};

use tincan_core::lease::LeaseTable;

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
}

impl OrgState {
    /// Whether the user that certified `cert` removed that device.
    pub fn is_removed(&self, cert: &DeviceCert) -> bool {
        let device = cert.device_id();
        let by_its_user = |r: &DeviceRevocation| r.device == device && r.user_key == cert.user_key;
        self.removed.get(&device).is_some_and(by_its_user)
            || self.held_removals.iter().any(|(_, r)| by_its_user(r))
    }

    /// Holds a removal of a device not seen yet, within the bounds.
    fn hold_removal(&mut self, by: UserId, revocation: DeviceRevocation) {
        if self.held_removals.iter().any(|(_, r)| *r == revocation) {
            return;
        }
        let mine = self.held_removals.iter().filter(|(u, _)| *u == by).count();
        if mine >= tincan_core::device::MAX_HELD_PER_PEER {
            if let Some(i) = self.held_removals.iter().position(|(u, _)| *u == by) {
                self.held_removals.remove(i);
            }
        }
        if self.held_removals.len() >= tincan_core::device::MAX_HELD {
            self.held_removals.pop_front();
        }
        self.held_removals.push_back((by, revocation));
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

/// Whether two addresses share a LAN prefix (IPv4 /24, IPv6 /64).
pub fn same_lan_prefix(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets()[..3] == b.octets()[..3],
        (IpAddr::V6(a), IpAddr::V6(b)) => a.octets()[..8] == b.octets()[..8],
        _ => false,
    }
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

    /// Puts back a stored revocation list (only a newer one replaces).
    pub fn restore_revocations(&mut self, list: Revocations) {
        if let Some(state) = self.orgs.get_mut(&list.org_id()) {
            if state
                .revocations
                .as_ref()
                .is_none_or(|l| l.serial < list.serial)
            {
                state.revocations = Some(list);
            }
        }
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

    /// The connection of the live holder of a site, if the site's member
    /// list belongs to the live lease.
    pub fn site_conn(&self, now_ms: u64, org: &OrgId, site: &SiteId) -> Option<quinn::Connection> {
        let state = self.orgs.get(org)?;
        let s = state.sites.get(site)?;
        let (holder, epoch) = self.leases.holder(now_ms, &(*org, *site))?;
        if holder != s.holder || epoch != s.epoch {
            return None;
        }
        state.direct.get(&holder).map(|d| d.conn.clone())
    }

    /// Where `device` of `org` is now.
    pub fn locate(&self, now_ms: u64, org: &OrgId, device: &DeviceId) -> Location {
        let Some(state) = self.orgs.get(org) else {
            return Location::Offline;
        };
        if let Some(d) = state.direct.get(device) {
            return Location::Direct(d.conn.clone());
        }
        if let Some(site) = state.site_of.get(device) {
            if let Some(conn) = self.site_conn(now_ms, org, site) {
                return Location::Site { site: *site, conn };
            }
        }
        Location::Offline
    }

    /// The live site of a device, if it is listed by one.
    pub fn live_site(&self, now_ms: u64, org: &OrgId, device: &DeviceId) -> Option<SiteId> {
        let site = *self.orgs.get(org)?.site_of.get(device)?;
        self.site_conn(now_ms, org, &site).map(|_| site)
    }

    /// Replaces a site's member list (the caller checked the lease).
    pub fn set_site_members(
        &mut self,
        org: OrgId,
        site: SiteId,
        epoch: u64,
        holder: DeviceId,
        members: Vec<DeviceId>,
    ) {
        let Some(state) = self.orgs.get_mut(&org) else {
            return;
        };
        if let Some(old) = state.sites.get(&site) {
            for d in &old.members {
                if state.site_of.get(d) == Some(&site) {
                    state.site_of.remove(d);
                }
            }
        }
        let members: Vec<DeviceId> = members
            .into_iter()
            .filter(|d| !state.removed.contains_key(d))
            .collect();
        for d in &members {
            state.site_of.insert(*d, site);
        }
        state.sites.insert(
            site,
            SiteState {
                epoch,
                holder,
                members,
                live: true,
            },
        );
    }

    /// Notices sites whose liveness changed since the last tick (a lease
    /// expired or a new one was granted); returns their organisations.
    pub fn tick(&mut self, now_ms: u64) -> Vec<OrgId> {
        let mut live_now = Vec::new();
        for (org, state) in &self.orgs {
            for site in state.sites.keys() {
                live_now.push((*org, *site, self.site_conn(now_ms, org, site).is_some()));
            }
        }
        let mut changed = Vec::new();
        for (org, site, live) in live_now {
            if let Some(s) = self
                .orgs
                .get_mut(&org)
                .and_then(|st| st.sites.get_mut(&site))
            {
                if s.live != live {
                    s.live = live;
                    if !changed.contains(&org) {
                        changed.push(org);
                    }
                }
            }
        }
        changed
    }

    /// How many devices of every organisation are online: connected
    /// directly or behind a live site's gateway (the directory's `online`).
    pub fn online_count(&self, now_ms: u64) -> usize {
        self.orgs
            .iter()
            .map(|(org, state)| {
                state
                    .known
                    .keys()
                    .filter(|d| {
                        state.direct.contains_key(*d) || self.live_site(now_ms, org, d).is_some()
                    })
                    .count()
            })
            .sum()
    }

    /// The directory of `org`: every known device with its reachability.
    pub fn directory(&self, now_ms: u64, org: &OrgId) -> Vec<DirectoryEntry> {
        let Some(state) = self.orgs.get(org) else {
            return Vec::new();
        };
        let mut entries: Vec<DirectoryEntry> = state
            .known
            .iter()
            .map(|(device, k)| {
                let site = self.live_site(now_ms, org, device);
                DirectoryEntry {
                    cert: k.cert.clone(),
                    name: k.name.clone(),
                    online: state.direct.contains_key(device) || site.is_some(),
                    site,
                }
            })
            .collect();
        entries.sort_by_key(|e| e.cert.device_id());
        entries
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

    /// Probable LAN neighbours of `device`: registered devices of the same
    /// organisation from the same public IP sharing a LAN prefix. Returns
    /// what to tell each side: `(recipient, its connection, neighbours)`.
    pub fn neighbours(
        &self,
        org: &OrgId,
        device: &DeviceId,
    ) -> Vec<(DeviceId, quinn::Connection, Vec<Neighbour>)> {
        let Some(state) = self.orgs.get(org) else {
            return Vec::new();
        };
        let Some(me) = state.direct.get(device) else {
            return Vec::new();
        };
        let shares = |a: &[SocketAddr], b: &[SocketAddr]| {
            a.iter()
                .any(|x| b.iter().any(|y| same_lan_prefix(x.ip(), y.ip())))
        };
        let others: Vec<(&DeviceId, &DirectConn)> = state
            .direct
            .iter()
            .filter(|(d, c)| {
                *d != device
                    && c.remote.ip() == me.remote.ip()
                    && shares(&me.lan_addrs, &c.lan_addrs)
            })
            .collect();
        if others.is_empty() {
            return Vec::new();
        }
        let mut out = vec![(
            *device,
            me.conn.clone(),
            others
                .iter()
                .map(|(d, c)| Neighbour {
                    device: **d,
                    addrs: c.lan_addrs.clone(),
                })
                .collect(),
        )];
        for (d, c) in others {
            out.push((
                *d,
                c.conn.clone(),
                vec![Neighbour {
                    device: *device,
                    addrs: me.lan_addrs.clone(),
                }],
            ));
        }
        out
    }

    /// Applies a verified device revocation of `org`, handed in by a device
    /// of `by_user`, if the relay knows the device and the revoking user
    /// certified it. Forgets the device everywhere; returns its connection
    /// to close (`Some(None)`: applied, nothing to close; `None`: refused,
    /// held or already applied). A removal of a device the relay has not
    /// seen is held (see [`OrgState::held_removals`]): only its own user
    /// may hand it in, and it bars only a certificate of that user.
    pub fn remove_device(
        &mut self,
        now_ms: u64,
        org: OrgId,
        revocation: DeviceRevocation,
        by_user: Option<tincan_core::UserId>,
    ) -> Option<Option<quinn::Connection>> {
        let state = self.orgs.get_mut(&org)?;
        let device = revocation.device;
        if state
            .removed
            .get(&device)
            .is_some_and(|r| r.user_key == revocation.user_key)
        {
            return None;
        }
        match state.known.get(&device) {
            Some(k) if k.cert.user_key != revocation.user_key => return None,
            Some(_) => {}
            None => {
                // A device the relay never saw: only its own user may say
                // so (nobody else can fill the relay with removals), and
                // it is held until the device shows its certificate.
                if let Some(by) = by_user.filter(|u| *u == revocation.user_id()) {
                    state.hold_removal(by, revocation);
                }
                return None;
            }
        }
        state.held_removals.retain(|(_, r)| r.device != device);
        state.known.remove(&device);
        let conn = state.direct.remove(&device).map(|c| c.conn);
        state.site_of.remove(&device);
        for site in state.sites.values_mut() {
            site.members.retain(|m| *m != device);
        }
        state.removed.insert(device, revocation);
        self.leases.handle_holder_gone(now_ms, device);
        Some(conn)
    }

    /// Puts back a stored device revocation after a restart.
    pub fn restore_device_revocation(&mut self, org: OrgId, revocation: DeviceRevocation) {
        if let Some(state) = self.orgs.get_mut(&org) {
            state.known.remove(&revocation.device);
            state.removed.insert(revocation.device, revocation);
        }
    }

    /// Applies a newer, verified revocation list: forgets the revoked
    /// users' devices everywhere and ends their leases. Returns the revoked
    /// devices and the connections to close.
    pub fn revoke(
        &mut self,
        now_ms: u64,
        list: Revocations,
    ) -> (Vec<DeviceId>, Vec<quinn::Connection>) {
        let org = list.org_id();
        let Some(state) = self.orgs.get_mut(&org) else {
            return (Vec::new(), Vec::new());
        };
        let revoked: Vec<DeviceId> = state
            .known
            .iter()
            .filter(|(_, k)| list.is_revoked(&k.cert.user_id()))
            .map(|(d, _)| *d)
            .collect();
        let mut conns = Vec::new();
        for d in &revoked {
            state.known.remove(d);
            if let Some(c) = state.direct.remove(d) {
                conns.push(c.conn);
            }
            state.site_of.remove(d);
            for site in state.sites.values_mut() {
                site.members.retain(|m| m != d);
            }
        }
        state.revocations = Some(list);
        for d in &revoked {
            self.leases.handle_holder_gone(now_ms, *d);
        }
        (revoked, conns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_prefixes() {
        let a: IpAddr = "192.168.1.10".parse().expect("ip");
        let b: IpAddr = "192.168.1.200".parse().expect("ip");
        let c: IpAddr = "192.168.2.10".parse().expect("ip");
        assert!(same_lan_prefix(a, b));
        assert!(!same_lan_prefix(a, c));
        let x: IpAddr = "fd00:1:2:3::1".parse().expect("ip");
        let y: IpAddr = "fd00:1:2:3:ffff::9".parse().expect("ip");
        let z: IpAddr = "fd00:1:2:4::1".parse().expect("ip");
        assert!(same_lan_prefix(x, y));
        assert!(!same_lan_prefix(x, z));
        assert!(!same_lan_prefix(a, x));
    }
}
