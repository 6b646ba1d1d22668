//! Concurrent membership changes in a room, end to end: real daemons on
//! 127.0.0.1 (`--no-mdns`, static peers), driven through `tincan room ...
//! --json`. Daemons are stopped so that two changes are made without
//! either author seeing the other's; once all run again, every member
//! must agree (core's `inbound::room::take_ops` hands a user added by
//! someone who had not seen a change the ops that add did not build on).
//!
//! Safety: loopback only. Deadlines bound a hang; nothing asserts speed.

mod common;

use common::loopback::{started, DEADLINE};
use common::room::{has_text, member_names, room_history, room_of, wait_members, wait_text};
use common::wait_for;

/// Ann adds Dan while she is cut off from a leave (Cat's, seen by Ben):
/// the log Dan gets from Ann does not have it, so Dan must get it from the
/// others, and then see Cat gone and send to exactly Ann and Ben.
#[test]
fn a_user_added_by_an_admin_who_missed_a_leave_still_sees_it() {
    let mut users = started(&["Ann", "Ben", "Cat", "Dan"]);
    let created = users[0].json(&["room", "create", "Plans", "--with", "Ben,Cat", "--json"]);
    let id = created["id"].as_str().expect("room id").to_string();
    for user in &users[..3] {
        wait_members(user, &id, &["Ann", "Ben", "Cat"]);
    }

    // Ann is away while Cat leaves; Ben sees the leave. Then Ben and Cat
    // are away too, so nothing of the leave can reach Ann before her add.
    users[0].kill();
    let left = users[2].json(&["room", "leave", "Plans", "--json"]);
    assert_eq!(left["joined"], false, "{left}");
    wait_members(&users[1], &id, &["Ann", "Ben"]);
    users[1].kill();
    users[2].kill();

    // Ann, back with only Dan online, adds him to the room as she knows
    // it: Cat still in. Dan gets her log, without the leave.
    users[0].start();
    let (ann, dan) = (&users[0], &users[3]);
    ann.wait_peer("Dan", "online", |p| p["online"] == true);
    let invited = ann.json(&["room", "invite", "Plans", "Dan", "--json"]);
    assert_eq!(member_names(&invited), ["Ann", "Ben", "Cat", "Dan"]);
    wait_members(dan, &id, &["Ann", "Ben", "Cat", "Dan"]);

    // Everyone is back: the room converges on every member, Dan included.
    users[1].start();
    users[2].start();
    let (ann, ben, cat, dan) = (&users[0], &users[1], &users[2], &users[3]);
    let all = ["Ann", "Ben", "Dan"];
    for user in [ann, ben] {
        wait_members(user, &id, &all);
    }
    let seen = wait_for(
        "Dan to see that Cat left (a leave Ann's add did not build on)",
        DEADLINE,
        || room_of(dan, &id).filter(|r| member_names(r) == all),
    );
    assert_eq!(seen["joined"], true, "{seen}");
    let gone = wait_for("Cat to see Dan added", DEADLINE, || {
        room_of(cat, &id).filter(|r| member_names(r) == all)
    });
    assert_eq!(gone["joined"], false, "{gone}");
    for user in [ann, ben, dan] {
        let lines: Vec<String> = room_history(user, &id)
            .iter()
            .filter(|m| m["system"] == true)
            .map(|m| m["text"].as_str().unwrap_or_default().to_string())
            .collect();
        for want in ["Cat left", "Ann added Dan"] {
            assert!(
                lines.iter().any(|l| l == want),
                "{}: {want:?} not in {lines:?}",
                user.name
            );
        }
    }

    // Messages from then on reach exactly Ann, Ben and Dan.
    dan.json(&["room", "send", "Plans", "hello from Dan", "--json"]);
    ben.json(&["room", "send", "Plans", "hello from Ben", "--json"]);
    for user in [ann, ben] {
        wait_text(user, &id, "hello from Dan");
    }
    for user in [ann, dan] {
        wait_text(user, &id, "hello from Ben");
    }
    wait_for("Dan's message delivered", DEADLINE, || {
        room_history(dan, &id)
            .into_iter()
            .find(|m| m["text"] == "hello from Dan" && m["state"] == "delivered")
    });
    for text in ["hello from Dan", "hello from Ben"] {
        assert!(!has_text(cat, &id, text), "Cat, who left, got {text:?}");
    }
}
