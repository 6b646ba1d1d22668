//! The relay's signed word that a device holds a site's lease: what a
//! gateway shows its LAN so that members believe it.
//!
//! A beacon saying "I am the gateway of site S at epoch E" is cheap to
//! forge for any member of the organisation; the relay's signature over
//! `(site, epoch, holder, expires_at)` is not. Members check it against
//! the relay key they pinned (its [`RelayId`] is the fingerprint in
//! `HOST:PORT#FINGERPRINT`), so nobody but the relay can make a real
//! gateway step down or push the epochs a member believes in.
//!
//! Invariant: the signature is over `tincan lease grant v1\0` followed by
//! fixed-width fields, so no other signed statement of the relay key (its
//! TLS handshakes sign something else entirely) reads as a grant.

use serde::{Deserialize, Serialize};

use crate::identity::{verify_signature, DeviceKey, Signature};
use crate::site::SiteId;
use crate::{DeviceId, RelayId};

/// Context prefix of the message a relay signs to grant a lease.
const GRANT_CONTEXT: &[u8] = b"tincan lease grant v1\0";

/// How far past its expiry a grant is still believed, for clocks of LAN
/// machines that disagree with the relay's. A grant only proves that its
/// holder *had* the lease: a newer epoch still wins over it, so this slack
/// costs nothing but lets a deposed holder be believed a little longer
/// where nobody else is gateway.
pub const GRANT_CLOCK_SLACK_MS: u64 = 30_000;

/// Why a [`LeaseGrant`] is not believed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// It is signed by another key than the relay this node pinned.
    #[error("lease grant is signed by another relay")]
    WrongRelay,
    /// The relay's signature does not cover these fields.
    #[error("lease grant signature is invalid")]
    BadSignature,
    /// It names another device, site or epoch than the one it is shown for.
    #[error("lease grant is for another holder, site or epoch")]
    Mismatch,
    /// It lapsed (more than [`GRANT_CLOCK_SLACK_MS`] ago).
    #[error("lease grant expired")]
    Expired,
}

/// A lease the relay granted (or renewed), signed by the relay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrant {
    /// The site leased.
    pub site: SiteId,
    /// The lease epoch.
    pub epoch: u64,
    /// The device holding the lease.
    pub holder: DeviceId,
    /// When the lease lapses unless renewed, on the relay's wall clock
    /// (Unix ms).
    pub expires_at_ms: u64,
    /// The relay's ed25519 public key (its [`RelayId`] is what nodes pin).
    pub relay_key: [u8; 32],
    /// The relay's signature.
    pub signature: Signature,
}

fn grant_message(
    relay_key: &[u8; 32],
    site: &SiteId,
    epoch: u64,
    holder: &DeviceId,
    expires_at_ms: u64,
) -> Vec<u8> {
    let mut message = Vec::with_capacity(GRANT_CONTEXT.len() + 32 + 16 + 8 + 20 + 8);
    message.extend_from_slice(GRANT_CONTEXT);
    message.extend_from_slice(relay_key);
    message.extend_from_slice(&site.0);
    message.extend_from_slice(&epoch.to_be_bytes());
    message.extend_from_slice(&holder.0);
    message.extend_from_slice(&expires_at_ms.to_be_bytes());
    message
}

impl LeaseGrant {
    /// Signs a grant with the relay's key.
    pub fn sign(
        relay: &DeviceKey,
        site: SiteId,
        epoch: u64,
        holder: DeviceId,
        expires_at_ms: u64,
    ) -> Self {
        let relay_key = relay.public_key();
        let message = grant_message(&relay_key, &site, epoch, &holder, expires_at_ms);
        Self {
            site,
            epoch,
            holder,
            expires_at_ms,
            relay_key,
            signature: relay.sign(&message),
        }
    }

    /// Checks that `relay` signed this grant (whoever it is shown for).
    pub fn verify(&self, relay: &RelayId) -> Result<(), GrantError> {
        if RelayId::from_public_key(&self.relay_key) != *relay {
            return Err(GrantError::WrongRelay);
        }
        let message = grant_message(
            &self.relay_key,
            &self.site,
            self.epoch,
            &self.holder,
            self.expires_at_ms,
        );
        if verify_signature(&self.relay_key, &message, &self.signature) {
            Ok(())
        } else {
            Err(GrantError::BadSignature)
        }
    }

    /// Checks that `relay` granted `holder` the lease of `site` at `epoch`,
    /// and that it has not long lapsed at `now` (Unix ms).
    pub fn proves(
        &self,
        relay: &RelayId,
        holder: DeviceId,
        site: SiteId,
        epoch: u64,
        now: u64,
    ) -> Result<(), GrantError> {
        self.verify(relay)?;
        self.matches(holder, site, epoch, now)
    }

    /// [`Self::proves`] without the signature check, for a grant whose
    /// signature was verified already (the same grant shown again: a
    /// gateway's beacons repeat it until the next renewal).
    pub fn matches(
        &self,
        holder: DeviceId,
        site: SiteId,
        epoch: u64,
        now: u64,
    ) -> Result<(), GrantError> {
        if (self.holder, self.site, self.epoch) != (holder, site, epoch) {
            return Err(GrantError::Mismatch);
        }
        if self.expires_at_ms.saturating_add(GRANT_CLOCK_SLACK_MS) <= now {
            return Err(GrantError::Expired);
        }
        Ok(())
    }
}

/// A [`LeaseGrant`] whose signature was checked against a relay: the only
/// way to build one is [`VerifiedGrant::new`], which verifies. What
/// [`crate::GatewayElection::handle_verified_grant`] takes, so that a driver
/// may check the signature elsewhere (another thread) than where it drives
/// the election: the ed25519 verification is nearly all a grant costs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedGrant {
    grant: LeaseGrant,
    relay: RelayId,
}

impl VerifiedGrant {
    /// `grant`, once [`LeaseGrant::verify`] says `relay` signed it.
    pub fn new(grant: LeaseGrant, relay: &RelayId) -> Result<Self, GrantError> {
        grant.verify(relay)?;
        Ok(Self {
            grant,
            relay: *relay,
        })
    }

    /// The grant.
    pub fn grant(&self) -> &LeaseGrant {
        &self.grant
    }

    /// The relay whose signature was checked.
    pub fn relay(&self) -> RelayId {
        self.relay
    }

    /// The grant, taken out.
    pub fn into_grant(self) -> LeaseGrant {
        self.grant
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;

    #[test]
    fn a_grant_proves_only_what_the_relay_signed() {
        let relay = DeviceKey::generate(&mut SeededEntropy::new(1));
        let relay_id = RelayId::from_public_key(&relay.public_key());
        let (site, holder) = (SiteId([4; 16]), DeviceId([5; 20]));
        let grant = LeaseGrant::sign(&relay, site, 7, holder, 10_000);
        assert_eq!(grant.proves(&relay_id, holder, site, 7, 10_000), Ok(()));
        let other = DeviceKey::generate(&mut SeededEntropy::new(2));
        let other_id = RelayId::from_public_key(&other.public_key());
        assert_eq!(grant.verify(&other_id), Err(GrantError::WrongRelay));
        let by_other = LeaseGrant::sign(&other, site, 7, holder, 10_000);
        assert_eq!(by_other.verify(&relay_id), Err(GrantError::WrongRelay));
        let mut inflated = grant.clone();
        inflated.epoch = u64::MAX;
        assert_eq!(inflated.verify(&relay_id), Err(GrantError::BadSignature));
        let mismatch = grant.proves(&relay_id, DeviceId([6; 20]), site, 7, 10_000);
        assert_eq!(mismatch, Err(GrantError::Mismatch));
        let mismatch = grant.proves(&relay_id, holder, SiteId([1; 16]), 7, 10_000);
        assert_eq!(mismatch, Err(GrantError::Mismatch));
        let late = 10_000 + GRANT_CLOCK_SLACK_MS;
        assert_eq!(
            grant.proves(&relay_id, holder, site, 7, late),
            Err(GrantError::Expired)
        );
        let verified = VerifiedGrant::new(grant.clone(), &relay_id);
        assert_eq!(verified.map(VerifiedGrant::into_grant), Ok(grant.clone()));
        let by_other = VerifiedGrant::new(grant, &other_id);
        assert_eq!(by_other, Err(GrantError::WrongRelay));
    }
}
