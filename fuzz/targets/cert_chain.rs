//! Fuzz target `cert_chain`: the certificates a stranger presents
//! (`tincan_core::identity`, `tincan_core::org`, `tincan_core::device`).
//!
//! The first byte picks a mode, the rest is its input:
//! - 0: a chain `(Membership, DeviceCert, Option<Revocations>)` (postcard)
//!   checked with [`Membership::admits`] the way the relay and the LAN do
//!   it; whatever is admitted must hold each link on its own.
//! - 1: a membership in its printable form ([`Membership::from_text`]).
//! - 2: a [`Roster`] applied by a node that knows the seeds' device
//!   ([`Devices::apply_roster`]).
//! - 3: the same bytes as each stored or sent single item: a
//!   [`DeviceCert`], a [`DeviceRevocation`], [`Revocations`], an
//!   [`Identity`] file; decoded and verified.
//!
//! Nothing may panic.

use std::sync::OnceLock;

use tincan_core::identity::{DeviceCert, DeviceKey, Identity, UserKey};
use tincan_core::org::{Membership, OrgKey, Revocations};
use tincan_core::{DeviceRevocation, Devices, Roster};

/// When the chains are checked (unix seconds): inside the seeds' validity.
pub const NOW_SECS: u64 = 1_750_000_000;

/// The fixed keys of the seeds.
pub struct Keys {
    /// The organisation.
    pub org: OrgKey,
    /// A member user.
    pub user: UserKey,
    /// The certificate of one of the user's devices.
    pub cert: DeviceCert,
}

/// The fixed keys (deterministic, so the seed generator uses them too).
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let user = UserKey::from_bytes(&[41; 32]);
        let device = DeviceKey::from_bytes(&[42; 64]);
        Keys {
            org: OrgKey::from_bytes(&[40; 32]),
            cert: user.certify(&device, 1_700_000_000),
            user,
        }
    })
}

/// Runs the target on one input.
pub fn run(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            type Chain = (Membership, DeviceCert, Option<Revocations>);
            let Ok((membership, cert, revocations)) = postcard::from_bytes::<Chain>(body) else {
                return;
            };
            // The relay and nodes only keep revocation lists that verify.
            let revocations = revocations.filter(|list| list.verify().is_ok());
            if let Ok(org) = membership.admits(&cert, NOW_SECS, revocations.as_ref()) {
                assert_eq!(org, membership.org_id());
                assert!(cert.verify().is_ok(), "admitted a bad device certificate");
                assert_eq!(
                    cert.user_id(),
                    membership.user,
                    "admitted another user's device"
                );
                assert!(
                    membership.verify(NOW_SECS).is_ok(),
                    "admitted a bad membership"
                );
                if let Some(list) = &revocations {
                    assert!(
                        list.org_key != membership.org_key || !list.is_revoked(&membership.user),
                        "admitted a revoked user"
                    );
                }
            }
        }
        1 => {
            if let Ok(text) = std::str::from_utf8(body) {
                if let Ok(membership) = Membership::from_text(text) {
                    let _ = membership.verify(NOW_SECS);
                    let again = Membership::from_text(&membership.to_text())
                        .expect("a printed membership parses");
                    assert_eq!(again, membership);
                }
            }
        }
        2 => {
            let Ok(roster) = postcard::from_bytes::<Roster>(body) else {
                return;
            };
            let keys = keys();
            let mut devices = Devices::new();
            devices
                .learn(keys.cert.clone())
                .expect("the seeds' certificate is valid");
            if devices
                .apply_roster(keys.cert.device_id(), &keys.user.id(), &roster)
                .is_ok()
            {
                for cert in devices.of_user(&keys.user.id()) {
                    assert!(cert.verify().is_ok(), "a roster stored a bad certificate");
                }
            }
        }
        _ => {
            if let Ok(cert) = DeviceCert::from_bytes(body) {
                let _ = cert.verify();
                assert_eq!(DeviceCert::from_bytes(&cert.to_bytes()), Ok(cert));
            }
            if let Some(revocation) = DeviceRevocation::from_bytes(body) {
                let _ = revocation.verify();
            }
            if let Ok(list) = Revocations::from_bytes(body) {
                let _ = list.verify();
            }
            if let Ok(identity) = Identity::from_bytes(body) {
                let _ = identity.cert.verify();
            }
        }
    }
}
