//! Keys and certificates: who a user is and which devices speak for them.
//!
//! A *user key* (ed25519) is the long-term identity of a person; its hash is
//! the [`UserId`]. Each installation has a *device key*: an ed25519 key that
//! signs envelopes and receipts (its hash is the [`DeviceId`]) plus an X25519
//! key that content keys are wrapped to. The user key vouches for a device
//! with a [`DeviceCert`]. A device created by joining an existing user may not
//! hold the user secret, hence `Identity::user` is optional.
//!
//! Invariants: every signature made here is over a message that starts with a
//! context string unique to its purpose (`tincan device cert v1\0`, ...), so a
//! signature can never be replayed as a different kind of statement; `Debug`
//! never prints secrets; decoding untrusted bytes never panics.

mod cert;
mod key;
#[cfg(test)]
mod tests;
mod verified;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use cert::{CertError, DeviceCert};
pub use key::{verify_signature, DeviceKey, Signature, UserKey};

use crate::{DeviceId, Entropy, UserId};

/// Version byte in front of [`Identity::to_bytes`].
const IDENTITY_VERSION: u8 = 1;

/// Why stored identity bytes could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The bytes do not decode.
    #[error("malformed identity file")]
    Malformed,
    /// Written by a newer tincan.
    #[error("unknown identity file version {0}")]
    UnknownVersion(u8),
    /// The certificate describes other keys than the ones stored.
    #[error("identity certificate does not match its keys")]
    CertMismatch,
    /// The certificate itself is invalid.
    #[error("identity certificate is invalid: {0}")]
    Cert(#[from] CertError),
}

/// Everything a device knows about itself: keys, certificate, display name.
#[derive(Clone)]
pub struct Identity {
    /// The user secret, if this device holds it (the first device does).
    pub user: Option<UserKey>,
    /// This device's keys.
    pub device: DeviceKey,
    /// The user's certificate for `device`.
    pub cert: DeviceCert,
    /// The display name the user chose.
    pub name: String,
}

/// On-disk form, after the version byte.
#[derive(Serialize, Deserialize)]
struct StoredIdentityV1 {
    user: Option<[u8; 32]>,
    device_signing: [u8; 32],
    device_agreement: [u8; 32],
    cert: DeviceCert,
    name: String,
}

impl Identity {
    /// New user + device, cert issued at `now_secs`.
    pub fn generate(name: &str, now_secs: u64, entropy: &mut dyn Entropy) -> Self {
        let user = UserKey::generate(entropy);
        let device = DeviceKey::generate(entropy);
        let cert = user.certify(&device, now_secs);
        Self {
            user: Some(user),
            device,
            cert,
            name: name.to_owned(),
        }
    }

    /// The user id (from the certificate, so it holds without the user secret).
    pub fn user_id(&self) -> UserId {
        self.cert.user_id()
    }

    /// This device's id.
    pub fn device_id(&self) -> DeviceId {
        self.device.id()
    }

    /// Versioned postcard encoding of the secrets + cert + name (what the
    /// node writes to disk, mode 0600): `version u8 || postcard`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let device = self.device.to_bytes();
        let mut device_signing = [0u8; 32];
        let mut device_agreement = [0u8; 32];
        device_signing.copy_from_slice(&device[..32]);
        device_agreement.copy_from_slice(&device[32..]);
        let stored = StoredIdentityV1 {
            user: self.user.as_ref().map(UserKey::to_bytes),
            device_signing,
            device_agreement,
            cert: self.cert.clone(),
            name: self.name.clone(),
        };
        let mut out = vec![IDENTITY_VERSION];
        // Fixed arrays, a struct and a string always serialize.
        out.extend_from_slice(&postcard::to_allocvec(&stored).unwrap_or_default());
        out
    }

    /// Decodes [`Identity::to_bytes`] output and checks that the certificate
    /// is valid and describes the stored keys.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        let (&version, body) = bytes.split_first().ok_or(IdentityError::Malformed)?;
        if version != IDENTITY_VERSION {
            return Err(IdentityError::UnknownVersion(version));
        }
        let stored = match postcard::take_from_bytes::<StoredIdentityV1>(body) {
            Ok((stored, [])) => stored,
            _ => return Err(IdentityError::Malformed),
        };
        let mut device = [0u8; 64];
        device[..32].copy_from_slice(&stored.device_signing);
        device[32..].copy_from_slice(&stored.device_agreement);
        let identity = Self {
            user: stored.user.as_ref().map(UserKey::from_bytes),
            device: DeviceKey::from_bytes(&device),
            cert: stored.cert,
            name: stored.name,
        };
        identity.cert.verify()?;
        let cert = &identity.cert;
        let user_matches = identity
            .user
            .as_ref()
            .is_none_or(|user| user.public_key() == cert.user_key);
        if !user_matches
            || cert.device_key != identity.device.public_key()
            || cert.agreement_key != identity.device.agreement_public_key()
        {
            return Err(IdentityError::CertMismatch);
        }
        Ok(identity)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("name", &self.name)
            .field("user", &self.user_id())
            .field("device", &self.device_id())
            .field("holds_user_key", &self.user.is_some())
            .finish()
    }
}
