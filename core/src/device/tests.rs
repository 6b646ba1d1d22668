//! Unit tests of [`super::Devices`] and the device statements.

use super::*;
use crate::entropy::SeededEntropy;
use crate::identity::DeviceKey;
use crate::Identity;

fn dev(n: u8) -> DeviceId {
    DeviceId([n; 20])
}

fn alice() -> (UserKey, DeviceCert, DeviceCert) {
    let mut entropy = SeededEntropy::new(1);
    let id = Identity::generate("alice", 10, &mut entropy);
    let user = id.user.clone().expect("user key");
    let desktop = user.certify(&DeviceKey::generate(&mut entropy), 11);
    (user, id.cert, desktop)
}

#[test]
fn revocation_verifies_and_tampering_breaks_it() {
    let (user, _, desktop) = alice();
    let revocation = DeviceRevocation::sign(&user, desktop.device_id(), 20);
    assert_eq!(revocation.verify(), Ok(()));
    assert_eq!(revocation.user_id(), user.id());
    let mut later = revocation.clone();
    later.revoked_at += 1;
    assert_eq!(later.verify(), Err(DeviceError::BadSignature));
    let mut other = revocation.clone();
    other.device.0[0] ^= 1;
    assert_eq!(other.verify(), Err(DeviceError::BadSignature));
    let bytes = revocation.to_bytes();
    assert_eq!(DeviceRevocation::from_bytes(&bytes), Some(revocation));
    assert_eq!(DeviceRevocation::from_bytes(&bytes[1..]), None);
}

#[test]
fn a_revoked_device_is_gone_and_cannot_come_back() {
    let (user, laptop, desktop) = alice();
    let mut devices = Devices::new();
    assert_eq!(devices.learn(laptop.clone()), Ok(true));
    assert_eq!(devices.learn(desktop.clone()), Ok(true));
    assert_eq!(devices.of_user(&user.id()).len(), 2);
    let revocation = DeviceRevocation::sign(&user, desktop.device_id(), 20);
    assert_eq!(devices.revoke(dev(0), revocation.clone()), Ok(true));
    assert_eq!(devices.revoke(dev(0), revocation), Ok(false), "idempotent");
    assert_eq!(devices.of_user(&user.id()), vec![laptop]);
    assert!(devices.is_revoked(&desktop));
    assert_eq!(
        devices.learn(desktop.clone()),
        Err(DeviceError::Revoked(desktop.device_id()))
    );
    assert_eq!(devices.roster_of(&user.id()).revocations.len(), 1);
}

#[test]
fn another_user_cannot_revoke_my_device() {
    let (_, laptop, _) = alice();
    let mut devices = Devices::new();
    devices.learn(laptop.clone()).expect("learn");
    let mallory = UserKey::generate(&mut SeededEntropy::new(9));
    let forged = DeviceRevocation::sign(&mallory, laptop.device_id(), 20);
    assert!(matches!(
        devices.revoke(dev(0), forged),
        Err(DeviceError::WrongUser { .. })
    ));
    assert_eq!(devices.of_user(&laptop.user_id()).len(), 1);
}

#[test]
fn a_roster_speaks_only_for_its_own_user() {
    let (user, laptop, desktop) = alice();
    let mut devices = Devices::new();
    let roster = Roster {
        certs: vec![laptop.clone(), desktop.clone()],
        revocations: vec![DeviceRevocation::sign(&user, desktop.device_id(), 30)],
        labels: Vec::new(),
    };
    let changes = devices
        .apply_roster(dev(0), &user.id(), &roster)
        .expect("apply");
    assert_eq!(changes.added, vec![laptop.clone()]);
    assert_eq!(changes.revoked.len(), 1);
    assert_eq!(devices.of_user(&user.id()), vec![laptop.clone()]);
    // Bob cannot pass off his device as one of Alice's, nor a roster
    // of Alice's as his.
    let bob = Identity::generate("bob", 10, &mut SeededEntropy::new(5));
    let foreign = Roster {
        certs: vec![bob.cert.clone()],
        revocations: Vec::new(),
        labels: Vec::new(),
    };
    assert!(matches!(
        devices.apply_roster(dev(0), &user.id(), &foreign),
        Err(DeviceError::WrongUser { .. })
    ));
    // A removal passed on by bob counts: it is signed by alice.
    let mut fresh = Devices::new();
    fresh.learn(desktop.clone()).expect("learn");
    let passed_on = Roster {
        certs: Vec::new(),
        revocations: vec![DeviceRevocation::sign(&user, desktop.device_id(), 30)],
        labels: Vec::new(),
    };
    let changes = fresh
        .apply_roster(bob.device_id(), &bob.user_id(), &passed_on)
        .expect("apply");
    assert_eq!(changes.revoked.len(), 1);
    assert!(fresh.of_user(&user.id()).is_empty());
    let mut tampered = laptop;
    tampered.issued_at += 1;
    let bad = Roster {
        certs: vec![tampered],
        revocations: Vec::new(),
        labels: Vec::new(),
    };
    assert!(matches!(
        devices.apply_roster(dev(0), &user.id(), &bad),
        Err(DeviceError::Cert(_))
    ));
}

#[test]
fn a_forged_removal_of_an_unknown_device_neither_acts_nor_blocks_the_real_one() {
    let (user, laptop, desktop) = alice();
    let mallory = UserKey::generate(&mut SeededEntropy::new(9));
    let forged = DeviceRevocation::sign(&mallory, desktop.device_id(), 20);
    let real = DeviceRevocation::sign(&user, desktop.device_id(), 30);
    let mut devices = Devices::new();
    devices.learn(laptop.clone()).expect("learn");
    // Mallory gets in first, before anyone knows the desktop: nothing
    // is acted on, the desktop is learnt and sealed to as usual.
    let roster = Roster {
        revocations: vec![forged.clone()],
        ..Roster::default()
    };
    let changes = devices
        .apply_roster(dev(7), &mallory.id(), &roster)
        .expect("apply");
    assert!(changes.revoked.is_empty(), "held, not acted on");
    assert_eq!(devices.learn(desktop.clone()), Ok(true));
    assert!(!devices.is_revoked(&desktop));
    assert_eq!(devices.of_user(&user.id()).len(), 2);
    // Once the desktop is known the forgery is refused outright, and
    // the user's real removal still takes effect.
    assert!(matches!(
        devices.revoke(dev(7), forged),
        Err(DeviceError::WrongUser { .. })
    ));
    assert_eq!(devices.revoke(dev(1), real.clone()), Ok(true));
    assert!(devices.is_revoked(&desktop));
    assert_eq!(devices.of_user(&user.id()), vec![laptop]);
    assert_eq!(devices.revocation(&desktop.device_id()), Some(&real));
}

#[test]
fn a_held_removal_applies_when_its_device_arrives_and_holds_are_bounded() {
    let (user, laptop, desktop) = alice();
    let mallory = UserKey::generate(&mut SeededEntropy::new(9));
    let mut devices = Devices::new();
    // Forged and real removals of a device not known yet, both held.
    let forged = DeviceRevocation::sign(&mallory, desktop.device_id(), 20);
    let real = DeviceRevocation::sign(&user, desktop.device_id(), 30);
    assert_eq!(devices.revoke(dev(7), forged), Ok(false));
    assert_eq!(devices.revoke(dev(1), real.clone()), Ok(false));
    assert_eq!(devices.held(), 2);
    // A certificate of mallory's for the same device key is not
    // taken once the real one is known, so his removal never counts.
    let roster = Roster {
        certs: vec![laptop.clone(), desktop.clone()],
        ..Roster::default()
    };
    let changes = devices
        .apply_roster(dev(1), &user.id(), &roster)
        .expect("apply");
    assert_eq!(changes.added, vec![laptop.clone()]);
    assert_eq!(changes.revoked, vec![real]);
    assert!(devices.is_revoked(&desktop));
    assert_eq!(devices.held(), 0);
    // One peer cannot hold more than its share; all peers together
    // no more than the global bound; the oldest go first.
    for i in 0..(MAX_HELD_PER_PEER as u64 + 10) {
        let unknown = DeviceKey::generate(&mut SeededEntropy::new(1_000 + i)).id();
        let r = DeviceRevocation::sign(&mallory, unknown, i);
        assert_eq!(devices.revoke(dev(7), r), Ok(false));
    }
    assert_eq!(devices.held(), MAX_HELD_PER_PEER);
    for p in 0..(MAX_HELD / MAX_HELD_PER_PEER + 2) {
        for i in 0..MAX_HELD_PER_PEER as u64 {
            let device = DeviceId([(p % 250) as u8; 20]);
            let r = DeviceRevocation::sign(&mallory, device, i + 100 * p as u64);
            let _ = devices.revoke(DeviceId([p as u8; 20]), r);
        }
    }
    assert_eq!(devices.held(), MAX_HELD);
}

#[test]
fn a_user_has_at_most_max_devices_and_a_roster_cannot_carry_more() {
    let mut entropy = SeededEntropy::new(7);
    let id = Identity::generate("mallory", 10, &mut entropy);
    let user = id.user.clone().expect("user key");
    let mut devices = Devices::new();
    devices.learn(id.cert.clone()).expect("first device");
    let extra: Vec<DeviceCert> = (0..MAX_DEVICES_PER_USER)
        .map(|i| user.certify(&DeviceKey::generate(&mut entropy), 11 + i as u64))
        .collect();
    // One roster with more certificates than a user may have is refused whole.
    let too_big = Roster {
        certs: extra.clone(),
        revocations: Vec::new(),
        labels: Vec::new(),
    };
    let mut oversize = too_big.clone();
    oversize.certs.push(id.cert.clone());
    assert_eq!(
        devices.apply_roster(id.cert.device_id(), &user.id(), &oversize),
        Err(DeviceError::TooLarge)
    );
    // Within the roster bound, the user's devices stop at the cap.
    let fits = Roster {
        certs: extra[..MAX_DEVICES_PER_USER].to_vec(),
        revocations: Vec::new(),
        labels: Vec::new(),
    };
    let changes = devices
        .apply_roster(id.cert.device_id(), &user.id(), &fits)
        .expect("roster taken");
    assert_eq!(changes.added.len(), MAX_DEVICES_PER_USER - 1);
    assert_eq!(devices.of_user(&user.id()).len(), MAX_DEVICES_PER_USER);
    let last = extra.last().expect("a device").clone();
    assert_eq!(
        devices.learn(last),
        Err(DeviceError::TooManyDevices(user.id()))
    );
    // A removal frees a place.
    let removal = DeviceRevocation::sign(&user, extra[0].device_id(), 50);
    assert_eq!(devices.revoke(id.cert.device_id(), removal), Ok(true));
    assert_eq!(
        devices.learn(extra[MAX_DEVICES_PER_USER - 1].clone()),
        Ok(true)
    );
}
