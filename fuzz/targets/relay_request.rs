//! Fuzz target `relay_request`: a request stream as the relay reads it from
//! a device (`tincan_relay::server`, `tincan_relay::register`).
//!
//! The bytes are decoded the way the relay decodes a request stream; one
//! that does not decode is asked [`unknown_frame_kind`] (answered with an
//! error rather than a reset), and a `Register` is put through
//! [`check_register`] as from the seeds' device, whose certificate stands
//! for the one of the TLS handshake. Checks: nothing panics, and a device
//! the relay takes is a valid, unrevoked member of the organisation named.

use std::sync::OnceLock;

use tincan_core::identity::{DeviceCert, DeviceKey, UserKey};
use tincan_core::org::{Membership, OrgKey, Revocations};
use tincan_core::wire::{self, Frame};
use tincan_relay::register::check_register;
use tincan_relay::server::unknown_frame_kind;

/// When requests are checked (unix seconds): inside the seeds' validity.
pub const NOW_SECS: u64 = 1_750_000_000;

/// The fixed keys of the seeds.
pub struct Keys {
    /// The organisation.
    pub org: OrgKey,
    /// The registering user.
    pub user: UserKey,
    /// The registering device's certificate (as from its TLS handshake).
    pub cert: DeviceCert,
    /// The user's membership.
    pub membership: Membership,
    /// The organisation's revocation list (another user is revoked).
    pub revocations: Revocations,
}

/// The fixed keys (deterministic, so the seed generator uses them too).
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let org = OrgKey::from_bytes(&[70; 32]);
        let user = UserKey::from_bytes(&[71; 32]);
        let device = DeviceKey::from_bytes(&[72; 64]);
        let revoked = UserKey::from_bytes(&[73; 32]).id();
        Keys {
            membership: org
                .issue("Fuzz Ltd", user.id(), 1_700_000_000, 2_000_000_000)
                .expect("a valid organisation name"),
            revocations: org.revoke(1, vec![revoked], 1_700_000_000),
            cert: user.certify(&device, 1_700_000_000),
            org,
            user,
        }
    })
}

/// Runs the target on one input.
pub fn run(data: &[u8]) {
    match wire::decode(data) {
        Ok((Frame::Register(reg), _)) => {
            let keys = keys();
            if let Ok(org) = check_register(&keys.cert, &reg, Some(&keys.revocations), NOW_SECS) {
                assert_eq!(org, reg.membership.org_id());
                assert_eq!(
                    reg.membership.user,
                    keys.cert.user_id(),
                    "took another user's membership"
                );
                assert!(
                    reg.membership.verify(NOW_SECS).is_ok(),
                    "took a bad membership"
                );
            }
        }
        Ok(_) => {}
        Err(_) => {
            if let Some(kind) = unknown_frame_kind(data) {
                assert!(
                    wire::decode(data).is_err(),
                    "frame kind {kind} called unknown but it decodes"
                );
            }
        }
    }
}
