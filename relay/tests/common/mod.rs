//! Test harness: the real `tincan-relay` binary on 127.0.0.1 and a small
//! scripted device that speaks the relay protocol with the real libraries
//! (core identities, memberships, envelopes and receipts; TLS and rpc from
//! tincan-transport, as the node uses them). Only ever dial 127.0.0.1.
#![allow(dead_code)]

mod directory;
pub mod nats;
pub mod relay;

pub use directory::DirectoryMode;
use directory::DirectoryState;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use quinn::crypto::rustls::QuicClientConfig;
use tincan_core::route::directory::DirectoryUpdate;
use tincan_core::route::{
    Answer, DeviceAnswer, DirectoryEntry, MemberCard, Neighbour, Register, Route, Routed, Welcome,
};
use tincan_core::wire::{Frame, RefuseReason};
use tincan_core::{
    Content, DeviceCert, DeviceId, Envelope, Identity, Membership, MessageId, OrgKey, Receipt,
    ReceiptKind, Revocations,
};
use tincan_transport::entropy::OsEntropy;
use tincan_transport::{rpc, tls};
use tokio::sync::mpsc;

/// Bounds a wait for an event; not a speed requirement.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Unix time, ms.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Unix time, s.
pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// An organisation with its admin key.
pub struct Org {
    pub key: OrgKey,
    pub name: String,
}

impl Org {
    pub fn new(name: &str) -> Self {
        Self {
            key: OrgKey::generate(&mut OsEntropy),
            name: name.into(),
        }
    }

    pub fn id(&self) -> tincan_core::OrgId {
        self.key.id()
    }

    /// A member device valid for a day.
    pub fn device(&self, name: &str) -> Device {
        self.device_until(name, now_secs() + 86_400)
    }

    /// A member device whose membership ends at `expires_at` (unix s).
    pub fn device_until(&self, name: &str, expires_at: u64) -> Device {
        let identity = Identity::generate(name, now_secs(), &mut OsEntropy);
        let membership = self
            .key
            .issue(&self.name, identity.user_id(), now_secs() - 10, expires_at)
            .expect("issue membership");
        Device {
            identity,
            membership,
        }
    }
}

/// A device: identity plus its organisation membership.
#[derive(Clone)]
pub struct Device {
    pub identity: Identity,
    pub membership: Membership,
}

impl Device {
    /// Another device of this device's user (same membership: it is per
    /// user), with a fresh device key.
    pub fn sibling(&self) -> Device {
        let user = self.identity.user.as_ref().expect("user key");
        let device = tincan_core::DeviceKey::generate(&mut OsEntropy);
        let cert = user.certify(&device, now_secs());
        Device {
            identity: Identity {
                user: None,
                device,
                cert,
                name: self.identity.name.clone(),
            },
            membership: self.membership.clone(),
        }
    }

    pub fn id(&self) -> DeviceId {
        self.identity.device_id()
    }

    pub fn cert(&self) -> DeviceCert {
        self.identity.cert.clone()
    }

    pub fn name(&self) -> &str {
        &self.identity.name
    }

    pub fn card(&self) -> MemberCard {
        MemberCard {
            cert: self.cert(),
            membership: self.membership.clone(),
            name: self.identity.name.clone(),
        }
    }

    pub fn register(&self) -> Register {
        Register {
            name: self.identity.name.clone(),
            membership: self.membership.clone(),
            lan_addrs: Vec::new(),
            lonely: false,
        }
    }
}

/// Seals a text from `from` to `to`.
pub fn seal(from: &Device, to: &[&Device], text: &str) -> Envelope {
    let certs: Vec<DeviceCert> = to.iter().map(|d| d.cert()).collect();
    Envelope::seal(
        &from.identity.device,
        &from.identity.cert,
        &certs,
        MessageId::random(&mut OsEntropy),
        now_ms(),
        &Content::Text { text: text.into() },
        &mut OsEntropy,
    )
    .expect("seal")
}

/// A route of an envelope to the given devices.
pub fn route_of(envelope: &Envelope, to: &[&Device]) -> Frame {
    Frame::Route(Route {
        to: to.iter().map(|d| d.id()).collect(),
        item: Routed::Envelope(Box::new(envelope.clone())),
    })
}

/// How a client answers routes the relay sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Open envelopes of held identities and sign receipts; accept receipts.
    Normal,
    /// Answer every device `Failed`.
    Fail,
}

/// Something the relay sent a client.
#[derive(Clone, Debug)]
pub enum Inbound {
    Route(Route),
    /// An unversioned directory push (merged by device, as a node does).
    Directory(Vec<DirectoryEntry>),
    /// A versioned directory push (applied only to its base).
    Update(DirectoryUpdate),
    Neighbours(Vec<Neighbour>),
    Revocations(Revocations),
    Other(String),
}

/// A registered device connection (or a fake gateway holding members).
pub struct Client {
    pub device: Device,
    pub endpoint: quinn::Endpoint,
    pub conn: quinn::Connection,
    pub welcome: Welcome,
    pub route_streams: Arc<AtomicUsize>,
    pub mode: Arc<Mutex<Mode>>,
    /// Whether the relay took `DirectoryVersions`.
    pub versioned: bool,
    directory: Arc<DirectoryState>,
    inbox: tokio::sync::Mutex<mpsc::UnboundedReceiver<Inbound>>,
    seen: Mutex<Vec<Inbound>>,
}

/// Why registration failed: the Error frame and/or the close.
#[derive(Debug)]
pub struct Refusal {
    /// The Error frame's text, if it arrived.
    pub error: Option<String>,
    /// The application close code and reason, if it closed.
    pub close: Option<(u64, String)>,
}

/// A client endpoint on 127.0.0.1 presenting `identity`.
pub fn client_endpoint(identity: &Identity) -> Result<quinn::Endpoint> {
    let (_, client_tls) = tls::rustls_configs(identity)?;
    let crypto = QuicClientConfig::try_from(client_tls)?;
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_secs(1)));
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    let mut endpoint = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    endpoint.set_default_client_config(config);
    Ok(endpoint)
}

/// Waits up to `DEADLINE` for the close of `conn`; `(code, reason)`.
pub async fn close_of(conn: &quinn::Connection) -> Option<(u64, String)> {
    match tokio::time::timeout(DEADLINE, conn.closed()).await {
        Ok(quinn::ConnectionError::ApplicationClosed(c)) => Some((
            c.error_code.into_inner(),
            String::from_utf8_lossy(&c.reason).into_owned(),
        )),
        Ok(other) => Some((u64::MAX, other.to_string())),
        Err(_) => None,
    }
}

impl Client {
    /// Connects and registers `device`; `Err(refusal)` if the relay refused.
    pub async fn connect(relay: SocketAddr, device: &Device) -> Result<Client, Refusal> {
        Self::connect_with(relay, device, device.register(), Vec::new()).await
    }

    /// Connects and registers `device` like a node that predates versioned
    /// directory pushes (it never sends `DirectoryVersions`).
    pub async fn connect_unversioned(
        relay: SocketAddr,
        device: &Device,
    ) -> Result<Client, Refusal> {
        Self::connect_as(relay, device, device.register(), Vec::new(), false).await
    }

    /// Connects with a custom Register, holding `members` (a fake gateway
    /// answers for them).
    pub async fn connect_with(
        relay: SocketAddr,
        device: &Device,
        register: Register,
        members: Vec<Device>,
    ) -> Result<Client, Refusal> {
        Self::connect_as(relay, device, register, members, true).await
    }

    async fn connect_as(
        relay: SocketAddr,
        device: &Device,
        register: Register,
        members: Vec<Device>,
        versions: bool,
    ) -> Result<Client, Refusal> {
        let fail = |e: String| Refusal {
            error: Some(format!("client error: {e}")),
            close: None,
        };
        let endpoint = client_endpoint(&device.identity).map_err(|e| fail(e.to_string()))?;
        let conn = endpoint
            .connect(relay, tls::SERVER_NAME)
            .map_err(|e| fail(e.to_string()))?
            .await
            .map_err(|e| fail(e.to_string()))?;
        let answer = rpc::request(&conn, &Frame::Register(register), DEADLINE).await;
        let welcome = match answer {
            Ok(Frame::Welcome(w)) => w,
            Ok(Frame::Error(e)) => {
                return Err(Refusal {
                    error: Some(e),
                    close: close_of(&conn).await,
                })
            }
            Ok(other) => return Err(fail(format!("unexpected {}", other.name()))),
            Err(e) => {
                eprintln!("register exchange failed: {e}");
                return Err(Refusal {
                    error: None,
                    close: close_of(&conn).await,
                });
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let route_streams = Arc::new(AtomicUsize::new(0));
        let mode = Arc::new(Mutex::new(Mode::Normal));
        let mut held: HashMap<DeviceId, Identity> = HashMap::new();
        held.insert(device.id(), device.identity.clone());
        for m in members {
            held.insert(m.id(), m.identity);
        }
        let directory = Arc::new(DirectoryState::default());
        tokio::spawn(serve(
            conn.clone(),
            Arc::new(held),
            tx,
            route_streams.clone(),
            mode.clone(),
            directory.clone(),
        ));
        // As a node does once registered (a relay that predates versions
        // answers an error, and the client takes whole pushes).
        let versioned = versions
            && matches!(
                rpc::request(&conn, &Frame::DirectoryVersions, DEADLINE).await,
                Ok(Frame::Ack)
            );
        Ok(Client {
            device: device.clone(),
            endpoint,
            conn,
            welcome,
            route_streams,
            mode,
            versioned,
            directory,
            inbox: tokio::sync::Mutex::new(rx),
            seen: Mutex::new(Vec::new()),
        })
    }

    /// One request, one answer.
    pub async fn request(&self, frame: Frame) -> Frame {
        rpc::request(&self.conn, &frame, DEADLINE)
            .await
            .expect("relay answers")
    }

    /// Routes and returns the answers.
    pub async fn route(&self, frame: Frame) -> Vec<DeviceAnswer> {
        match self.request(frame).await {
            Frame::Answers(a) => a,
            other => panic!("expected answers, got {other:?}"),
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
    }

    /// Waits for an inbound item matching `pick` (earlier items are kept
    /// in `seen`).
    pub async fn wait_for<T>(&self, what: &str, mut pick: impl FnMut(&Inbound) -> Option<T>) -> T {
        if let Some(t) = self.seen.lock().expect("seen").iter().find_map(&mut pick) {
            return t;
        }
        let deadline = Instant::now() + DEADLINE;
        let mut inbox = self.inbox.lock().await;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, inbox.recv()).await {
                Ok(Some(item)) => {
                    let hit = pick(&item);
                    self.seen.lock().expect("seen").push(item);
                    if let Some(t) = hit {
                        return t;
                    }
                }
                Ok(None) => panic!(
                    "{}: connection gone while waiting for {what}",
                    self.device.name()
                ),
                Err(_) => panic!("{}: no {what} within {DEADLINE:?}", self.device.name()),
            }
        }
    }

    /// Everything received so far (drains the inbox without waiting).
    pub async fn received(&self) -> Vec<Inbound> {
        let mut inbox = self.inbox.lock().await;
        while let Ok(item) = inbox.try_recv() {
            self.seen.lock().expect("seen").push(item);
        }
        self.seen.lock().expect("seen").clone()
    }

    /// The first directory this connection received: the whole directory
    /// (later pushes carry only what changed), so what it lacks the relay
    /// no longer lists.
    pub async fn first_directory(&self) -> Vec<DirectoryEntry> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let first = self.received().await.into_iter().find_map(|i| match i {
                Inbound::Directory(d) => Some(d),
                Inbound::Update(u) if u.base == 0 => Some(u.entries),
                _ => None,
            });
            if let Some(d) = first {
                return d;
            }
            if Instant::now() > deadline {
                panic!("{}: no directory", self.device.name());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the directory this client holds satisfies `ok`;
    /// returns it.
    pub async fn wait_directory(
        &self,
        what: &str,
        ok: impl Fn(&[DirectoryEntry]) -> bool,
    ) -> Vec<DirectoryEntry> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            // Drain the inbox too: a test may look at what arrived.
            self.received().await;
            let view = self.view();
            if ok(&view) {
                return view;
            }
            if Instant::now() > deadline {
                let held: Vec<(&str, bool)> =
                    view.iter().map(|e| (e.name.as_str(), e.online)).collect();
                panic!(
                    "{}: no directory with {what}; it holds {held:?}",
                    self.device.name()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Closes the connection and waits until the relay could see it.
    pub async fn close(self) {
        self.conn.close(0u32.into(), b"bye");
        let _ = tokio::time::timeout(Duration::from_secs(5), self.endpoint.wait_idle()).await;
    }
}

async fn serve(
    conn: quinn::Connection,
    held: Arc<HashMap<DeviceId, Identity>>,
    tx: mpsc::UnboundedSender<Inbound>,
    route_streams: Arc<AtomicUsize>,
    mode: Arc<Mutex<Mode>>,
    directory: Arc<DirectoryState>,
) {
    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
        let held = held.clone();
        let tx = tx.clone();
        let route_streams = route_streams.clone();
        let mode = *mode.lock().expect("mode");
        let directory = directory.clone();
        tokio::spawn(async move {
            let Ok(frame) = rpc::read_request(&mut recv, DEADLINE).await else {
                return;
            };
            let answer = match frame {
                Frame::Route(route) => {
                    route_streams.fetch_add(1, Ordering::SeqCst);
                    let answers = answer_route(&route, &held, mode);
                    let _ = tx.send(Inbound::Route(route));
                    Frame::Answers(answers)
                }
                frame @ (Frame::Directory(_) | Frame::DirectoryUpdate(_)) => {
                    let _ = tx.send(match &frame {
                        Frame::DirectoryUpdate(u) => Inbound::Update(u.clone()),
                        Frame::Directory(d) => Inbound::Directory(d.clone()),
                        _ => Inbound::Other(frame.name().into()),
                    });
                    let dmode = *directory.mode.lock().expect("mode");
                    match dmode {
                        DirectoryMode::Apply => directory.apply(frame),
                        DirectoryMode::Refuse => Frame::Error("refused by the test".into()),
                        DirectoryMode::Hold => {
                            directory.held.lock().expect("held").push((frame, send));
                            return;
                        }
                    }
                }
                Frame::Neighbours(n) => {
                    let _ = tx.send(Inbound::Neighbours(n));
                    Frame::Ack
                }
                Frame::Revocations(r) => {
                    let _ = tx.send(Inbound::Revocations(r));
                    Frame::Ack
                }
                other => {
                    let _ = tx.send(Inbound::Other(other.name().into()));
                    Frame::Error("unexpected".into())
                }
            };
            let _ = rpc::answer(&mut send, &answer).await;
        });
    }
}

fn answer_route(
    route: &Route,
    held: &HashMap<DeviceId, Identity>,
    mode: Mode,
) -> Vec<DeviceAnswer> {
    route
        .to
        .iter()
        .map(|d| {
            let answer = match (mode, held.get(d), &route.item) {
                (Mode::Fail, _, _) => Answer::Failed("test says fail".into()),
                (_, None, _) => Answer::Failed("not here".into()),
                (_, Some(me), Routed::Envelope(e)) => match e.open(&me.device) {
                    Ok(_) => Answer::Receipt(Receipt::sign(
                        &me.device,
                        e.id,
                        e.sender.device_id(),
                        ReceiptKind::Delivered,
                        now_ms(),
                    )),
                    Err(_) => Answer::Refused(RefuseReason::Undecryptable),
                },
                (_, Some(_), Routed::Receipt(_)) => Answer::Accepted,
                // A scripted device holds no room keys; it acknowledges.
                (_, Some(me), Routed::Room(e)) => Answer::Receipt(Receipt::sign(
                    &me.device,
                    e.id,
                    e.sender.device_id(),
                    ReceiptKind::Delivered,
                    now_ms(),
                )),
            };
            DeviceAnswer { device: *d, answer }
        })
        .collect()
}

/// The answer for `device` in `answers`.
pub fn answer_for(answers: &[DeviceAnswer], device: &Device) -> Answer {
    answers
        .iter()
        .find(|a| a.device == device.id())
        .map(|a| a.answer.clone())
        .unwrap_or_else(|| panic!("no answer for {}", device.name()))
}

/// Waits until `check` returns `Some`, polling.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(t) = check().await {
            return t;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts `r` is a refusal whose error and close reason contain `needle`,
/// with close code 0x10.
pub fn assert_refused(r: Result<Client, Refusal>, needle: &str) {
    let refusal = match r {
        Ok(c) => panic!("{} was accepted", c.device.name()),
        Err(r) => r,
    };
    eprintln!("refusal: {refusal:?}");
    if let Some(e) = &refusal.error {
        assert!(e.contains(needle), "error {e:?} lacks {needle:?}");
    }
    let (code, reason) = refusal.close.expect("connection closed");
    assert_eq!(code, 0x10, "close code");
    assert!(
        reason.contains(needle),
        "close reason {reason:?} lacks {needle:?}"
    );
}
