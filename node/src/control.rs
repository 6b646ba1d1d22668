//! The control socket: JSON lines over a Unix socket in the home directory.
//! The CLI and bots are clients of it; it only translates requests into
//! [`NodeHandle`] calls and events into lines.
//!
//! # Format
//! Each request is one JSON object on one line, e.g.
//! `{"cmd":"send","peer":"bob","text":"hi","wait":true}`. Each answer is
//! one line: `{"ok":true,"data":...}` or `{"ok":false,"error":"..."}`.
//! After `{"cmd":"watch"}` and its `ok` line, the server writes one
//! [`crate::NodeEvent`] per line until the client hangs up. A connection
//! may carry any number of requests in sequence (bots keep one open).

mod chat;
pub mod client;
mod posts;
pub mod protocol;
mod rooms;

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::broadcast;

use crate::event::NodeEvent;
use crate::home::Home;
use crate::node::NodeHandle;
use crate::store::{HistoryQuery, MessageState};
use protocol::{Reply, Request};

/// Longest request line accepted; a message is at most 64 KiB of text.
const MAX_LINE: usize = 256 * 1024;

/// A running control socket server; [`Self::stop`] removes the socket file.
#[derive(Debug)]
pub struct ControlServer {
    task: tokio::task::JoinHandle<()>,
    path: std::path::PathBuf,
}

impl ControlServer {
    /// Stops accepting and removes the socket file.
    pub fn stop(self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Starts serving `node` on the home's control socket.
#[cfg(unix)]
pub fn serve(home: &Home, node: NodeHandle) -> std::io::Result<ControlServer> {
    let path = home.control_socket_path();
    // The node lock is held, so a leftover socket is stale (a killed daemon).
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve_client(stream, node.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(ControlServer { task, path })
}

/// Serves one client. A client that said its window has the focus holds
/// it only while connected: a crashed window cannot silence notifications.
#[cfg(unix)]
async fn serve_client(stream: tokio::net::UnixStream, node: NodeHandle) {
    let mut holds_focus = false;
    serve_requests(stream, &node, &mut holds_focus).await;
    if holds_focus {
        let _ = node.set_focus(false).await;
    }
}

#[cfg(unix)]
async fn serve_requests(stream: tokio::net::UnixStream, node: &NodeHandle, holds_focus: &mut bool) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut line = String::new();
    loop {
        line.clear();
        match (&mut lines)
            .take(MAX_LINE as u64)
            .read_line(&mut line)
            .await
        {
            Ok(0) => return,
            Ok(_) if !line.ends_with('\n') && line.len() >= MAX_LINE => {
                let _ = write_reply(&mut write, &Reply::err("request line too long")).await;
                return;
            }
            Ok(_) => {}
            Err(_) => return,
        }
        let request = match Request::parse_line(&line) {
            Ok(r) => r,
            Err(e) => {
                if write_reply(&mut write, &Reply::err(format!("bad request: {e}")))
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
        };
        if let Request::Watch = request {
            let events = node.subscribe();
            if write_reply(&mut write, &Reply::ok("watching"))
                .await
                .is_err()
            {
                return;
            }
            stream_events(&mut write, events).await;
            return;
        }
        if let Request::Focus { focused } = request {
            *holds_focus = focused;
        }
        let reply = handle(node, request).await;
        if write_reply(&mut write, &reply).await.is_err() {
            return;
        }
    }
}

async fn write_reply<W: AsyncWriteExt + Unpin>(
    write: &mut W,
    reply: &Reply,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await
}

async fn stream_events<W: AsyncWriteExt + Unpin>(
    write: &mut W,
    mut events: broadcast::Receiver<NodeEvent>,
) {
    loop {
        match events.recv().await {
            Ok(event) => {
                let Ok(mut bytes) = serde_json::to_vec(&event) else {
                    continue;
                };
                bytes.push(b'\n');
                if write.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "watch client too slow; events skipped");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Answers one request with `node`: what the socket does for each line,
/// and what an in-process client (the desktop app's embedded node) calls
/// directly, so both kinds of client get the very same answers.
pub async fn answer(node: &NodeHandle, request: Request) -> Reply {
    handle(node, request).await
}

async fn handle(node: &NodeHandle, request: Request) -> Reply {
    match request {
        Request::Whoami => Reply::data(node.whoami()),
        Request::Status => Reply::from_result(node.status().await),
        Request::Peers => Reply::from_result(node.peers().await),
        Request::History {
            peer,
            limit,
            before,
            since,
        } => {
            let query = HistoryQuery {
                limit,
                before_ms: before,
                since_ms: since,
            };
            Reply::from_result(node.history(&peer, query).await)
        }
        Request::Send {
            peer,
            text,
            wait,
            timeout_secs,
            reply_to,
        } => {
            // Subscribe before sending so the delivery event cannot be missed.
            let mut events = node.subscribe();
            let sent = match reply_to {
                Some(reply_to) => node.reply(&peer, &text, &reply_to).await,
                None => node.send(&peer, &text).await,
            };
            let sent = match sent {
                Ok(sent) => sent,
                Err(e) => return Reply::err(e.to_string()),
            };
            if !wait {
                return Reply::data(sent);
            }
            let id = sent.id.clone();
            let mut last = sent.state;
            let until_final = async {
                loop {
                    match events.recv().await {
                        Ok(NodeEvent::MessageState {
                            id: ev_id,
                            state,
                            error,
                            ..
                        }) if ev_id == id => match state {
                            MessageState::Delivered | MessageState::Read => return Ok(state),
                            MessageState::Failed => {
                                return Err(error.unwrap_or_else(|| "delivery failed".into()))
                            }
                            other => last = other,
                        },
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => {
                            return Err("the node stopped".into())
                        }
                    }
                }
            };
            let outcome = match timeout_secs {
                Some(secs) => {
                    match tokio::time::timeout(Duration::from_secs(secs), until_final).await {
                        Ok(outcome) => outcome,
                        Err(_) => Err(still_on_its_way(secs, &peer, last)),
                    }
                }
                None => until_final.await,
            };
            match outcome {
                Ok(state) => {
                    let mut sent = sent;
                    sent.state = state;
                    Reply::data(sent)
                }
                Err(e) => Reply::err(e),
            }
        }
        Request::Watch => Reply::err("watch is handled by the connection"),
        Request::ReloadOrg => Reply::from_result(node.reload_org().await.map(|()| "reloaded")),
        Request::FileSend { peer, paths } => {
            let paths = paths.into_iter().map(std::path::PathBuf::from).collect();
            Reply::from_result(node.file_send(&peer, paths).await)
        }
        Request::FileAccept { id, to } => Reply::from_result(
            node.file_accept(&id, to.map(std::path::PathBuf::from))
                .await,
        ),
        Request::FileReject { id } => Reply::from_result(node.file_reject(&id).await),
        Request::FileCancel { id } => Reply::from_result(node.file_cancel(&id).await),
        Request::FileList => Reply::from_result(node.file_list().await),
        other @ (Request::Edit { .. }
        | Request::Delete { .. }
        | Request::Broadcast { .. }
        | Request::Focus { .. }
        | Request::Mute { .. }
        | Request::Contacts
        | Request::ContactAdd { .. }
        | Request::ContactAccept { .. }
        | Request::ContactReject { .. }
        | Request::ContactRemove { .. }) => posts::handle(node, other).await,
        Request::DevicePair => Reply::from_result(node.pair_device().await),
        Request::DeviceList => Reply::from_result(node.devices().await),
        Request::DeviceRemove { device } => Reply::from_result(node.remove_device(&device).await),
        Request::NameSet { name } => Reply::from_result(node.set_name(&name).await),
        Request::PeerForget { peer } => Reply::from_result(node.forget_peer(&peer).await),
        other @ (Request::RoomCreate { .. }
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
        | Request::RoomTyping { .. }) => rooms::handle(node, other).await,
        other => chat::handle(node, other).await,
    }
}

/// Placeholder so non-Unix builds fail with a clear message until a named-pipe
/// transport is added.
#[cfg(not(unix))]
pub fn serve(_home: &Home, _node: NodeHandle) -> std::io::Result<ControlServer> {
    Err(std::io::Error::other(
        "the control socket needs a Unix platform for now",
    ))
}

/// Why `send --wait --timeout` gave up, saying where the message is: held
/// by a relay or gateway (`sent`) or still queued on this device.
fn still_on_its_way(secs: u64, peer: &str, state: MessageState) -> String {
    match state {
        MessageState::Sent => format!(
            "not delivered within {secs} s; the relay holds it (state: sent) and delivers it when {peer} is back online"
        ),
        _ => format!(
            "not delivered within {secs} s; it stays queued on this device (state: queued) and is sent when {peer} is reachable"
        ),
    }
}

#[cfg(test)]
mod wait_tests {
    use super::*;

    #[test]
    fn a_timed_out_wait_says_where_the_message_is() {
        let held = still_on_its_way(5, "bob", MessageState::Sent);
        assert!(held.contains("the relay holds it (state: sent)"), "{held}");
        let queued = still_on_its_way(5, "bob", MessageState::Queued);
        assert!(queued.contains("stays queued on this device"), "{queued}");
    }
}
