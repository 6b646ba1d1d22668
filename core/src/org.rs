//! Organisations: who may use a relay, and who no longer may.
//!
//! An admin holds an *organisation key* (ed25519); its hash is the
//! [`OrgId`]. The key signs a [`Membership`] for each user (user id, expiry)
//! and, when someone leaves, a new [`Revocations`] list (the whole list, with
//! a serial that only grows, so the newest list always wins and an old one
//! can never be replayed to un-revoke anybody).
//!
//! A device proves membership by presenting its [`DeviceCert`] (user key →
//! device key) together with its user's [`Membership`] (org key → user id):
//! [`Membership::admits`] checks the whole chain.
//!
//! Invariants: every signature here is over a context string unique to its
//! purpose followed by fixed-width or length-prefixed fields; decoding
//! untrusted bytes never panics.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};

use crate::identity::{verify_signature, DeviceCert, Signature};
use crate::{Entropy, OrgId, UserId};

/// Context prefix of a membership statement.
const MEMBERSHIP_CONTEXT: &[u8] = b"tincan membership v1\0";
/// Context prefix of a revocation list.
const REVOCATION_CONTEXT: &[u8] = b"tincan revocations v1\0";
/// Longest organisation name, in bytes.
pub const MAX_ORG_NAME: usize = 64;
/// Most users one revocation list may name.
pub const MAX_REVOKED: usize = 100_000;
/// Prefix of the printable (copy-and-paste) form of a membership.
const MEMBERSHIP_ARMOR: &str = "tincan-membership:";

/// Why a membership or revocation list was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MembershipError {
    /// The bytes do not decode.
    #[error("not a tincan membership (malformed)")]
    Malformed,
    /// The organisation signature does not cover these fields.
    #[error("membership signature is invalid")]
    BadSignature,
    /// The membership has expired.
    #[error("membership expired at unix time {0}")]
    Expired(u64),
    /// The membership names another user than the device certificate.
    #[error("membership is for user {membership}, the device belongs to {device}")]
    WrongUser {
        /// The user the membership names.
        membership: UserId,
        /// The device's user.
        device: UserId,
    },
    /// The device certificate is invalid.
    #[error("device certificate is invalid")]
    BadDevice,
    /// The user is on the organisation's revocation list.
    #[error("user {0} was revoked by the organisation")]
    Revoked(UserId),
    /// The organisation name is empty or too long.
    #[error("organisation name must be 1 to {MAX_ORG_NAME} bytes")]
    BadName,
}

/// An organisation's signing key (held by the admin).
#[derive(Clone)]
pub struct OrgKey {
    signing: SigningKey,
}

impl OrgKey {
    /// A fresh organisation key.
    pub fn generate(entropy: &mut dyn Entropy) -> Self {
        Self::from_bytes(&entropy.bytes32())
    }

    /// The key with this 32-byte ed25519 seed.
    pub fn from_bytes(secret: &[u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(secret),
        }
    }

    /// The 32-byte seed (secret).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The organisation id.
    pub fn id(&self) -> OrgId {
        OrgId::from_public_key(&self.public_key())
    }

    /// Signs a membership of `user` in organisation `org_name`, valid from
    /// `issued_at` until `expires_at` (unix seconds).
    pub fn issue(
        &self,
        org_name: &str,
        user: UserId,
        issued_at: u64,
        expires_at: u64,
    ) -> Result<Membership, MembershipError> {
        if org_name.is_empty() || org_name.len() > MAX_ORG_NAME {
            return Err(MembershipError::BadName);
        }
        let mut membership = Membership {
            org_key: self.public_key(),
            org_name: org_name.to_owned(),
            user,
            issued_at,
            expires_at,
            signature: Signature([0; 64]),
        };
        membership.signature = Signature(self.signing.sign(&membership.message()).to_bytes());
        Ok(membership)
    }

    /// Signs the revocation list `revoked` with `serial` (must exceed the
    /// previous list's serial for anyone to accept it).
    pub fn revoke(&self, serial: u64, mut revoked: Vec<UserId>, issued_at: u64) -> Revocations {
        revoked.sort();
        revoked.dedup();
        let mut list = Revocations {
            org_key: self.public_key(),
            serial,
            revoked,
            issued_at,
            signature: Signature([0; 64]),
        };
        list.signature = Signature(self.signing.sign(&list.message()).to_bytes());
        list
    }
}

impl fmt::Debug for OrgKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrgKey({:?})", self.id())
    }
}

/// The organisation's statement that a user belongs to it, until a date.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The organisation's public key.
    pub org_key: [u8; 32],
    /// The organisation's name, as the admin chose it.
    pub org_name: String,
    /// The member.
    pub user: UserId,
    /// When it was issued, unix seconds.
    pub issued_at: u64,
    /// When it stops being valid, unix seconds.
    pub expires_at: u64,
    /// The organisation key's signature over the fields above.
    pub signature: Signature,
}

impl Membership {
    fn message(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(MEMBERSHIP_CONTEXT.len() + 32 + 8 + 64 + 20 + 16);
        m.extend_from_slice(MEMBERSHIP_CONTEXT);
        m.extend_from_slice(&self.org_key);
        m.extend_from_slice(&(self.org_name.len() as u64).to_be_bytes());
        m.extend_from_slice(self.org_name.as_bytes());
        m.extend_from_slice(&self.user.0);
        m.extend_from_slice(&self.issued_at.to_be_bytes());
        m.extend_from_slice(&self.expires_at.to_be_bytes());
        m
    }

    /// The organisation this membership is in.
    pub fn org_id(&self) -> OrgId {
        OrgId::from_public_key(&self.org_key)
    }

    /// Checks the signature and the expiry at `now_secs`.
    pub fn verify(&self, now_secs: u64) -> Result<(), MembershipError> {
        if self.org_name.is_empty() || self.org_name.len() > MAX_ORG_NAME {
            return Err(MembershipError::BadName);
        }
        if !verify_signature(&self.org_key, &self.message(), &self.signature) {
            return Err(MembershipError::BadSignature);
        }
        if now_secs >= self.expires_at {
            return Err(MembershipError::Expired(self.expires_at));
        }
        Ok(())
    }

    /// Checks the whole chain for a device: the device certificate is valid,
    /// it belongs to this membership's user, the membership is valid at
    /// `now_secs`, and the user is not in `revocations` (if given; it must
    /// already be verified as this organisation's).
    pub fn admits(
        &self,
        device: &DeviceCert,
        now_secs: u64,
        revocations: Option<&Revocations>,
    ) -> Result<OrgId, MembershipError> {
        device.verify().map_err(|_| MembershipError::BadDevice)?;
        if device.user_id() != self.user {
            return Err(MembershipError::WrongUser {
                membership: self.user,
                device: device.user_id(),
            });
        }
        self.verify(now_secs)?;
        if let Some(list) = revocations {
            if list.org_key == self.org_key && list.is_revoked(&self.user) {
                return Err(MembershipError::Revoked(self.user));
            }
        }
        Ok(self.org_id())
    }

    /// Postcard encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Fixed arrays, integers and a string always serialize.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decodes [`Membership::to_bytes`] output (does not verify).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MembershipError> {
        match postcard::take_from_bytes::<Self>(bytes) {
            Ok((m, [])) => Ok(m),
            _ => Err(MembershipError::Malformed),
        }
    }

    /// The printable form, one line: `tincan-membership:BASE32`, for a file
    /// or for pasting into a chat or an e-mail.
    pub fn to_text(&self) -> String {
        format!(
            "{MEMBERSHIP_ARMOR}{}",
            data_encoding::BASE32_NOPAD
                .encode(&self.to_bytes())
                .to_ascii_lowercase()
        )
    }

    /// Parses [`Membership::to_text`] output (surrounding whitespace is
    /// ignored; does not verify).
    pub fn from_text(text: &str) -> Result<Self, MembershipError> {
        let body = text
            .trim()
            .strip_prefix(MEMBERSHIP_ARMOR)
            .ok_or(MembershipError::Malformed)?;
        let bytes = data_encoding::BASE32_NOPAD
            .decode(body.trim().to_ascii_uppercase().as_bytes())
            .map_err(|_| MembershipError::Malformed)?;
        Self::from_bytes(&bytes)
    }
}

/// The organisation's current list of revoked users. A list with a higher
/// serial replaces a lower one; lists never merge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocations {
    /// The organisation's public key.
    pub org_key: [u8; 32],
    /// Grows with every new list.
    pub serial: u64,
    /// Revoked users, sorted and unique.
    pub revoked: Vec<UserId>,
    /// When it was issued, unix seconds.
    pub issued_at: u64,
    /// The organisation key's signature over the fields above.
    pub signature: Signature,
}

impl Revocations {
    fn message(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(REVOCATION_CONTEXT.len() + 56 + 20 * self.revoked.len());
        m.extend_from_slice(REVOCATION_CONTEXT);
        m.extend_from_slice(&self.org_key);
        m.extend_from_slice(&self.serial.to_be_bytes());
        m.extend_from_slice(&self.issued_at.to_be_bytes());
        m.extend_from_slice(&(self.revoked.len() as u64).to_be_bytes());
        for user in &self.revoked {
            m.extend_from_slice(&user.0);
        }
        m
    }

    /// The organisation that signed it.
    pub fn org_id(&self) -> OrgId {
        OrgId::from_public_key(&self.org_key)
    }

    /// Checks the signature and the size bound.
    pub fn verify(&self) -> Result<(), MembershipError> {
        if self.revoked.len() > MAX_REVOKED {
            return Err(MembershipError::Malformed);
        }
        if !verify_signature(&self.org_key, &self.message(), &self.signature) {
            return Err(MembershipError::BadSignature);
        }
        Ok(())
    }

    /// Whether `user` is on the list.
    pub fn is_revoked(&self, user: &UserId) -> bool {
        self.revoked.binary_search(user).is_ok()
    }

    /// Postcard encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decodes [`Revocations::to_bytes`] output (does not verify).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MembershipError> {
        match postcard::take_from_bytes::<Self>(bytes) {
            Ok((list, [])) => Ok(list),
            _ => Err(MembershipError::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;
    use crate::Identity;

    const NOW: u64 = 1_700_000_000;

    fn org(seed: u64) -> OrgKey {
        OrgKey::generate(&mut SeededEntropy::new(seed))
    }

    fn person(seed: u64) -> Identity {
        Identity::generate("p", NOW, &mut SeededEntropy::new(seed))
    }

    #[test]
    fn membership_admits_its_users_devices_until_expiry() {
        let acme = org(1);
        let alice = person(2);
        let m = acme
            .issue("Acme", alice.user_id(), NOW, NOW + 100)
            .expect("issue");
        assert_eq!(m.admits(&alice.cert, NOW, None), Ok(acme.id()));
        assert_eq!(
            m.admits(&alice.cert, NOW + 100, None),
            Err(MembershipError::Expired(NOW + 100))
        );
        let bob = person(3);
        assert!(matches!(
            m.admits(&bob.cert, NOW, None),
            Err(MembershipError::WrongUser { .. })
        ));
    }

    #[test]
    fn tampered_or_foreign_membership_is_refused() {
        let acme = org(1);
        let alice = person(2);
        let mut m = acme
            .issue("Acme", alice.user_id(), NOW, NOW + 100)
            .expect("issue");
        m.expires_at += 1_000_000;
        assert_eq!(m.verify(NOW), Err(MembershipError::BadSignature));
        let mut forged = acme
            .issue("Acme", alice.user_id(), NOW, NOW + 100)
            .expect("issue");
        forged.org_key = org(9).public_key();
        assert_eq!(forged.verify(NOW), Err(MembershipError::BadSignature));
        assert_eq!(
            acme.issue("", alice.user_id(), NOW, NOW + 1),
            Err(MembershipError::BadName)
        );
    }

    #[test]
    fn revocation_cuts_off_a_member() {
        let acme = org(1);
        let alice = person(2);
        let m = acme
            .issue("Acme", alice.user_id(), NOW, NOW + 100)
            .expect("issue");
        let list = acme.revoke(1, vec![alice.user_id()], NOW);
        list.verify().expect("valid list");
        assert_eq!(
            m.admits(&alice.cert, NOW, Some(&list)),
            Err(MembershipError::Revoked(alice.user_id()))
        );
        // Another organisation's list does not apply.
        let other = org(5).revoke(1, vec![alice.user_id()], NOW);
        assert!(m.admits(&alice.cert, NOW, Some(&other)).is_ok());
        let mut tampered = list.clone();
        tampered.revoked.clear();
        assert_eq!(tampered.verify(), Err(MembershipError::BadSignature));
    }

    #[test]
    fn text_and_bytes_round_trip_and_garbage_is_malformed() {
        let acme = org(1);
        let m = acme
            .issue("Acme", person(2).user_id(), NOW, NOW + 100)
            .expect("issue");
        assert_eq!(
            Membership::from_text(&format!(" {}\n", m.to_text())),
            Ok(m.clone())
        );
        assert_eq!(Membership::from_bytes(&m.to_bytes()), Ok(m));
        assert_eq!(
            Membership::from_text("hello"),
            Err(MembershipError::Malformed)
        );
        assert_eq!(
            Membership::from_text("tincan-membership:!!"),
            Err(MembershipError::Malformed)
        );
        assert_eq!(
            Membership::from_bytes(&[1, 2, 3]),
            Err(MembershipError::Malformed)
        );
        let list = acme.revoke(3, vec![], NOW);
        assert_eq!(Revocations::from_bytes(&list.to_bytes()), Ok(list));
    }
}
