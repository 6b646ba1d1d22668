//! What a device says about itself on the LAN, signed with its device key,
//! and what a peer may say about a device that stopped answering.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::identity::{verify_signature, DeviceCert, Identity, Signature};
use crate::presence::ShownPresence;
use crate::DeviceId;

/// Domain separation for [`LanRecord`] signatures.
const RECORD_CONTEXT: &[u8] = b"tincan lan record v1\0";

/// Longest display name a record may carry, in bytes.
pub const MAX_RECORD_NAME_BYTES: usize = 256;

/// Most addresses one record may list.
pub const MAX_RECORD_ADDRS: usize = 8;

/// Whether the device is on the LAN and how it wants to be shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LanStatus {
    /// Running and reachable, shown as this.
    Here(ShownPresence),
    /// Shutting down: it said goodbye.
    Leaving,
}

/// A device's own signed statement: who it is (its certificate), its
/// display name, where it listens, and whether it is here. A newer
/// `version` replaces an older one; versions grow across restarts (the
/// driver bumps them from its clock, as presence versions do).
///
/// Peers pass records on unchanged, so a node learns about devices it has
/// never been linked to; the signature makes every field the device's own
/// word, never the forwarder's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LanRecord {
    /// The device's certificate (binds the device key to its user).
    pub cert: DeviceCert,
    /// The display name the device's user chose.
    pub name: String,
    /// Addresses the device listens on.
    pub addrs: Vec<SocketAddr>,
    /// Higher replaces lower.
    pub version: u64,
    /// Here (with the shown presence) or leaving.
    pub status: LanStatus,
    /// The device key's signature over all of the above.
    pub signature: Signature,
}

/// Why a record was not taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The certificate is not signed by its user key.
    #[error("lan record has an invalid device certificate")]
    BadCert,
    /// The device key did not sign these fields.
    #[error("lan record signature is invalid")]
    BadSignature,
    /// The name or address list is over its bound.
    #[error("lan record is too large")]
    TooLarge,
}

fn signed_bytes(
    cert: &DeviceCert,
    name: &str,
    addrs: &[SocketAddr],
    version: u64,
    status: LanStatus,
) -> Vec<u8> {
    let body = postcard::to_allocvec(&(&cert.device_key, name, addrs, version, status))
        .unwrap_or_default();
    [RECORD_CONTEXT, &body].concat()
}

/// `text` cut to at most `max` bytes at a character boundary.
fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

impl LanRecord {
    /// This device's record, signed with its device key. The name is cut
    /// and the addresses capped to the bounds receivers enforce.
    pub fn sign(
        identity: &Identity,
        addrs: Vec<SocketAddr>,
        version: u64,
        status: LanStatus,
    ) -> Self {
        let name = truncate(&identity.name, MAX_RECORD_NAME_BYTES);
        let mut addrs = addrs;
        addrs.truncate(MAX_RECORD_ADDRS);
        let signature = identity.device.sign(&signed_bytes(
            &identity.cert,
            &name,
            &addrs,
            version,
            status,
        ));
        Self {
            cert: identity.cert.clone(),
            name,
            addrs,
            version,
            status,
            signature,
        }
    }

    /// The device this record speaks for.
    pub fn device(&self) -> DeviceId {
        self.cert.device_id()
    }

    /// Checks the bounds, the certificate and the signature.
    pub fn verify(&self) -> Result<(), RecordError> {
        if self.name.len() > MAX_RECORD_NAME_BYTES || self.addrs.len() > MAX_RECORD_ADDRS {
            return Err(RecordError::TooLarge);
        }
        self.cert.verify().map_err(|_| RecordError::BadCert)?;
        let bytes = signed_bytes(
            &self.cert,
            &self.name,
            &self.addrs,
            self.version,
            self.status,
        );
        if verify_signature(&self.cert.device_key, &bytes, &self.signature) {
            Ok(())
        } else {
            Err(RecordError::BadSignature)
        }
    }

    /// Whether the device says it is here.
    pub fn is_here(&self) -> bool {
        matches!(self.status, LanStatus::Here(_))
    }
}

/// A peer's report that `device`, as of its record `version`, no longer
/// answers (its link broke and a new dial failed). Not signed: any linked
/// peer may say it, and the device answers with a newer record as soon as
/// the report reaches it, so a false report costs a moment of "offline".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspicion {
    /// The device that stopped answering.
    pub device: DeviceId,
    /// The record version it no longer answers at.
    pub version: u64,
}

/// Which version of a device's record a peer holds: an entry of the
/// list ([`LanGossip::holds`]) a new link starts with, 40 bytes instead of
/// the record's 300.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldRecord {
    /// The device the record speaks for.
    pub device: DeviceId,
    /// The version held.
    pub version: u64,
}

/// What one peer tells another about the LAN: on a new link its own record
/// and which records it holds (the other side sends back what is missing
/// or newer), afterwards each new record and suspicion.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LanGossip {
    /// Devices' own records.
    pub records: Vec<LanRecord>,
    /// Reports of devices that stopped answering.
    pub suspicions: Vec<Suspicion>,
    /// Every record the sender holds, by version, sent once on a new link:
    /// `None` in any other message. The receiver answers with the records
    /// the list lacks or holds older versions of.
    pub holds: Option<Vec<HeldRecord>>,
}

impl LanGossip {
    /// Whether there is nothing in it.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.suspicions.is_empty() && self.holds.is_none()
    }
}
