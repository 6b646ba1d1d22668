//! The node as a library: [`Node::start`] returns a [`NodeHandle`] that
//! takes [`Request`]s and hands out an event stream. The CLI daemon, the
//! control socket (bot API) and the GUI are all thin clients of it.
//!
//! # Requests
//! An operation is declared once, as a [`Request`] variant
//! (`crate::request`), and dispatched once, in the actor
//! (`actor/request.rs`). [`NodeHandle::request`] is the one entry point
//! (`node/handle.rs`); the few typed wrappers there (`status`, `peers`,
//! `send`, `history`) only call it. What a request needs beyond one actor
//! turn runs in the handle, so every client gets it: `send`'s `wait`
//! (`node/wait.rs`), and `whoami`, answered from the handle's copy.
//!
//! # Inside
//! One actor (`node/actor.rs`) owns all state and drives the sans-IO core
//! (`PeerBook`, `Outbox`, `GatewayElection`); connection tasks
//! (`node/link.rs` for LAN peers, `node/uplink.rs` for the relay) only move
//! frames between QUIC streams and the actor. The actor's parts:
//! `actor/inbound.rs` (opening envelopes), `actor/outgoing.rs` (sealing,
//! the outbox), `actor/routing.rs` (one copy per hop through gateway and
//! relay), `actor/election.rs` (beacons, leases), `actor/relay.rs`
//! (when to hold a relay connection; directory, neighbours, revocations),
//! and the messenger features: `actor/chat.rs` (their state, blocking,
//! search, export), `actor/presence.rs` (presence, typing) and
//! `actor/receipts.rs` (read receipts). Rooms: `actor/rooms.rs`
//! (membership logs, sender keys, room messages). Several devices per
//! user: `actor/devices.rs` (the one lookup of a user's devices, rosters,
//! removal, the host side of pairing) and `actor/sync.rs` (sent messages
//! and read state mirrored to the user's other devices). File transfer
//! tasks: `node/file_task.rs`.

mod actor;
mod durable;
mod file_task;
mod handle;
mod link;
mod offline;
mod opener;
mod uplink;
mod wait;

pub use offline::{read_history, StoredHistory};

use std::net::SocketAddr;
use std::sync::Arc;

use tincan_core::peer_book::ResolveError;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::config::{NodeConfig, DEFAULT_PORT};
use crate::event::{NodeEvent, WhoAmI};
use crate::keystore::{self, KeystoreError};
use crate::request::{Request, Response, UnexpectedResponse};
use crate::store::{MessageState, Store, StoreError};
use crate::tls::{self, TlsIdentityError};

/// How long QUIC waits without hearing from a peer before declaring it gone.
/// Keep-alives every second keep healthy connections open; a killed peer is
/// shown offline after this long.
pub(crate) const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(4);

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The home directory is unusable.
    #[error("home directory {path}: {source}")]
    Home {
        /// The directory.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another node already runs on this home.
    #[error("another tincan node is already running with home {0}")]
    AlreadyRunning(String),
    /// The identity could not be loaded or created.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The TLS identity could not be built.
    #[error(transparent)]
    Tls(#[from] TlsIdentityError),
    /// The thread that syncs the database off the event loop could not
    /// start.
    #[error("cannot start the database sync thread: {0}")]
    SyncThread(#[source] std::io::Error),
    /// The threads that open incoming envelopes off the event loop could
    /// not start.
    #[error("cannot start the envelope-opening threads: {0}")]
    OpenerThreads(#[source] std::io::Error),
    /// The QUIC socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// mDNS could not start.
    #[error(transparent)]
    Discovery(#[from] crate::discovery::DiscoveryError),
    /// An organisation file is unusable.
    #[error(transparent)]
    Org(#[from] crate::org::OrgError),
    /// The control socket could not be opened.
    #[error("control socket {path}: {source}")]
    Control {
        /// The socket path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The peer name or id did not resolve to exactly one user.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The text is over the message size limit.
    #[error("message is {len} bytes, over the {max}-byte limit for text; send it as a file instead (file transfer)")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The text is empty.
    #[error("message is empty")]
    EmptyText,
    /// The user is known but none of their devices' keys are.
    #[error("no device of {0} is known yet; wait until they have been online once")]
    NoDevices(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The message could not be sealed.
    #[error("cannot encrypt the message: {0}")]
    Seal(String),
    /// An organisation file is unusable.
    #[error(transparent)]
    Org(#[from] crate::org::OrgError),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// A file transfer command failed.
    #[error("{0}")]
    Transfer(String),
    /// The user is blocked by this node.
    #[error("you blocked {0}; unblock them first (`tincan unblock`)")]
    Blocked(String),
    /// The user is not blocked.
    #[error("{0} is not blocked")]
    NotBlocked(String),
    /// A user cannot block themself.
    #[error("you cannot block yourself")]
    BlockSelf,
    /// A presence state or note is unusable.
    #[error(transparent)]
    Presence(#[from] tincan_core::PresenceError),
    /// No message of this conversation (or of this user, for edits) has
    /// that id.
    #[error(
        "no message {0:?} of yours (or of that conversation); copy an id from `history --json`"
    )]
    NoSuchMessage(String),
    /// A message-id prefix that fits several messages.
    #[error("{0:?} matches several messages; give more of the id")]
    AmbiguousMessage(String),
    /// The message was retracted; it cannot be edited or retracted again.
    #[error("message {0:?} was deleted")]
    Retracted(String),
    /// A broadcast found nobody to go to.
    #[error("nobody to broadcast to{}", .0.as_ref().map(|g| format!(" in group {g:?}")).unwrap_or_else(|| ": nobody is online".into()))]
    NoOneToBroadcast(Option<String>),
    /// A post breaks a limit (quote or mentions).
    #[error(transparent)]
    Post(tincan_core::PostError),
    /// A contact request or answer is not possible.
    #[error(transparent)]
    Contact(#[from] tincan_core::ContactError),
    /// No contact is in that group.
    #[error("no contact is in group {0:?} (`tincan contact add USER --group G`)")]
    NoSuchGroup(String),
    /// A user cannot add themself.
    #[error("you cannot add yourself as a contact")]
    ContactSelf,
    /// Not in the contact list.
    #[error("{0} is not in your contacts")]
    NotAContact(String),
    /// This device was removed by its user: it gets no new messages.
    #[error("this device was removed from {0}'s devices (`tincan device remove` on another of their devices); it gets no new messages. To use it again, pair it anew: `tincan device add CODE --force`")]
    DeviceRemoved(String),
    /// The command needs the user key, which only the user's first device holds.
    #[error("this device does not hold the user key; run this on the device the user started on")]
    NoUserKey,
    /// No device of this user matches.
    #[error("{0}")]
    UnknownDevice(String),
    /// A device cannot remove itself.
    #[error(
        "a device cannot remove itself; run `tincan device remove` on another of your devices"
    )]
    RemoveSelf,
    /// No room of this node has that id or name.
    #[error("no room {0:?} here (`tincan room list` shows the rooms you are in)")]
    UnknownRoom(String),
    /// Several rooms match the name or id prefix.
    #[error("{0:?} names several rooms; use the room id")]
    AmbiguousRoom(String),
    /// The room's membership log refused the change, or a room limit.
    #[error(transparent)]
    Room(#[from] tincan_core::RoomError),
    /// This user is not an admin of the room (named) they tried to change.
    #[error("you are not an admin of {0}; ask one of its admins (`tincan room list` shows them)")]
    NotRoomAdmin(String),
    /// This user is not a member of the room (named) any more.
    #[error("you are not a member of {0}")]
    NotRoomMember(String),
    /// A join link that does not parse.
    #[error("not a room id, name or join link: {0}")]
    BadLink(String),
    /// `peers forget` of a user with a device online: it would be back at once.
    #[error(
        "{0} is online; only a peer that is offline can be forgotten (it would be back at once)"
    )]
    ForgetOnline(String),
    /// History asked of a home where no node has run yet.
    #[error("no node has run with home {0} yet, so there is no history (start one: `tincan run`)")]
    NoHistoryYet(String),
    /// `peers forget` of oneself.
    #[error("you cannot forget yourself")]
    ForgetSelf,
    /// The identity file could not be changed (a bad name, a disk error).
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// `send` with `wait`: the message failed (the reason, as its
    /// `message_state` event gave it).
    #[error("{0}")]
    DeliveryFailed(String),
    /// `send` with `wait` and a timeout: not delivered in time; the message
    /// stays on its way.
    #[error("{}", wait::still_on_its_way(*.secs, .peer, *.state))]
    NotDeliveredYet {
        /// The timeout.
        secs: u64,
        /// The peer as the request named it.
        peer: String,
        /// Where the message is: `sent` (held by a relay or gateway) or
        /// still `queued` on this device.
        state: MessageState,
    },
    /// `watch` asked of [`NodeHandle::request`]: it is a stream, not one
    /// answer.
    #[error("watch streams events; use NodeHandle::subscribe (or a control connection)")]
    WatchIsAStream,
    /// The node answered a different kind of response than the caller
    /// expected (a typed wrapper; a bug, not a user error).
    #[error(transparent)]
    Unexpected(#[from] UnexpectedResponse),
}

/// What a handle's request is answered on.
pub(crate) type Responder = oneshot::Sender<Result<Response, NodeError>>;

/// Commands from handles to the actor: a client's request, or the end.
pub(crate) enum Command {
    /// One [`Request`], answered on `reply` (at once, or later for a
    /// `file_send`, once its files are hashed).
    Request {
        /// What the client asks.
        request: Request,
        /// Where the answer goes.
        reply: Responder,
    },
    /// Stop the node; answered once it has said goodbye.
    Shutdown(oneshot::Sender<()>),
}

/// Starts nodes.
#[derive(Debug)]
pub struct Node;

/// A cheap, cloneable handle to a running node.
#[derive(Clone, Debug)]
pub struct NodeHandle {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<NodeEvent>,
    /// Changed by a `name_set` request (shared by every clone of the handle).
    whoami: Arc<std::sync::Mutex<WhoAmI>>,
    listen: SocketAddr,
}

impl Node {
    /// Starts a node: loads (or creates) the identity, opens the database,
    /// binds the QUIC endpoint, starts discovery and the control socket.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use tincan_node::{Home, Node, NodeConfig};
    /// let mut config = NodeConfig::from_home(Home::new("/tmp/alice"))?;
    /// config.create_identity_as = Some("Alice".into());
    /// config.mdns = false;
    /// let node = Node::start(config).await?;
    /// let mut events = node.subscribe();
    /// node.send("bob", "lunch at 12?").await?;
    /// while let Ok(event) = events.recv().await {
    ///     println!("{event:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn start(config: NodeConfig) -> Result<NodeHandle, StartError> {
        let home = config.home.clone();
        let home_err = |source| StartError::Home {
            path: home.root().display().to_string(),
            source,
        };
        home.create().map_err(home_err)?;
        let Some(lock) = home.try_lock().map_err(home_err)? else {
            return Err(StartError::AlreadyRunning(
                home.root().display().to_string(),
            ));
        };
        let identity = match &config.create_identity_as {
            Some(name) => {
                let (identity, created) = keystore::load_or_create(&home, name)?;
                if created {
                    tracing::info!(name = %identity.name, user = %identity.user_id(), "created a new identity");
                }
                identity
            }
            None => keystore::load(&home)?,
        };
        let store = Store::open(&home.database_path())?;
        let membership = crate::org::load_membership(&home, &identity)?;
        let revocations = crate::org::load_revocations(&home)?;
        if config.relay.is_some() && membership.is_none() {
            tracing::warn!("a relay is configured but this node has not joined an organisation (`tincan org join FILE`): LAN only");
        }
        let (server_tls, client_tls) = tls::rustls_configs(&identity)?;
        let endpoint = link::bind_endpoint(config.listen, server_tls, client_tls)?;
        let listen = endpoint.local_addr().map_err(|source| StartError::Bind {
            addr: config
                .listen
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT))),
            source,
        })?;
        tracing::info!(%listen, user = %identity.user_id(), device = %identity.device_id(), name = %identity.name, "node listening");

        let (disc_tx, disc_rx) = mpsc::channel(64);
        let discovery = if config.mdns {
            Some(crate::discovery::Discovery::start(
                &identity,
                listen.port(),
                disc_tx,
            )?)
        } else {
            drop(disc_tx);
            None
        };
        let (commands, command_rx) = mpsc::channel(64);
        let (events, _) = broadcast::channel(1024);
        let handle = NodeHandle {
            commands,
            events: events.clone(),
            whoami: Arc::new(std::sync::Mutex::new(WhoAmI {
                user_id: identity.user_id().to_string(),
                device_id: identity.device_id().to_string(),
                name: identity.name.clone(),
            })),
            listen,
        };
        let control = if config.control_socket {
            Some(
                crate::control::serve(&home, handle.clone()).map_err(|source| {
                    StartError::Control {
                        path: home.control_socket_path().display().to_string(),
                        source,
                    }
                })?,
            )
        } else {
            None
        };
        let actor = actor::Actor::new(actor::Parts {
            identity,
            store,
            endpoint,
            events,
            static_peers: config.peers,
            mdns: config.mdns,
            listen,
            home: home.clone(),
            relay: config.relay,
            gateway: config.gateway,
            membership,
            revocations,
            files: config.files,
            away_after_secs: config.away_after_secs,
            read_receipts: config.read_receipts,
            notifications: config.notifications,
        })?;
        tokio::spawn(actor.run(command_rx, disc_rx, discovery, control, lock));
        Ok(handle)
    }
}
