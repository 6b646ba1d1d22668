//! Shared by the UI tests: a mock backend standing in for the node, and
//! helpers that drive the app as the iced runtime would:
//! - `iced_test`'s headless simulator renders `view`, clicks and types;
//!   the messages it produces go back through `App::update`;
//! - the tasks `update` returns are run to completion on a tokio runtime
//!   (`iced_test::runtime::task::into_stream`), their messages fed back in.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iced::futures::future::BoxFuture;
use iced::futures::stream::BoxStream;
use iced::futures::{FutureExt, StreamExt};
use iced::Task;
use tincan_gui::app::{Message, Screen};
use tincan_gui::backend::{Backend, BackendError, BackendEvent, Mode};
use tincan_gui::App;
use tincan_node::TransferState;
use tincan_node::{
    DeviceView, MessageState, MessageView, NodeEvent, PairingView, PeerView, PresenceView,
    ReadView, RoomMemberView, RoomView, StatusView, TransferView, TypingView, WhoAmI,
};
use tokio::sync::broadcast;

pub const ME: &str = "meuser000000000000000000000000001";
pub const BERTA: &str = "bertauser00000000000000000000001";
pub const CAROL: &str = "caroluser00000000000000000000001";

/// What the mock was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Send {
        peer: String,
        text: String,
    },
    /// The newest page.
    History(String),
    /// An older page.
    HistoryBefore {
        peer: String,
        before: u64,
        limit: u32,
    },
    Read(String),
    Typing(String),
    Activity,
    SetPresence {
        presence: String,
        note: Option<String>,
    },
    FileSend {
        peer: String,
        paths: Vec<PathBuf>,
    },
    FileAccept(String),
    FileReject(String),
    FileCancel(String),
    /// The newest page of a room.
    RoomHistory(String),
    RoomSend {
        room: String,
        text: String,
    },
    RoomCreate {
        name: String,
        with: Vec<String>,
    },
    Devices,
    PairDevice,
    RemoveDevice(String),
}

pub const LUNCH: &str = "1unc4room0000000000000000000000001";

/// A room "Lunch" (topic "Fridays at noon") of Me (admin), Berta and Carol.
pub fn lunch_room() -> RoomView {
    let member = |user_id: &str, name: &str, admin: bool| RoomMemberView {
        user_id: user_id.into(),
        name: name.into(),
        admin,
    };
    RoomView {
        id: LUNCH.into(),
        name: "Lunch".into(),
        topic: "Fridays at noon".into(),
        members: vec![
            member(ME, "Me", true),
            member(BERTA, "Berta", false),
            member(CAROL, "Carol", false),
        ],
        disabled: false,
        joined: true,
        admin: true,
    }
}

/// A message `from` someone in `room`.
pub fn room_message(id: &str, room: &str, from: &str, text: &str) -> MessageView {
    let direction = if from == ME { "out" } else { "in" };
    let mut m = message(id, from, ME, text, direction);
    m.room = Some(room.into());
    m
}

/// A node that answers from memory and records what it was asked.
#[derive(Debug)]
pub struct MockBackend {
    pub calls: Mutex<Vec<Call>>,
    pub peers: Mutex<Vec<PeerView>>,
    pub status: Mutex<StatusView>,
    pub history: Mutex<Vec<MessageView>>,
    pub presence: Mutex<PresenceView>,
    pub transfers: Mutex<Vec<TransferView>>,
    pub rooms: Mutex<Vec<RoomView>>,
    /// Messages and membership lines of every room.
    pub room_messages: Mutex<Vec<MessageView>>,
    /// This user's devices (this one first).
    pub devices: Mutex<Vec<DeviceView>>,
    pub events: broadcast::Sender<NodeEvent>,
}

/// A device of Me.
pub fn device(id: &str, label: &str, this: bool, online: bool) -> DeviceView {
    DeviceView {
        device_id: id.into(),
        label: label.into(),
        this,
        online,
        added_at: 1_700_000_000_000,
    }
}

pub fn presence_view(word: &str, note: Option<&str>) -> PresenceView {
    PresenceView {
        presence: word.into(),
        note: note.map(str::to_string),
        auto_away: false,
        chosen: word.into(),
        shown: if word == "appear-offline" {
            "offline"
        } else {
            word
        }
        .into(),
        idle_secs: 0,
        away_after_secs: Some(600),
    }
}

pub fn transfer(id: &str, peer: &str, peer_name: &str, direction: &str) -> TransferView {
    TransferView {
        id: id.into(),
        direction: direction.into(),
        peer: peer.into(),
        peer_name: peer_name.into(),
        name: "report.pdf".into(),
        size: 4 * 1024 * 1024,
        count: 1,
        bytes_done: 0,
        state: TransferState::Offered,
        error: None,
        rate: None,
        eta_secs: None,
        bytes_received_total: None,
        bytes_sent_total: None,
        dest: None,
        saved_as: Vec::new(),
        created_at: now_ms(),
        recipients: Vec::new(),
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

pub fn peer(user: &str, name: &str, device: &str, online: bool, via: &str) -> PeerView {
    PeerView {
        name: name.into(),
        user_id: user.into(),
        device_id: device.into(),
        addrs: vec!["127.0.0.1:47070".into()],
        online,
        via: via.into(),
        presence: if online { "online" } else { "offline" }.into(),
        note: None,
        blocked: false,
    }
}

pub fn status(role: &str) -> StatusView {
    StatusView {
        user_id: ME.into(),
        device_id: "medevice".into(),
        name: "Me".into(),
        listen: "127.0.0.1:1".into(),
        peers_online: 1,
        peers_known: 2,
        outbox: 0,
        mdns: false,
        org: None,
        role: role.into(),
        site: None,
        gateway: None,
        relay: None,
    }
}

pub fn message(id: &str, from: &str, to: &str, text: &str, direction: &str) -> MessageView {
    MessageView {
        id: id.into(),
        from: from.into(),
        to: to.into(),
        text: text.into(),
        sent_at: now_ms(),
        state: MessageState::Delivered,
        direction: direction.into(),
        error: None,
        received_at: None,
        offline: false,
        reply_to: None,
        mentions: Vec::new(),
        broadcast: false,
        edited_at: None,
        deleted: false,
        room: None,
        system: false,
    }
}

impl MockBackend {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            calls: Mutex::new(Vec::new()),
            peers: Mutex::new(vec![
                peer(BERTA, "Berta", "bertadev", true, "lan"),
                peer(CAROL, "Carol", "caroldev", false, "relay"),
            ]),
            status: Mutex::new(status("standalone")),
            history: Mutex::new(Vec::new()),
            presence: Mutex::new(presence_view("online", None)),
            transfers: Mutex::new(Vec::new()),
            rooms: Mutex::new(Vec::new()),
            room_messages: Mutex::new(Vec::new()),
            devices: Mutex::new(vec![device("medevice", "laptop", true, true)]),
            events: broadcast::channel(16).0,
        })
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("lock").clone()
    }

    fn record(&self, call: Call) {
        self.calls.lock().expect("lock").push(call);
    }

    /// A transfer command: the stored transfer moved to `state`.
    fn transfer_to(
        &self,
        id: String,
        state: TransferState,
    ) -> BoxFuture<'static, Result<TransferView, BackendError>> {
        let mut transfers = self.transfers.lock().expect("lock");
        let found = transfers.iter_mut().find(|t| t.id == id).map(|t| {
            t.state = state;
            t.clone()
        });
        async move { found.ok_or_else(|| BackendError(format!("no transfer {id}"))) }.boxed()
    }
}

impl Backend for MockBackend {
    fn mode(&self) -> Mode {
        Mode::Embedded
    }

    fn whoami(&self) -> WhoAmI {
        WhoAmI {
            user_id: ME.into(),
            device_id: "medevice".into(),
            name: "Me".into(),
        }
    }

    fn status(&self) -> BoxFuture<'static, Result<StatusView, BackendError>> {
        let status = self.status.lock().expect("lock").clone();
        async move { Ok(status) }.boxed()
    }

    fn peers(&self) -> BoxFuture<'static, Result<Vec<PeerView>, BackendError>> {
        let peers = self.peers.lock().expect("lock").clone();
        async move { Ok(peers) }.boxed()
    }

    fn history(
        &self,
        peer: String,
        before: Option<u64>,
        limit: u32,
    ) -> BoxFuture<'static, Result<Vec<MessageView>, BackendError>> {
        self.record(match before {
            None => Call::History(peer.clone()),
            Some(before) => Call::HistoryBefore {
                peer: peer.clone(),
                before,
                limit,
            },
        });
        let matching: Vec<_> = self
            .history
            .lock()
            .expect("lock")
            .iter()
            .filter(|m| m.from == peer || m.to == peer)
            .filter(|m| before.is_none_or(|b| m.sent_at < b))
            .cloned()
            .collect();
        // The newest `limit`, oldest first, as the node answers.
        let skip = matching.len().saturating_sub(limit as usize);
        let history = matching.into_iter().skip(skip).collect();
        async move { Ok(history) }.boxed()
    }

    fn send(
        &self,
        peer: String,
        text: String,
    ) -> BoxFuture<'static, Result<MessageView, BackendError>> {
        self.calls.lock().expect("lock").push(Call::Send {
            peer: peer.clone(),
            text: text.clone(),
        });
        async move {
            if peer == CAROL {
                return Err(BackendError("no device of Carol is known yet".into()));
            }
            let mut sent = message("m-out-1", ME, &peer, &text, "out");
            sent.state = MessageState::Queued;
            Ok(sent)
        }
        .boxed()
    }

    fn presence(&self) -> BoxFuture<'static, Result<PresenceView, BackendError>> {
        let presence = self.presence.lock().expect("lock").clone();
        async move { Ok(presence) }.boxed()
    }

    fn set_presence(
        &self,
        presence: String,
        note: Option<String>,
    ) -> BoxFuture<'static, Result<PresenceView, BackendError>> {
        self.record(Call::SetPresence {
            presence: presence.clone(),
            note: note.clone(),
        });
        if note.as_ref().is_some_and(|n| n.chars().count() > 256) {
            return async {
                Err(BackendError(
                    "the note is longer than 256 characters".into(),
                ))
            }
            .boxed();
        }
        let mut current = self.presence.lock().expect("lock");
        let kept = match note {
            Some(n) if n.is_empty() => None,
            Some(n) => Some(n),
            None => current.note.clone(),
        };
        *current = presence_view(&presence, kept.as_deref());
        let answer = current.clone();
        async move { Ok(answer) }.boxed()
    }

    fn activity(&self) -> BoxFuture<'static, Result<PresenceView, BackendError>> {
        self.record(Call::Activity);
        let mut current = self.presence.lock().expect("lock");
        if current.auto_away {
            let chosen = current.chosen.clone();
            *current = presence_view(&chosen, current.note.clone().as_deref());
        }
        let answer = current.clone();
        async move { Ok(answer) }.boxed()
    }

    fn read(&self, peer: String) -> BoxFuture<'static, Result<ReadView, BackendError>> {
        self.record(Call::Read(peer.clone()));
        async move {
            Ok(ReadView {
                peer,
                marked: 0,
                receipts: 0,
            })
        }
        .boxed()
    }

    fn typing(&self, peer: String) -> BoxFuture<'static, Result<TypingView, BackendError>> {
        self.record(Call::Typing(peer.clone()));
        async move { Ok(TypingView { peer, sent: true }) }.boxed()
    }

    fn file_send(
        &self,
        peer: String,
        paths: Vec<PathBuf>,
    ) -> BoxFuture<'static, Result<TransferView, BackendError>> {
        self.record(Call::FileSend {
            peer: peer.clone(),
            paths: paths.clone(),
        });
        // As the node says it when a path vanished before the scan.
        if let Some(missing) = paths.iter().find(|p| !p.exists()) {
            let error = format!("{}: no such file or folder", missing.display());
            return async move { Err(BackendError(error)) }.boxed();
        }
        let mut sent = transfer("t-out-1", &peer, "Berta", "out");
        sent.name = paths[0]
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.transfers.lock().expect("lock").push(sent.clone());
        async move { Ok(sent) }.boxed()
    }

    fn file_accept(&self, id: String) -> BoxFuture<'static, Result<TransferView, BackendError>> {
        self.record(Call::FileAccept(id.clone()));
        self.transfer_to(id, TransferState::Accepted)
    }

    fn file_reject(&self, id: String) -> BoxFuture<'static, Result<TransferView, BackendError>> {
        self.record(Call::FileReject(id.clone()));
        self.transfer_to(id, TransferState::Rejected)
    }

    fn file_cancel(&self, id: String) -> BoxFuture<'static, Result<TransferView, BackendError>> {
        self.record(Call::FileCancel(id.clone()));
        self.transfer_to(id, TransferState::Cancelled)
    }

    fn file_list(&self) -> BoxFuture<'static, Result<Vec<TransferView>, BackendError>> {
        let transfers = self.transfers.lock().expect("lock").clone();
        async move { Ok(transfers) }.boxed()
    }

    fn rooms(&self) -> BoxFuture<'static, Result<Vec<RoomView>, BackendError>> {
        let rooms = self.rooms.lock().expect("lock").clone();
        async move { Ok(rooms) }.boxed()
    }

    fn devices(&self) -> BoxFuture<'static, Result<Vec<DeviceView>, BackendError>> {
        self.record(Call::Devices);
        let devices = self.devices.lock().expect("lock").clone();
        async move { Ok(devices) }.boxed()
    }

    fn pair_device(&self) -> BoxFuture<'static, Result<PairingView, BackendError>> {
        self.record(Call::PairDevice);
        async move {
            Ok(PairingView {
                code: "ABCDE-FGHJK".into(),
                expires_at: 1_700_000_300_000,
            })
        }
        .boxed()
    }

    fn remove_device(
        &self,
        device: String,
    ) -> BoxFuture<'static, Result<DeviceView, BackendError>> {
        self.record(Call::RemoveDevice(device.clone()));
        let mut devices = self.devices.lock().expect("lock");
        let found = devices
            .iter()
            .position(|d| d.device_id == device && !d.this);
        let removed = found.map(|i| devices.remove(i));
        async move { removed.ok_or_else(|| BackendError(format!("no removable device {device}"))) }
            .boxed()
    }

    fn room_history(
        &self,
        room: String,
        before: Option<u64>,
        limit: u32,
    ) -> BoxFuture<'static, Result<Vec<MessageView>, BackendError>> {
        self.record(Call::RoomHistory(room.clone()));
        let matching: Vec<_> = self
            .room_messages
            .lock()
            .expect("lock")
            .iter()
            .filter(|m| m.room.as_deref() == Some(room.as_str()))
            .filter(|m| before.is_none_or(|b| m.sent_at < b))
            .cloned()
            .collect();
        let skip = matching.len().saturating_sub(limit as usize);
        let history = matching.into_iter().skip(skip).collect();
        async move { Ok(history) }.boxed()
    }

    fn room_send(
        &self,
        room: String,
        text: String,
    ) -> BoxFuture<'static, Result<MessageView, BackendError>> {
        self.record(Call::RoomSend {
            room: room.clone(),
            text: text.clone(),
        });
        let known = self
            .rooms
            .lock()
            .expect("lock")
            .iter()
            .any(|r| r.id == room);
        async move {
            if !known {
                return Err(BackendError(format!("no room {room}")));
            }
            let mut sent = room_message("r-out-1", &room, ME, &text);
            sent.state = MessageState::Sent;
            Ok(sent)
        }
        .boxed()
    }

    fn room_create(
        &self,
        name: String,
        with: Vec<String>,
    ) -> BoxFuture<'static, Result<RoomView, BackendError>> {
        self.record(Call::RoomCreate {
            name: name.clone(),
            with,
        });
        let mut room = lunch_room();
        room.name = name;
        self.rooms.lock().expect("lock").push(room.clone());
        async move { Ok(room) }.boxed()
    }

    fn events(&self) -> BoxStream<'static, BackendEvent> {
        let rx = self.events.subscribe();
        iced::futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.ok().map(|e| (BackendEvent::Node(e), rx))
        })
        .boxed()
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        async {}.boxed()
    }
}

/// Runs `task` and every task its messages lead to, like the iced runtime.
pub fn settle(rt: &tokio::runtime::Runtime, app: &mut App, task: Task<Message>) {
    let mut pending = vec![task];
    while let Some(task) = pending.pop() {
        let Some(stream) = iced_test::runtime::task::into_stream(task) else {
            continue;
        };
        let outputs: Vec<Message> = rt.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(20),
                stream
                    .filter_map(|action| async move {
                        match action {
                            iced_test::runtime::Action::Output(message) => Some(message),
                            _ => None, // focus and other widget operations
                        }
                    })
                    .collect::<Vec<_>>(),
            )
            .await
            .expect("a task did not finish")
        });
        for message in outputs {
            pending.push(app.update(message));
        }
    }
}

/// Sends `message` through `update` and settles what it starts.
pub fn step(rt: &tokio::runtime::Runtime, app: &mut App, message: Message) {
    let task = app.update(message);
    settle(rt, app, task);
}

/// Renders the app, lets `interact` click and type, and feeds the
/// resulting messages back through `update`.
pub fn interact(
    rt: &tokio::runtime::Runtime,
    app: &mut App,
    interact: impl FnOnce(&mut iced_test::Simulator<'_, Message>),
) {
    let messages: Vec<Message> = {
        let mut ui = iced_test::simulator(app.view());
        interact(&mut ui);
        ui.into_messages().collect()
    };
    for message in messages {
        step(rt, app, message);
    }
}

/// Whether `text` is on screen.
pub fn shows(app: &App, text: &str) -> bool {
    let mut ui = iced_test::simulator(app.view());
    ui.find(text).is_ok()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

pub fn connected(rt: &tokio::runtime::Runtime) -> (App, Arc<MockBackend>) {
    let mock = MockBackend::new();
    let (mut app, task) = App::with_backend(mock.clone());
    settle(rt, &mut app, task);
    assert!(matches!(app.screen, Screen::Main));
    (app, mock)
}
