//! Unit tests of keys, certificates and the stored identity.

use super::*;
use crate::entropy::SeededEntropy;

fn identity(seed: u64) -> Identity {
    Identity::generate("alice", 1_700_000_000, &mut SeededEntropy::new(seed))
}

#[test]
fn generated_cert_verifies_and_names_the_keys() {
    let id = identity(1);
    assert_eq!(id.cert.verify(), Ok(()));
    assert_eq!(id.cert.device_id(), id.device.id());
    assert_eq!(Some(id.cert.user_id()), id.user.as_ref().map(UserKey::id));
    assert_eq!(id.cert.agreement_key, id.device.agreement_public_key());
    assert_eq!(
        identity(1).to_bytes(),
        id.to_bytes(),
        "deterministic per seed"
    );
    assert_ne!(identity(3).device_id(), id.device_id());
}

#[test]
fn tampered_cert_fields_are_bad_signatures() {
    let id = identity(2);
    let mut cert = id.cert.clone();
    cert.issued_at += 1;
    assert_eq!(cert.verify(), Err(CertError::BadSignature));
    let mut cert = id.cert.clone();
    cert.agreement_key[0] ^= 1;
    assert_eq!(cert.verify(), Err(CertError::BadSignature));
    let mut cert = id.cert.clone();
    cert.device_key = identity(5).device.public_key();
    assert_eq!(cert.verify(), Err(CertError::BadSignature));
    let mut cert = id.cert.clone();
    cert.signature.0[63] ^= 0x10;
    assert!(cert.verify().is_err());
}

#[test]
fn a_remembered_certificate_does_not_vouch_for_a_tampered_copy() {
    let id = identity(9);
    assert_eq!(id.cert.verify(), Ok(()), "verified and remembered");
    assert_eq!(id.cert.verify(), Ok(()), "remembered");
    let mut cert = id.cert.clone();
    cert.issued_at += 1;
    assert_eq!(cert.verify(), Err(CertError::BadSignature));
    let mut cert = id.cert.clone();
    cert.signature.0[0] ^= 1;
    assert!(cert.verify().is_err());
    assert_eq!(id.cert.verify(), Ok(()), "the original still verifies");
}

#[test]
fn cert_with_invalid_user_key_is_bad_key() {
    let mut cert = identity(2).cert;
    // y = 2 is not on the curve.
    cert.user_key = [0u8; 32];
    cert.user_key[0] = 2;
    assert_eq!(cert.verify(), Err(CertError::BadKey("user")));
}

#[test]
fn cert_bytes_round_trip() {
    let cert = identity(6).cert;
    let bytes = cert.to_bytes();
    assert_eq!(DeviceCert::from_bytes(&bytes), Ok(cert));
    assert_eq!(
        DeviceCert::from_bytes(&bytes[..bytes.len() - 1]),
        Err(CertError::Malformed)
    );
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(DeviceCert::from_bytes(&longer), Err(CertError::Malformed));
}

#[test]
fn identity_bytes_round_trip() {
    let id = identity(7);
    let back = Identity::from_bytes(&id.to_bytes()).expect("round trip");
    assert_eq!(back.to_bytes(), id.to_bytes());
    assert_eq!(back.cert, id.cert);
    assert_eq!(back.name, "alice");
    assert_eq!(back.device_id(), id.device_id());
    assert_eq!(
        back.user.map(|u| u.to_bytes()),
        id.user.map(|u| u.to_bytes())
    );
}

#[test]
fn identity_without_user_key_round_trips() {
    let mut id = identity(8);
    id.user = None;
    let back = Identity::from_bytes(&id.to_bytes()).expect("round trip");
    assert!(back.user.is_none());
    assert_eq!(back.user_id(), id.user_id());
}

#[test]
fn truncated_identity_is_an_error_not_a_panic() {
    let bytes = identity(9).to_bytes();
    for len in 0..bytes.len() {
        assert!(Identity::from_bytes(&bytes[..len]).is_err(), "length {len}");
    }
}

#[test]
fn unknown_identity_version_is_reported() {
    let mut bytes = identity(10).to_bytes();
    bytes[0] = 2;
    assert_eq!(
        Identity::from_bytes(&bytes).map(|_| ()),
        Err(IdentityError::UnknownVersion(2))
    );
}

#[test]
fn identity_with_foreign_cert_is_a_mismatch() {
    let mut id = identity(11);
    id.cert = identity(12).cert;
    assert_eq!(
        Identity::from_bytes(&id.to_bytes()).map(|_| ()),
        Err(IdentityError::CertMismatch)
    );
}

#[test]
fn device_key_bytes_round_trip_and_signatures_verify() {
    let device = identity(13).device;
    let again = DeviceKey::from_bytes(&device.to_bytes());
    assert_eq!(again.public_key(), device.public_key());
    assert_eq!(again.agreement_public_key(), device.agreement_public_key());
    let signature = device.sign(b"hello");
    assert!(verify_signature(&device.public_key(), b"hello", &signature));
    assert!(!verify_signature(
        &device.public_key(),
        b"hellO",
        &signature
    ));
    assert!(!verify_signature(&[0u8; 32], b"hello", &signature));
    let other = identity(14).device;
    let shared = device.agree(&other.agreement_public_key());
    assert_eq!(shared, other.agree(&device.agreement_public_key()));
}

#[test]
fn signature_serializes_as_64_bytes() {
    let signature = Signature([7u8; 64]);
    let bytes = postcard::to_allocvec(&signature).expect("encode");
    assert_eq!(bytes, vec![7u8; 64]);
    assert_eq!(postcard::from_bytes::<Signature>(&bytes), Ok(signature));
    assert!(postcard::from_bytes::<Signature>(&bytes[..63]).is_err());
}

#[test]
fn debug_output_hides_secrets() {
    let id = identity(17);
    let text = format!("{id:?} {:?} {:?}", id.device, id.user);
    let secret = data_encoding::HEXLOWER.encode(&id.device.to_bytes()[..4]);
    assert!(!text.contains(&secret));
    assert!(text.contains("DeviceKey("));
}
