use super::*;
use crate::device::DeviceRevocation;
use crate::entropy::SeededEntropy;
use crate::Identity;

const NOW: u64 = 1_700_000_000_000;

struct Setup {
    laptop: Identity,
    desktop: DeviceKey,
    entropy: SeededEntropy,
}

fn setup() -> Setup {
    let mut entropy = SeededEntropy::new(42);
    let laptop = Identity::generate("alice", 1, &mut entropy);
    let desktop = DeviceKey::generate(&mut entropy);
    Setup {
        laptop,
        desktop,
        entropy,
    }
}

fn grant_for(s: &Setup, joiner: &DeviceKey) -> PairMessage {
    let user = s.laptop.user.as_ref().expect("user key");
    PairMessage::Granted(Box::new(PairGrant {
        cert: user.certify(joiner, 2),
        name: "alice".into(),
        membership: None,
        relay: None,
        roster: Roster {
            certs: vec![s.laptop.cert.clone()],
            revocations: Vec::new(),
            labels: Vec::new(),
        },
    }))
}

#[test]
fn codes_are_ten_friendly_characters_and_parse_leniently() {
    let code = PairingCode::generate(&mut SeededEntropy::new(1));
    let shown = code.to_string();
    assert_eq!(shown.len(), CODE_LEN + 1);
    assert_eq!(PairingCode::parse(&shown), Ok(code.clone()));
    assert_eq!(
        PairingCode::parse(&shown.to_lowercase().replace('-', " ")),
        Ok(code.clone())
    );
    assert_eq!(
        PairingCode::parse("oiL23-45678").map(|c| c.to_string()),
        Ok("01123-45678".to_string())
    );
    assert!(matches!(
        PairingCode::parse("ABCDE"),
        Err(PairError::BadCode(_))
    ));
    assert!(matches!(
        PairingCode::parse("ABCDE-FGHJU"),
        Err(PairError::BadCode(_))
    ));
    assert!(!format!("{code:?}").contains(&shown[..5]), "debug hides it");
}

#[test]
fn the_right_code_enrols_the_new_device() {
    let mut s = setup();
    let host_key = s.laptop.device.public_key();
    let mut host = PairHost::new(host_key, NOW, &mut s.entropy);
    let code = PairingCode::parse(&host.code().to_string()).expect("code");
    let (mut join, start) = PairJoin::start(&code, &s.desktop, host_key, &mut s.entropy);
    let PairMessage::Start { spake } = start else {
        panic!("start")
    };
    let challenge = host.handle_start(NOW + 1, s.desktop.public_key(), &spake, &mut s.entropy);
    let confirm = join
        .handle_challenge(challenge, "desktop")
        .expect("host proved the code");
    let PairMessage::Confirm { confirm, label } = confirm else {
        panic!("confirm")
    };
    assert_eq!(label, "desktop");
    assert_eq!(
        host.handle_confirm(NOW + 2, s.desktop.public_key(), &confirm),
        Ok(())
    );
    assert_eq!(host.outcome(), Some(Ok(s.desktop.public_key())));
    let desktop = s.desktop.clone();
    let grant = join
        .handle_grant(grant_for(&s, &desktop))
        .expect("grant accepted");
    assert_eq!(grant.cert.user_id(), s.laptop.user_id());
    assert_eq!(grant.cert.device_id(), s.desktop.id());
    assert_eq!(host.poll_timeout(), None, "done");
}

#[test]
fn a_wrong_code_is_refused_on_both_sides_and_spends_the_code() {
    let mut s = setup();
    let host_key = s.laptop.device.public_key();
    let mut host = PairHost::new(host_key, NOW, &mut s.entropy);
    let wrong = PairingCode::parse("00000-00000").expect("code");
    assert_ne!(&wrong, host.code());
    let (mut join, start) = PairJoin::start(&wrong, &s.desktop, host_key, &mut s.entropy);
    let PairMessage::Start { spake } = start else {
        panic!("start")
    };
    let challenge = host.handle_start(NOW, s.desktop.public_key(), &spake, &mut s.entropy);
    let PairMessage::Challenge { confirm, .. } = challenge.clone() else {
        panic!("challenge")
    };
    assert_eq!(
        join.handle_challenge(challenge, "x"),
        Err(PairError::WrongCode)
    );
    // A joiner that pushes on regardless gets WrongCode from the host too.
    assert_eq!(
        host.handle_confirm(NOW, s.desktop.public_key(), &confirm),
        Err(PairRefusal::WrongCode)
    );
    assert_eq!(host.outcome(), Some(Err(PairRefusal::WrongCode)));
    // Now even the right code is refused: single use.
    let right = host.code().clone();
    let (_, start) = PairJoin::start(&right, &s.desktop, host_key, &mut s.entropy);
    let PairMessage::Start { spake } = start else {
        panic!("start")
    };
    assert_eq!(
        host.handle_start(NOW, s.desktop.public_key(), &spake, &mut s.entropy),
        PairMessage::Refused(PairRefusal::WrongCode)
    );
}

#[test]
fn an_expired_code_is_refused() {
    let mut s = setup();
    let host_key = s.laptop.device.public_key();
    let mut host = PairHost::new(host_key, NOW, &mut s.entropy);
    assert_eq!(host.poll_timeout(), Some(NOW + PAIRING_TTL_MS));
    let code = host.code().clone();
    let (_, start) = PairJoin::start(&code, &s.desktop, host_key, &mut s.entropy);
    let PairMessage::Start { spake } = start else {
        panic!("start")
    };
    assert_eq!(
        host.handle_start(
            NOW + PAIRING_TTL_MS,
            s.desktop.public_key(),
            &spake,
            &mut s.entropy
        ),
        PairMessage::Refused(PairRefusal::Expired)
    );
    assert_eq!(host.outcome(), Some(Err(PairRefusal::Expired)));
}

#[test]
fn a_man_in_the_middle_with_its_own_key_fails_even_with_the_code() {
    // Mallory terminates TLS towards both sides with her own key, so the
    // host sees her key as the joiner and the joiner sees it as the host.
    let mut s = setup();
    let host_key = s.laptop.device.public_key();
    let mallory = DeviceKey::generate(&mut s.entropy);
    let mut host = PairHost::new(host_key, NOW, &mut s.entropy);
    let code = host.code().clone();
    // The joiner thinks it talks to mallory's key; its start is relayed.
    let (mut join, start) =
        PairJoin::start(&code, &s.desktop, mallory.public_key(), &mut s.entropy);
    let PairMessage::Start { spake } = start else {
        panic!("start")
    };
    let challenge = host.handle_start(NOW, mallory.public_key(), &spake, &mut s.entropy);
    assert_eq!(
        join.handle_challenge(challenge, "x"),
        Err(PairError::WrongCode)
    );
}

#[test]
fn a_second_joiner_is_busy_and_garbage_spends_the_code() {
    let mut s = setup();
    let host_key = s.laptop.device.public_key();
    let mut host = PairHost::new(host_key, NOW, &mut s.entropy);
    let code = host.code().clone();
    let (_, start) = PairJoin::start(&code, &s.desktop, host_key, &mut s.entropy);
    let PairMessage::Start { spake } = start else {
        panic!("start")
    };
    assert!(matches!(
        host.handle_start(NOW, s.desktop.public_key(), &spake, &mut s.entropy),
        PairMessage::Challenge { .. }
    ));
    let other = DeviceKey::generate(&mut s.entropy);
    assert_eq!(
        host.handle_start(NOW, other.public_key(), &spake, &mut s.entropy),
        PairMessage::Refused(PairRefusal::Busy)
    );
    assert_eq!(
        host.handle_confirm(NOW, other.public_key(), &[0u8; 32]),
        Err(PairRefusal::Busy)
    );

    let mut fresh = PairHost::new(host_key, NOW, &mut s.entropy);
    assert!(matches!(
        fresh.handle_start(NOW, other.public_key(), b"junk", &mut s.entropy),
        PairMessage::Refused(PairRefusal::Other(_))
    ));
    assert!(matches!(fresh.outcome(), Some(Err(_))));
}

#[test]
fn a_grant_for_another_device_or_user_is_refused() {
    let mut s = setup();
    let host_key = s.laptop.device.public_key();
    let mut host = PairHost::new(host_key, NOW, &mut s.entropy);
    let code = host.code().clone();
    let (mut join, start) = PairJoin::start(&code, &s.desktop, host_key, &mut s.entropy);
    let PairMessage::Start { spake } = start else {
        panic!("start")
    };
    let challenge = host.handle_start(NOW, s.desktop.public_key(), &spake, &mut s.entropy);
    join.handle_challenge(challenge, "x").expect("confirm");
    let stranger = DeviceKey::generate(&mut s.entropy);
    assert!(matches!(
        join.handle_grant(grant_for(&s, &stranger)),
        Err(PairError::BadGrant(_))
    ));
    let desktop = s.desktop.clone();
    let mut mixed = grant_for(&s, &desktop);
    if let PairMessage::Granted(grant) = &mut mixed {
        let bob = Identity::generate("bob", 1, &mut s.entropy);
        grant.roster.certs.push(bob.cert);
        let user = s.laptop.user.as_ref().expect("user");
        grant
            .roster
            .revocations
            .push(DeviceRevocation::sign(user, stranger.id(), 3));
    }
    assert!(matches!(
        join.handle_grant(mixed),
        Err(PairError::BadGrant(_))
    ));
    assert!(matches!(
        join.handle_grant(PairMessage::Refused(PairRefusal::Expired)),
        Err(PairError::Refused(PairRefusal::Expired))
    ));
}
