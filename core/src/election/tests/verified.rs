//! A grant verified by the driver counts as one verified here, and only
//! for the pinned relay and this device.

use super::*;
use crate::lease::VerifiedGrant;

#[test]
fn a_verified_grant_counts_only_for_the_pinned_relay_and_this_device() {
    let other = DeviceKey::generate(&mut SeededEntropy::new(7));
    let other_relay = RelayId::from_public_key(&other.public_key());
    let mut a = node(1, GatewayPreference::Auto, Some(site(1)));
    a.handle_beacon(0, dev(9), peer(9, Some(site(1)), None));
    let (tx, _) = drain(&mut a);
    let (s, epoch) = claims(&tx)[0];
    // Signed and checked by another relay, or given to another device.
    let foreign = LeaseGrant::sign(&other, s, epoch, dev(1), 100_000);
    let foreign = VerifiedGrant::new(foreign, &other_relay).expect("signed by it");
    a.handle_verified_grant(1, foreign);
    let not_mine = VerifiedGrant::new(grant(2, s, epoch), &relay_id()).expect("signed");
    a.handle_verified_grant(1, not_mine);
    assert_ne!(a.role(), Role::Gateway);
    assert_eq!(drain(&mut a), (vec![], vec![]), "ignored without a trace");
    // The relay's grant to this device, checked by the driver.
    let mine = VerifiedGrant::new(grant(1, s, epoch), &relay_id()).expect("signed");
    a.handle_verified_grant(2, mine);
    assert_eq!(a.role(), Role::Gateway);
}
