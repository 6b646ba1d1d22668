//! Tests of the room rules: admission of room messages and sender keys
//! (`admission`), and taking ops and whole logs (`taking`).

mod admission {
    use std::collections::{BTreeSet, HashMap};

    use super::super::*;
    use crate::delivery::receipt_proves_delivery;
    use crate::entropy::SeededEntropy;
    use crate::inbound::GoodStanding;
    use crate::room::RoomAction;
    use crate::{DeviceCert, Identity, MessageId};

    /// A room of alice and bob, as bob's node knows it.
    struct Bob {
        logs: HashMap<RoomId, RoomLog>,
        keys: HashMap<(RoomId, OpHash, DeviceId), SenderKey>,
        announced: BTreeSet<(RoomId, DeviceId)>,
    }

    impl RoomKnowledge for Bob {
        fn log(&self, room: &RoomId) -> Option<&RoomLog> {
            self.logs.get(room)
        }
        fn sender_key(
            &self,
            room: &RoomId,
            epoch: &OpHash,
            device: &DeviceId,
        ) -> Option<&SenderKey> {
            self.keys.get(&(*room, *epoch, *device))
        }
        fn announced(&self, room: &RoomId, device: &DeviceId) -> bool {
            self.announced.contains(&(*room, *device))
        }
    }

    struct Blocking(UserId);

    impl Standing for Blocking {
        fn device_removed(&self, _: &DeviceCert) -> bool {
            false
        }
        fn user_revoked(&self, _: &UserId) -> bool {
            false
        }
        fn user_blocked(&self, user: &UserId) -> bool {
            *user == self.0
        }
    }

    struct Setup {
        alice: Identity,
        bob: Identity,
        room: RoomId,
        epoch: OpHash,
        key: SenderKey,
        known: Bob,
        entropy: SeededEntropy,
    }

    fn setup() -> Setup {
        let mut entropy = SeededEntropy::new(7);
        let alice = Identity::generate("alice", 0, &mut entropy);
        let bob = Identity::generate("bob", 0, &mut entropy);
        let (mut log, _) =
            RoomLog::create(&alice.device, &alice.cert, "lunch", 1, &mut entropy).unwrap();
        let add = RoomAction::Add {
            users: vec![bob.user_id()],
        };
        log.author(&alice.device, &alice.cert, add, 2).unwrap();
        let (room, epoch) = (log.id(), log.state().epoch);
        let key = SenderKey::generate(&mut entropy);
        let known = Bob {
            logs: HashMap::from([(room, log)]),
            keys: HashMap::from([((room, epoch, alice.device_id()), key.clone())]),
            announced: BTreeSet::new(),
        };
        Setup {
            alice,
            bob,
            room,
            epoch,
            key,
            known,
            entropy,
        }
    }

    fn seal(s: &mut Setup, text: &str) -> RoomEnvelope {
        let content = RoomContent::Text { text: text.into() };
        RoomEnvelope::seal(
            &s.alice.device,
            &s.alice.cert,
            s.room,
            s.epoch,
            &s.key,
            vec![s.bob.device_id()],
            MessageId::random(&mut s.entropy),
            1_000,
            &content,
            &mut s.entropy,
        )
        .unwrap()
    }

    #[test]
    fn a_members_message_is_taken_and_its_receipt_proves_delivery() {
        let mut s = setup();
        let envelope = seal(&mut s, "hi");
        let admitted = admit_room(&envelope, s.bob.device_id(), &GoodStanding, &s.known);
        assert_eq!(
            admitted,
            RoomAdmission::Admitted(RoomContent::Text { text: "hi".into() })
        );
        let receipt = room_delivered_receipt(&s.bob.device, &envelope, 2_000);
        assert!(receipt_proves_delivery(
            &s.alice.device_id(),
            &envelope.id,
            &s.bob.cert,
            &receipt
        ));
    }

    #[test]
    fn what_is_on_its_way_makes_the_sender_retry_and_the_rest_is_refused_in_order() {
        let mut s = setup();
        let envelope = seal(&mut s, "hi");
        let bob = s.bob.device_id();
        // Not a recipient comes before anything about the sender.
        let other = s.alice.device_id();
        let refused = admit_room(&envelope, other, &Blocking(s.alice.user_id()), &s.known);
        assert_eq!(
            refused,
            RoomAdmission::Refused(RoomRefusal::NotForThisDevice)
        );
        // A blocked sender is refused before the room is looked at.
        let refused = admit_room(&envelope, bob, &Blocking(s.alice.user_id()), &s.known);
        assert_eq!(
            refused.clone(),
            RoomAdmission::Refused(RoomRefusal::Blocked(s.alice.user_id()))
        );
        // The sender's key has not arrived: retry.
        let key = s
            .known
            .keys
            .remove(&(s.room, s.epoch, s.alice.device_id()))
            .unwrap();
        assert_eq!(
            admit_room(&envelope, bob, &GoodStanding, &s.known),
            RoomAdmission::NotYet(Missing::SenderKey)
        );
        s.known
            .keys
            .insert((s.room, s.epoch, s.alice.device_id()), key);
        // The room is not known: refused, unless its sender announced it.
        let log = s.known.logs.remove(&s.room).unwrap();
        let RoomAdmission::Refused(unknown) = admit_room(&envelope, bob, &GoodStanding, &s.known)
        else {
            panic!("an unknown room is refused");
        };
        assert_eq!(
            unknown.reason(),
            RefuseReason::Other("room: unknown room".into())
        );
        s.known.announced.insert((s.room, s.alice.device_id()));
        assert_eq!(
            admit_room(&envelope, bob, &GoodStanding, &s.known),
            RoomAdmission::NotYet(Missing::Log)
        );
        s.known.logs.insert(s.room, log);
        // A tampered envelope does not verify.
        let mut forged = envelope.clone();
        forged.ciphertext[0] ^= 1;
        assert!(matches!(
            admit_room(&forged, bob, &GoodStanding, &s.known),
            RoomAdmission::Refused(RoomRefusal::BadSignature(_))
        ));
    }

    #[test]
    fn a_removed_member_is_refused_and_an_unknown_epoch_waits() {
        let mut s = setup();
        let before = seal(&mut s, "still here?");
        // Bob's log moves on: alice removes herself by leaving.
        let log = s.known.logs.get_mut(&s.room).unwrap();
        log.author(&s.alice.device, &s.alice.cert, RoomAction::Leave, 3)
            .unwrap();
        let refused = admit_room(&before, s.bob.device_id(), &GoodStanding, &s.known);
        assert!(
            matches!(refused, RoomAdmission::Refused(RoomRefusal::NotAllowed(_))),
            "{refused:?}"
        );
        // An epoch bob has not seen yet: its op is on its way.
        s.epoch = OpHash([9; 32]);
        let ahead = seal(&mut s, "new epoch");
        assert_eq!(
            admit_room(&ahead, s.bob.device_id(), &GoodStanding, &s.known),
            RoomAdmission::NotYet(Missing::Epoch)
        );
    }

    #[test]
    fn a_key_waits_for_its_log_and_epoch_and_only_members_keys_are_taken() {
        let s = setup();
        let (alice, bob) = (s.alice.user_id(), s.bob.user_id());
        let grant = crate::room::RoomKeyGrant {
            room: s.room,
            epoch: s.epoch,
            key: s.key.clone(),
        };
        let log = s.known.logs.get(&s.room);
        assert_eq!(admit_key(&grant, &alice, &bob, log), KeyAdmission::Take);
        assert_eq!(
            admit_key(&grant, &alice, &bob, None),
            KeyAdmission::NotYet(Missing::Log)
        );
        let stranger = UserId([9; 20]);
        assert_eq!(
            admit_key(&grant, &stranger, &bob, log),
            KeyAdmission::Refused(RoomError::SenderNotMember)
        );
        assert_eq!(
            admit_key(&grant, &alice, &stranger, log),
            KeyAdmission::Refused(RoomError::SenderNotMember),
            "a key for an epoch this user was not in"
        );
        let ahead = crate::room::RoomKeyGrant {
            epoch: OpHash([9; 32]),
            ..grant
        };
        assert_eq!(
            admit_key(&ahead, &alice, &bob, log),
            KeyAdmission::NotYet(Missing::Epoch)
        );
    }

    #[test]
    fn a_text_over_the_limit_is_refused_as_too_large() {
        let mut s = setup();
        // `seal` refuses it; a modified sender would not.
        let text = RoomContent::Text {
            text: "x".repeat(MAX_TEXT_LEN + 1),
        };
        let envelope = RoomEnvelope::seal_sorted(
            &s.alice.device,
            &s.alice.cert,
            (s.room, s.epoch, &s.key),
            vec![s.bob.device_id()],
            MessageId::random(&mut s.entropy),
            1_000,
            &text,
            &mut s.entropy,
        )
        .unwrap();
        let refused = admit_room(&envelope, s.bob.device_id(), &GoodStanding, &s.known);
        let RoomAdmission::Refused(refusal) = refused else {
            panic!("too large");
        };
        assert_eq!(refusal.reason(), RefuseReason::TooLarge);
    }
}

mod taking {
    use super::super::*;
    use crate::entropy::SeededEntropy;
    use crate::room::{RoomAction, RoomOp};
    use crate::Identity;

    /// Ann (admin) adds Bob and Cy; each holds a copy of the log.
    fn room() -> (Vec<Identity>, RoomLog) {
        let mut entropy = SeededEntropy::new(3);
        let people: Vec<Identity> = ["ann", "bob", "cy", "dan"]
            .iter()
            .map(|n| Identity::generate(n, 0, &mut entropy))
            .collect();
        let (mut log, _) =
            RoomLog::create(&people[0].device, &people[0].cert, "team", 1, &mut entropy).unwrap();
        let users = vec![people[1].user_id(), people[2].user_id()];
        log.author(
            &people[0].device,
            &people[0].cert,
            RoomAction::Add { users },
            2,
        )
        .unwrap();
        (people, log)
    }

    #[test]
    fn an_add_made_without_a_concurrent_leave_hands_the_newcomer_that_leave() {
        let (p, base) = room();
        // Cy leaves while Ann, not having seen it, adds Dan.
        let (mut ann, mut cy, mut bob) = (base.clone(), base.clone(), base);
        let leave = cy
            .author(&p[2].device, &p[2].cert, RoomAction::Leave, 3)
            .unwrap();
        let add = ann
            .author(
                &p[0].device,
                &p[0].cert,
                RoomAction::Add {
                    users: vec![p[3].user_id()],
                },
                4,
            )
            .unwrap();
        // Bob takes the leave, then the add: he hands Dan the leave.
        let taken = take_ops(&mut bob, vec![leave.clone()], &p[1].user_id());
        assert_eq!(taken.verdict(), OpsVerdict::Taken);
        assert!(taken.catch_up.is_empty(), "a leave adds nobody");
        let taken = take_ops(&mut bob, vec![add.clone()], &p[1].user_id());
        assert_eq!(
            taken.catch_up,
            [(vec![p[3].user_id()], vec![leave.clone()])]
        );
        // Ann wrote the add: she sent Dan all she had, nothing to catch up.
        let taken = take_ops(&mut ann, vec![leave], &p[0].user_id());
        assert!(taken.catch_up.is_empty());
        // An op written on everything its log holds left nothing out.
        let later = bob
            .author(&p[1].device, &p[1].cert, RoomAction::Leave, 5)
            .unwrap();
        assert_eq!(bob.not_built_on(&later.hash()), Vec::<RoomOp>::new());
    }

    #[test]
    fn an_op_held_for_its_parents_is_not_acknowledged_until_it_is_taken() {
        let (p, base) = room();
        let (mut ann, mut bob) = (base.clone(), base);
        let first = ann
            .author(
                &p[0].device,
                &p[0].cert,
                RoomAction::SetTopic { topic: "a".into() },
                3,
            )
            .unwrap();
        let second = ann
            .author(
                &p[0].device,
                &p[0].cert,
                RoomAction::SetTopic { topic: "b".into() },
                4,
            )
            .unwrap();
        // The second overtakes the first: held, so no receipt.
        let taken = take_ops(&mut bob, vec![second.clone()], &p[1].user_id());
        assert_eq!((taken.held, taken.verdict()), (true, OpsVerdict::Retry));
        // Its retry, while still held: still no receipt.
        let taken = take_ops(&mut bob, vec![second.clone()], &p[1].user_id());
        assert_eq!(taken.verdict(), OpsVerdict::Retry);
        // The first arrives and releases it.
        let taken = take_ops(&mut bob, vec![first.clone()], &p[1].user_id());
        assert_eq!(taken.new, [first.hash(), second.hash()]);
        assert_eq!(taken.verdict(), OpsVerdict::Taken);
        // The retry of the second is now a known op: acknowledged.
        assert_eq!(
            take_ops(&mut bob, vec![second], &p[1].user_id()).verdict(),
            OpsVerdict::Taken
        );
    }

    #[test]
    fn a_whole_log_is_taken_only_by_a_user_it_adds() {
        let (p, log) = room();
        let ops = log.ops_in_order();
        let (taken, errors) = take_whole_log(log.id(), ops.clone(), &p[1].user_id()).unwrap();
        assert_eq!((taken.order(), errors), (log.order(), vec![]));
        assert_eq!(
            take_whole_log(log.id(), ops.clone(), &p[3].user_id()).unwrap_err(),
            WholeLogRefusal::NotAMember
        );
        let other = RoomId([7; 16]);
        assert_eq!(
            take_whole_log(other, ops.clone(), &p[1].user_id()).unwrap_err(),
            WholeLogRefusal::Invalid(RoomError::WrongRoom)
        );
        assert!(ops_batch_fits(&ops, 2));
        assert!(!ops_batch_fits(&[], 0));
        assert!(!ops_batch_fits(&ops, crate::room::MAX_OPS as u32 + 1));
    }

    #[test]
    fn a_batch_of_only_refused_ops_is_refused() {
        let (p, base) = room();
        let mut bob = base.clone();
        // Cy (no admin) removing Bob is refused by the log's rules or
        // skipped; a forged room is refused outright.
        let (mut other, _) = RoomLog::create(
            &p[3].device,
            &p[3].cert,
            "elsewhere",
            1,
            &mut SeededEntropy::new(9),
        )
        .unwrap();
        let foreign = other
            .author(
                &p[3].device,
                &p[3].cert,
                RoomAction::SetTopic { topic: "x".into() },
                2,
            )
            .unwrap();
        let taken = take_ops(&mut bob, vec![foreign], &p[1].user_id());
        assert!(
            matches!(taken.verdict(), OpsVerdict::Refused(RoomError::WrongRoom)),
            "{taken:?}"
        );
    }
}
