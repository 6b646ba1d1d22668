//! What the room tests read of a user's rooms, as the user sees them:
//! `room list --json` (members by name) and `room history --json`, and
//! waits on both with [`DEADLINE`].

use serde_json::Value;

use super::loopback::{User, DEADLINE};
use super::wait_for;

/// `room list --json` of `user`.
pub fn rooms(user: &User) -> Vec<Value> {
    match user.json(&["room", "list", "--json"]) {
        Value::Array(items) => items,
        other => panic!("room list --json is not an array: {other}"),
    }
}

/// The `room list --json` entry of room `id`, if `user` has it.
pub fn room_of(user: &User, id: &str) -> Option<Value> {
    rooms(user).into_iter().find(|r| r["id"] == id)
}

/// The names of a room entry's members, sorted.
pub fn member_names(room: &Value) -> Vec<String> {
    let mut names: Vec<String> = room["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["name"].as_str().expect("name").to_string())
        .collect();
    names.sort();
    names
}

/// Waits until `user` sees room `id` with exactly `names` as members.
pub fn wait_members(user: &User, id: &str, names: &[&str]) -> Value {
    let mut want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    want.sort();
    wait_for(
        &format!("{} to see members {names:?}", user.name),
        DEADLINE,
        || room_of(user, id).filter(|r| member_names(r) == want),
    )
}

/// `room history ID --json` of `user`.
pub fn room_history(user: &User, id: &str) -> Vec<Value> {
    match user.json(&["room", "history", id, "--json"]) {
        Value::Array(items) => items,
        other => panic!("room history --json is not an array: {other}"),
    }
}

/// Waits until `user` has a line `text` in room `id`; returns it.
pub fn wait_text(user: &User, id: &str, text: &str) -> Value {
    wait_for(
        &format!("{} to get {text:?} in the room", user.name),
        DEADLINE,
        || {
            room_history(user, id)
                .into_iter()
                .find(|m| m["text"] == text)
        },
    )
}

/// Whether `user` has a line `text` in room `id`.
pub fn has_text(user: &User, id: &str, text: &str) -> bool {
    room_history(user, id).iter().any(|m| m["text"] == text)
}
