//! Control requests of the messenger features: presence, activity, read,
//! typing, block list, search and export. Each is one [`NodeHandle`] call.

use super::protocol::{Reply, Request};
use crate::node::NodeHandle;

/// Answers one of the requests in this module's list.
pub(super) async fn handle(node: &NodeHandle, request: Request) -> Reply {
    match request {
        Request::Presence => Reply::from_result(node.presence().await),
        Request::SetPresence { presence, note } => match presence.parse() {
            Ok(state) => Reply::from_result(node.set_presence(state, note).await),
            Err(e) => Reply::err(tincan_core::PresenceError::to_string(&e)),
        },
        Request::Activity => Reply::from_result(node.activity().await),
        Request::Read { peer } => Reply::from_result(node.read(&peer).await),
        Request::Typing { peer } => Reply::from_result(node.typing(&peer).await),
        Request::Block { user } => Reply::from_result(node.block(&user).await),
        Request::Unblock { user } => Reply::from_result(node.unblock(&user).await),
        Request::Blocked => Reply::from_result(node.blocked().await),
        Request::Search { words, peer, limit } => {
            Reply::from_result(node.search(&words, peer.as_deref(), limit).await)
        }
        Request::Export { peer } => Reply::from_result(node.export(peer.as_deref()).await),
        other => Reply::err(format!("unsupported request {other:?}")),
    }
}
