//! The real backends: a node embedded in this process ([`Node::start`]) or
//! a running daemon of the same home, reached through its control socket
//! ([`ControlClient`]). One home never gets two nodes: the daemon is tried
//! first, and the node's lock file refuses a second start.

use std::time::Duration;

use iced::futures::future::BoxFuture;
use iced::futures::stream::{self, BoxStream};
use iced::futures::{FutureExt, StreamExt};
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use tincan_node::keystore::{self, KeystoreError};

use tincan_node::api::{
    ControlClient, DeviceView, Home, MessageView, Node, NodeError, NodeHandle, PairingView,
    PeerView, PresenceView, ReadView, Request, Response, RoomView, StartError, StatusView,
    TransferView, TypingView, UnexpectedResponse, WhoAmI,
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

/// Reads a daemon's answer into the view the app expects.
fn decode<T: DeserializeOwned>(data: serde_json::Value) -> Result<T, BackendError> {
    serde_json::from_value(data)
        .map_err(|e| BackendError(format!("unexpected answer from the tincan node: {e}")))
}

/// One request on a fresh control connection, decoded.
async fn ask<T: DeserializeOwned>(home: Home, request: Request) -> Result<T, BackendError> {
    let mut client = ControlClient::connect(&home)
        .await
        .map_err(BackendError::from_display)?;
    let data = client
        .request(&request)
        .await
        .map_err(BackendError::from_display)?;
    decode(data)
}

impl NodeBackend {
    /// One request, answered by the embedded node or by the daemon. Both
    /// speak the node's one command language ([`Request`]): the embedded
    /// node answers a typed [`Response`], the daemon the same view as JSON
    /// (the socket's wire), so the two kinds of backend cannot drift apart.
    fn call<T>(&self, request: Request) -> BoxFuture<'static, Result<T, BackendError>>
    where
        T: TryFrom<Response, Error = UnexpectedResponse> + DeserializeOwned + Send + 'static,
    {
        match self.clone() {
            Self::Embedded(node) => async move { typed(node.request(request).await) }.boxed(),
            Self::Attached { home, .. } => ask(home, request).boxed(),
        }
    }
}

/// The view `T` out of an embedded node's answer; another kind of answer
/// is an error the user can read, never a panic.
fn typed<T>(answer: Result<Response, NodeError>) -> Result<T, BackendError>
where
    T: TryFrom<Response, Error = UnexpectedResponse>,
{
    let response = answer.map_err(BackendError::from_display)?;
    T::try_from(response).map_err(BackendError::from_display)
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
        self.call(Request::Status)
    }

    fn peers(&self) -> BoxFuture<'static, Result<Vec<PeerView>, BackendError>> {
        self.call(Request::Peers)
    }

    fn history(
        &self,
        peer: String,
        before: Option<u64>,
        limit: u32,
    ) -> BoxFuture<'static, Result<Vec<MessageView>, BackendError>> {
        self.call(Request::History {
            peer,
            limit: Some(limit),
            before,
            since: None,
        })
    }

    fn send(
        &self,
        peer: String,
        text: String,
    ) -> BoxFuture<'static, Result<MessageView, BackendError>> {
        self.call(Request::Send {
            peer,
            text,
            wait: false,
            timeout_secs: None,
            reply_to: None,
        })
    }

    fn presence(&self) -> BoxFuture<'static, Result<PresenceView, BackendError>> {
        self.call(Request::Presence)
    }

    fn set_presence(
        &self,
        presence: String,
        note: Option<String>,
    ) -> BoxFuture<'static, Result<PresenceView, BackendError>> {
        self.call(Request::SetPresence { presence, note })
    }

    fn activity(&self) -> BoxFuture<'static, Result<PresenceView, BackendError>> {
        self.call(Request::Activity)
    }

    fn read(&self, peer: String) -> BoxFuture<'static, Result<ReadView, BackendError>> {
        self.call(Request::Read { peer })
    }

    fn typing(&self, peer: String) -> BoxFuture<'static, Result<TypingView, BackendError>> {
        self.call(Request::Typing { peer })
    }

    fn file_send(
        &self,
        peer: String,
        paths: Vec<PathBuf>,
    ) -> BoxFuture<'static, Result<TransferView, BackendError>> {
        let paths = paths
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        self.call(Request::FileSend { peer, paths })
    }

    fn file_accept(&self, id: String) -> BoxFuture<'static, Result<TransferView, BackendError>> {
        self.call(Request::FileAccept { id, to: None })
    }

    fn file_reject(&self, id: String) -> BoxFuture<'static, Result<TransferView, BackendError>> {
        self.call(Request::FileReject { id })
    }

    fn file_cancel(&self, id: String) -> BoxFuture<'static, Result<TransferView, BackendError>> {
        self.call(Request::FileCancel { id })
    }

    fn file_list(&self) -> BoxFuture<'static, Result<Vec<TransferView>, BackendError>> {
        self.call(Request::FileList)
    }

    fn rooms(&self) -> BoxFuture<'static, Result<Vec<RoomView>, BackendError>> {
        self.call(Request::RoomList)
    }

    fn devices(&self) -> BoxFuture<'static, Result<Vec<DeviceView>, BackendError>> {
        self.call(Request::DeviceList)
    }

    fn pair_device(&self) -> BoxFuture<'static, Result<PairingView, BackendError>> {
        self.call(Request::DevicePair)
    }

    fn remove_device(
        &self,
        device: String,
    ) -> BoxFuture<'static, Result<DeviceView, BackendError>> {
        self.call(Request::DeviceRemove { device })
    }

    fn room_history(
        &self,
        room: String,
        before: Option<u64>,
        limit: u32,
    ) -> BoxFuture<'static, Result<Vec<MessageView>, BackendError>> {
        self.call(Request::RoomHistory {
            room,
            limit: Some(limit),
            before,
            since: None,
        })
    }

    fn room_send(
        &self,
        room: String,
        text: String,
    ) -> BoxFuture<'static, Result<MessageView, BackendError>> {
        self.call(Request::RoomSend { room, text })
    }

    fn room_create(
        &self,
        name: String,
        with: Vec<String>,
    ) -> BoxFuture<'static, Result<RoomView, BackendError>> {
        self.call(Request::RoomCreate { name, with })
    }

    fn events(&self) -> BoxStream<'static, BackendEvent> {
        match self.clone() {
            Self::Embedded(node) => {
                let rx = node.subscribe();
                // The window shows notifications itself; the node it
                // embeds stays quiet (it would pop up the same message).
                let quiet = node.clone();
                let hold_focus = stream::once(async move {
                    let _ = quiet.request(Request::Focus { focused: true }).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_embedded_answer_of_another_kind_is_an_error_not_a_panic() {
        let answer: Result<StatusView, _> = typed(Ok(Response::Focus(true)));
        let error = answer.expect_err("a focus answer is not a status");
        assert!(error.0.contains("unexpected answer"), "{error}");
        assert_eq!(typed::<bool>(Ok(Response::Focus(true))), Ok(true));
        let stopped: Result<bool, _> = typed(Err(NodeError::Stopped));
        assert_eq!(stopped, Err(BackendError("the node has stopped".into())));
    }
}
