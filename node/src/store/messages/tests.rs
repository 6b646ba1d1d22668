//! Tests of message history: dedupe, atomic queueing, state order, history
//! paging, damaged rows and durability.

use super::*;
use crate::store::test_util::{device, entry, message, mid, temp_store, user};

#[test]
fn state_strings_round_trip() {
    use MessageState::*;
    for s in [Queued, Sent, Delivered, Read, Failed] {
        assert_eq!(s.as_str().parse::<MessageState>().unwrap(), s);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            format!("\"{}\"", s.as_str())
        );
    }
    assert!("Sent".parse::<MessageState>().is_err());
}

#[test]
fn insert_and_dedupe() {
    let (_dir, store) = temp_store();
    let m = message(1, Direction::In, 100);
    assert!(store.insert_message(&m).unwrap());
    let mut again = m.clone();
    again.text = "changed".into();
    again.state = MessageState::Read;
    assert!(!store.insert_message(&again).unwrap());
    assert_eq!(
        store.message(&m.id, &m.from_device).unwrap(),
        Some(m.clone())
    );
    // The same id from another device is a different message.
    let mut other = m.clone();
    other.from_device = device(9);
    assert!(store.insert_message(&other).unwrap());
    assert_eq!(
        store.history(&m.peer, &Default::default()).unwrap().len(),
        2
    );
    assert_eq!(store.message(&mid(77), &m.from_device).unwrap(), None);
}

#[test]
fn queue_outgoing_writes_both() {
    let (_dir, store) = temp_store();
    let m = message(1, Direction::Out, 100);
    let entries = [entry(1, 2, 100), entry(1, 3, 100)];
    store.queue_outgoing(&m, &entries).unwrap();
    assert_eq!(store.message(&m.id, &m.from_device).unwrap(), Some(m));
    assert_eq!(store.outbox_entries().unwrap(), entries);
}

#[test]
fn one_message_to_several_users_is_in_each_conversation() {
    let (_dir, store) = temp_store();
    let to_bob = message(1, Direction::Out, 100);
    let mut to_carol = to_bob.clone();
    to_carol.peer = user(8);
    to_carol.to_user = user(8);
    let entries = [entry(1, 2, 100), entry(1, 3, 100)];
    store
        .queue_outgoing_many(&[to_bob.clone(), to_carol.clone()], &entries)
        .unwrap();
    for peer in [to_bob.peer, to_carol.peer] {
        let rows = store.history(&peer, &Default::default()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].id, to_bob.id);
    }
    // One state for the message, in both conversations.
    store
        .set_message_state(
            &to_bob.id,
            &to_bob.from_device,
            MessageState::Delivered,
            None,
        )
        .unwrap();
    for peer in [to_bob.peer, to_carol.peer] {
        let rows = store.history(&peer, &Default::default()).unwrap();
        assert_eq!(rows[0].state, MessageState::Delivered);
    }
}

#[test]
fn queue_outgoing_is_all_or_nothing() {
    let (_dir, store) = temp_store();
    let m = message(1, Direction::Out, 100);
    // The duplicate (message, device) key fails the second entry insert.
    let entries = [entry(1, 2, 100), entry(1, 2, 100)];
    assert!(store.queue_outgoing(&m, &entries).is_err());
    assert_eq!(store.message(&m.id, &m.from_device).unwrap(), None);
    assert!(store.outbox_entries().unwrap().is_empty());

    // A message that already exists also fails without queueing entries.
    store.insert_message(&m).unwrap();
    assert!(store.queue_outgoing(&m, &[entry(1, 2, 100)]).is_err());
    assert!(store.outbox_entries().unwrap().is_empty());
}

#[test]
fn state_never_goes_backwards() {
    use MessageState::*;
    let (_dir, store) = temp_store();
    let m = message(1, Direction::Out, 100);
    store.insert_message(&m).unwrap();
    let set = |s, e| {
        store
            .set_message_state(&m.id, &m.from_device, s, e)
            .unwrap()
    };
    assert_eq!(set(Sent, None), Some(Sent));
    assert_eq!(set(Queued, None), Some(Sent));
    assert_eq!(set(Read, None), Some(Read));
    assert_eq!(set(Delivered, None), Some(Read));
    assert_eq!(set(Failed, Some("late")), Some(Read));
    let stored = store.message(&m.id, &m.from_device).unwrap().unwrap();
    assert_eq!((stored.state, stored.error), (Read, None));
    assert_eq!(
        store
            .set_message_state(&mid(9), &m.from_device, Sent, None)
            .unwrap(),
        None
    );
}

#[test]
fn failed_only_from_queued_or_sent_and_receipt_overrides() {
    use MessageState::*;
    let (_dir, store) = temp_store();
    let m = message(1, Direction::Out, 100);
    store.insert_message(&m).unwrap();
    let set = |s, e| {
        store
            .set_message_state(&m.id, &m.from_device, s, e)
            .unwrap()
    };
    assert_eq!(set(Failed, Some("expired")), Some(Failed));
    let stored = store.message(&m.id, &m.from_device).unwrap().unwrap();
    assert_eq!(stored.error.as_deref(), Some("expired"));
    assert_eq!(set(Sent, None), Some(Failed));
    assert_eq!(set(Queued, None), Some(Failed));
    assert_eq!(set(Delivered, None), Some(Delivered));
    assert_eq!(set(Failed, Some("x")), Some(Delivered));
}

#[test]
fn transition_table() {
    use MessageState::*;
    let all = [Queued, Sent, Delivered, Read, Failed];
    for a in all {
        assert!(!a.can_advance_to(a));
    }
    assert!(Queued.can_advance_to(Failed) && Sent.can_advance_to(Failed));
    assert!(!Delivered.can_advance_to(Failed) && !Read.can_advance_to(Failed));
    assert!(!Failed.can_advance_to(Queued) && !Failed.can_advance_to(Sent));
}

#[test]
fn history_order_limit_and_bounds() {
    let (_dir, store) = temp_store();
    // Inserted out of time order, with a tie at 200.
    for (n, t) in [(1, 300), (2, 100), (3, 200), (4, 200), (5, 400)] {
        store.insert_message(&message(n, Direction::In, t)).unwrap();
    }
    // Another conversation must not leak in.
    let mut other = message(6, Direction::In, 250);
    other.peer = user(7);
    other.from_user = user(7);
    store.insert_message(&other).unwrap();

    let ids = |q: HistoryQuery| -> Vec<u8> {
        store
            .history(&user(2), &q)
            .unwrap()
            .iter()
            .map(|m| m.id.0[0])
            .collect()
    };
    assert_eq!(ids(HistoryQuery::default()), [2, 3, 4, 1, 5]);
    let q = |limit, before_ms, since_ms| HistoryQuery {
        limit,
        before_ms,
        since_ms,
    };
    assert_eq!(ids(q(Some(2), None, None)), [1, 5]);
    assert_eq!(ids(q(Some(3), None, None)), [4, 1, 5]);
    assert_eq!(ids(q(None, Some(300), None)), [2, 3, 4]);
    assert_eq!(ids(q(Some(2), Some(300), None)), [3, 4]);
    assert_eq!(ids(q(None, None, Some(200))), [3, 4, 1, 5]);
    assert_eq!(ids(q(None, Some(400), Some(200))), [3, 4, 1]);
    assert_eq!(ids(q(Some(0), None, None)), Vec::<u8>::new());
    assert_eq!(ids(q(None, Some(u64::MAX), None)), [2, 3, 4, 1, 5]);
    assert_eq!(
        store.history(&user(7), &Default::default()).unwrap(),
        [other]
    );
}

#[test]
fn corrupt_rows_are_skipped_in_history_and_errors_for_lookup() {
    let (_dir, store) = temp_store();
    let good = message(1, Direction::In, 100);
    store.insert_message(&good).unwrap();
    let bad = message(2, Direction::In, 200);
    store.insert_message(&bad).unwrap();
    // Simulate a damaged row that bypassed the schema's CHECKs.
    store
        .conn
        .execute_batch(
            "PRAGMA ignore_check_constraints = ON;
             UPDATE messages SET state = 'bogus' WHERE sent_at_ms = 200;
             PRAGMA ignore_check_constraints = OFF;",
        )
        .unwrap();
    assert_eq!(
        store.history(&good.peer, &Default::default()).unwrap(),
        [good]
    );
    assert!(matches!(
        store.message(&bad.id, &bad.from_device),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn survives_reopen_and_uncheckpointed_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let m = message(1, Direction::In, 100);
    {
        let store = Store::open(&path).unwrap();
        store.insert_message(&m).unwrap();
        // Copy the files while the store is open, before any checkpoint:
        // what a killed process leaves behind (main file + WAL).
        let crash = tempfile::tempdir().unwrap();
        for suffix in ["", "-wal"] {
            let from = format!("{}{suffix}", path.display());
            let to = format!("{}{suffix}", crash.path().join("t.db").display());
            std::fs::copy(from, to).unwrap();
        }
        let copy = Store::open(&crash.path().join("t.db")).unwrap();
        assert_eq!(
            copy.message(&m.id, &m.from_device).unwrap(),
            Some(m.clone())
        );
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.message(&m.id, &m.from_device).unwrap(), Some(m));
}
