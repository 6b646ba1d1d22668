//! Device certificates: a user key's signed word that a device speaks for
//! the user.
//!
//! Kept apart because the signed message's layout is a wire format: its
//! context string and fixed-width fields must never change, and the one
//! function that builds it ([`cert_message`]) is shared by signing and
//! checking so the two cannot drift.

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::key::Signature;
use super::verified;
use crate::{DeviceId, UserId};

/// Context prefix of the message a user key signs to certify a device.
const CERT_CONTEXT: &[u8] = b"tincan device cert v1\0";

/// Why a [`DeviceCert`] was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The certificate bytes do not decode.
    #[error("malformed device certificate")]
    Malformed,
    /// The user or device key is not a valid ed25519 public key.
    #[error("device certificate holds an invalid {0} key")]
    BadKey(&'static str),
    /// The user key's signature does not cover these fields.
    #[error("device certificate signature is invalid")]
    BadSignature,
}

/// A user key's statement that a device (both its keys) belongs to the user.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceCert {
    /// The user's ed25519 public key.
    pub user_key: [u8; 32],
    /// The device's ed25519 public key.
    pub device_key: [u8; 32],
    /// The device's X25519 public key.
    pub agreement_key: [u8; 32],
    /// When the user issued it, in unix seconds.
    pub issued_at: u64,
    /// The user key's signature over the fields above.
    pub signature: Signature,
}

/// The signed message: context, then fixed-width fields (unambiguous).
pub(super) fn cert_message(
    user: &[u8; 32],
    device: &[u8; 32],
    agreement: &[u8; 32],
    issued_at: u64,
) -> Vec<u8> {
    let mut message = Vec::with_capacity(CERT_CONTEXT.len() + 104);
    message.extend_from_slice(CERT_CONTEXT);
    message.extend_from_slice(user);
    message.extend_from_slice(device);
    message.extend_from_slice(agreement);
    message.extend_from_slice(&issued_at.to_be_bytes());
    message
}

impl DeviceCert {
    /// Checks both ed25519 keys and the user key's signature.
    ///
    /// A certificate that verified once is remembered (`identity::verified`): the
    /// same peer's certificate is checked at every seal and every open,
    /// and each check is an ed25519 verification (12 % of a daemon's CPU
    /// under load before this).
    pub fn verify(&self) -> Result<(), CertError> {
        if verified::contains(self) {
            return Ok(());
        }
        self.verify_uncached()?;
        verified::insert(self);
        Ok(())
    }

    fn verify_uncached(&self) -> Result<(), CertError> {
        let user =
            VerifyingKey::from_bytes(&self.user_key).map_err(|_| CertError::BadKey("user"))?;
        VerifyingKey::from_bytes(&self.device_key).map_err(|_| CertError::BadKey("device"))?;
        let message = cert_message(
            &self.user_key,
            &self.device_key,
            &self.agreement_key,
            self.issued_at,
        );
        let signature = ed25519_dalek::Signature::from_bytes(&self.signature.0);
        user.verify_strict(&message, &signature)
            .map_err(|_| CertError::BadSignature)
    }

    /// The user this certificate claims (only meaningful once verified).
    pub fn user_id(&self) -> UserId {
        UserId::from_public_key(&self.user_key)
    }

    /// The device this certificate describes.
    pub fn device_id(&self) -> DeviceId {
        DeviceId::from_public_key(&self.device_key)
    }

    /// Postcard encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        // A struct of fixed arrays and an integer always serializes.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decodes [`DeviceCert::to_bytes`] output (does not verify).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CertError> {
        match postcard::take_from_bytes::<Self>(bytes) {
            Ok((cert, [])) => Ok(cert),
            _ => Err(CertError::Malformed),
        }
    }
}
