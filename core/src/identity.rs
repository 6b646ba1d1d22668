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

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey as AgreementPublic, StaticSecret};

use crate::{DeviceId, Entropy, UserId};

/// Context prefix of the message a user key signs to certify a device.
const CERT_CONTEXT: &[u8] = b"tincan device cert v1\0";

/// Version byte in front of [`Identity::to_bytes`].
const IDENTITY_VERSION: u8 = 1;

/// A 64-byte ed25519 signature, serializable by serde/postcard (as a fixed
/// 64-element tuple: exactly 64 bytes in postcard, no length prefix).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
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

/// A user key's statement that a device (both its keys) belongs to the user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
fn cert_message(
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
    pub fn verify(&self) -> Result<(), CertError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;

    fn identity(seed: u64) -> Identity {
        Identity::generate("alice", 1_700_000_000, &mut SeededEntropy::new(seed))
    }

    #[test]
    fn generated_cert_verifies_and_names_the_keys() {
        let id = identity(1);
        assert_eq!(id.cert.verify(), Ok(()));
        assert_eq!(id.cert.device_id(), id.device.id());
        assert_eq!(Some(id.cert.user_id()), id.user.as_ref().map(UserKey::id));
        assert_eq!(id.cert.agreement_key, id.device.agreement_public_key());
        assert_eq!(
            identity(1).to_bytes(),
            id.to_bytes(),
            "deterministic per seed"
        );
        assert_ne!(identity(3).device_id(), id.device_id());
    }

    #[test]
    fn tampered_cert_fields_are_bad_signatures() {
        let id = identity(2);
        let mut cert = id.cert.clone();
        cert.issued_at += 1;
        assert_eq!(cert.verify(), Err(CertError::BadSignature));
        let mut cert = id.cert.clone();
        cert.agreement_key[0] ^= 1;
        assert_eq!(cert.verify(), Err(CertError::BadSignature));
        let mut cert = id.cert.clone();
        cert.device_key = identity(5).device.public_key();
        assert_eq!(cert.verify(), Err(CertError::BadSignature));
        let mut cert = id.cert.clone();
        cert.signature.0[63] ^= 0x10;
        assert!(cert.verify().is_err());
    }

    #[test]
    fn cert_with_invalid_user_key_is_bad_key() {
        let mut cert = identity(2).cert;
        // y = 2 is not on the curve.
        cert.user_key = [0u8; 32];
        cert.user_key[0] = 2;
        assert_eq!(cert.verify(), Err(CertError::BadKey("user")));
    }

    #[test]
    fn cert_bytes_round_trip() {
        let cert = identity(6).cert;
        let bytes = cert.to_bytes();
        assert_eq!(DeviceCert::from_bytes(&bytes), Ok(cert));
        assert_eq!(
            DeviceCert::from_bytes(&bytes[..bytes.len() - 1]),
            Err(CertError::Malformed)
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(DeviceCert::from_bytes(&longer), Err(CertError::Malformed));
    }

    #[test]
    fn identity_bytes_round_trip() {
        let id = identity(7);
        let back = Identity::from_bytes(&id.to_bytes()).expect("round trip");
        assert_eq!(back.to_bytes(), id.to_bytes());
        assert_eq!(back.cert, id.cert);
        assert_eq!(back.name, "alice");
        assert_eq!(back.device_id(), id.device_id());
        assert_eq!(
            back.user.map(|u| u.to_bytes()),
            id.user.map(|u| u.to_bytes())
        );
    }

    #[test]
    fn identity_without_user_key_round_trips() {
        let mut id = identity(8);
        id.user = None;
        let back = Identity::from_bytes(&id.to_bytes()).expect("round trip");
        assert!(back.user.is_none());
        assert_eq!(back.user_id(), id.user_id());
    }

    #[test]
    fn truncated_identity_is_an_error_not_a_panic() {
        let bytes = identity(9).to_bytes();
        for len in 0..bytes.len() {
            assert!(Identity::from_bytes(&bytes[..len]).is_err(), "length {len}");
        }
    }

    #[test]
    fn unknown_identity_version_is_reported() {
        let mut bytes = identity(10).to_bytes();
        bytes[0] = 2;
        assert_eq!(
            Identity::from_bytes(&bytes).map(|_| ()),
            Err(IdentityError::UnknownVersion(2))
        );
    }

    #[test]
    fn identity_with_foreign_cert_is_a_mismatch() {
        let mut id = identity(11);
        id.cert = identity(12).cert;
        assert_eq!(
            Identity::from_bytes(&id.to_bytes()).map(|_| ()),
            Err(IdentityError::CertMismatch)
        );
    }

    #[test]
    fn device_key_bytes_round_trip_and_signatures_verify() {
        let device = identity(13).device;
        let again = DeviceKey::from_bytes(&device.to_bytes());
        assert_eq!(again.public_key(), device.public_key());
        assert_eq!(again.agreement_public_key(), device.agreement_public_key());
        let signature = device.sign(b"hello");
        assert!(verify_signature(&device.public_key(), b"hello", &signature));
        assert!(!verify_signature(
            &device.public_key(),
            b"hellO",
            &signature
        ));
        assert!(!verify_signature(&[0u8; 32], b"hello", &signature));
        let other = identity(14).device;
        let shared = device.agree(&other.agreement_public_key());
        assert_eq!(shared, other.agree(&device.agreement_public_key()));
    }

    #[test]
    fn pkcs8_matches_the_reference_encoder() {
        use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
        let device = identity(16).device;
        let der = device.to_pkcs8_der();
        let reference = device.signing.to_pkcs8_der().expect("reference encoding");
        assert_eq!(der.as_slice(), reference.as_bytes());
        let decoded = SigningKey::from_pkcs8_der(&der).expect("decodes");
        assert_eq!(decoded.verifying_key().to_bytes(), device.public_key());
    }

    #[test]
    fn signature_serializes_as_64_bytes() {
        let signature = Signature([7u8; 64]);
        let bytes = postcard::to_allocvec(&signature).expect("encode");
        assert_eq!(bytes, vec![7u8; 64]);
        assert_eq!(postcard::from_bytes::<Signature>(&bytes), Ok(signature));
        assert!(postcard::from_bytes::<Signature>(&bytes[..63]).is_err());
    }

    #[test]
    fn debug_output_hides_secrets() {
        let id = identity(17);
        let text = format!("{id:?} {:?} {:?}", id.device, id.user);
        let secret = data_encoding::HEXLOWER.encode(&id.device.to_bytes()[..4]);
        assert!(!text.contains(&secret));
        assert!(text.contains("DeviceKey("));
    }
}
