//! A user's devices: which device keys speak for a user, and which no
//! longer do.
//!
//! A device belongs to a user when the user key signed its [`DeviceCert`].
//! It stops belonging when the user key signs a [`DeviceRevocation`] for
//! it (`tincan device remove`): that statement is final (there is no
//! un-revoke; a lost laptop that is found again pairs anew, with a new key).
//! Both statements verify on their own, so anybody may pass them on: a
//! [`Roster`] is how devices tell peers about their user's other devices.
//!
//! [`Devices`] is the one lookup every feature uses to answer "which
//! devices of user U may I seal to / accept from": valid certificates,
//! minus revoked devices. Pure data; the driver persists what changes.
//!
//! Invariants: signatures are over `tincan device revocation v1\0` followed
//! by fixed-width fields, so no other signed statement can be replayed as a
//! revocation; a revocation only counts for a device whose certificate was
//! signed by the same user key, and is acted on only once that certificate
//! is known. Until then it is *held*: bounded per peer that handed it in
//! ([`MAX_HELD_PER_PEER`]) and overall ([`MAX_HELD`]), oldest evicted
//! first, several per device (so a forged one handed in first never
//! displaces the real one), applied when the certificate arrives. A known
//! certificate is never replaced by one of another user for the same
//! device key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::identity::{verify_signature, CertError, DeviceCert, Signature, UserKey};
use crate::{DeviceId, UserId};

/// Context prefix of the message a user key signs to remove a device.
const REVOCATION_CONTEXT: &[u8] = b"tincan device revocation v1\0";

/// Most certificates or revocations one [`Roster`] may carry.
pub const MAX_ROSTER: usize = 256;

/// Most devices one user may have at a time (the relay enforces the same
/// default): a desktop, laptops, a terminal server session or two; far
/// beyond what a person uses, and it bounds what one stranger's roster can
/// make a node keep.
pub const MAX_DEVICES_PER_USER: usize = 32;

/// Most revocations of not-yet-known devices held for one peer: one
/// roster's worth.
pub const MAX_HELD_PER_PEER: usize = MAX_ROSTER;

/// Most revocations of not-yet-known devices held in all (an office of
/// 5,000 devices removing some fits many times over).
pub const MAX_HELD: usize = 8_192;

/// Why a device statement was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// A certificate in the statement is invalid.
    #[error("device certificate is invalid: {0}")]
    Cert(#[from] CertError),
    /// The user key's signature over the revocation does not verify.
    #[error("device revocation signature is invalid")]
    BadSignature,
    /// The statement is about another user than the one expected.
    #[error("statement is about user {got}, expected {expected}")]
    WrongUser {
        /// The user it names.
        got: UserId,
        /// The user it should name.
        expected: UserId,
    },
    /// The device was removed by its user.
    #[error("device {0} was removed by its user")]
    Revoked(DeviceId),
    /// A roster with more than [`MAX_ROSTER`] entries, or more
    /// certificates than [`MAX_DEVICES_PER_USER`].
    #[error("device roster has more than {MAX_ROSTER} entries or more than {MAX_DEVICES_PER_USER} devices")]
    TooLarge,
    /// The user already has [`MAX_DEVICES_PER_USER`] devices.
    #[error("user {0} already has {MAX_DEVICES_PER_USER} devices; remove one with `tincan device remove` first")]
    TooManyDevices(UserId),
}

/// A user key's statement that one of its devices no longer speaks for
/// the user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRevocation {
    /// The user's ed25519 public key (the signer).
    pub user_key: [u8; 32],
    /// The removed device.
    pub device: DeviceId,
    /// When it was removed, in unix seconds.
    pub revoked_at: u64,
    /// The user key's signature.
    pub signature: Signature,
}

fn revocation_message(user_key: &[u8; 32], device: &DeviceId, revoked_at: u64) -> Vec<u8> {
    let mut message = Vec::with_capacity(REVOCATION_CONTEXT.len() + 32 + 20 + 8);
    message.extend_from_slice(REVOCATION_CONTEXT);
    message.extend_from_slice(user_key);
    message.extend_from_slice(&device.0);
    message.extend_from_slice(&revoked_at.to_be_bytes());
    message
}

impl DeviceRevocation {
    /// Signs the removal of `device` with the user key.
    pub fn sign(user: &UserKey, device: DeviceId, revoked_at: u64) -> Self {
        let user_key = user.public_key();
        let message = revocation_message(&user_key, &device, revoked_at);
        DeviceRevocation {
            user_key,
            device,
            revoked_at,
            signature: user.sign(&message),
        }
    }

    /// Checks the user key's signature.
    pub fn verify(&self) -> Result<(), DeviceError> {
        let message = revocation_message(&self.user_key, &self.device, self.revoked_at);
        if verify_signature(&self.user_key, &message, &self.signature) {
            Ok(())
        } else {
            Err(DeviceError::BadSignature)
        }
    }

    /// The user who removed the device.
    pub fn user_id(&self) -> UserId {
        UserId::from_public_key(&self.user_key)
    }

    /// Postcard encoding (what the node stores).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Fixed arrays and an integer always serialize.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decodes [`DeviceRevocation::to_bytes`] output (does not verify).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        match postcard::take_from_bytes::<Self>(bytes) {
            Ok((revocation, [])) => Some(revocation),
            _ => None,
        }
    }
}

/// What a device tells a peer about its user's devices: every current
/// certificate and every removal (sent on connect and when they change).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    /// Certificates of the user's devices.
    pub certs: Vec<DeviceCert>,
    /// Removed devices.
    pub revocations: Vec<DeviceRevocation>,
    /// What the user called some of the devices (unsigned, for display
    /// only: `device list`).
    pub labels: Vec<(DeviceId, String)>,
}

/// What [`Devices::apply_roster`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RosterChanges {
    /// Devices not known before.
    pub added: Vec<DeviceCert>,
    /// Revocations not known before (their devices are gone now).
    pub revoked: Vec<DeviceRevocation>,
}

/// A revocation of a device whose certificate is not known yet.
#[derive(Clone, Debug)]
struct Held {
    /// Who handed it in (for the per-peer bound).
    from: DeviceId,
    revocation: DeviceRevocation,
}

/// Every user's devices as far as this node knows: certificates minus
/// revocations.
#[derive(Clone, Debug, Default)]
pub struct Devices {
    certs: BTreeMap<DeviceId, DeviceCert>,
    /// Revocations acted on: each matches the certificate it removed.
    revoked: BTreeMap<DeviceId, DeviceRevocation>,
    /// Revocations waiting for their device's certificate, by arrival
    /// (oldest first).
    held: BTreeMap<u64, Held>,
    next_held: u64,
}

impl Devices {
    /// Nothing known.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a certificate (verified here). `Ok(true)` if it is new;
    /// a revoked device is refused with [`DeviceError::Revoked`], also
    /// when a held revocation of its user removes it right now (then
    /// [`Devices::revocation`] has it, for the caller to act on). A
    /// certificate of another user for a device already known is refused
    /// with [`DeviceError::WrongUser`]: it could otherwise open the door
    /// to that user's revocations.
    pub fn learn(&mut self, cert: DeviceCert) -> Result<bool, DeviceError> {
        cert.verify()?;
        let device = cert.device_id();
        if self.is_revoked(&cert) {
            return Err(DeviceError::Revoked(device));
        }
        if let Some(known) = self.certs.get(&device) {
            if known.user_key != cert.user_key {
                return Err(DeviceError::WrongUser {
                    got: cert.user_id(),
                    expected: known.user_id(),
                });
            }
            return Ok(false);
        }
        let held = self
            .held
            .iter()
            .find(|(_, h)| h.revocation.device == device && h.revocation.user_key == cert.user_key)
            .map(|(_, h)| h.revocation.clone());
        if let Some(revocation) = held {
            self.held.retain(|_, h| h.revocation.device != device);
            self.revoked.insert(device, revocation);
            return Err(DeviceError::Revoked(device));
        }
        let user_key = cert.user_key;
        if self
            .certs
            .values()
            .filter(|c| c.user_key == user_key)
            .count()
            >= MAX_DEVICES_PER_USER
        {
            return Err(DeviceError::TooManyDevices(cert.user_id()));
        }
        self.certs.insert(device, cert);
        Ok(true)
    }

    /// Records a revocation (verified here) handed in by `from`. `Ok(true)`
    /// if it was acted on just now: the device's certificate is known,
    /// signed by the same user key, and is forgotten. A revocation signed
    /// by another user than the one who certified the device is refused.
    /// One for a device whose certificate is not known yet is held (see
    /// the module docs) and `Ok(false)`.
    pub fn revoke(
        &mut self,
        from: DeviceId,
        revocation: DeviceRevocation,
    ) -> Result<bool, DeviceError> {
        revocation.verify()?;
        let device = revocation.device;
        if let Some(done) = self.revoked.get(&device) {
            if done.user_key == revocation.user_key {
                return Ok(false);
            }
        }
        let Some(cert) = self.certs.get(&device) else {
            self.hold(from, revocation);
            return Ok(false);
        };
        if cert.user_key != revocation.user_key {
            return Err(DeviceError::WrongUser {
                got: revocation.user_id(),
                expected: cert.user_id(),
            });
        }
        self.certs.remove(&device);
        self.held.retain(|_, h| h.revocation.device != device);
        self.revoked.insert(device, revocation);
        Ok(true)
    }

    /// Keeps a revocation of an unknown device until its certificate
    /// arrives, within the bounds.
    fn hold(&mut self, from: DeviceId, revocation: DeviceRevocation) {
        if self.held.values().any(|h| h.revocation == revocation) {
            return;
        }
        let mine: Vec<u64> = self
            .held
            .iter()
            .filter(|(_, h)| h.from == from)
            .map(|(seq, _)| *seq)
            .collect();
        if mine.len() >= MAX_HELD_PER_PEER {
            self.held.remove(&mine[0]);
        }
        if self.held.len() >= MAX_HELD {
            self.held.pop_first();
        }
        self.held.insert(self.next_held, Held { from, revocation });
        self.next_held += 1;
    }

    /// How many revocations wait for their device's certificate.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Applies what device `from` of `user` told us about `user`'s devices.
    /// Certificates of other users are refused as a whole (a peer speaks
    /// only for its own user), as is an oversize roster; revocations of
    /// anyone's devices are taken (they are passed on, see [`Devices::revoke`]).
    pub fn apply_roster(
        &mut self,
        from: DeviceId,
        user: &UserId,
        roster: &Roster,
    ) -> Result<RosterChanges, DeviceError> {
        if roster.certs.len() > MAX_DEVICES_PER_USER
            || roster.revocations.len() > MAX_ROSTER
            || roster.labels.len() > MAX_ROSTER
        {
            return Err(DeviceError::TooLarge);
        }
        for cert in &roster.certs {
            cert.verify()?;
            if cert.user_id() != *user {
                return Err(DeviceError::WrongUser {
                    got: cert.user_id(),
                    expected: *user,
                });
            }
        }
        // Revocations prove themselves and only count against a device the
        // same user key certified, so anyone may pass them on.
        for revocation in &roster.revocations {
            revocation.verify()?;
        }
        let mut changes = RosterChanges::default();
        // Revocations first, so a roster listing a device and its removal
        // (a stale copy merged with a new one) ends with the device removed.
        for revocation in &roster.revocations {
            match self.revoke(from, revocation.clone()) {
                Ok(true) => changes.revoked.push(revocation.clone()),
                Ok(false) => {}
                Err(e) => return Err(e),
            }
        }
        for cert in &roster.certs {
            let already = self.revoked.contains_key(&cert.device_id());
            match self.learn(cert.clone()) {
                Ok(true) => changes.added.push(cert.clone()),
                // Removed just now by a held revocation.
                Err(DeviceError::Revoked(device)) if !already => {
                    if let Some(r) = self.revoked.get(&device) {
                        changes.revoked.push(r.clone());
                    }
                }
                // Already known, removed, or another user's key for a
                // device known under its own: nothing to add.
                // Past the user's cap (a roster cannot carry more, so
                // only when older devices are still known): the rest wait
                // until some are removed.
                Ok(false)
                | Err(
                    DeviceError::Revoked(_)
                    | DeviceError::WrongUser { .. }
                    | DeviceError::TooManyDevices(_),
                ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(changes)
    }

    /// Whether `cert`'s device was removed by the user that certified it.
    pub fn is_revoked(&self, cert: &DeviceCert) -> bool {
        self.revoked
            .get(&cert.device_id())
            .is_some_and(|r| r.user_key == cert.user_key)
    }

    /// The revocation of `device`, if it was removed.
    pub fn revocation(&self, device: &DeviceId) -> Option<&DeviceRevocation> {
        self.revoked.get(device)
    }

    /// The current (unrevoked) devices of `user`, in id order: whom to
    /// seal a message for `user` to.
    pub fn of_user(&self, user: &UserId) -> Vec<DeviceCert> {
        self.certs
            .values()
            .filter(|c| c.user_id() == *user)
            .cloned()
            .collect()
    }

    /// The certificate of a current device.
    pub fn cert(&self, device: &DeviceId) -> Option<&DeviceCert> {
        self.certs.get(device)
    }

    /// What to tell others about `user`'s devices.
    pub fn roster_of(&self, user: &UserId) -> Roster {
        Roster {
            certs: self.of_user(user),
            revocations: self
                .revoked
                .values()
                .filter(|r| r.user_id() == *user)
                .cloned()
                .collect(),
            labels: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
