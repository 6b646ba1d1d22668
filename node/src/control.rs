//! The control socket: JSON lines over a Unix socket in the home directory.
//! The CLI and bots are clients of it. It only reads [`Request`] lines,
//! passes each to [`NodeHandle::request`] and writes the answer as a
//! [`Reply`] line; what a request does (`send`'s `wait` included) is the
//! handle's business, so an embedder gets the very same answers. Two
//! things are the connection's own: `watch` turns it into an event stream,
//! and a client that said `focus` holds it only while connected.
//!
//! # Format
//! Each request is one JSON object on one line, e.g.
//! `{"cmd":"send","peer":"bob","text":"hi","wait":true}`. Each answer is
//! one line: `{"ok":true,"data":...}` or `{"ok":false,"error":"..."}`.
//! After `{"cmd":"watch"}` and its `ok` line, the server writes one
//! [`crate::NodeEvent`] per line until the client hangs up. A connection
//! may carry any number of requests in sequence (bots keep one open).

pub mod client;
pub mod protocol;

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::broadcast;

use crate::event::NodeEvent;
use crate::home::Home;
use crate::node::NodeHandle;
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
        let _ = node.request(Request::Focus { focused: false }).await;
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
        let reply = Reply::from_result(node.request(request).await);
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

/// Placeholder so non-Unix builds fail with a clear message until a named-pipe
/// transport is added.
#[cfg(not(unix))]
pub fn serve(_home: &Home, _node: NodeHandle) -> std::io::Result<ControlServer> {
    Err(std::io::Error::other(
        "the control socket needs a Unix platform for now",
    ))
}
