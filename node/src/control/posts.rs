//! Control requests of posts and contacts: edit, delete, broadcast, focus
//! and the contact list. Each is one [`NodeHandle`] call.

use super::protocol::{Reply, Request};
use crate::node::NodeHandle;

/// Answers one of the requests in this module's list.
pub(super) async fn handle(node: &NodeHandle, request: Request) -> Reply {
    match request {
        Request::Edit { id, text } => Reply::from_result(node.edit(&id, &text).await),
        Request::Delete { id } => Reply::from_result(node.retract(&id).await),
        Request::Broadcast { text, group } => {
            Reply::from_result(node.broadcast(&text, group.as_deref()).await)
        }
        Request::Focus { focused } => {
            Reply::from_result(node.set_focus(focused).await.map(|()| focused))
        }
        Request::Mute { peer, muted } => Reply::from_result(node.mute(&peer, muted).await),
        Request::Contacts => Reply::from_result(node.contacts().await),
        Request::ContactAdd {
            user,
            group,
            name,
            message,
        } => Reply::from_result(
            node.contact_add(&user, group.as_deref(), name.as_deref(), &message)
                .await,
        ),
        Request::ContactAccept { user } => Reply::from_result(node.contact_accept(&user).await),
        Request::ContactReject { user } => Reply::from_result(node.contact_reject(&user).await),
        Request::ContactRemove { user } => Reply::from_result(node.contact_remove(&user).await),
        other => Reply::err(format!("unsupported request {other:?}")),
    }
}
