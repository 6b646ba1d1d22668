//! The control socket's lines: a [`Request`] (the node's command
//! language, `crate::request`) in, one [`Reply`] out, as serde JSON.

use serde::{Deserialize, Serialize};

pub use crate::request::Request;

/// One reply line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// Whether the request succeeded.
    pub ok: bool,
    /// The result, when ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    /// The error, when not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    /// A successful reply carrying `value`.
    pub fn data<T: Serialize>(value: T) -> Self {
        match serde_json::to_value(value) {
            Ok(v) => Self {
                ok: true,
                data: Some(v),
                error: None,
            },
            Err(e) => Self::err(format!("cannot encode reply: {e}")),
        }
    }

    /// A successful reply with a plain string.
    pub fn ok(text: &str) -> Self {
        Self::data(text)
    }

    /// A failed reply.
    pub fn err(error: impl Into<String>) -> Self {
        Self {
            ok: false,
            data: None,
            error: Some(error.into()),
        }
    }

    /// A reply from a node result.
    pub fn from_result<T: Serialize, E: std::fmt::Display>(result: Result<T, E>) -> Self {
        match result {
            Ok(v) => Self::data(v),
            Err(e) => Self::err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> String {
        text.to_string()
    }

    /// Names every request so that a new one cannot be added without an
    /// example here (no wildcard arm).
    fn example_of_each() -> Vec<Request> {
        let all = vec![
            Request::Whoami,
            Request::Status,
            Request::Peers,
            Request::Send {
                peer: s("bob"),
                text: s("hi"),
                wait: true,
                timeout_secs: Some(5),
                reply_to: Some(s("3fa2c1")),
            },
            Request::History {
                peer: s("bob"),
                limit: Some(50),
                before: Some(1_800_000_000_000),
                since: Some(1_700_000_000_000),
            },
            Request::Watch,
            Request::ReloadOrg,
            Request::FileSend {
                peer: s("bob"),
                paths: vec![s("/abs/report.pdf")],
            },
            Request::FileAccept {
                id: s("3fa2"),
                to: Some(s("/abs/dir")),
            },
            Request::FileReject { id: s("3fa2") },
            Request::FileCancel { id: s("3fa2") },
            Request::FileList,
            Request::Presence,
            Request::SetPresence {
                presence: s("away"),
                note: Some(s("lunch")),
            },
            Request::Activity,
            Request::Read { peer: s("bob") },
            Request::Typing { peer: s("bob") },
            Request::Block { user: s("bob") },
            Request::Unblock { user: s("bob") },
            Request::Blocked,
            Request::Search {
                words: s("budget"),
                peer: Some(s("bob")),
                limit: Some(20),
            },
            Request::Export {
                peer: Some(s("bob")),
            },
            Request::Edit {
                id: s("3fa2c1"),
                text: s("fixed"),
            },
            Request::Delete { id: s("3fa2c1") },
            Request::Broadcast {
                text: s("fire drill"),
                group: Some(s("Sales")),
            },
            Request::Focus { focused: true },
            Request::Mute {
                peer: s("bob"),
                muted: true,
            },
            Request::Contacts,
            Request::ContactAdd {
                user: s("6i5l-x27l"),
                group: Some(s("Suppliers")),
                name: Some(s("Bob")),
                message: s("hello"),
            },
            Request::ContactAccept { user: s("bob") },
            Request::ContactReject { user: s("bob") },
            Request::ContactRemove { user: s("bob") },
            Request::DevicePair,
            Request::DeviceList,
            Request::DeviceRemove { device: s("9c1e") },
            Request::PeerForget { peer: s("root") },
            Request::NameSet {
                name: s("Alice Example"),
            },
            Request::RoomCreate {
                name: s("Lunch"),
                with: vec![s("bob"), s("carol")],
            },
            Request::RoomInvite {
                room: s("Lunch"),
                users: vec![s("dave")],
            },
            Request::RoomJoin {
                room: s("tc-room:…"),
            },
            Request::RoomLink { room: s("Lunch") },
            Request::RoomLeave { room: s("Lunch") },
            Request::RoomList,
            Request::RoomSend {
                room: s("Lunch"),
                text: s("pizza?"),
            },
            Request::RoomHistory {
                room: s("Lunch"),
                limit: Some(50),
                before: Some(1_800_000_000_000),
                since: Some(1_700_000_000_000),
            },
            Request::RoomTopic {
                room: s("Lunch"),
                topic: s("Fridays"),
            },
            Request::RoomRename {
                room: s("Lunch"),
                name: s("Dinner"),
            },
            Request::RoomAdmin {
                room: s("Lunch"),
                user: s("bob"),
            },
            Request::RoomRemove {
                room: s("Lunch"),
                user: s("bob"),
            },
            Request::RoomDisable { room: s("Lunch") },
            Request::RoomTyping { room: s("Lunch") },
        ];
        for request in &all {
            match request {
                Request::Whoami
                | Request::Status
                | Request::Peers
                | Request::Send { .. }
                | Request::History { .. }
                | Request::Watch
                | Request::ReloadOrg
                | Request::FileSend { .. }
                | Request::FileAccept { .. }
                | Request::FileReject { .. }
                | Request::FileCancel { .. }
                | Request::FileList
                | Request::Presence
                | Request::SetPresence { .. }
                | Request::Activity
                | Request::Read { .. }
                | Request::Typing { .. }
                | Request::Block { .. }
                | Request::Unblock { .. }
                | Request::Blocked
                | Request::Search { .. }
                | Request::Export { .. }
                | Request::Edit { .. }
                | Request::Delete { .. }
                | Request::Broadcast { .. }
                | Request::Focus { .. }
                | Request::Mute { .. }
                | Request::Contacts
                | Request::ContactAdd { .. }
                | Request::ContactAccept { .. }
                | Request::ContactReject { .. }
                | Request::ContactRemove { .. }
                | Request::DevicePair
                | Request::DeviceList
                | Request::DeviceRemove { .. }
                | Request::PeerForget { .. }
                | Request::NameSet { .. }
                | Request::RoomCreate { .. }
                | Request::RoomInvite { .. }
                | Request::RoomJoin { .. }
                | Request::RoomLink { .. }
                | Request::RoomLeave { .. }
                | Request::RoomList
                | Request::RoomSend { .. }
                | Request::RoomHistory { .. }
                | Request::RoomTopic { .. }
                | Request::RoomRename { .. }
                | Request::RoomAdmin { .. }
                | Request::RoomRemove { .. }
                | Request::RoomDisable { .. }
                | Request::RoomTyping { .. } => {}
            }
        }
        all
    }

    #[test]
    fn request_and_answer_lines_are_as_pinned() {
        let mut lines = String::new();
        for request in example_of_each() {
            let line = serde_json::to_string(&request).expect("encode");
            assert_eq!(Request::parse_line(&line).expect("decode"), request);
            lines.push_str(&line);
            lines.push('\n');
        }
        for reply in [
            Reply::data(serde_json::json!({"id": "3fa2c1", "state": "delivered"})),
            Reply::ok("ok"),
            Reply::err("no peer matches \"zed\""),
        ] {
            lines.push_str(&serde_json::to_string(&reply).expect("encode"));
            lines.push('\n');
        }
        crate::golden::check("control_lines.txt", &lines);
    }

    #[test]
    fn requests_omitting_optional_fields_still_parse() {
        // Scripts written against the doc comments' short forms.
        for line in [
            r#"{"cmd":"send","peer":"bob","text":"hi"}"#,
            r#"{"cmd":"history","peer":"bob"}"#,
            r#"{"cmd":"file_accept","id":"3fa2"}"#,
            r#"{"cmd":"set_presence","presence":"away"}"#,
            r#"{"cmd":"search","words":"x"}"#,
            r#"{"cmd":"export"}"#,
            r#"{"cmd":"broadcast","text":"x"}"#,
            r#"{"cmd":"contact_add","user":"bob"}"#,
            r#"{"cmd":"room_create","name":"Lunch"}"#,
            r#"{"cmd":"room_history","room":"Lunch"}"#,
        ] {
            Request::parse_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }
}
