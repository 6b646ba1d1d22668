//! Unit tests of sealing and opening envelopes.

use super::*;
use crate::entropy::SeededEntropy;
use crate::identity::{Identity, UserKey};

fn people(n: u64) -> Vec<Identity> {
    (0..n)
        .map(|i| Identity::generate("p", 1_700_000_000, &mut SeededEntropy::new(100 + i)))
        .collect()
}

fn text(s: &str) -> Content {
    Content::Text { text: s.to_owned() }
}

fn seal_to(sender: &Identity, to: &[Identity], content: &Content) -> Envelope {
    let certs: Vec<DeviceCert> = to.iter().map(|p| p.cert.clone()).collect();
    let mut entropy = SeededEntropy::new(42);
    let id = MessageId::random(&mut entropy);
    Envelope::seal(
        &sender.device,
        &sender.cert,
        &certs,
        id,
        1_000,
        content,
        &mut entropy,
    )
    .expect("seal")
}

#[test]
fn one_recipient_round_trip() {
    let p = people(2);
    let envelope = seal_to(&p[0], &p[1..], &text("hello"));
    let opened = envelope.open(&p[1].device).expect("open");
    assert_eq!(opened.content, text("hello"));
    assert_eq!(opened.sender, p[0].cert);
    assert_eq!(opened.id, envelope.id);
    assert_eq!(opened.created_at_ms, 1_000);
    assert_eq!(envelope.verify_signature(), Ok(()));
}

#[test]
fn every_one_of_three_recipients_opens() {
    let p = people(4);
    let envelope = seal_to(&p[0], &p[1..], &text("all of you"));
    let devices: Vec<DeviceId> = envelope.recipient_devices().collect();
    assert_eq!(
        devices,
        vec![p[1].device_id(), p[2].device_id(), p[3].device_id()]
    );
    for person in &p[1..] {
        let opened = envelope.open(&person.device).expect("open");
        assert_eq!(opened.content, text("all of you"));
        assert_eq!(opened.sealed_for, devices, "each sees who else it was for");
    }
    assert_eq!(
        envelope.open(&p[0].device),
        Err(OpenError::NotForThisDevice)
    );
}

#[test]
fn a_missed_copy_carries_the_original_sender_through_a_sibling() {
    let p = people(3);
    let original = seal_to(&p[0], &p[1..2], &text("for one device"));
    let opened = original.open(&p[1].device).expect("open");
    let copy = Content::MissedCopy {
        message: opened.id,
        from: opened.sender.clone(),
        from_name: "p".into(),
        sent_at_ms: opened.created_at_ms,
        content: Box::new(opened.content.clone()),
    };
    let passed = seal_to(&p[1], &p[2..], &copy);
    let got = passed.open(&p[2].device).expect("open the copy");
    assert_eq!(got.content, copy);
    let Content::MissedCopy { from, .. } = got.content else {
        unreachable!("checked above")
    };
    assert_eq!(from.verify(), Ok(()), "the original sender's cert survives");
}

#[test]
fn duplicate_recipients_are_wrapped_once() {
    let p = people(2);
    let envelope = seal_to(&p[0], &[p[1].clone(), p[1].clone()], &text("x"));
    assert_eq!(envelope.recipients.len(), 1);
}

#[test]
fn outsider_is_not_a_recipient() {
    let p = people(3);
    let envelope = seal_to(&p[0], &p[1..2], &text("private"));
    assert_eq!(
        envelope.open(&p[2].device),
        Err(OpenError::NotForThisDevice)
    );
}

#[test]
fn tampered_ciphertext_does_not_decrypt() {
    let p = people(2);
    let mut envelope = seal_to(&p[0], &p[1..], &text("hello"));
    envelope.ciphertext[0] ^= 1;
    assert_eq!(envelope.open(&p[1].device), Err(OpenError::Decrypt));
    assert_eq!(envelope.verify_signature(), Err(OpenError::BadSignature));
}

#[test]
fn tampered_header_does_not_decrypt() {
    let p = people(2);
    let mut envelope = seal_to(&p[0], &p[1..], &text("hello"));
    envelope.created_at_ms += 1;
    assert_eq!(envelope.open(&p[1].device), Err(OpenError::Decrypt));
}

#[test]
fn tampered_signature_is_rejected() {
    let p = people(2);
    let mut envelope = seal_to(&p[0], &p[1..], &text("hello"));
    envelope.signature.0[0] ^= 1;
    assert_eq!(envelope.open(&p[1].device), Err(OpenError::BadSignature));
    assert_eq!(envelope.verify_signature(), Err(OpenError::BadSignature));
}

#[test]
fn sender_cert_signed_by_another_user_is_rejected() {
    let p = people(2);
    let mallory = UserKey::generate(&mut SeededEntropy::new(7));
    // Claims to be p[0]'s user, but mallory signed it.
    let mut forged = mallory.certify(&p[0].device, 1_700_000_000);
    forged.user_key = p[0].cert.user_key;
    let mut sender = p[0].clone();
    sender.cert = forged;
    let envelope = seal_to(&sender, &p[1..], &text("trust me"));
    assert_eq!(
        envelope.open(&p[1].device),
        Err(OpenError::SenderCert(CertError::BadSignature))
    );
    assert_eq!(
        envelope.verify_signature(),
        Err(OpenError::SenderCert(CertError::BadSignature))
    );
}

#[test]
fn tampered_wrapped_key_does_not_unwrap() {
    let p = people(2);
    let mut envelope = seal_to(&p[0], &p[1..], &text("hello"));
    envelope.recipients[0].wrapped[3] ^= 1;
    assert_eq!(envelope.open(&p[1].device), Err(OpenError::KeyUnwrap));
    envelope.recipients[0].wrapped.truncate(10);
    assert_eq!(envelope.open(&p[1].device), Err(OpenError::KeyUnwrap));
}

#[test]
fn low_order_ephemeral_key_does_not_unwrap() {
    let p = people(2);
    let mut envelope = seal_to(&p[0], &p[1..], &text("hello"));
    envelope.ephemeral_key = [0u8; 32];
    assert_eq!(envelope.open(&p[1].device), Err(OpenError::KeyUnwrap));
}

#[test]
fn unknown_version_is_reported_first() {
    let p = people(2);
    let mut envelope = seal_to(&p[0], &p[1..], &text("hello"));
    envelope.version = 9;
    assert_eq!(
        envelope.open(&p[1].device),
        Err(OpenError::UnsupportedVersion(9))
    );
    assert_eq!(
        envelope.verify_signature(),
        Err(OpenError::UnsupportedVersion(9))
    );
}

#[test]
fn seal_rejects_bad_inputs() {
    let p = people(2);
    let mut entropy = SeededEntropy::new(1);
    let id = MessageId([1; 16]);
    let seal = |certs: &[DeviceCert], content: &Content, entropy: &mut SeededEntropy| {
        Envelope::seal(&p[0].device, &p[0].cert, certs, id, 0, content, entropy)
    };
    assert_eq!(
        seal(&[], &text("x"), &mut entropy),
        Err(SealError::NoRecipients)
    );
    let many = vec![p[1].cert.clone(); MAX_RECIPIENTS + 1];
    assert_eq!(
        seal(&many, &text("x"), &mut entropy),
        Err(SealError::TooManyRecipients)
    );
    let long = text(&"a".repeat(MAX_TEXT_LEN + 1));
    assert!(matches!(
        seal(&[p[1].cert.clone()], &long, &mut entropy),
        Err(SealError::TextTooLong { .. })
    ));
    let mut bad = p[1].cert.clone();
    bad.issued_at += 1;
    assert_eq!(
        seal(&[bad], &text("x"), &mut entropy),
        Err(SealError::RecipientCert(CertError::BadSignature))
    );
    assert_eq!(
        Envelope::seal(
            &p[1].device,
            &p[0].cert,
            &[p[1].cert.clone()],
            id,
            0,
            &text("x"),
            &mut entropy
        ),
        Err(SealError::SenderMismatch)
    );
}

#[test]
fn fan_out_costs_one_payload() {
    let p = people(21);
    let payload = "x".repeat(10 * 1024);
    let envelope = seal_to(&p[0], &p[1..], &text(&payload));
    let encoded = postcard::to_allocvec(&envelope).expect("encode");
    assert!(
        encoded.len() < 10 * 1024 + 20 * 100,
        "{} bytes for 20 recipients",
        encoded.len()
    );
}

#[test]
fn garbage_plaintext_is_malformed_content() {
    let p = people(2);
    let certs = [p[1].cert.clone()];
    let mut entropy = SeededEntropy::new(3);
    let envelope = seal_plaintext(
        &p[0].device,
        &p[0].cert,
        &certs,
        MessageId([1; 16]),
        0,
        &[0xff; 3],
        &mut entropy,
    )
    .expect("seal");
    assert_eq!(
        envelope.open(&p[1].device),
        Err(OpenError::MalformedContent)
    );
}

#[test]
fn presence_typing_and_receipts_round_trip_sealed() {
    use crate::presence::{PresenceUpdate, ShownPresence};
    use crate::receipt::{Receipt, ReceiptKind};
    let p = people(2);
    let read = Receipt::sign(
        &p[0].device,
        MessageId([3; 16]),
        p[1].device_id(),
        ReceiptKind::Read,
        7,
    );
    for content in [
        Content::Presence(PresenceUpdate {
            shown: ShownPresence::Busy,
            note: "in a meeting".into(),
            version: 9,
            ask: true,
        }),
        Content::Typing,
        Content::Receipts(vec![read]),
    ] {
        let envelope = seal_to(&p[0], &p[1..], &content);
        let opened = envelope.open(&p[1].device).expect("open");
        assert_eq!(opened.content, content);
        // The note is sealed: its bytes appear nowhere in the envelope.
        let bytes = postcard::to_allocvec(&envelope).expect("encode");
        assert!(!bytes.windows(12).any(|w| w == b"in a meeting"));
    }
}

#[test]
fn own_copies_and_read_sync_round_trip_sealed() {
    let p = people(2);
    for content in [
        Content::OwnCopy {
            message: MessageId([4; 16]),
            to: vec![p[1].user_id()],
            content: Box::new(text("the secret plan")),
        },
        Content::ReadSync {
            peer: p[1].user_id(),
            up_to_ms: 1_700_000_000_000,
        },
    ] {
        let envelope = seal_to(&p[0], &p[1..], &content);
        let opened = envelope.open(&p[1].device).expect("open");
        assert_eq!(opened.content, content);
        let bytes = postcard::to_allocvec(&envelope).expect("encode");
        assert!(!bytes.windows(10).any(|w| w == b"the secret"));
    }
}
