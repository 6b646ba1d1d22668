//! The real backends: a node embedded in this process ([`Node::start`]) or
//! a running daemon of the same home, reached through its control socket
//! ([`ControlClient`]). One home never gets two nodes: the daemon is tried
//! first, and the node's lock file refuses a second start.

use std::time::Duration;

use iced::futures::future::BoxFuture;
use iced::futures::stream::{self, BoxStream};
use iced::futures::{FutureExt, StreamExt};
use std::path::PathBuf;
use tincan_node::keystore::{self, KeystoreError};

use tincan_node::{
    ControlClient, HistoryQuery, Home, MessageView, Node, NodeHandle, PeerView, PresenceView,
    ReadView, Request, RoomView, StartError, StatusView, TransferView, TypingView, WhoAmI,
};
use tokio::sync::broadcast::error::RecvError;

use super::{Backend, BackendError, BackendEvent, Connection, Mode};
use crate::options::Options;

/// How long to wait for a daemon that holds the home's lock but does not
/// answer yet (it is starting up).
const ATTACH_PATIENCE: Duration = Duration::from_secs(5);

/// A node the app talks to.
#[derive(Clone, Debug)]
pub enum NodeBackend {
    /// Started by this process.
    Embedded(NodeHandle),
    /// A daemon of the same home; one control connection per request.
    Attached {
        /// The daemon's home.
        home: Home,
        /// Who it is (asked once when attaching).
        whoami: WhoAmI,
    },
}

/// What opening a home found.
#[derive(Clone, Debug)]
pub enum Boot {
    /// The home has no identity yet: the first-run screen asks for a name.
    NeedsIdentity {
        /// The home.
        home: Home,
    },
    /// A node is running and reachable.
    Ready(Connection),
}

/// Opens the home of `options`: attaches to its running daemon, or starts
/// an embedded node when the home has an identity, or asks for one.
pub async fn open(options: Options) -> Result<Boot, BackendError> {
    let home = options.home().map_err(BackendError)?;
    if let Some(backend) = attach(&home).await {
        return Ok(Boot::Ready(Connection::new(std::sync::Arc::new(backend))));
    }
    match keystore::load(&home) {
        Ok(_) => {}
        Err(KeystoreError::Missing(_)) => return Ok(Boot::NeedsIdentity { home }),
        Err(e) => return Err(BackendError::from_display(e)),
    }
    let config = options
        .node_config(home.clone())
        .map_err(BackendError::from_display)?;
    match Node::start(config).await {
        Ok(handle) => Ok(Boot::Ready(Connection::new(std::sync::Arc::new(
            NodeBackend::Embedded(handle),
        )))),
        Err(StartError::AlreadyRunning(dir)) => {
            // Someone holds the lock: a daemon that is still starting, or
            // our own node that is still shutting down after a restart.
            let deadline = tokio::time::Instant::now() + ATTACH_PATIENCE;
            while tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Some(backend) = attach(&home).await {
                    return Ok(Boot::Ready(Connection::new(std::sync::Arc::new(backend))));
                }
                let config = options
                    .node_config(home.clone())
                    .map_err(BackendError::from_display)?;
                match Node::start(config).await {
                    Ok(handle) => {
                        return Ok(Boot::Ready(Connection::new(std::sync::Arc::new(
                            NodeBackend::Embedded(handle),
                        ))))
                    }
                    Err(StartError::AlreadyRunning(_)) => continue,
                    Err(e) => return Err(BackendError::from_display(e)),
                }
            }
            Err(BackendError(format!(
                "another tincan node holds home {dir} but its control socket does not answer; \
                 stop it or pick another home with --home"
            )))
        }
        Err(e) => Err(BackendError::from_display(e)),
    }
}

/// The daemon of `home`, if one answers.
async fn attach(home: &Home) -> Option<NodeBackend> {
    let mut client = ControlClient::connect(home).await.ok()?;
    let data = client.request(&Request::Whoami).await.ok()?;
    let whoami: WhoAmI = serde_json::from_value(data).ok()?;
    tracing::info!(home = %home.root().display(), "attached to the running tincan daemon");
    Some(NodeBackend::Attached {
        home: home.clone(),
        whoami,
    })
}

/// One request on a fresh control connection, decoded.
async fn ask<T: serde::de::DeserializeOwned>(
    home: Home,
    request: Request,
) -> Result<T, BackendError> {
    let mut client = ControlClient::connect(&home)
        .await
        .map_err(BackendError::from_display)?;
    let data = client
        .request(&request)
        .await
        .map_err(BackendError::from_display)?;
    serde_json::from_value(data)
        .map_err(|e| BackendError(format!("unexpected answer from the tincan daemon: {e}")))
}

impl Backend for NodeBackend {
    fn mode(&self) -> Mode {
        match self {
            Self::Embedded(_) => Mode::Embedded,
            Self::Attached { .. } => Mode::Attached,
        }
    }

    fn whoami(&self) -> WhoAmI {
        match self {
            Self::Embedded(node) => node.whoami(),
            Self::Attached { whoami, .. } => whoami.clone(),
        }
    }

    fn status(&self) -> BoxFuture<'static, Result<StatusView, BackendError>> {
        match self.clone() {
            Self::Embedded(node) => {
                async move { node.status().await.map_err(BackendError::from_display) }.boxed()
            }
            Self::Attached { home, .. } => ask(home, Request::Status).boxed(),
        }
    }

    fn peers(&self) -> BoxFuture<'static, Result<Vec<PeerView>, BackendError>> {
        match self.clone() {
            Self::Embedded(node) => {
                async move { node.peers().await.map_err(BackendError::from_display) }.boxed()
            }
            Self::Attached { home, .. } => ask(home, Request::Peers).boxed(),
        }
    }

    fn history(
        &self,
        peer: String,
        before: Option<u64>,
        limit: u32,
    ) -> BoxFuture<'static, Result<Vec<MessageView>, BackendError>> {
        match self.clone() {
            Self::Embedded(node) => async move {
                let query = HistoryQuery {
                    limit: Some(limit),
                    before_ms: before,
                    ..HistoryQuery::default()
                };
                node.history(&peer, query)
                    .await
                    .map_err(BackendError::from_display)
            }
            .boxed(),
            Self::Attached { home, .. } => ask(
                home,
                Request::History {
                    peer,
                    limit: Some(limit),
                    before,
                    since: None,
                },
            )
            .boxed(),
        }
    }

    fn send(
        &self,
        peer: String,
        text: String,
    ) -> BoxFuture<'static, Result<MessageView, BackendError>> {
        match self.clone() {
            Self::Embedded(node) => async move {
                node.send(&peer, &text)
                    .await
                    .map_err(BackendError::from_display)
            }
            .boxed(),
            Self::Attached { home, .. } => ask(
                home,
                Request::Send {
                    peer,
                    text,
                    wait: false,
                    timeout_secs: None,
                    reply_to: None,
                },
            )
            .boxed(),
        }
    }

    fn presence(&self) -> BoxFuture<'static, Result<PresenceView, BackendError>> {
        match self.clone() {
            Self::Embedded(node) => {
                async move { node.presence().await.map_err(BackendError::from_display) }.boxed()
            }
            Self::Attached { home, .. } => ask(home, Request::Presence).boxed(),
        }
    }

    fn set_presence(
        &self,
        presence: String,
        note: Option<String>,
    ) -> BoxFuture<'static, Result<PresenceView, BackendError>> {
        match self.clone() {
            Self::Embedded(node) => async move {
                let state = presence
                    .parse::<tincan_core::PresenceState>()
                    .map_err(BackendError::from_display)?;
                node.set_presence(state, note)
                    .await
                    .map_err(BackendError::from_display)
            }
            .boxed(),
            Self::Attached { home, .. } => {
                ask(home, Request::SetPresence { presence, note }).boxed()
            }
        }
    }

    fn activity(&self) -> BoxFuture<'static, Result<PresenceView, BackendError>> {
        match self.clone() {
            Self::Embedded(node) => {
                async move { node.activity().await.map_err(BackendError::from_display) }.boxed()
            }
            Self::Attached { home, .. } => ask(home, Request::Activity).boxed(),
        }
    }

    fn read(&self, peer: String) -> BoxFuture<'static, Result<ReadView, BackendError>> {
        match self.clone() {
            Self::Embedded(node) => {
                async move { node.read(&peer).await.map_err(BackendError::from_display) }.boxed()
            }
            Self::Attached { home, .. } => ask(home, Request::Read { peer }).boxed(),
        }
    }

    fn typing(&self, peer: String) -> BoxFuture<'static, Result<TypingView, BackendError>> {
        match self.clone() {
            Self::Embedded(node) => {
                async move { node.typing(&peer).await.map_err(BackendError::from_display) }.boxed()
            }
            Self::Attached { home, .. } => ask(home, Request::Typing { peer }).boxed(),
        }
    }

    fn file_send(
        &self,
        peer: String,
        paths: Vec<PathBuf>,
    ) -> BoxFuture<'static, Result<TransferView, BackendError>> {
        match self.clone() {
            Self::Embedded(node) => async move {
                node.file_send(&peer, paths)
                    .await
                    .map_err(BackendError::from_display)
            }
            .boxed(),
            Self::Attached { home, .. } => {
                let paths = paths
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                ask(home, Request::FileSend { peer, paths }).boxed()
            }
        }
    }

    fn file_accept(&self, id: String) -> BoxFuture<'static, Result<TransferView, BackendError>> {
        match self.clone() {
            Self::Embedded(node) => async move {
                node.file_accept(&id, None)
                    .await
                    .map_err(BackendError::from_display)
            }
            .boxed(),
            Self::Attached { home, .. } => ask(home, Request::FileAccept { id, to: None }).boxed(),
        }
    }

    fn file_reject(&self, id: String) -> BoxFuture<'static, Result<TransferView, BackendError>> {
        match self.clone() {
            Self::Embedded(node) => async move {
                node.file_reject(&id)
                    .await
                    .map_err(BackendError::from_display)
            }
            .boxed(),
            Self::Attached { home, .. } => ask(home, Request::FileReject { id }).boxed(),
        }
    }

    fn file_cancel(&self, id: String) -> BoxFuture<'static, Result<TransferView, BackendError>> {
        match self.clone() {
            Self::Embedded(node) => async move {
                node.file_cancel(&id)
                    .await
                    .map_err(BackendError::from_display)
            }
            .boxed(),
            Self::Attached { home, .. } => ask(home, Request::FileCancel { id }).boxed(),
        }
    }

    fn file_list(&self) -> BoxFuture<'static, Result<Vec<TransferView>, BackendError>> {
        match self.clone() {
            Self::Embedded(node) => {
                async move { node.file_list().await.map_err(BackendError::from_display) }.boxed()
            }
            Self::Attached { home, .. } => ask(home, Request::FileList).boxed(),
        }
    }

    fn rooms(&self) -> BoxFuture<'static, Result<Vec<RoomView>, BackendError>> {
        match self.clone() {
            Self::Embedded(node) => {
                async move { node.room_list().await.map_err(BackendError::from_display) }.boxed()
            }
            Self::Attached { home, .. } => ask(home, Request::RoomList).boxed(),
        }
    }

    fn room_history(
        &self,
        room: String,
        before: Option<u64>,
        limit: u32,
    ) -> BoxFuture<'static, Result<Vec<MessageView>, BackendError>> {
        match self.clone() {
            Self::Embedded(node) => async move {
                let query = HistoryQuery {
                    limit: Some(limit),
                    before_ms: before,
                    ..HistoryQuery::default()
                };
                node.room_history(&room, query)
                    .await
                    .map_err(BackendError::from_display)
            }
            .boxed(),
            Self::Attached { home, .. } => ask(
                home,
                Request::RoomHistory {
                    room,
                    limit: Some(limit),
                    before,
                    since: None,
                },
            )
            .boxed(),
        }
    }

    fn room_send(
        &self,
        room: String,
        text: String,
    ) -> BoxFuture<'static, Result<MessageView, BackendError>> {
        match self.clone() {
            Self::Embedded(node) => async move {
                node.room_send(&room, &text)
                    .await
                    .map_err(BackendError::from_display)
            }
            .boxed(),
            Self::Attached { home, .. } => ask(home, Request::RoomSend { room, text }).boxed(),
        }
    }

    fn room_create(
        &self,
        name: String,
        with: Vec<String>,
    ) -> BoxFuture<'static, Result<RoomView, BackendError>> {
        match self.clone() {
            Self::Embedded(node) => async move {
                node.room_create(&name, &with)
                    .await
                    .map_err(BackendError::from_display)
            }
            .boxed(),
            Self::Attached { home, .. } => ask(home, Request::RoomCreate { name, with }).boxed(),
        }
    }

    fn events(&self) -> BoxStream<'static, BackendEvent> {
        match self.clone() {
            Self::Embedded(node) => {
                let rx = node.subscribe();
                // The window shows notifications itself; the node it
                // embeds stays quiet (it would pop up the same message).
                let quiet = node.clone();
                let hold_focus = stream::once(async move {
                    let _ = quiet.set_focus(true).await;
                })
                .filter_map(|()| async { None });
                hold_focus
                    .chain(stream::unfold(Some(rx), |rx| async move {
                        let mut rx = rx?;
                        Some(match rx.recv().await {
                            Ok(event) => (BackendEvent::Node(event), Some(rx)),
                            Err(RecvError::Lagged(_)) => (BackendEvent::Lagged, Some(rx)),
                            Err(RecvError::Closed) => {
                                (BackendEvent::Ended("the node stopped".into()), None)
                            }
                        })
                    }))
                    .boxed()
            }
            Self::Attached { home, .. } => {
                enum Watch {
                    Connect(Home),
                    Streaming(tincan_node::EventStream),
                    Done,
                }
                stream::unfold(Watch::Connect(home), |state| async move {
                    let mut events = match state {
                        Watch::Done => return None,
                        Watch::Streaming(events) => events,
                        Watch::Connect(home) => {
                            let watched = match ControlClient::connect(&home).await {
                                Ok(client) => client.watch_as_window().await,
                                Err(e) => Err(e),
                            };
                            match watched {
                                Ok(events) => events,
                                Err(e) => {
                                    return Some((BackendEvent::Ended(e.to_string()), Watch::Done))
                                }
                            }
                        }
                    };
                    loop {
                        match events.next_raw().await {
                            Ok(line) => match serde_json::from_str(&line) {
                                Ok(event) => {
                                    return Some((
                                        BackendEvent::Node(event),
                                        Watch::Streaming(events),
                                    ))
                                }
                                // An event newer than this app (a later
                                // feature of the daemon): not for us.
                                Err(e) => tracing::debug!(error = %e, %line, "skipping event"),
                            },
                            Err(e) => {
                                return Some((
                                    BackendEvent::Ended(format!(
                                        "the tincan daemon went away ({e})"
                                    )),
                                    Watch::Done,
                                ))
                            }
                        }
                    }
                })
                .boxed()
            }
        }
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        match self.clone() {
            Self::Embedded(node) => async move { node.shutdown().await }.boxed(),
            Self::Attached { .. } => async {}.boxed(),
        }
    }
}
