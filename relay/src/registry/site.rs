//! Sites and where a device is: direct, via a live site, or offline.
//!
//! Kept apart because this is the one place a lease and a member list meet:
//! a site's list counts only while its sender holds the live lease at that
//! epoch and is connected, and every answer about reachability (routing,
//! the directory, the online gauge) goes through [`Registry::site_conn`]
//! so they cannot disagree.

use tincan_core::route::DirectoryEntry;
use tincan_core::site::SiteId;
use tincan_core::{DeviceId, OrgId};

use super::{Location, Registry, SiteState};

impl Registry {
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
}
