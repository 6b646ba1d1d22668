//! Room log ordering, signature and authorisation checks, key rotation.

use super::*;
use crate::entropy::SeededEntropy;
use crate::identity::Identity;
use crate::{DeviceId, MessageId};

fn person(name: &str, seed: u64) -> Identity {
    Identity::generate(name, 1_700_000_000, &mut SeededEntropy::new(seed))
}

fn room_of(admin: &Identity) -> RoomLog {
    let (log, _) = RoomLog::create(
        &admin.device,
        &admin.cert,
        "Lunch",
        1_000,
        &mut SeededEntropy::new(99),
    )
    .unwrap();
    log
}

fn act(log: &mut RoomLog, who: &Identity, action: RoomAction) -> Result<RoomOp, RoomError> {
    log.author(&who.device, &who.cert, action, 2_000)
}

#[test]
fn create_add_leave_join_fold_and_rotate_epochs() {
    let (ann, bob, cat) = (person("ann", 1), person("bob", 2), person("cat", 3));
    let mut log = room_of(&ann);
    assert_eq!(log.state().name, "Lunch");
    assert!(log.state().admins.contains(&ann.user_id()));
    let e0 = log.state().epoch;
    act(
        &mut log,
        &ann,
        RoomAction::Add {
            users: vec![bob.user_id(), cat.user_id()],
        },
    )
    .unwrap();
    let e1 = log.state().epoch;
    assert_ne!(e0, e1, "adding members rotates the epoch");
    assert_eq!(log.state().members.len(), 3);
    act(
        &mut log,
        &ann,
        RoomAction::SetTopic {
            topic: "Fridays".into(),
        },
    )
    .unwrap();
    assert_eq!(log.state().epoch, e1, "a topic is no membership change");
    act(&mut log, &bob, RoomAction::Leave).unwrap();
    let e2 = log.state().epoch;
    assert_ne!(e1, e2);
    assert!(!log.members_at(&e2).unwrap().contains(&bob.user_id()));
    assert_eq!(
        log.check_sender(&e1, &bob.user_id()),
        Err(RoomError::SenderNotMember),
        "a member who left sends nothing more, in no epoch"
    );
    act(&mut log, &bob, RoomAction::Join).unwrap();
    assert!(log.state().members.contains(&bob.user_id()));
    // Removed members cannot rejoin by themselves.
    act(
        &mut log,
        &ann,
        RoomAction::Remove {
            user: cat.user_id(),
        },
    )
    .unwrap();
    assert_eq!(
        act(&mut log, &cat, RoomAction::Join).unwrap_err(),
        RoomError::NotInvited(cat.user_id())
    );
    // The whole log rebuilds to the same state from any order.
    let mut ops = log.ops_in_order();
    ops.reverse();
    let (again, errors) = RoomLog::from_ops(ops).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(again.state(), log.state());
    assert_eq!(again.order(), log.order());
    assert_eq!(again.id(), log.id());
}

#[test]
fn forged_and_unauthorised_ops_are_refused_precisely() {
    let (ann, bob, eve) = (person("ann", 1), person("bob", 2), person("eve", 3));
    let mut log = room_of(&ann);
    act(
        &mut log,
        &ann,
        RoomAction::Add {
            users: vec![bob.user_id()],
        },
    )
    .unwrap();
    let heads = log.heads().to_vec();
    let by = |who: &Identity, action| {
        RoomOp::sign(
            &who.device,
            &who.cert,
            Some(log.id()),
            heads.clone(),
            3_000,
            action,
        )
    };
    let before = log.order().to_vec();
    // Not a member.
    let op = by(
        &eve,
        RoomAction::Add {
            users: vec![eve.user_id()],
        },
    );
    assert_eq!(
        log.clone().handle_op(op),
        Err(RoomError::NotAMember(eve.user_id()))
    );
    // A member, but not an admin.
    let op = by(
        &bob,
        RoomAction::Remove {
            user: ann.user_id(),
        },
    );
    assert_eq!(
        log.clone().handle_op(op),
        Err(RoomError::NotAnAdmin(bob.user_id()))
    );
    let op = by(&bob, RoomAction::SetTopic { topic: "x".into() });
    assert_eq!(
        log.clone().handle_op(op),
        Err(RoomError::NotAnAdmin(bob.user_id()))
    );
    // Eve signs with her key but claims Ann's certificate.
    let mut op = by(&eve, RoomAction::Disable);
    op.author = ann.cert.clone();
    assert_eq!(log.clone().handle_op(op), Err(RoomError::BadSignature));
    // Tampered after signing.
    let mut op = by(&ann, RoomAction::SetTopic { topic: "a".into() });
    op.action = RoomAction::Disable;
    assert_eq!(log.clone().handle_op(op), Err(RoomError::BadSignature));
    // Another room, or a second genesis.
    let other = room_of(&eve);
    let op = RoomOp::sign(
        &ann.device,
        &ann.cert,
        Some(other.id()),
        heads.clone(),
        3_000,
        RoomAction::Disable,
    );
    assert_eq!(log.clone().handle_op(op), Err(RoomError::WrongRoom));
    let genesis = RoomOp::create(
        &ann.device,
        &ann.cert,
        "Again".into(),
        1,
        &mut SeededEntropy::new(5),
    );
    assert_eq!(log.clone().handle_op(genesis), Err(RoomError::NotGenesis));
    // Limits.
    let long = "x".repeat(MAX_NAME_CHARS + 1);
    assert!(matches!(
        act(&mut log, &ann, RoomAction::SetName { name: long }),
        Err(RoomError::BadName(_))
    ));
    assert!(matches!(
        act(
            &mut log,
            &ann,
            RoomAction::SetTopic {
                topic: "t".repeat(MAX_TOPIC_CHARS + 1)
            }
        ),
        Err(RoomError::BadTopic(_))
    ));
    assert_eq!(log.order(), before, "nothing refused was stored");
    // Disabled: readable, nothing new.
    act(&mut log, &ann, RoomAction::Disable).unwrap();
    assert_eq!(
        act(&mut log, &ann, RoomAction::SetTopic { topic: "y".into() }),
        Err(RoomError::Disabled)
    );
    let e = log.state().epoch;
    assert_eq!(
        log.check_sender(&e, &ann.user_id()),
        Err(RoomError::Disabled)
    );
}

#[test]
fn concurrent_admin_ops_resolve_the_same_everywhere() {
    let (ann, bob, cat) = (person("ann", 1), person("bob", 2), person("cat", 3));
    let mut base = room_of(&ann);
    act(
        &mut base,
        &ann,
        RoomAction::Add {
            users: vec![bob.user_id(), cat.user_id()],
        },
    )
    .unwrap();
    act(
        &mut base,
        &ann,
        RoomAction::Promote {
            user: bob.user_id(),
        },
    )
    .unwrap();
    // Ann and Bob remove each other at the same time; Cat sets nothing.
    let (mut a, mut b) = (base.clone(), base.clone());
    let op_a = act(
        &mut a,
        &ann,
        RoomAction::Remove {
            user: bob.user_id(),
        },
    )
    .unwrap();
    let op_b = act(
        &mut b,
        &bob,
        RoomAction::Remove {
            user: ann.user_id(),
        },
    )
    .unwrap();
    let mut c1 = base.clone();
    c1.handle_op(op_a.clone()).unwrap();
    c1.handle_op(op_b.clone()).unwrap();
    let mut c2 = base.clone();
    c2.handle_op(op_b.clone()).unwrap();
    c2.handle_op(op_a.clone()).unwrap();
    a.handle_op(op_b.clone()).unwrap();
    b.handle_op(op_a.clone()).unwrap();
    for log in [&b, &c1, &c2] {
        assert_eq!(log.order(), a.order());
        assert_eq!(log.state(), a.state());
    }
    // Removal wins: both are removed, whichever sorts first, so neither
    // can undo the other's removal (a removed admin could otherwise
    // back-date a removal of whoever removed them).
    for op in [&op_a, &op_b] {
        assert!(!a.is_skipped(&op.hash()));
        assert!(!a.state().members.contains(&op.author_user()));
    }
    assert_eq!(
        a.state().members,
        std::collections::BTreeSet::from([cat.user_id()])
    );
    assert_eq!(a.heads().len(), 2, "a fork until someone writes on top");
    let next = act(&mut a, &cat, RoomAction::Leave).unwrap();
    assert_eq!(next.parents.len(), 2, "the next op merges both heads");
}

#[test]
fn ops_whose_parents_are_missing_wait_for_them() {
    let (ann, bob) = (person("ann", 1), person("bob", 2));
    let mut full = room_of(&ann);
    let mut late = full.clone();
    let op1 = act(
        &mut full,
        &ann,
        RoomAction::Add {
            users: vec![bob.user_id()],
        },
    )
    .unwrap();
    let op2 = act(&mut full, &ann, RoomAction::SetTopic { topic: "t".into() }).unwrap();
    let held = late.handle_op(op2.clone()).unwrap();
    assert!(held.pending && held.new.is_empty());
    assert_eq!(late.pending_len(), 1);
    let taken = late.handle_op(op1.clone()).unwrap();
    assert_eq!(taken.new, vec![op1.hash(), op2.hash()]);
    assert_eq!(late.state(), full.state());
    // Known ops are a no-op.
    assert_eq!(late.handle_op(op1).unwrap(), Applied::default());
}

#[test]
fn room_envelope_seals_once_and_checks_key_and_signature() {
    let (ann, bob, eve) = (person("ann", 1), person("bob", 2), person("eve", 3));
    let mut entropy = SeededEntropy::new(4);
    let log = room_of(&ann);
    let key = SenderKey::generate(&mut entropy);
    let to: Vec<DeviceId> = vec![ann.device_id(), bob.device_id(), bob.device_id()];
    let content = RoomContent::Text {
        text: "hello room".into(),
    };
    let env = RoomEnvelope::seal(
        &ann.device,
        &ann.cert,
        log.id(),
        log.state().epoch,
        &key,
        to,
        MessageId([1; 16]),
        5,
        &content,
        &mut entropy,
    )
    .unwrap();
    assert_eq!(env.to.len(), 2, "devices deduplicated");
    env.verify_signature().unwrap();
    assert_eq!(env.open(&key).unwrap(), content);
    // A key of another epoch (what a removed member holds) does not open it.
    let old = SenderKey::generate(&mut entropy);
    assert_eq!(env.open(&old), Err(crate::OpenError::Decrypt));
    // Re-addressing or re-signing is detected.
    let mut moved = env.clone();
    moved.to.push(eve.device_id());
    assert_eq!(
        moved.verify_signature(),
        Err(crate::OpenError::BadSignature)
    );
    let mut stolen = env.clone();
    stolen.sender = eve.cert.clone();
    assert_eq!(stolen.open(&key), Err(crate::OpenError::BadSignature));
    // Too long a text is refused before sealing.
    let long = RoomContent::Text {
        text: "x".repeat(crate::wire::MAX_TEXT_LEN + 1),
    };
    assert!(RoomEnvelope::seal(
        &ann.device,
        &ann.cert,
        log.id(),
        log.state().epoch,
        &key,
        vec![bob.device_id()],
        MessageId([2; 16]),
        5,
        &long,
        &mut entropy,
    )
    .is_err());
}

#[test]
fn room_frames_round_trip_on_the_wire() {
    let ann = person("ann", 1);
    let mut entropy = SeededEntropy::new(4);
    let log = room_of(&ann);
    let key = SenderKey::generate(&mut entropy);
    let env = RoomEnvelope::seal(
        &ann.device,
        &ann.cert,
        log.id(),
        log.state().epoch,
        &key,
        vec![ann.device_id()],
        MessageId([1; 16]),
        5,
        &RoomContent::Typing,
        &mut entropy,
    )
    .unwrap();
    let frame = crate::wire::Frame::RoomEnvelope(env);
    let bytes = crate::wire::encode(&frame).unwrap();
    assert_eq!(crate::wire::decode(&bytes).unwrap().0, frame);
    let content = crate::Content::RoomOps {
        room: log.id(),
        ops: log.ops_in_order(),
        log_len: 1,
    };
    let encoded = postcard::to_allocvec(&content).unwrap();
    assert_eq!(
        postcard::from_bytes::<crate::Content>(&encoded).unwrap(),
        content
    );
}

#[test]
fn any_member_starts_a_new_key_epoch_with_rekey() {
    let (ann, bob, eve) = (person("ann", 1), person("bob", 2), person("eve", 3));
    let mut log = room_of(&ann);
    act(
        &mut log,
        &ann,
        RoomAction::Add {
            users: vec![bob.user_id()],
        },
    )
    .unwrap();
    let (before, members) = (log.state().epoch, log.state().members.clone());
    // Bob removed one of his devices: he is no admin, and may.
    let op = act(&mut log, &bob, RoomAction::Rekey).unwrap();
    assert_eq!(log.state().epoch, op.hash(), "a new epoch");
    assert_ne!(log.state().epoch, before);
    assert_eq!(log.state().members, members, "nobody joined or left");
    assert_eq!(log.members_at(&op.hash()), Some(&members));
    assert_eq!(
        act(&mut log, &eve, RoomAction::Rekey),
        Err(RoomError::NotAMember(eve.user_id()))
    );
}
