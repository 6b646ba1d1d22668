//! The node actor: owns the identity, the database, the peer book, the
//! outbox and the live connections, and is the only place that decides.
//! One `select!` loop; it sleeps until the next timeout of the outbox,
//! the election or presence (auto-away).
//!
//! Time: each turn of the loop (one command, link event, discovery event,
//! tick or timeout) reads the wall clock once, into `Actor::now`, and
//! every decision of that turn takes its time from there (a method reads
//! `self.now`, a free function is given `now`). Nothing else in the actor
//! reads the clock; the spawned link and file tasks only bound their I/O
//! with timeouts.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tincan_core::clock::TurnClock;
use tincan_core::delivery::Deliveries;
use tincan_core::election::{ElectionConfig, GatewayElection};
use tincan_core::outbox::Outbox;
use tincan_core::peer_book::PeerBook;
use tincan_core::route::directory::HeldDirectory;
use tincan_core::route::MemberCard;
use tincan_core::site::{GatewayPreference, SiteId};
use tincan_core::wire::Hello;
use tincan_core::{DeviceCert, DeviceId, Identity, Membership, Revocations};
use tokio::sync::{broadcast, mpsc};

mod answer;
mod chat;
mod contacts;
mod devices;
mod directory;
mod election;
mod file;
mod inbound;
mod lan;
mod names;
mod outgoing;
mod peers;
mod post;
mod presence;
mod receipts;
mod relay;
mod request;
mod restore;
mod rooms;
mod routing;
mod sync;
mod views;

use peers::DialState;

use super::durable::Durability;
use super::link::{self, LinkEvent};
use super::opener::{self, Opener};
use super::{Command, StartError};
use crate::config::RelayAddr;
use crate::discovery::{Discovery, DiscoveryEvent};
use crate::event::NodeEvent;
use crate::store::Store;

/// How long an undelivered message waits for its recipient before the
/// sender is told it failed.
const MESSAGE_TTL_MS: u64 = 7 * 24 * 3600 * 1000;
/// How often static peers and discovered-but-unconnected devices are dialled.
const DIAL_INTERVAL: Duration = Duration::from_secs(1);

/// Waits for every handle (without pulling in a futures crate for one call).
async fn join_all(handles: Vec<tokio::task::JoinHandle<()>>) {
    for handle in handles {
        let _ = handle.await;
    }
}

/// The wall clock, Unix ms. Read only by [`Actor::new`] and
/// [`Actor::begin_turn`]: every decision takes [`Actor::now`] instead.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What [`Actor::new`] is built from.
pub(crate) struct Parts {
    pub identity: Identity,
    pub store: Store,
    pub endpoint: quinn::Endpoint,
    pub events: broadcast::Sender<NodeEvent>,
    pub static_peers: Vec<String>,
    pub mdns: bool,
    pub listen: SocketAddr,
    pub home: crate::home::Home,
    pub relay: Option<RelayAddr>,
    pub gateway: GatewayPreference,
    pub membership: Option<Membership>,
    pub revocations: Option<Revocations>,
    pub files: crate::file::FilesConfig,
    pub away_after_secs: u64,
    pub read_receipts: bool,
    pub notifications: bool,
}

/// Store keys of persisted election facts.
const SITE_KEY: &str = "site";
const EPOCH_KEY: &str = "max_epoch";

/// The relay connection as the actor sees it.
#[derive(Default)]
struct RelayLink {
    conn: Option<quinn::Connection>,
    /// `HOST:PORT` of the relay node `conn` goes to.
    node: Option<String>,
    /// The relay's device id (its key), once connected.
    device: Option<DeviceId>,
    connecting: bool,
    failures: u32,
    next_at: u64,
    error: Option<String>,
    /// The `lonely` flag of the last registration.
    registered_lonely: bool,
    /// The stable id of the connection routed traffic leaves by now (the
    /// followed gateway's or the relay's); routed sends on another one
    /// give up at once (`link::route`).
    uplink: tokio::sync::watch::Sender<Option<usize>>,
}

/// A device of another site (or roaming), as the relay's directory says.
#[derive(Clone, Debug)]
struct RemotePeer {
    online: bool,
}

pub(crate) struct Actor {
    identity: Identity,
    store: Store,
    endpoint: quinn::Endpoint,
    events: broadcast::Sender<NodeEvent>,
    static_peers: peers::StaticPeers,
    mdns: bool,
    listen: SocketAddr,
    hello: Arc<Hello>,
    book: PeerBook,
    certs: HashMap<DeviceId, DeviceCert>,
    conns: HashMap<DeviceId, Vec<quinn::Connection>>,
    hints: HashMap<DeviceId, Vec<SocketAddr>>,
    dials: HashMap<SocketAddr, DialState>,
    outbox: Outbox,
    /// Sent messages on their way: what the outbox's outcomes mean for each.
    deliveries: Deliveries<Arc<Vec<u8>>>,
    link_tx: mpsc::Sender<LinkEvent>,
    /// Opens incoming envelopes on worker threads.
    opener: Opener,
    link_rx: Option<mpsc::Receiver<LinkEvent>>,
    home: crate::home::Home,
    relay_addr: Option<RelayAddr>,
    membership: Option<Membership>,
    revocations: Option<Revocations>,
    election: GatewayElection,
    /// LAN-connected devices of this node's organisation, with the card
    /// the gateway reports to the relay for them.
    org_peers: BTreeMap<DeviceId, MemberCard>,
    relay: RelayLink,
    remote: BTreeMap<DeviceId, RemotePeer>,
    /// The organisation's directory as the relay sent it, whatever this
    /// node's role then; forwarded to LAN members as gateway
    /// (`actor/directory.rs`).
    directory: HeldDirectory,
    /// As gateway: LAN members whose latest beacon follows this node (each
    /// was sent the directory when it started to).
    followers: BTreeSet<DeviceId>,
    /// Devices the outbox was last told are reachable.
    reachable: BTreeSet<DeviceId>,
    /// The site membership last reported to the relay.
    members_sent: Option<(SiteId, u64, Vec<DeviceId>)>,
    /// The configured gateway preference (the election's may be lowered
    /// to `Never` while on battery).
    preference: GatewayPreference,
    /// Whether the last power check found the machine on battery.
    on_battery: bool,
    /// File transfers (`actor/file.rs`).
    files: file::FilesState,
    /// Presence, typing, blocking, read receipts (`actor/chat.rs`).
    chat: chat::ChatState,
    /// This user's devices, removals, pairing (`actor/devices.rs`).
    devices: devices::DevicesState,
    /// Room logs and sender keys (`actor/rooms.rs`).
    rooms: rooms::RoomsState,
    /// The LAN view and link policy (`tincan_core::lan`).
    mesh: tincan_core::lan::LanMesh,
    /// Dials the mesh asked for.
    mesh_dials: lan::MeshDials,
    /// The time of this turn, Unix ms: the clocks read once when the
    /// loop wakes ([`Actor::begin_turn`]). Every decision of the turn uses
    /// it, so one turn sees one instant, as core's state machines expect.
    now: u64,
    /// Makes `now` from the wall and monotonic clocks, so a wall clock
    /// stepped back does not stall the timers.
    clock: TurnClock,
    /// The monotonic clock's origin for [`TurnClock`]'s readings.
    started: tokio::time::Instant,
    /// Answers and events held until the writes they speak of are on
    /// disk (a `RefCell` so that `emit(&self)` can hold an event).
    durable: RefCell<Durability>,
    /// Finished disk syncs (taken by `run`).
    synced_rx: Option<mpsc::UnboundedReceiver<u64>>,
    /// The monotonic clock at the same read, to turn core's deadlines
    /// (Unix ms) into a timer without reading the wall clock again.
    turn_started: tokio::time::Instant,
}

impl Actor {
    pub(crate) fn new(parts: Parts) -> Result<Self, StartError> {
        let (link_tx, link_rx) = mpsc::channel(256);
        let opener =
            Opener::start(&parts.identity.device, &link_tx).map_err(StartError::OpenerThreads)?;
        let hello = Arc::new(Hello {
            name: parts.identity.name.clone(),
            listen_port: parts.listen.port(),
            cert: parts.identity.cert.clone(),
            membership: parts.membership.clone(),
        });
        let (now, turn_started) = (now_ms(), tokio::time::Instant::now());
        let stored_site = parts
            .store
            .node_state(SITE_KEY)?
            .and_then(|s| s.parse::<SiteId>().ok());
        let stored_epoch = parts
            .store
            .node_state(EPOCH_KEY)?
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        let mut config = ElectionConfig::new(parts.identity.device_id());
        config.preference = parts.gateway;
        let mut election = GatewayElection::new(config, now, stored_site, stored_epoch, now);
        let relay = parts.relay.as_ref().filter(|_| parts.membership.is_some());
        election.set_relay_configured(now, relay.map(|r| r.fingerprint));
        let mut chat = chat::ChatState::load(
            &parts.store,
            now,
            parts.away_after_secs,
            parts.read_receipts,
        )?;
        chat.notify.enabled = parts.notifications;
        let files = file::FilesState::new(parts.files, parts.home.root());
        let rooms = rooms::RoomsState::load(&parts.store)?;
        let device_id = parts.identity.device_id();
        let (durable, synced_rx) = Durability::start(&parts.store, &parts.home.database_path())?;
        let mut actor = Actor {
            identity: parts.identity,
            store: parts.store,
            endpoint: parts.endpoint,
            events: parts.events,
            static_peers: peers::StaticPeers::new(parts.static_peers),
            mdns: parts.mdns,
            listen: parts.listen,
            hello,
            book: PeerBook::new(),
            certs: HashMap::new(),
            conns: HashMap::new(),
            hints: HashMap::new(),
            dials: HashMap::new(),
            outbox: Outbox::new(),
            deliveries: Deliveries::new(),
            link_tx,
            opener,
            link_rx: Some(link_rx),
            home: parts.home,
            relay_addr: parts.relay,
            membership: parts.membership,
            revocations: parts.revocations,
            election,
            org_peers: BTreeMap::new(),
            relay: RelayLink::default(),
            remote: BTreeMap::new(),
            directory: HeldDirectory::new(),
            followers: BTreeSet::new(),
            reachable: BTreeSet::new(),
            members_sent: None,
            preference: parts.gateway,
            on_battery: false,
            files,
            chat,
            devices: devices::DevicesState::default(),
            rooms,
            mesh: tincan_core::lan::LanMesh::new(
                device_id,
                tincan_core::lan::MeshConfig::default(),
            ),
            mesh_dials: lan::MeshDials::default(),
            now,
            clock: TurnClock::new(now, 0),
            started: turn_started,
            durable: RefCell::new(durable),
            synced_rx: Some(synced_rx),
            turn_started,
        };
        actor.sign_own_record(0, false);
        actor.restore()?;
        actor.restore_forgotten();
        actor.restore_devices()?;
        actor.restore_files()?;
        Ok(actor)
    }

    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut discovery_rx: mpsc::Receiver<DiscoveryEvent>,
        discovery: Option<Discovery>,
        control: Option<crate::control::ControlServer>,
        lock: File,
    ) {
        let mut link_rx = self.link_rx.take().expect("link receiver taken once");
        let mut synced_rx = self.synced_rx.take().expect("sync receiver taken once");
        self.devices.announcer = discovery.as_ref().map(Discovery::announcer);
        self.mesh_dials.browser = discovery.as_ref().map(Discovery::browser);
        self.mesh_dials.browse_until = self.now + lan::BROWSE_AFTER_START_MS;
        let mut dial_tick = tokio::time::interval(DIAL_INTERVAL);
        dial_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let endpoint = self.endpoint.clone();
        let shutdown_reply = loop {
            let due = [
                self.outbox.poll_timeout(),
                self.election.poll_timeout(),
                self.chat.presence.poll_timeout(),
                self.pairing_timeout(),
                self.mesh.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            // Measured from the start of the last turn, so the time the
            // turn took is not added to the wait.
            let wake = due.map(|at| {
                let wait = at.saturating_sub(self.now);
                self.turn_started + Duration::from_millis(wait.min(3_600_000))
            });
            let woke = tokio::select! {
                cmd = commands.recv() => Wake::Command(cmd),
                Some(ev) = link_rx.recv() => Wake::Link(ev),
                Some(ev) = discovery_rx.recv() => Wake::Discovery(ev),
                Some(mark) = synced_rx.recv() => Wake::Synced(mark),
                Some(incoming) = endpoint.accept() => Wake::Incoming(incoming),
                _ = dial_tick.tick() => Wake::DialTick,
                _ = sleep_until(wake) => Wake::Timeout,
            };
            self.begin_turn();
            match woke {
                Wake::Command(Some(Command::Shutdown(reply))) => break Some(reply),
                Wake::Command(Some(Command::Request { request, reply })) => {
                    self.on_request(request, reply)
                }
                Wake::Command(None) => break None,
                Wake::Link(ev) => self.on_link(ev),
                Wake::Discovery(ev) => self.on_discovery(ev),
                Wake::Synced(mark) => self.durable.get_mut().on_synced(mark),
                Wake::Incoming(incoming) => {
                    tokio::spawn(link::accept(
                        incoming,
                        self.hello.clone(),
                        self.link_tx.clone(),
                    ));
                }
                Wake::DialTick => {
                    self.dial_due();
                    self.relay_tick();
                    self.check_power();
                }
                Wake::Timeout => {
                    let now = self.now;
                    self.outbox.handle_timeout(now);
                    self.election
                        .handle_timeout(now, &mut crate::keystore::OsEntropy);
                    self.chat.presence.handle_timeout(now);
                    self.pairing_handle_timeout(now);
                }
            }
            self.drive_election();
            self.manage_relay();
            self.refresh_reachability();
            self.drive_outbox();
            self.drive_files();
            self.drive_presence();
            self.drive_lan();
            // Peers and name pins learnt this turn, in one commit (a pin
            // must be durable before it can matter: a restart must not let
            // an impostor claim the name first).
            self.save_peers();
            // This turn's writes go to disk while the next turn runs.
            self.durable.get_mut().request(self.store.write_mark());
        };
        tracing::info!("shutting down");
        self.save_peers();
        self.durable.get_mut().flush(self.store.write_mark());
        let goodbyes = self.lan_goodbye();
        let _ = tokio::time::timeout(Duration::from_millis(500), join_all(goodbyes)).await;
        if let Some(conn) = &self.relay.conn {
            conn.close(0u32.into(), b"goodbye");
        }
        for conns in self.conns.values() {
            for conn in conns {
                conn.close(0u32.into(), b"goodbye");
            }
        }
        if let Some(discovery) = discovery {
            tokio::task::spawn_blocking(move || discovery.shutdown())
                .await
                .ok();
        }
        if let Some(control) = control {
            control.stop();
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
        drop(lock);
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    /// Starts a turn: the one place the loop reads the clocks.
    ///
    /// Never backwards and never stalled: core's state machines order what
    /// they decide by `now` (outbox retries and expiry, the election's
    /// claims, renewals and step-down, auto-away, rate limits, record
    /// versions). A wall clock stepped back (NTP, a user fixing the date)
    /// would undo a deadline already passed; holding `now` until the wall
    /// clock catches up would stop the gateway renewing its lease for as
    /// long as the step. [`TurnClock`] runs on the monotonic clock
    /// meanwhile.
    fn begin_turn(&mut self) {
        self.turn_started = tokio::time::Instant::now();
        let mono = self.turn_started.duration_since(self.started).as_millis();
        self.now = self
            .clock
            .observe(now_ms(), u64::try_from(mono).unwrap_or(u64::MAX));
    }

    /// This turn's time in Unix seconds (certificates, memberships and
    /// revocations count in seconds).
    fn now_secs(&self) -> u64 {
        self.now / 1000
    }

    fn on_link(&mut self, ev: LinkEvent) {
        match ev {
            LinkEvent::Up {
                conn,
                cert,
                hello,
                addr,
                dialed,
            } => self.on_up(conn, cert, hello, addr, dialed),
            LinkEvent::Down {
                device,
                stable_id,
                reason,
                lost,
            } => self.on_down(device, stable_id, reason, lost),
            LinkEvent::Resolved(addrs) => {
                self.static_peers.resolved(&addrs);
                self.dial_all(addrs, self.now)
            }
            LinkEvent::DialFailed { addr, reason } => self.on_dial_failed(addr, reason),
            LinkEvent::Inbound {
                device,
                envelope,
                reply,
            } => self.on_delivered(opener::Delivered {
                device,
                envelope,
                reply,
            }),
            LinkEvent::Opened {
                device,
                message_id,
                opened,
                reply,
            } => {
                if let Some(frame) = self.on_opened(device, message_id, *opened) {
                    self.answer(reply, frame);
                }
            }
            LinkEvent::InboundRoom {
                device,
                envelope,
                reply,
            } => {
                if let Some(frame) = self.on_room_envelope(device, *envelope) {
                    self.answer(reply, frame);
                }
            }
            LinkEvent::Written { message_id, device } => {
                tracing::debug!(message = %message_id, %device, "envelope written");
                // Written to the store at the end of this turn (drive_outbox).
                self.deliveries.handle_handed_over(message_id);
            }
            LinkEvent::Attempted {
                message_id,
                device,
                outcome,
            } => {
                outgoing::warn_invalid_receipt(message_id, device, &outcome);
                self.outbox
                    .handle_outcome(self.now, message_id, device, outcome);
            }
            LinkEvent::RouteIn { from, route, reply } => self.on_route_in(from, *route, reply),
            LinkEvent::Control { from, frame, reply } => {
                let answer = self.on_control(from, *frame);
                self.answer(reply, answer);
            }
            LinkEvent::Beacon { from, beacon } => {
                if self.org_peers.contains_key(&from) {
                    let me = self.identity.device_id();
                    let follows = beacon.gateway.is_some_and(|g| g.device == me);
                    self.election.handle_beacon(self.now, from, beacon);
                    self.note_follower(from, follows);
                }
            }
            LinkEvent::Routed {
                message_id,
                devices,
                result,
            } => self.on_routed(message_id, devices, result),
            LinkEvent::RelayUp {
                conn,
                welcome,
                relay_device,
                node,
            } => self.on_relay_up(conn, welcome, relay_device, node),
            LinkEvent::RelayFailed { reason } => self.on_relay_failed(reason),
            LinkEvent::RelayDown { stable_id, reason } => self.on_relay_down(stable_id, reason),
            LinkEvent::LeaseAnswer { sent_at, result } => self.on_lease_answer(sent_at, result),
            LinkEvent::Files(event) => self.on_files_event(event),
            LinkEvent::Pair {
                joiner,
                message,
                reply,
            } => {
                let answer = self.on_pair(joiner, message);
                self.answer(reply, answer);
            }
        }
    }
}

/// What woke the loop (one turn handles one).
enum Wake {
    /// A command from a handle; `None` when every handle is gone.
    Command(Option<Command>),
    Link(LinkEvent),
    Discovery(DiscoveryEvent),
    /// The disk has every write up to this mark.
    Synced(u64),
    /// A connection to accept.
    Incoming(quinn::Incoming),
    /// Dial static and discovered peers, check the relay and power.
    DialTick,
    /// A deadline of the outbox, election, presence, pairing or LAN mesh.
    Timeout,
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
