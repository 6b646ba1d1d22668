//! How the app reaches its node: one small trait, so that `update` is the
//! same whether the node runs inside this process or as a separate daemon
//! (and in tests, where a mock stands in for both).
//!
//! Every method returns a future or a stream; the app runs them with
//! `Task::perform` or a subscription, never on the UI thread.

mod node;

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use iced::futures::future::BoxFuture;
use iced::futures::stream::BoxStream;
use std::path::PathBuf;

use tincan_node::api::{
    DeviceView, MessageView, NodeEvent, PairingView, PeerView, PresenceView, ReadView, RoomView,
    StatusView, TransferView, TypingView, WhoAmI,
};

pub use node::{open, Boot, NodeBackend};

/// Why a request to the node failed, as the user should read it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

impl BackendError {
    /// Wraps any error's message.
    pub fn from_display(error: impl fmt::Display) -> Self {
        Self(error.to_string())
    }
}

/// Where the node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Inside this process: closing the window stops it.
    Embedded,
    /// A `tincan run` daemon of the same home: it keeps running after the
    /// window closes, and the GUI's node flags do not apply to it.
    Attached,
}

/// Something from the node's event stream.
#[derive(Clone, Debug, PartialEq)]
// Node events grew with presence (peer views with notes): one moves per UI
// update, so boxing them would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum BackendEvent {
    /// An event, as `tincan watch` prints it.
    Node(NodeEvent),
    /// Events were missed (the app was too slow); reload everything.
    Lagged,
    /// The stream ended: the node stopped or the daemon went away.
    Ended(String),
}

/// What the app needs from a node.
pub trait Backend: fmt::Debug + Send + Sync + 'static {
    /// Where the node runs.
    fn mode(&self) -> Mode;
    /// Who this node is.
    fn whoami(&self) -> WhoAmI;
    /// The node's status (role, relay, gateway).
    fn status(&self) -> BoxFuture<'static, Result<StatusView, BackendError>>;
    /// Known peer devices.
    fn peers(&self) -> BoxFuture<'static, Result<Vec<PeerView>, BackendError>>;
    /// The newest `limit` messages with `peer` (a user id) sent before
    /// `before` (Unix ms; `None`: up to now), oldest first.
    fn history(
        &self,
        peer: String,
        before: Option<u64>,
        limit: u32,
    ) -> BoxFuture<'static, Result<Vec<MessageView>, BackendError>>;
    /// Queues `text` for `peer` (a user id).
    fn send(
        &self,
        peer: String,
        text: String,
    ) -> BoxFuture<'static, Result<MessageView, BackendError>>;
    /// This user's presence.
    fn presence(&self) -> BoxFuture<'static, Result<PresenceView, BackendError>>;
    /// Sets this user's presence (`online`, `away`, `busy`, `on-the-phone`,
    /// `out-to-lunch`, `appear-offline`); `note: None` keeps the note,
    /// `Some("")` clears it.
    fn set_presence(
        &self,
        presence: String,
        note: Option<String>,
    ) -> BoxFuture<'static, Result<PresenceView, BackendError>>;
    /// Reports that the user is at the keyboard (clears auto-away).
    fn activity(&self) -> BoxFuture<'static, Result<PresenceView, BackendError>>;
    /// Marks the conversation with `peer` read (read receipts go out).
    fn read(&self, peer: String) -> BoxFuture<'static, Result<ReadView, BackendError>>;
    /// Tells `peer` this user is typing (the node rate-limits it).
    fn typing(&self, peer: String) -> BoxFuture<'static, Result<TypingView, BackendError>>;
    /// Offers files and folders (absolute paths) to `peer`.
    fn file_send(
        &self,
        peer: String,
        paths: Vec<PathBuf>,
    ) -> BoxFuture<'static, Result<TransferView, BackendError>>;
    /// Accepts an offer into the node's download folder.
    fn file_accept(&self, id: String) -> BoxFuture<'static, Result<TransferView, BackendError>>;
    /// Declines an offer.
    fn file_reject(&self, id: String) -> BoxFuture<'static, Result<TransferView, BackendError>>;
    /// Cancels a transfer, in or out.
    fn file_cancel(&self, id: String) -> BoxFuture<'static, Result<TransferView, BackendError>>;
    /// Every transfer, oldest first.
    fn file_list(&self) -> BoxFuture<'static, Result<Vec<TransferView>, BackendError>>;
    /// Every room this node knows (joined or left), with its members.
    fn rooms(&self) -> BoxFuture<'static, Result<Vec<RoomView>, BackendError>>;
    /// The newest `limit` messages and membership lines of `room` (its id)
    /// sent before `before` (Unix ms; `None`: up to now), oldest first.
    fn room_history(
        &self,
        room: String,
        before: Option<u64>,
        limit: u32,
    ) -> BoxFuture<'static, Result<Vec<MessageView>, BackendError>>;
    /// Sends `text` to the members of `room` (its id).
    fn room_send(
        &self,
        room: String,
        text: String,
    ) -> BoxFuture<'static, Result<MessageView, BackendError>>;
    /// Creates a room named `name` with this user as admin and the users
    /// `with` (names or user ids) as members.
    fn room_create(
        &self,
        name: String,
        with: Vec<String>,
    ) -> BoxFuture<'static, Result<RoomView, BackendError>>;
    /// This user's devices, this one included.
    fn devices(&self) -> BoxFuture<'static, Result<Vec<DeviceView>, BackendError>>;
    /// Shows a fresh pairing code for a new device (the outcome arrives as
    /// a `device_paired` or `pairing_failed` event).
    fn pair_device(&self) -> BoxFuture<'static, Result<PairingView, BackendError>>;
    /// Removes a device of this user (its id).
    fn remove_device(&self, device: String)
        -> BoxFuture<'static, Result<DeviceView, BackendError>>;
    /// The event stream, from now on.
    fn events(&self) -> BoxStream<'static, BackendEvent>;
    /// Lets go of the node: an embedded one is shut down (goodbye to
    /// peers), an attached daemon keeps running.
    fn close(&self) -> BoxFuture<'static, ()>;
}

/// A backend with an identity, so that a subscription to its events lives
/// exactly as long as this connection (a restarted node gets a new one).
#[derive(Clone)]
pub struct Connection {
    backend: Arc<dyn Backend>,
    id: u64,
}

impl Connection {
    /// Wraps `backend` with a fresh identity.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self {
            backend,
            id: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("backend", &self.backend)
            .finish()
    }
}

impl Hash for Connection {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl PartialEq for Connection {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
