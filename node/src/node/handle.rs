//! The [`NodeHandle`]'s methods: [`NodeHandle::request`], the one way to
//! ask a node anything, and thin typed wrappers over it for the requests
//! embedders use most. A wrapper never has a command of its own, so it
//! cannot answer differently from the socket.

use std::net::SocketAddr;

use tokio::sync::{broadcast, oneshot};

use super::{Command, NodeError, NodeHandle};
use crate::event::{MessageView, NodeEvent, PeerView, StatusView, WhoAmI};
use crate::request::{Request, Response, UnexpectedResponse};
use crate::store::HistoryQuery;

impl NodeHandle {
    /// Answers one request: what the control socket does for each line,
    /// and what an embedder (the desktop app's own node) calls directly, so
    /// both get the very same answers.
    ///
    /// Most requests are one turn of the actor. `send` with `wait` answers
    /// once the message is delivered, read or failed (or its
    /// `timeout_secs` passed: [`NodeError::NotDeliveredYet`] says where it
    /// is). `whoami` is answered here. `watch` is refused
    /// ([`NodeError::WatchIsAStream`]): subscribe with [`Self::subscribe`].
    pub async fn request(&self, request: Request) -> Result<Response, NodeError> {
        match request {
            Request::Whoami => Ok(Response::Whoami(self.whoami())),
            Request::Watch => Err(NodeError::WatchIsAStream),
            Request::Send { wait: true, .. } => self.send_and_wait(request).await,
            request @ Request::NameSet { .. } => {
                let answer = self.ask(request).await?;
                if let Response::Whoami(who) = &answer {
                    *self
                        .whoami
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = who.clone();
                }
                Ok(answer)
            }
            request => self.ask(request).await,
        }
    }

    /// [`Self::request`], read as the view `T` the request answers (e.g.
    /// `RoomView` for `room_create`); another kind of answer is
    /// [`NodeError::Unexpected`].
    pub async fn request_as<T>(&self, request: Request) -> Result<T, NodeError>
    where
        T: TryFrom<Response, Error = UnexpectedResponse>,
    {
        Ok(T::try_from(self.request(request).await?)?)
    }

    /// One turn of the actor.
    pub(super) async fn ask(&self, request: Request) -> Result<Response, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Request { request, reply })
            .await
            .map_err(|_| NodeError::Stopped)?;
        answer.await.map_err(|_| NodeError::Stopped)?
    }

    /// Who this node is.
    pub fn whoami(&self) -> WhoAmI {
        self.whoami
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The QUIC listen address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// Subscribes to the event stream (from now on).
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// The node's status (`Request::Status`).
    pub async fn status(&self) -> Result<StatusView, NodeError> {
        self.request_as(Request::Status).await
    }

    /// Known peer devices (`Request::Peers`).
    pub async fn peers(&self) -> Result<Vec<PeerView>, NodeError> {
        self.request_as(Request::Peers).await
    }

    /// Queues a text message to `peer` (a name or user-id prefix). Returns
    /// once it is stored in the outbox; watch events for delivery, or send
    /// a `Request::Send` with `wait` to answer once delivered.
    pub async fn send(&self, peer: &str, text: &str) -> Result<MessageView, NodeError> {
        self.request_as(Request::Send {
            peer: peer.to_string(),
            text: text.to_string(),
            wait: false,
            timeout_secs: None,
            reply_to: None,
        })
        .await
    }

    /// The conversation with `peer`, oldest first (`Request::History`).
    pub async fn history(
        &self,
        peer: &str,
        query: HistoryQuery,
    ) -> Result<Vec<MessageView>, NodeError> {
        self.request_as(Request::History {
            peer: peer.to_string(),
            limit: query.limit,
            before: query.before_ms,
            since: query.since_ms,
        })
        .await
    }

    /// Stops the node: says goodbye to peers and on mDNS, closes the database.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Shutdown(reply)).await.is_ok() {
            let _ = done.await;
        }
    }
}
