//! The keys behind an identity, and the one signature type and strict check
//! every signed statement in tincan uses.
//!
//! Kept apart from certificates and the stored identity because this is
//! where the secrets live: the only code that holds a `SigningKey` or a
//! `StaticSecret`, and whose `Debug` must never print one.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey as AgreementPublic, StaticSecret};

use super::cert::{cert_message, DeviceCert};
use crate::{DeviceId, Entropy, UserId};

/// A 64-byte ed25519 signature, serializable by serde/postcard (as a fixed
/// 64-element tuple: exactly 64 bytes in postcard, no length prefix).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Signature(pub [u8; 64]);

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(64)?;
        for byte in &self.0 {
            tuple.serialize_element(byte)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SignatureVisitor;

        impl<'de> serde::de::Visitor<'de> for SignatureVisitor {
            type Value = Signature;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Signature, A::Error> {
                let mut out = [0u8; 64];
                for (i, byte) in out.iter_mut().enumerate() {
                    *byte = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(Signature(out))
            }
        }

        deserializer.deserialize_tuple(64, SignatureVisitor)
    }
}

/// Checks an ed25519 signature with `verify_strict` (rejects weak keys and
/// malleable signatures). `message` must already carry its context prefix.
pub fn verify_signature(public_key: &[u8; 32], message: &[u8], signature: &Signature) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
    key.verify_strict(message, &signature).is_ok()
}

/// A user's long-term signing key. Its public half names the user.
#[derive(Clone)]
pub struct UserKey {
    signing: SigningKey,
}

impl UserKey {
    /// A fresh user key from the caller's entropy.
    pub fn generate(entropy: &mut dyn Entropy) -> Self {
        Self::from_bytes(&entropy.bytes32())
    }

    /// The key with this 32-byte ed25519 seed.
    pub fn from_bytes(secret: &[u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(secret),
        }
    }

    /// The 32-byte ed25519 seed (secret).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The id derived from the public key.
    pub fn id(&self) -> UserId {
        UserId::from_public_key(&self.public_key())
    }

    /// Signs `message` as is; callers prefix their own context string
    /// (device revocations: [`crate::device`]).
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }

    /// Signs a certificate for `device`, issued at `issued_at` (unix seconds).
    pub fn certify(&self, device: &DeviceKey, issued_at: u64) -> DeviceCert {
        self.certify_keys(
            device.public_key(),
            device.agreement_public_key(),
            issued_at,
        )
    }

    /// Signs a certificate for a device known by its public keys only (a
    /// device being paired: its secrets never leave it).
    pub fn certify_keys(
        &self,
        device_key: [u8; 32],
        agreement_key: [u8; 32],
        issued_at: u64,
    ) -> DeviceCert {
        let user_key = self.public_key();
        let message = cert_message(&user_key, &device_key, &agreement_key, issued_at);
        DeviceCert {
            user_key,
            device_key,
            agreement_key,
            issued_at,
            signature: Signature(self.signing.sign(&message).to_bytes()),
        }
    }
}

impl fmt::Debug for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserKey({:?})", self.id())
    }
}

/// One device's keys: ed25519 for signing, X25519 for receiving content keys.
#[derive(Clone)]
pub struct DeviceKey {
    signing: SigningKey,
    agreement: StaticSecret,
}

impl DeviceKey {
    /// Fresh device keys from the caller's entropy.
    pub fn generate(entropy: &mut dyn Entropy) -> Self {
        let mut secret = [0u8; 64];
        entropy.fill(&mut secret);
        Self::from_bytes(&secret)
    }

    /// The keys from `ed25519 seed || x25519 secret`.
    pub fn from_bytes(secret: &[u8; 64]) -> Self {
        let mut seed = [0u8; 32];
        let mut agreement = [0u8; 32];
        seed.copy_from_slice(&secret[..32]);
        agreement.copy_from_slice(&secret[32..]);
        Self {
            signing: SigningKey::from_bytes(&seed),
            agreement: StaticSecret::from(agreement),
        }
    }

    /// The secrets as `ed25519 seed || x25519 secret`.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.signing.to_bytes());
        out[32..].copy_from_slice(&self.agreement.to_bytes());
        out
    }

    /// The ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The X25519 public key content keys are wrapped to.
    pub fn agreement_public_key(&self) -> [u8; 32] {
        AgreementPublic::from(&self.agreement).to_bytes()
    }

    /// The id derived from the ed25519 public key.
    pub fn id(&self) -> DeviceId {
        DeviceId::from_public_key(&self.public_key())
    }

    /// Signs `message` as is; callers prefix their own context string.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }

    /// PKCS#8 v2 DER of the ed25519 key (RFC 5958 with the public key, as
    /// ring and rcgen expect), for the TLS certificate.
    pub fn to_pkcs8_der(&self) -> Vec<u8> {
        // RFC 8410 §7 layout; identical to ring's ed25519 v2 template.
        const PREFIX: [u8; 16] = [
            0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        const PUBLIC_TAG: [u8; 3] = [0x81, 0x21, 0x00];
        let mut der = Vec::with_capacity(83);
        der.extend_from_slice(&PREFIX);
        der.extend_from_slice(&self.signing.to_bytes());
        der.extend_from_slice(&PUBLIC_TAG);
        der.extend_from_slice(&self.public_key());
        der
    }

    /// X25519 with `their_x25519`. The caller must reject an all-zero
    /// result (a low-order point).
    pub(crate) fn agree(&self, their_x25519: &[u8; 32]) -> [u8; 32] {
        self.agreement
            .diffie_hellman(&AgreementPublic::from(*their_x25519))
            .to_bytes()
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceKey({:?})", self.id())
    }
}

#[cfg(test)]
mod tests {
    //! The PKCS#8 test reads the signing key itself, which only this module
    //! may touch.

    use super::*;
    use crate::entropy::SeededEntropy;
    use crate::identity::Identity;

    #[test]
    fn pkcs8_matches_the_reference_encoder() {
        use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
        // The same key the other identity tests make from seed 16.
        let device = Identity::generate("alice", 1_700_000_000, &mut SeededEntropy::new(16)).device;
        let der = device.to_pkcs8_der();
        let reference = device.signing.to_pkcs8_der().expect("reference encoding");
        assert_eq!(der.as_slice(), reference.as_bytes());
        let decoded = SigningKey::from_pkcs8_der(&der).expect("decodes");
        assert_eq!(decoded.verifying_key().to_bytes(), device.public_key());
    }
}
