//! Several devices per user: the device lookup every feature seals with,
//! rosters (telling peers about this user's other devices), removal, and
//! the host side of pairing. Syncing sent messages and read state to the
//! user's other devices is in `actor/sync.rs`.
//!
//! Rules: a device speaks only for its own user (a roster from a device of
//! user U may only name U's devices); a device revocation is final and is
//! passed on to everyone; a removed device is refused on connect (after
//! being handed the revocation, so it can tell its user why) and nobody
//! seals anything to it any more.

use std::sync::Arc;

use tincan_core::device::{Devices, Roster};
use tincan_core::outbox::AttemptOutcome;
use tincan_core::pairing::{PairGrant, PairHost, PairMessage, PairRefusal};
use tincan_core::wire::Frame;
use tincan_core::{DeviceCert, DeviceId, DeviceRevocation, UserId};

use super::Actor;
use crate::event::{DeviceView, NodeEvent, PairingView};
use crate::keystore::OsEntropy;
use crate::node::link;
use crate::node::NodeError;
use crate::store::{OwnDeviceRecord, StoreError};

/// Application close code for a connection from a removed device.
pub(super) const CLOSE_DEVICE_REMOVED: u32 = 6;
/// The close reason sent with [`CLOSE_DEVICE_REMOVED`].
pub(super) const DEVICE_REMOVED_REASON: &[u8] = b"device removed by its user";

/// What the actor knows about devices beyond the peer book.
#[derive(Default)]
pub(super) struct DevicesState {
    /// Every user's certified devices minus revoked ones.
    pub(super) known: Devices,
    /// The pairing code being shown, if any.
    pairing: Option<PairHost>,
    /// Set once this device learnt it was removed.
    pub(super) removed: Option<DeviceRevocation>,
    /// mDNS, to hint that a code is shown (none without mDNS).
    pub(super) announcer: Option<crate::discovery::Announcer>,
}

impl Actor {
    /// Loads the device lookup from the certificates already restored and
    /// the stored revocations.
    pub(super) fn restore_devices(&mut self) -> Result<(), StoreError> {
        let me = self.identity.device_id();
        let _ = self.devices.known.learn(self.identity.cert.clone());
        for cert in self.certs.values() {
            let _ = self.devices.known.learn(cert.clone());
        }
        for revocation in self.store.device_revocations()? {
            if revocation.device == me && revocation.user_id() == self.identity.user_id() {
                self.devices.removed = Some(revocation.clone());
            }
            let _ = self.devices.known.revoke(me, revocation);
        }
        Ok(())
    }

    /// The devices of `user` to seal for: every certified device not
    /// removed, except this one. The one lookup for every feature that
    /// addresses a user (messages, receipts, files, presence, rooms).
    pub(crate) fn device_certs_of(&self, user: &UserId) -> Vec<DeviceCert> {
        let me = self.identity.device_id();
        let mut out: std::collections::BTreeMap<DeviceId, DeviceCert> = self
            .devices
            .known
            .of_user(user)
            .into_iter()
            .map(|c| (c.device_id(), c))
            .collect();
        // Devices met directly or through the relay's directory.
        for info in self.book.devices_of(user) {
            if let Some(cert) = self.certs.get(&info.device) {
                if !self.devices.known.is_revoked(cert) {
                    out.entry(info.device).or_insert_with(|| cert.clone());
                }
            }
        }
        out.remove(&me);
        out.into_values().collect()
    }

    /// This user's other devices.
    pub(super) fn own_other_devices(&self) -> Vec<DeviceCert> {
        self.device_certs_of(&self.identity.user_id())
    }

    /// Fails with [`NodeError::DeviceRemoved`] once this device was removed.
    pub(super) fn check_not_removed(&self) -> Result<(), NodeError> {
        match &self.devices.removed {
            Some(_) => Err(NodeError::DeviceRemoved(self.identity.name.clone())),
            None => Ok(()),
        }
    }

    /// This user's roster as told to `to` (`None`: the relay or a
    /// gateway). Device labels are typed by the user ("home laptop") and
    /// are only for the user's own devices, so only a direct, mutually
    /// authenticated link to one of them carries them; the relay, gateways
    /// and other users get the certificates and removals alone.
    fn own_roster(&self, to: Option<&UserId>) -> Roster {
        let mut roster = self.devices.known.roster_of(&self.identity.user_id());
        if to == Some(&self.identity.user_id()) {
            roster.labels = self
                .store
                .own_devices()
                .unwrap_or_default()
                .into_iter()
                .map(|d| (d.device, d.label))
                .collect();
        }
        roster
    }

    /// Tells one connected peer (of user `to`; `None` for the relay)
    /// about this user's devices.
    pub(super) fn share_roster(&self, conn: &quinn::Connection, to: Option<&UserId>) {
        let frame = Arc::new(Frame::Devices(self.own_roster(to)));
        tokio::spawn(link::notify(conn.clone(), frame));
    }

    /// Tells every connected peer, the gateway and the relay.
    fn spread_roster(&self) {
        let me = self.identity.user_id();
        let bare = Arc::new(Frame::Devices(self.own_roster(None)));
        let labelled = Arc::new(Frame::Devices(self.own_roster(Some(&me))));
        for (device, conns) in &self.conns {
            let Some(conn) = conns.last() else { continue };
            let own = self.certs.get(device).is_some_and(|c| c.user_id() == me);
            let frame = if own { &labelled } else { &bare };
            tokio::spawn(link::notify(conn.clone(), frame.clone()));
        }
        for conn in self.relay.conn.iter() {
            tokio::spawn(link::notify(conn.clone(), bare.clone()));
        }
    }

    /// On a new connection: a removed device is handed its revocation
    /// and closed; returns whether it was.
    pub(super) fn refuse_removed(&mut self, conn: &quinn::Connection, cert: &DeviceCert) -> bool {
        if !self.devices.known.is_revoked(cert) {
            return false;
        }
        tracing::warn!(device = %cert.device_id(), "refusing a removed device");
        let Some(revocation) = self.devices.known.revocation(&cert.device_id()) else {
            return false;
        };
        let roster = self.removal_roster(revocation);
        let conn = conn.clone();
        tokio::spawn(async move {
            // Hand over the proof first, so the device can tell its user.
            link::notify(conn.clone(), Arc::new(Frame::Devices(roster))).await;
            conn.close(CLOSE_DEVICE_REMOVED.into(), DEVICE_REMOVED_REASON);
        });
        true
    }

    /// A peer's roster: learn its user's other devices, apply removals.
    pub(super) fn on_roster(&mut self, from: DeviceId, roster: Roster) -> Frame {
        let mut roster = roster;
        let user = match self.certs.get(&from).map(DeviceCert::user_id) {
            Some(user) => user,
            // The relay (or the gateway) passes on removals only.
            None if self.is_uplink(&from) => {
                roster.certs.clear();
                self.identity.user_id()
            }
            None => return Frame::Error("roster from an unknown device".into()),
        };
        // A removal counts only against the certificate its device showed
        // us (met directly or listed by the relay), so make sure the
        // lookup has it; one for a device never seen is held, not acted on.
        for revocation in &roster.revocations {
            if let Some(cert) = self.certs.get(&revocation.device) {
                let _ = self.devices.known.learn(cert.clone());
            }
        }
        let changes = match self.devices.known.apply_roster(from, &user, &roster) {
            Ok(changes) => changes,
            Err(e) => {
                tracing::warn!(%from, error = %e, "roster refused");
                return Frame::Error(e.to_string());
            }
        };
        let mine = user == self.identity.user_id();
        for cert in changes.added {
            let label = roster
                .labels
                .iter()
                .find(|(d, _)| *d == cert.device_id())
                .map(|(_, l)| l.clone());
            self.learn_device(&cert, mine.then_some(label).flatten());
        }
        if mine {
            for (device, label) in &roster.labels {
                self.relabel(device, label);
            }
        }
        for revocation in changes.revoked {
            self.apply_device_revocation(&revocation);
        }
        Frame::Ack
    }

    /// Remembers a device learnt from a roster or a pairing: sealed to
    /// from now on (queued while it is offline).
    fn learn_device(&mut self, cert: &DeviceCert, label: Option<String>) {
        let device = cert.device_id();
        if device == self.identity.device_id() {
            return;
        }
        let user = cert.user_id();
        let name = if user == self.identity.user_id() {
            self.identity.name.clone()
        } else {
            self.book
                .devices_of(&user)
                .map(|d| d.name.clone())
                .next()
                .unwrap_or_default()
        };
        tracing::info!(%device, %user, "learnt a device of the user");
        self.remember_device(cert, name);
        if user == self.identity.user_id() {
            let own = OwnDeviceRecord {
                device,
                label: label.unwrap_or_else(|| "device".into()),
                added_at_ms: cert.issued_at.saturating_mul(1000),
            };
            if let Err(e) = self.store.upsert_own_device(&own) {
                tracing::warn!(%device, error = %e, "cannot store own device");
            }
        }
    }

    fn relabel(&mut self, device: &DeviceId, label: &str) {
        let valid = crate::keystore::validate_name(label).ok();
        let Some(cert) = self.devices.known.cert(device) else {
            return;
        };
        if valid.as_deref() != Some(label) || cert.user_id() != self.identity.user_id() {
            return;
        }
        let own = OwnDeviceRecord {
            device: *device,
            label: label.to_string(),
            added_at_ms: cert.issued_at.saturating_mul(1000),
        };
        if let Err(e) = self.store.upsert_own_device(&own) {
            tracing::warn!(%device, error = %e, "cannot store device label");
        }
    }

    /// A revocation verified against the device's certificate, new: forget
    /// the device everywhere, stop delivering to it, drop its connections;
    /// if it is this device, stop.
    fn apply_device_revocation(&mut self, revocation: &DeviceRevocation) {
        let device = revocation.device;
        if let Err(e) = self.store.save_device_revocation(revocation) {
            tracing::error!(%device, error = %e, "cannot store device revocation");
        }
        let this = device == self.identity.device_id();
        if this {
            tracing::warn!("this device was removed by its user; it gets no new messages");
            self.devices.removed = Some(revocation.clone());
        } else {
            tracing::info!(%device, "device removed by its user");
            self.certs.remove(&device);
            self.book.forget(&device);
            self.remote.remove(&device);
            self.directory.forget(&device);
            let now = self.now;
            let stuck = self.deliveries.waiting_for(&device);
            for id in stuck {
                self.outbox.handle_outcome(
                    now,
                    id,
                    device,
                    AttemptOutcome::Refused("the device was removed by its user".into()),
                );
            }
            // Hand it the proof, then hang up, so it can tell its user.
            let proof = Arc::new(Frame::Devices(self.removal_roster(revocation)));
            self.mesh.forget(&device);
            if self.conns.contains_key(&device) {
                self.mesh_link_down(device, false);
            }
            for conn in self.conns.remove(&device).into_iter().flatten() {
                let proof = proof.clone();
                tokio::spawn(async move {
                    link::notify(conn.clone(), proof).await;
                    conn.close(CLOSE_DEVICE_REMOVED.into(), DEVICE_REMOVED_REASON);
                });
            }
        }
        self.emit(NodeEvent::DeviceRemoved {
            device_id: device.to_string(),
            this,
        });
        // Pass it on: every peer should stop sealing to the device.
        self.spread_removal(revocation);
    }

    /// The roster that passes one removal on: the revocation, plus our
    /// own devices when it is about our user (we speak only for ours).
    fn removal_roster(&self, revocation: &DeviceRevocation) -> Roster {
        let mut roster = self.devices.known.roster_of(&revocation.user_id());
        roster.revocations.retain(|r| r.device == revocation.device);
        if revocation.user_id() != self.identity.user_id() {
            roster.certs.clear();
        }
        roster
    }

    fn spread_removal(&self, revocation: &DeviceRevocation) {
        let frame = Arc::new(Frame::Devices(self.removal_roster(revocation)));
        for conn in self
            .conns
            .values()
            .filter_map(|c| c.last())
            .chain(self.relay.conn.iter())
        {
            tokio::spawn(link::notify(conn.clone(), frame.clone()));
        }
    }

    fn device_view(&self, cert: &DeviceCert, labels: &[OwnDeviceRecord]) -> DeviceView {
        let device = cert.device_id();
        let this = device == self.identity.device_id();
        let label = labels
            .iter()
            .find(|d| d.device == device)
            .map(|d| d.label.clone())
            .unwrap_or_else(|| if this { "this device" } else { "device" }.into());
        DeviceView {
            device_id: device.to_string(),
            label,
            this,
            online: this
                || self.conns.contains_key(&device)
                || self.remote.get(&device).is_some_and(|r| r.online),
            added_at: cert.issued_at.saturating_mul(1000),
        }
    }

    /// `tincan device list`.
    pub(super) fn device_list(&self) -> Result<Vec<DeviceView>, NodeError> {
        self.check_not_removed()?;
        let labels = self.store.own_devices()?;
        let mut certs = self.devices.known.of_user(&self.identity.user_id());
        certs.sort_by_key(|c| (c.issued_at, c.device_id()));
        Ok(certs.iter().map(|c| self.device_view(c, &labels)).collect())
    }

    /// `tincan device remove DEVICE`.
    pub(super) fn remove_device(&mut self, query: &str) -> Result<DeviceView, NodeError> {
        self.check_not_removed()?;
        let user_key = self.identity.user.clone().ok_or(NodeError::NoUserKey)?;
        let labels = self.store.own_devices()?;
        let certs = self.devices.known.of_user(&self.identity.user_id());
        let query = query.trim();
        let key = query.to_lowercase();
        let matches: Vec<&DeviceCert> = certs
            .iter()
            .filter(|c| {
                let device = c.device_id();
                (key.len() >= 4 && device.matches_prefix(&key))
                    || labels
                        .iter()
                        .any(|d| d.device == device && d.label.to_lowercase() == key)
            })
            .collect();
        let cert = match matches.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return Err(NodeError::UnknownDevice(format!(
                    "no device of yours matches {query:?}; see `tincan device list`"
                )))
            }
            _ => {
                return Err(NodeError::UnknownDevice(format!(
                    "{query:?} matches several of your devices; give more of the device id"
                )))
            }
        };
        if cert.device_id() == self.identity.device_id() {
            return Err(NodeError::RemoveSelf);
        }
        let view = self.device_view(&cert, &labels);
        let revocation = DeviceRevocation::sign(&user_key, cert.device_id(), self.now_secs());
        // Signed here, with the key of the certificate just matched.
        let _ = self.devices.known.learn(cert.clone());
        let me = self.identity.device_id();
        if self.devices.known.revoke(me, revocation.clone()).is_ok() {
            self.apply_device_revocation(&revocation);
            // It held this epoch's room keys: start new epochs, whose keys
            // go only to the devices still in.
            self.rekey_rooms();
        }
        Ok(view)
    }

    /// `tincan device pair`: shows a fresh code (a code shown before stops
    /// working).
    pub(super) fn start_pairing(&mut self) -> Result<PairingView, NodeError> {
        self.check_not_removed()?;
        if self.identity.user.is_none() {
            return Err(NodeError::NoUserKey);
        }
        let host = PairHost::new(self.identity.device.public_key(), self.now, &mut OsEntropy);
        let view = PairingView {
            code: host.code().to_string(),
            expires_at: host.expires_at_ms(),
        };
        if let Some(mut old) = self.devices.pairing.replace(host) {
            old.cancel(PairRefusal::Other("replaced by a new code".into()));
        }
        if let Some(announcer) = &self.devices.announcer {
            announcer.set_pairing(true);
        }
        tracing::info!(expires_at = view.expires_at, "showing a pairing code");
        Ok(view)
    }

    /// When the pairing code expires, if one is shown.
    pub(super) fn pairing_timeout(&self) -> Option<u64> {
        self.devices
            .pairing
            .as_ref()
            .and_then(PairHost::poll_timeout)
    }

    /// Expires the pairing code when its time is up.
    pub(super) fn pairing_handle_timeout(&mut self, now: u64) {
        if let Some(host) = &mut self.devices.pairing {
            host.handle_timeout(now);
        }
        self.finish_failed_pairing();
    }

    /// No code is shown any more: stop hinting on mDNS.
    fn pairing_ended(&mut self) {
        self.devices.pairing = None;
        if let Some(announcer) = &self.devices.announcer {
            announcer.set_pairing(false);
        }
    }

    fn finish_failed_pairing(&mut self) {
        if let Some(Err(refusal)) = self.devices.pairing.as_ref().and_then(PairHost::outcome) {
            self.pairing_ended();
            tracing::warn!(%refusal, "pairing failed");
            self.emit(NodeEvent::PairingFailed {
                reason: refusal.to_string(),
            });
        }
    }

    /// One pairing step from a joining device.
    pub(super) fn on_pair(&mut self, joiner: DeviceCert, message: PairMessage) -> PairMessage {
        let now = self.now;
        let Some(host) = self.devices.pairing.as_mut() else {
            return PairMessage::Refused(PairRefusal::NotWaiting);
        };
        let answer = match message {
            PairMessage::Start { spake } => {
                host.handle_start(now, joiner.device_key, &spake, &mut OsEntropy)
            }
            PairMessage::Confirm { confirm, label } => {
                match host.handle_confirm(now, joiner.device_key, &confirm) {
                    Ok(()) => self.grant(&joiner, &label),
                    Err(refusal) => PairMessage::Refused(refusal),
                }
            }
            // The joiner found the host's confirmation wrong: same outcome.
            PairMessage::Refused(refusal) => {
                host.cancel(match refusal {
                    PairRefusal::WrongCode => PairRefusal::WrongCode,
                    _ => PairRefusal::Other("the new device gave up".into()),
                });
                PairMessage::Refused(PairRefusal::WrongCode)
            }
            _ => PairMessage::Refused(PairRefusal::Other("unexpected pairing step".into())),
        };
        self.finish_failed_pairing();
        answer
    }

    /// The joiner proved the code: certify it, remember it, tell everyone.
    fn grant(&mut self, joiner: &DeviceCert, label: &str) -> PairMessage {
        self.pairing_ended();
        let Some(user_key) = self.identity.user.clone() else {
            return PairMessage::Refused(PairRefusal::Other("no user key".into()));
        };
        let label = crate::keystore::validate_name(label).unwrap_or_else(|_| "device".into());
        let cert = user_key.certify_keys(joiner.device_key, joiner.agreement_key, self.now_secs());
        if let Err(e) = self.devices.known.learn(cert.clone()) {
            let why = match e {
                tincan_core::device::DeviceError::TooManyDevices(_) => e.to_string(),
                _ => format!("{e}; pair it with `tincan device add CODE --force`, which gives it a new device key"),
            };
            self.emit(NodeEvent::PairingFailed {
                reason: why.clone(),
            });
            return PairMessage::Refused(PairRefusal::Other(why));
        }
        self.ensure_own_label();
        self.learn_device(&cert, Some(label.clone()));
        let grant = PairGrant {
            cert: cert.clone(),
            name: self.identity.name.clone(),
            membership: self.membership.clone(),
            relay: self.relay_addr.as_ref().map(ToString::to_string),
            // The new device is this user's: it gets the labels.
            roster: self.own_roster(Some(&self.identity.user_id())),
        };
        let labels = self.store.own_devices().unwrap_or_default();
        let view = self.device_view(&cert, &labels);
        tracing::info!(device = %cert.device_id(), %label, "paired a new device");
        self.emit(NodeEvent::DevicePaired { device: view });
        // Peers learn of the new device now, so they seal to it too.
        self.spread_roster();
        PairMessage::Granted(Box::new(grant))
    }

    /// The first device gets a label the first time it pairs another: its
    /// host name.
    fn ensure_own_label(&mut self) {
        let me = self.identity.device_id();
        let has = self
            .store
            .own_devices()
            .is_ok_and(|list| list.iter().any(|d| d.device == me));
        if has {
            return;
        }
        let own = OwnDeviceRecord {
            device: me,
            label: crate::platform::device_label(),
            added_at_ms: self.identity.cert.issued_at.saturating_mul(1000),
        };
        if let Err(e) = self.store.upsert_own_device(&own) {
            tracing::warn!(error = %e, "cannot store this device's label");
        }
    }
}
