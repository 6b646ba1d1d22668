//! The answer to a [`crate::Request`]: one [`Response`] variant per kind of
//! answer, each holding the view a client shows (several requests share
//! one: `send` and `room_send` both answer a [`MessageView`]).
//!
//! A response serialises as its view alone (`#[serde(untagged)]`), which
//! is the `data` of the control socket's reply line; so the socket, the
//! CLI's `--json` and an embedder all see the same shapes. It is not
//! deserialised as a whole: a socket client knows from its request which
//! view to read (the desktop app's attached mode does so).
//!
//! Every view converts into its variant ([`From`]) and back out of it
//! ([`TryFrom`]), so a typed caller writes `StatusView::try_from(response)`
//! and gets an [`UnexpectedResponse`], never a panic, when the node
//! answered something else.

use serde::{Serialize, Serializer};

use crate::event::{
    BlockedView, BroadcastView, ContactView, DeviceView, ForgottenView, MessageView, MuteView,
    PairingView, PeerView, PresenceView, ReadView, RoomJoinView, RoomLinkView, RoomTypingView,
    RoomView, SearchHitView, StatusView, TypingView, WhoAmI,
};
use crate::export::ExportView;
use crate::file::TransferView;

/// A response held a different kind of answer than the caller expected
/// (a client and a node of different versions, or a request sent for the
/// wrong view).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unexpected answer from the tincan node: {got} where {expected} was expected")]
pub struct UnexpectedResponse {
    /// The variant the caller wanted.
    pub expected: &'static str,
    /// The variant the node answered.
    pub got: &'static str,
}

/// The answer of `reload_org`: the organisation files were read again. It
/// serialises as the string `"reloaded"`, as the socket has always said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reloaded;

impl Serialize for Reloaded {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("reloaded")
    }
}

/// Declares [`Response`] with one newtype variant per kind of answer, its
/// [`Response::kind`], and the [`From`] / [`TryFrom`] pair of every view,
/// from one list (so a new answer cannot miss one of them).
macro_rules! responses {
    ($($(#[$doc:meta])* $variant:ident($view:ty),)*) => {
        /// What a node answers to a [`crate::Request`]; serialised, the
        /// `data` of the control socket's reply line.
        #[derive(Clone, Debug, PartialEq, Serialize)]
        #[serde(untagged)]
        #[non_exhaustive]
        pub enum Response {
            $($(#[$doc])* $variant($view),)*
        }

        impl Response {
            /// The variant's name, for messages about a mismatch.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Response::$variant(_) => stringify!($variant),)*
                }
            }
        }

        $(
            impl From<$view> for Response {
                fn from(view: $view) -> Self {
                    Response::$variant(view)
                }
            }

            impl TryFrom<Response> for $view {
                type Error = UnexpectedResponse;

                fn try_from(response: Response) -> Result<Self, UnexpectedResponse> {
                    match response {
                        Response::$variant(view) => Ok(view),
                        #[allow(unreachable_patterns)]
                        other => Err(UnexpectedResponse {
                            expected: stringify!($variant),
                            got: other.kind(),
                        }),
                    }
                }
            }
        )*
    };
}

responses! {
    /// `whoami`, `name_set`: who this node is.
    Whoami(WhoAmI),
    /// `status`.
    Status(StatusView),
    /// `peers`: every known peer device.
    Peers(Vec<PeerView>),
    /// `send`, `room_send`: the message as stored (and, after `wait`, as
    /// delivered).
    Message(MessageView),
    /// `history`, `room_history`, and `edit` / `delete` (one changed row
    /// per conversation).
    Messages(Vec<MessageView>),
    /// `reload_org`.
    Reloaded(Reloaded),
    /// `file_send`, `file_accept`, `file_reject`, `file_cancel`.
    Transfer(TransferView),
    /// `file_list`.
    Transfers(Vec<TransferView>),
    /// `presence`, `set_presence`, `activity`: this user's presence.
    Presence(PresenceView),
    /// `read`.
    Read(ReadView),
    /// `typing`.
    Typing(TypingView),
    /// `block`, `unblock`.
    Blocked(BlockedView),
    /// `blocked`: the block list.
    BlockList(Vec<BlockedView>),
    /// `search`: hits, best first.
    Hits(Vec<SearchHitView>),
    /// `export`.
    Export(ExportView),
    /// `broadcast`.
    Broadcast(BroadcastView),
    /// `focus`: whether a window of this user has the focus now.
    Focus(bool),
    /// `mute`.
    Mute(MuteView),
    /// `contact_add`, `contact_accept`, `contact_reject`, `contact_remove`.
    Contact(ContactView),
    /// `contacts`.
    Contacts(Vec<ContactView>),
    /// `device_pair`: the code being shown.
    Pairing(PairingView),
    /// `device_remove`: the removed device.
    Device(DeviceView),
    /// `device_list`.
    Devices(Vec<DeviceView>),
    /// `peer_forget`.
    Forgotten(ForgottenView),
    /// `room_create` and every change of a room (`room_invite`,
    /// `room_leave`, `room_topic`, `room_rename`, `room_admin`,
    /// `room_remove`, `room_disable`).
    Room(RoomView),
    /// `room_list`.
    Rooms(Vec<RoomView>),
    /// `room_join`.
    RoomJoin(RoomJoinView),
    /// `room_link`.
    RoomLink(RoomLinkView),
    /// `room_typing`.
    RoomTyping(RoomTypingView),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_serialises_as_its_view_alone() {
        let who = WhoAmI {
            user_id: "a11ce".into(),
            device_id: "d1".into(),
            name: "Alice".into(),
        };
        let response = Response::from(who.clone());
        assert_eq!(
            serde_json::to_value(&response).expect("encode"),
            serde_json::to_value(&who).expect("encode")
        );
        assert_eq!(
            serde_json::to_string(&Response::Reloaded(Reloaded)).expect("encode"),
            r#""reloaded""#
        );
        assert_eq!(
            serde_json::to_string(&Response::Focus(true)).expect("encode"),
            "true"
        );
    }

    #[test]
    fn the_wrong_variant_is_an_error_that_names_both() {
        let error = StatusView::try_from(Response::Focus(false)).expect_err("not a status");
        assert_eq!(error.expected, "Status");
        assert_eq!(error.got, "Focus");
        assert!(error.to_string().contains("Focus where Status"), "{error}");
        assert_eq!(bool::try_from(Response::Focus(true)), Ok(true));
    }
}
