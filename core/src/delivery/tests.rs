use super::*;
use crate::entropy::SeededEntropy;
use crate::{Identity, ReceiptKind};

fn ids() -> (MessageId, UserId, DeviceId, DeviceId) {
    (
        MessageId([1; 16]),
        UserId([2; 20]),
        DeviceId([3; 20]),
        DeviceId([4; 20]),
    )
}

fn drain(d: &mut Deliveries<()>) -> Vec<DeliveryEffect> {
    std::iter::from_fn(|| d.poll_effect()).collect()
}

fn failed(id: MessageId, device: DeviceId, reason: &str) -> OutboxEvent {
    OutboxEvent::Failed {
        message_id: id,
        device,
        reason: reason.into(),
    }
}

#[test]
fn failed_only_once_every_device_failed_with_the_last_reason() {
    let (id, bob, phone, laptop) = ids();
    let mut d = Deliveries::new();
    d.insert(id, (), bob, [phone, laptop]);
    d.handle_outbox_event(failed(id, phone, "expired"));
    assert_eq!(
        drain(&mut d),
        [DeliveryEffect::Settled { id, device: phone }]
    );
    d.handle_outbox_event(failed(id, laptop, "refused by recipient: Blocked"));
    assert_eq!(
        drain(&mut d),
        [
            DeliveryEffect::State {
                id,
                to: bob,
                state: MessageState::Failed,
                error: Some("refused by recipient: Blocked".into()),
            },
            DeliveryEffect::Settled { id, device: laptop },
        ]
    );
    assert!(d.is_empty());
}

#[test]
fn one_device_that_got_it_makes_the_message_delivered_whatever_the_others_do() {
    let (id, bob, phone, laptop) = ids();
    let mut d = Deliveries::new();
    d.insert(id, (), bob, [phone, laptop]);
    d.handle_outbox_event(OutboxEvent::Delivered {
        message_id: id,
        device: phone,
    });
    d.handle_outbox_event(failed(id, laptop, "expired"));
    let states: Vec<MessageState> = drain(&mut d)
        .into_iter()
        .filter_map(|e| match e {
            DeliveryEffect::State { state, .. } => Some(state),
            _ => None,
        })
        .collect();
    assert_eq!(states, [MessageState::Delivered]);
    assert!(d.is_empty());
}

#[test]
fn held_by_the_relay_is_sent_and_keeps_waiting_for_the_receipt() {
    let (id, bob, phone, _) = ids();
    let mut d = Deliveries::new();
    d.insert(id, (), bob, [phone]);
    d.handle_outbox_event(OutboxEvent::Held {
        message_id: id,
        device: phone,
    });
    assert_eq!(
        drain(&mut d),
        [
            DeliveryEffect::Held { id, device: phone },
            DeliveryEffect::State {
                id,
                to: bob,
                state: MessageState::Sent,
                error: None
            },
        ]
    );
    assert_eq!(d.len(), 1, "still waiting for the device's receipt");
}

#[test]
fn an_outcome_for_a_message_not_on_its_way_still_settles_its_row() {
    // After a restart the outbox may report on rows whose message was not
    // restored: the row must go, no state is invented.
    let (id, _, phone, _) = ids();
    let mut d: Deliveries<()> = Deliveries::new();
    d.handle_outbox_event(failed(id, phone, "expired"));
    assert_eq!(
        drain(&mut d),
        [DeliveryEffect::Settled { id, device: phone }]
    );
}

#[test]
fn states_only_move_forward_and_a_receipt_beats_a_give_up() {
    use MessageState::*;
    assert!(Queued.can_advance_to(Sent));
    assert!(Sent.can_advance_to(Delivered));
    assert!(!Delivered.can_advance_to(Sent));
    assert!(!Read.can_advance_to(Delivered));
    assert!(!Delivered.can_advance_to(Failed));
    assert!(Failed.can_advance_to(Delivered));
    assert!(!Failed.can_advance_to(Sent));
    assert!(!Sent.can_advance_to(Sent));
    for state in MessageState::ALL {
        assert_eq!(state.as_str().parse::<MessageState>(), Ok(state));
    }
    assert!("sleeping".parse::<MessageState>().is_err());
}

#[test]
fn only_the_recipients_own_receipt_for_this_message_proves_delivery() {
    let mut entropy = SeededEntropy::new(7);
    let me = Identity::generate("me", 0, &mut entropy);
    let bob = Identity::generate("bob", 0, &mut entropy);
    let mallory = Identity::generate("mallory", 0, &mut entropy);
    let id = MessageId::random(&mut entropy);
    let other = MessageId::random(&mut entropy);
    let judge = |cert: Option<&DeviceCert>, receipt: Receipt| {
        judge_answer(&me.device_id(), &id, cert, Ok(Frame::Receipt(receipt)))
    };
    let sign = |who: &Identity, message: MessageId, sender: DeviceId| {
        Receipt::sign(&who.device, message, sender, ReceiptKind::Delivered, 5)
    };
    let good = sign(&bob, id, me.device_id());
    assert_eq!(
        judge(Some(&bob.cert), good.clone()),
        AttemptOutcome::Delivered
    );
    assert!(matches!(judge(None, good), AttemptOutcome::Failed(_)));
    for bad in [
        sign(&bob, other, me.device_id()),
        sign(&bob, id, mallory.device_id()),
        sign(&mallory, id, me.device_id()),
    ] {
        assert_eq!(
            judge(Some(&bob.cert), bad),
            AttemptOutcome::Failed(INVALID_RECEIPT.into())
        );
    }
}

#[test]
fn refusals_are_final_except_free_text_and_say_why() {
    let (id, _, _, _) = ids();
    let me = DeviceId([9; 20]);
    let refused = |reason| {
        judge_answer(
            &me,
            &id,
            None,
            Ok(Frame::Refused {
                message_id: id,
                reason,
            }),
        )
    };
    assert!(matches!(
        refused(RefuseReason::MailboxFull),
        AttemptOutcome::Refused(why) if why.contains("mailbox")
    ));
    assert!(matches!(
        refused(RefuseReason::Blocked),
        AttemptOutcome::Refused(why) if why.contains("Blocked")
    ));
    assert!(matches!(
        refused(RefuseReason::Other("busy".into())),
        AttemptOutcome::Failed(_)
    ));
    assert_eq!(
        judge_answer(&me, &id, None, Err("timed out".into())),
        AttemptOutcome::Failed("timed out".into())
    );
}

#[test]
fn restored_rows_make_one_message_waiting_for_each_device() {
    let (id, bob, phone, laptop) = ids();
    let mut d = Deliveries::new();
    let mut sealed = 0;
    for device in [phone, laptop] {
        d.restore(id, bob, device, || {
            sealed += 1;
            "frame"
        });
    }
    assert_eq!(sealed, 1, "the frame is made once");
    assert_eq!(d.len(), 1);
    assert_eq!(d.waiting_for(&laptop), [id]);
    assert_eq!(d.frame(&id), Some(&"frame"));
    assert_eq!(d.recipient(&id), Some(bob));
}
