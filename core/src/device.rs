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
//! signed by the same user key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::identity::{verify_signature, CertError, DeviceCert, Signature, UserKey};
use crate::{DeviceId, UserId};

/// Context prefix of the message a user key signs to remove a device.
const REVOCATION_CONTEXT: &[u8] = b"tincan device revocation v1\0";

/// Most certificates or revocations one [`Roster`] may carry.
pub const MAX_ROSTER: usize = 256;

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
    /// A roster with more than [`MAX_ROSTER`] entries.
    #[error("device roster has more than {MAX_ROSTER} entries")]
    TooLarge,
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

/// Every user's devices as far as this node knows: certificates minus
/// revocations.
#[derive(Clone, Debug, Default)]
pub struct Devices {
    certs: BTreeMap<DeviceId, DeviceCert>,
    revoked: BTreeMap<DeviceId, DeviceRevocation>,
}

impl Devices {
    /// Nothing known.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a certificate (verified here). `Ok(true)` if it is new;
    /// a revoked device is refused with [`DeviceError::Revoked`].
    pub fn learn(&mut self, cert: DeviceCert) -> Result<bool, DeviceError> {
        cert.verify()?;
        let device = cert.device_id();
        if self.is_revoked(&cert) {
            return Err(DeviceError::Revoked(device));
        }
        Ok(self.certs.insert(device, cert).is_none())
    }

    /// Records a revocation (verified here). `Ok(true)` if it is new; the
    /// device's certificate, if known, is forgotten. A revocation signed
    /// by another user than the one who certified the device is refused.
    pub fn revoke(&mut self, revocation: DeviceRevocation) -> Result<bool, DeviceError> {
        revocation.verify()?;
        if let Some(cert) = self.certs.get(&revocation.device) {
            if cert.user_key != revocation.user_key {
                return Err(DeviceError::WrongUser {
                    got: revocation.user_id(),
                    expected: cert.user_id(),
                });
            }
        }
        if self.revoked.contains_key(&revocation.device) {
            return Ok(false);
        }
        self.certs.remove(&revocation.device);
        self.revoked.insert(revocation.device, revocation);
        Ok(true)
    }

    /// Applies what a device of `user` told us about `user`'s devices.
    /// Certificates of other users are refused as a whole (a peer speaks
    /// only for its own user), as is an oversize roster; revocations of
    /// anyone's devices are taken (they are passed on, see [`Devices::revoke`]).
    pub fn apply_roster(
        &mut self,
        user: &UserId,
        roster: &Roster,
    ) -> Result<RosterChanges, DeviceError> {
        if roster.certs.len() > MAX_ROSTER
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
            if self.revoke(revocation.clone())? {
                changes.revoked.push(revocation.clone());
            }
        }
        for cert in &roster.certs {
            match self.learn(cert.clone()) {
                Ok(true) => changes.added.push(cert.clone()),
                Ok(false) | Err(DeviceError::Revoked(_)) => {}
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
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;
    use crate::identity::DeviceKey;
    use crate::Identity;

    fn alice() -> (UserKey, DeviceCert, DeviceCert) {
        let mut entropy = SeededEntropy::new(1);
        let id = Identity::generate("alice", 10, &mut entropy);
        let user = id.user.clone().expect("user key");
        let desktop = user.certify(&DeviceKey::generate(&mut entropy), 11);
        (user, id.cert, desktop)
    }

    #[test]
    fn revocation_verifies_and_tampering_breaks_it() {
        let (user, _, desktop) = alice();
        let revocation = DeviceRevocation::sign(&user, desktop.device_id(), 20);
        assert_eq!(revocation.verify(), Ok(()));
        assert_eq!(revocation.user_id(), user.id());
        let mut later = revocation.clone();
        later.revoked_at += 1;
        assert_eq!(later.verify(), Err(DeviceError::BadSignature));
        let mut other = revocation.clone();
        other.device.0[0] ^= 1;
        assert_eq!(other.verify(), Err(DeviceError::BadSignature));
        let bytes = revocation.to_bytes();
        assert_eq!(DeviceRevocation::from_bytes(&bytes), Some(revocation));
        assert_eq!(DeviceRevocation::from_bytes(&bytes[1..]), None);
    }

    #[test]
    fn a_revoked_device_is_gone_and_cannot_come_back() {
        let (user, laptop, desktop) = alice();
        let mut devices = Devices::new();
        assert_eq!(devices.learn(laptop.clone()), Ok(true));
        assert_eq!(devices.learn(desktop.clone()), Ok(true));
        assert_eq!(devices.of_user(&user.id()).len(), 2);
        let revocation = DeviceRevocation::sign(&user, desktop.device_id(), 20);
        assert_eq!(devices.revoke(revocation.clone()), Ok(true));
        assert_eq!(devices.revoke(revocation), Ok(false), "idempotent");
        assert_eq!(devices.of_user(&user.id()), vec![laptop]);
        assert!(devices.is_revoked(&desktop));
        assert_eq!(
            devices.learn(desktop.clone()),
            Err(DeviceError::Revoked(desktop.device_id()))
        );
        assert_eq!(devices.roster_of(&user.id()).revocations.len(), 1);
    }

    #[test]
    fn another_user_cannot_revoke_my_device() {
        let (_, laptop, _) = alice();
        let mut devices = Devices::new();
        devices.learn(laptop.clone()).expect("learn");
        let mallory = UserKey::generate(&mut SeededEntropy::new(9));
        let forged = DeviceRevocation::sign(&mallory, laptop.device_id(), 20);
        assert!(matches!(
            devices.revoke(forged),
            Err(DeviceError::WrongUser { .. })
        ));
        assert_eq!(devices.of_user(&laptop.user_id()).len(), 1);
    }

    #[test]
    fn a_roster_speaks_only_for_its_own_user() {
        let (user, laptop, desktop) = alice();
        let mut devices = Devices::new();
        let roster = Roster {
            certs: vec![laptop.clone(), desktop.clone()],
            revocations: vec![DeviceRevocation::sign(&user, desktop.device_id(), 30)],
            labels: Vec::new(),
        };
        let changes = devices.apply_roster(&user.id(), &roster).expect("apply");
        assert_eq!(changes.added, vec![laptop.clone()]);
        assert_eq!(changes.revoked.len(), 1);
        assert_eq!(devices.of_user(&user.id()), vec![laptop.clone()]);
        // Bob cannot pass off his device as one of Alice's, nor a roster
        // of Alice's as his.
        let bob = Identity::generate("bob", 10, &mut SeededEntropy::new(5));
        let foreign = Roster {
            certs: vec![bob.cert.clone()],
            revocations: Vec::new(),
            labels: Vec::new(),
        };
        assert!(matches!(
            devices.apply_roster(&user.id(), &foreign),
            Err(DeviceError::WrongUser { .. })
        ));
        // A removal passed on by bob counts: it is signed by alice.
        let mut fresh = Devices::new();
        fresh.learn(desktop.clone()).expect("learn");
        let passed_on = Roster {
            certs: Vec::new(),
            revocations: vec![DeviceRevocation::sign(&user, desktop.device_id(), 30)],
            labels: Vec::new(),
        };
        let changes = fresh
            .apply_roster(&bob.user_id(), &passed_on)
            .expect("apply");
        assert_eq!(changes.revoked.len(), 1);
        assert!(fresh.of_user(&user.id()).is_empty());
        let mut tampered = laptop;
        tampered.issued_at += 1;
        let bad = Roster {
            certs: vec![tampered],
            revocations: Vec::new(),
            labels: Vec::new(),
        };
        assert!(matches!(
            devices.apply_roster(&user.id(), &bad),
            Err(DeviceError::Cert(_))
        ));
    }
}
