//! Unit tests of the receiver's rule: every outcome, the order of the
//! checks, and the receipt.

use std::cell::RefCell;
use std::collections::BTreeSet;

use super::*;
use crate::delivery::receipt_proves_delivery;
use crate::entropy::SeededEntropy;
use crate::identity::UserKey;
use crate::presence::{PresenceUpdate, ShownPresence};
use crate::{Content, DeviceRevocation, Devices, Identity, OrgKey, Revocations};

/// A sender's standing as flags, recording which questions were asked.
#[derive(Default)]
struct Flags {
    device_removed: bool,
    user_revoked: bool,
    user_blocked: bool,
    asked: RefCell<Vec<&'static str>>,
}

impl Standing for Flags {
    fn device_removed(&self, _: &DeviceCert) -> bool {
        self.asked.borrow_mut().push("device");
        self.device_removed
    }

    fn user_revoked(&self, _: &UserId) -> bool {
        self.asked.borrow_mut().push("revoked");
        self.user_revoked
    }

    fn user_blocked(&self, _: &UserId) -> bool {
        self.asked.borrow_mut().push("blocked");
        self.user_blocked
    }
}

/// Alice, Bob, and Carol (who is not a recipient).
fn people() -> (Identity, Identity, Identity) {
    let mut entropy = SeededEntropy::new(14);
    (
        Identity::generate("alice", 1_700_000_000, &mut entropy),
        Identity::generate("bob", 1_700_000_000, &mut entropy),
        Identity::generate("carol", 1_700_000_000, &mut entropy),
    )
}

fn text() -> Content {
    Content::Text {
        text: "hello".into(),
    }
}

fn seal(from: &Identity, to: &Identity, content: &Content) -> Envelope {
    let mut entropy = SeededEntropy::new(7);
    let id = MessageId::random(&mut entropy);
    Envelope::seal(
        &from.device,
        &from.cert,
        std::slice::from_ref(&to.cert),
        id,
        1_000,
        content,
        &mut entropy,
    )
    .expect("seal")
}

fn refusal(admission: Admission) -> Refusal {
    match admission {
        Admission::Refused(refusal) => refusal,
        Admission::Admitted(opened) => panic!("admitted {:?}", opened.id),
    }
}

#[test]
fn a_sender_in_good_standing_is_admitted_with_its_content() {
    let (alice, bob, _) = people();
    let envelope = seal(&alice, &bob, &text());
    let standing = Flags::default();
    let Admission::Admitted(opened) = admit(&envelope, &bob.device, &standing) else {
        panic!("refused");
    };
    assert_eq!(opened.id, envelope.id);
    assert_eq!(opened.sender, alice.cert);
    assert_eq!(opened.content, text());
    assert_eq!(*standing.asked.borrow(), ["device", "revoked", "blocked"]);
    assert!(matches!(
        admit(&envelope, &bob.device, &GoodStanding),
        Admission::Admitted(_)
    ));
}

#[test]
fn an_envelope_for_another_device_is_refused_as_not_for_this_device() {
    let (alice, bob, carol) = people();
    let envelope = seal(&alice, &bob, &text());
    let refused = refusal(admit(&envelope, &carol.device, &GoodStanding));
    assert!(matches!(
        refused,
        Refusal::Unopened {
            error: OpenError::NotForThisDevice,
            ..
        }
    ));
    assert_eq!(
        refused.frame(),
        Frame::Refused {
            message_id: envelope.id,
            reason: RefuseReason::NotForThisDevice,
        }
    );
}

#[test]
fn a_tampered_signature_is_refused_as_bad_signature() {
    let (alice, bob, _) = people();
    let mut envelope = seal(&alice, &bob, &text());
    envelope.signature.0[0] ^= 1;
    let refused = refusal(admit(&envelope, &bob.device, &GoodStanding));
    assert_eq!(
        refused,
        Refusal::Unopened {
            message_id: envelope.id,
            error: OpenError::BadSignature,
        }
    );
    assert_eq!(refused.reason(), RefuseReason::BadSignature);
}

#[test]
fn a_forged_sender_certificate_is_refused_as_bad_signature() {
    let (alice, bob, _) = people();
    let mallory = UserKey::generate(&mut SeededEntropy::new(66));
    let mut forged = alice.clone();
    forged.cert = mallory.certify(&alice.device, 1_700_000_000);
    forged.cert.user_key = alice.cert.user_key;
    let envelope = seal(&forged, &bob, &text());
    let refused = refusal(admit(&envelope, &bob.device, &GoodStanding));
    assert!(matches!(
        refused,
        Refusal::Unopened {
            error: OpenError::SenderCert(_),
            ..
        }
    ));
    assert_eq!(refused.reason(), RefuseReason::BadSignature);
}

#[test]
fn a_tampered_payload_or_unknown_version_is_refused_as_undecryptable() {
    let (alice, bob, _) = people();
    let mut envelope = seal(&alice, &bob, &text());
    envelope.ciphertext[0] ^= 1;
    let refused = refusal(admit(&envelope, &bob.device, &GoodStanding));
    assert_eq!(refused.reason(), RefuseReason::Undecryptable);
    let mut envelope = seal(&alice, &bob, &text());
    envelope.recipients[0].wrapped[0] ^= 1;
    let refused = refusal(admit(&envelope, &bob.device, &GoodStanding));
    assert_eq!(refused.reason(), RefuseReason::Undecryptable);
    let mut envelope = seal(&alice, &bob, &text());
    envelope.version = u8::MAX;
    let refused = refusal(admit(&envelope, &bob.device, &GoodStanding));
    assert!(matches!(
        refused,
        Refusal::Unopened {
            error: OpenError::UnsupportedVersion(_),
            ..
        }
    ));
    assert_eq!(refused.reason(), RefuseReason::Undecryptable);
}

#[test]
fn an_envelope_that_does_not_open_asks_nothing_about_its_claimed_sender() {
    let (alice, bob, carol) = people();
    let envelope = seal(&alice, &bob, &text());
    let standing = Flags {
        device_removed: true,
        user_revoked: true,
        user_blocked: true,
        ..Flags::default()
    };
    let refused = refusal(admit(&envelope, &carol.device, &standing));
    assert_eq!(refused.reason(), RefuseReason::NotForThisDevice);
    assert!(standing.asked.borrow().is_empty());
}

#[test]
fn a_removed_device_is_refused_as_device_removed() {
    let (alice, bob, _) = people();
    let envelope = seal(&alice, &bob, &text());
    let standing = Flags {
        device_removed: true,
        ..Flags::default()
    };
    let refused = refusal(admit(&envelope, &bob.device, &standing));
    assert_eq!(
        refused,
        Refusal::DeviceRemoved {
            message_id: envelope.id,
            device: alice.device_id(),
        }
    );
    assert_eq!(refused.reason(), RefuseReason::DeviceRemoved);
}

#[test]
fn a_revoked_user_is_refused_as_blocked() {
    let (alice, bob, _) = people();
    let envelope = seal(&alice, &bob, &text());
    let standing = Flags {
        user_revoked: true,
        ..Flags::default()
    };
    let refused = refusal(admit(&envelope, &bob.device, &standing));
    assert_eq!(
        refused,
        Refusal::UserRevoked {
            message_id: envelope.id,
            user: alice.user_id(),
        }
    );
    assert_eq!(
        refused.frame(),
        Frame::Refused {
            message_id: envelope.id,
            reason: RefuseReason::Blocked,
        }
    );
}

#[test]
fn a_blocked_user_is_refused_and_its_content_handed_over() {
    let (alice, bob, _) = people();
    // A blocked device that restarted asks for presence: the caller still
    // needs to see the ask to answer it with "offline".
    let ask = Content::Presence(PresenceUpdate {
        shown: ShownPresence::Online,
        note: String::new(),
        version: 1,
        ask: true,
    });
    let envelope = seal(&alice, &bob, &ask);
    let standing = Flags {
        user_blocked: true,
        ..Flags::default()
    };
    let refused = refusal(admit(&envelope, &bob.device, &standing));
    let Refusal::Blocked(opened) = &refused else {
        panic!("not blocked: {refused:?}");
    };
    assert_eq!(opened.content, ask);
    assert_eq!(opened.sender, alice.cert);
    assert_eq!(refused.message_id(), envelope.id);
    assert_eq!(refused.reason(), RefuseReason::Blocked);
}

#[test]
fn the_first_failing_check_decides_and_the_rest_are_not_asked() {
    let (alice, bob, _) = people();
    let envelope = seal(&alice, &bob, &text());
    let all = Flags {
        device_removed: true,
        user_revoked: true,
        user_blocked: true,
        ..Flags::default()
    };
    let refused = refusal(admit(&envelope, &bob.device, &all));
    assert_eq!(refused.reason(), RefuseReason::DeviceRemoved);
    assert_eq!(*all.asked.borrow(), ["device"]);

    let revoked_and_blocked = Flags {
        user_revoked: true,
        user_blocked: true,
        ..Flags::default()
    };
    let refused = refusal(admit(&envelope, &bob.device, &revoked_and_blocked));
    assert!(matches!(refused, Refusal::UserRevoked { .. }));
    assert_eq!(*revoked_and_blocked.asked.borrow(), ["device", "revoked"]);

    let removed_and_blocked = Flags {
        device_removed: true,
        user_blocked: true,
        ..Flags::default()
    };
    let refused = refusal(admit(&envelope, &bob.device, &removed_and_blocked));
    assert!(
        matches!(refused, Refusal::DeviceRemoved { .. }),
        "a removed device's content is not handed over as blocked content"
    );
}

/// Core's own tables answer the questions the way the daemon fills them.
struct Tables {
    devices: Devices,
    revocations: Option<Revocations>,
    blocked: BTreeSet<UserId>,
}

impl Standing for Tables {
    fn device_removed(&self, sender: &DeviceCert) -> bool {
        self.devices.is_revoked(sender)
    }

    fn user_revoked(&self, user: &UserId) -> bool {
        self.revocations
            .as_ref()
            .is_some_and(|list| list.is_revoked(user))
    }

    fn user_blocked(&self, user: &UserId) -> bool {
        self.blocked.contains(user)
    }
}

#[test]
fn core_tables_answer_the_standing_questions() {
    let (alice, bob, carol) = people();
    let mut tables = Tables {
        devices: Devices::new(),
        revocations: None,
        blocked: BTreeSet::new(),
    };
    let from_alice = seal(&alice, &bob, &text());
    assert!(matches!(
        admit(&from_alice, &bob.device, &tables),
        Admission::Admitted(_)
    ));

    tables.blocked.insert(carol.user_id());
    let from_carol = seal(&carol, &bob, &text());
    let refused = refusal(admit(&from_carol, &bob.device, &tables));
    assert!(matches!(refused, Refusal::Blocked(_)));

    let org = OrgKey::generate(&mut SeededEntropy::new(3));
    tables.revocations = Some(org.revoke(1, vec![carol.user_id()], 10));
    let refused = refusal(admit(&from_carol, &bob.device, &tables));
    assert!(matches!(refused, Refusal::UserRevoked { .. }));

    let alice_user = alice
        .user
        .as_ref()
        .expect("first device holds the user key");
    tables.devices.learn(alice.cert.clone()).expect("learn");
    let removal = DeviceRevocation::sign(alice_user, alice.device_id(), 20);
    assert_eq!(
        tables.devices.revoke(bob.device_id(), removal),
        Ok(true),
        "alice removed this device"
    );
    let refused = refusal(admit(&from_alice, &bob.device, &tables));
    assert_eq!(refused.reason(), RefuseReason::DeviceRemoved);
}

#[test]
fn the_receipt_proves_delivery_to_the_sender_and_nothing_else() {
    let (alice, bob, carol) = people();
    let envelope = seal(&alice, &bob, &text());
    let Admission::Admitted(opened) = admit(&envelope, &bob.device, &GoodStanding) else {
        panic!("refused");
    };
    let receipt = delivered_receipt(&bob.device, &opened, 5_000);
    assert_eq!(receipt.kind, ReceiptKind::Delivered);
    assert_eq!(receipt.at_ms, 5_000);
    assert!(receipt_proves_delivery(
        &alice.device_id(),
        &envelope.id,
        &bob.cert,
        &receipt
    ));
    // Not for another sender, another message, or as another recipient.
    assert!(!receipt_proves_delivery(
        &carol.device_id(),
        &envelope.id,
        &bob.cert,
        &receipt
    ));
    let other = MessageId::random(&mut SeededEntropy::new(99));
    assert!(!receipt_proves_delivery(
        &alice.device_id(),
        &other,
        &bob.cert,
        &receipt
    ));
    assert!(!receipt_proves_delivery(
        &alice.device_id(),
        &envelope.id,
        &carol.cert,
        &receipt
    ));
}

#[test]
fn a_copy_that_arrives_again_is_admitted_again_so_its_retry_gets_a_receipt() {
    let (alice, bob, _) = people();
    let envelope = seal(&alice, &bob, &text());
    let first = admit(&envelope, &bob.device, &GoodStanding);
    let again = admit(&envelope, &bob.device, &GoodStanding);
    assert_eq!(first, again, "dedupe is the store's, after admission");
}
