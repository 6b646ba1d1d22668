//! The custody rule on real envelopes and receipts: what is held, what
//! the sender is told, and what a flush settles.

use super::*;
use crate::entropy::SeededEntropy;
use crate::{Content, Envelope, Identity};

fn identity(name: &str, seed: u64) -> Identity {
    Identity::generate(name, 1_700_000_000, &mut SeededEntropy::new(seed))
}

/// Ann's envelope to Bob, and Bob.
fn envelope() -> (Identity, Identity, Routed) {
    let (ann, bob) = (identity("ann", 1), identity("bob", 2));
    let text = Content::Text { text: "hi".into() };
    let envelope = Envelope::seal(
        &ann.device,
        &ann.cert,
        std::slice::from_ref(&bob.cert),
        MessageId([7; 16]),
        1_700_000_000_000,
        &text,
        &mut SeededEntropy::new(3),
    )
    .expect("seal");
    (ann, bob, Routed::Envelope(Box::new(envelope)))
}

fn receipt(by: &Identity, id: MessageId, to: DeviceId) -> Receipt {
    Receipt::sign(
        &by.device,
        id,
        to,
        ReceiptKind::Delivered,
        1_700_000_001_000,
    )
}

const QUOTA: MailQuota = MailQuota {
    items: 2,
    bytes: 100,
    org_bytes: 150,
};

#[test]
fn a_retry_is_a_duplicate_and_still_answers_custody() {
    let out = put_outcome(true, MailboxUsage::default(), 10, Some(0), &QUOTA);
    assert_eq!(out, PutOutcome::Duplicate);
    assert_eq!(out.answer(), Answer::Custody);
    assert_eq!(
        put_outcome(false, MailboxUsage::default(), 10, Some(0), &QUOTA).answer(),
        Answer::Custody
    );
}

#[test]
fn a_full_mailbox_is_refused_for_good_and_a_full_organisation_is_retried() {
    let two_items = MailboxUsage {
        items: 2,
        bytes: 20,
    };
    assert_eq!(
        put_outcome(false, two_items, 10, None, &QUOTA),
        PutOutcome::Full
    );
    let nearly_bytes = MailboxUsage {
        items: 1,
        bytes: 95,
    };
    assert_eq!(
        put_outcome(false, nearly_bytes, 10, None, &QUOTA),
        PutOutcome::Full
    );
    assert_eq!(
        PutOutcome::Full.answer(),
        Answer::Refused(RefuseReason::MailboxFull)
    );
    // A new body over the organisation's bytes; a body stored already
    // costs the organisation nothing more.
    let empty = MailboxUsage::default();
    assert_eq!(
        put_outcome(false, empty, 10, Some(145), &QUOTA),
        PutOutcome::OrgFull
    );
    assert_eq!(
        put_outcome(false, empty, 10, None, &QUOTA),
        PutOutcome::Stored
    );
    assert!(matches!(
        PutOutcome::OrgFull.answer(),
        Answer::Refused(RefuseReason::Other(text)) if text == ORG_FULL
    ));
}

#[test]
fn the_dedupe_key_tells_kinds_and_origins_apart() {
    let (ann, bob, item) = envelope();
    let key = MailKey::new(&item, bob.device_id());
    assert_eq!(key.origin, ann.device_id());
    assert_eq!(key.kind, MailKind::Envelope);
    let back = Routed::Receipt(receipt(&bob, item.message_id(), ann.device_id()));
    let receipt_key = MailKey::new(&back, ann.device_id());
    assert_eq!(receipt_key.message_id, key.message_id);
    assert_eq!(
        (receipt_key.kind, receipt_key.origin),
        (MailKind::Delivered, bob.device_id())
    );
    assert_ne!(receipt_key, MailKey::new(&back, bob.device_id()));
}

#[test]
fn located_devices_share_one_copy_per_location_and_the_rest_go_to_custody() {
    let dev = |n: u8| DeviceId([n; 20]);
    // Devices 1 and 2 behind gateway "a", 3 on its own, 4 nowhere.
    let locate = |d: &DeviceId| match d.0[0] {
        1 | 2 => Some("a"),
        3 => Some("c"),
        _ => None,
    };
    let plan = plan_route([dev(1), dev(4), dev(2), dev(3), dev(2), dev(4)], locate);
    assert_eq!(plan.forward["a"], [dev(1), dev(2)]);
    assert_eq!(plan.forward["c"], [dev(3)]);
    assert_eq!(plan.custody, [dev(4)]);
}

#[test]
fn only_a_final_answer_from_a_hop_settles_a_forwarded_device() {
    assert!(settles(&Answer::Accepted));
    assert!(settles(&Answer::Refused(RefuseReason::BadSignature)));
    assert!(!settles(&Answer::Failed("timeout".into())));
    assert!(!settles(&Answer::Custody));
}

#[test]
fn a_valid_receipt_settles_a_held_envelope_and_anything_unproven_keeps_it() {
    let (ann, bob, item) = envelope();
    let good = receipt(&bob, item.message_id(), ann.device_id());
    let answer = Answer::Receipt(good.clone());
    let check = |r: &Receipt| r.verify(&bob.cert).is_ok();
    assert_eq!(
        after_flush(&item, bob.device_id(), Some(&answer), check),
        Flushed::Settle(good)
    );
    // Signed by someone else, or for another message: kept, not lost.
    let forged = Answer::Receipt(receipt(&ann, item.message_id(), ann.device_id()));
    assert_eq!(
        after_flush(&item, bob.device_id(), Some(&forged), check),
        Flushed::Keep
    );
    let other = Answer::Receipt(receipt(&bob, MessageId([8; 16]), ann.device_id()));
    assert_eq!(
        after_flush(&item, bob.device_id(), Some(&other), check),
        Flushed::Keep
    );
    // No answer or a failure: kept for the next round.
    assert_eq!(
        after_flush(&item, bob.device_id(), None, check),
        Flushed::Keep
    );
    let failed = Answer::Failed("busy".into());
    assert_eq!(
        after_flush(&item, bob.device_id(), Some(&failed), check),
        Flushed::Keep
    );
    // Refused by the device: deleted.
    let refused = Answer::Refused(RefuseReason::NotForThisDevice);
    assert_eq!(
        after_flush(&item, bob.device_id(), Some(&refused), check),
        Flushed::Delete
    );
}

#[test]
fn a_held_receipt_is_deleted_once_its_sender_takes_it() {
    let (ann, bob, item) = envelope();
    let back = Routed::Receipt(receipt(&bob, item.message_id(), ann.device_id()));
    let yes = |_: &Receipt| true;
    assert_eq!(
        after_flush(&back, ann.device_id(), Some(&Answer::Accepted), yes),
        Flushed::Delete
    );
    assert_eq!(
        after_flush(&back, ann.device_id(), None, yes),
        Flushed::Keep
    );
}
