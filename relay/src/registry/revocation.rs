//! Revoked users and removed devices: forgetting them everywhere.
//!
//! Kept apart because a removal must reach every map of an organisation
//! (known, direct, sites, leases) at once or a removed device stays
//! reachable through the one that was missed; and because removals of
//! devices the relay has not seen are held under bounds, so that nobody can
//! fill the relay with them.

use tincan_core::{DeviceId, DeviceRevocation, OrgId, Revocations, UserId};

use super::{OrgState, Registry};

impl Registry {
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

impl OrgState {
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
