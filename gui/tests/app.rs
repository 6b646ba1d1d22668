//! The app driven through its real `update` and `view`, with a mock
//! backend standing in for the node:
//! - `iced_test`'s headless simulator renders `view`, clicks and types;
//!   the messages it produces go back through `App::update`;
//! - the tasks `update` returns are run to completion on a tokio runtime
//!   (`iced_test::runtime::task::into_stream`), their messages fed back in,
//!   as the iced runtime would;
//! - the node's event stream is the mock's, read like the subscription does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use iced::futures::future::BoxFuture;
use iced::futures::stream::BoxStream;
use iced::futures::{FutureExt, StreamExt};
use iced::keyboard::key::Named;
use iced::Task;
use iced_test::selector;
use tincan_gui::app::{Message, Screen};
use tincan_gui::backend::{Backend, BackendError, BackendEvent, Mode};
use tincan_gui::{chat, setup, App};
use tincan_node::{
    GatewayView, MessageState, MessageView, NodeEvent, PeerView, RelayView, StatusView, WhoAmI,
};
use tokio::sync::broadcast;

const ME: &str = "meuser000000000000000000000000001";
const BERTA: &str = "bertauser00000000000000000000001";
const CAROL: &str = "caroluser00000000000000000000001";

/// What the mock was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Call {
    Send { peer: String, text: String },
    History(String),
}

/// A node that answers from memory and records what it was asked.
#[derive(Debug)]
struct MockBackend {
    calls: Mutex<Vec<Call>>,
    peers: Mutex<Vec<PeerView>>,
    status: Mutex<StatusView>,
    history: Mutex<Vec<MessageView>>,
    events: broadcast::Sender<NodeEvent>,
}

fn peer(user: &str, name: &str, device: &str, online: bool, via: &str) -> PeerView {
    PeerView {
        name: name.into(),
        user_id: user.into(),
        device_id: device.into(),
        addrs: vec!["127.0.0.1:47070".into()],
        online,
        via: via.into(),
    }
}

fn status(role: &str) -> StatusView {
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

fn message(id: &str, from: &str, to: &str, text: &str, direction: &str) -> MessageView {
    MessageView {
        id: id.into(),
        from: from.into(),
        to: to.into(),
        text: text.into(),
        sent_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64,
        state: MessageState::Delivered,
        direction: direction.into(),
        error: None,
    }
}

impl MockBackend {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            calls: Mutex::new(Vec::new()),
            peers: Mutex::new(vec![
                peer(BERTA, "Berta", "bertadev", true, "lan"),
                peer(CAROL, "Carol", "caroldev", false, "relay"),
            ]),
            status: Mutex::new(status("standalone")),
            history: Mutex::new(Vec::new()),
            events: broadcast::channel(16).0,
        })
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("lock").clone()
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

    fn history(&self, peer: String) -> BoxFuture<'static, Result<Vec<MessageView>, BackendError>> {
        self.calls
            .lock()
            .expect("lock")
            .push(Call::History(peer.clone()));
        let history: Vec<_> = self
            .history
            .lock()
            .expect("lock")
            .iter()
            .filter(|m| m.from == peer || m.to == peer)
            .cloned()
            .collect();
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
fn settle(rt: &tokio::runtime::Runtime, app: &mut App, task: Task<Message>) {
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
fn step(rt: &tokio::runtime::Runtime, app: &mut App, message: Message) {
    let task = app.update(message);
    settle(rt, app, task);
}

/// Renders the app, lets `interact` click and type, and feeds the
/// resulting messages back through `update`.
fn interact(
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
fn shows(app: &App, text: &str) -> bool {
    let mut ui = iced_test::simulator(app.view());
    ui.find(text).is_ok()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn connected(rt: &tokio::runtime::Runtime) -> (App, Arc<MockBackend>) {
    let mock = MockBackend::new();
    let (mut app, task) = App::with_backend(mock.clone());
    settle(rt, &mut app, task);
    assert!(matches!(app.screen, Screen::Main));
    (app, mock)
}

#[test]
fn composer_send_goes_to_the_backend_and_shows_as_a_bubble() {
    let rt = runtime();
    let (mut app, mock) = connected(&rt);
    assert!(shows(&app, "On this LAN") && shows(&app, "Other branches"));
    assert!(shows(&app, "Berta") && shows(&app, "Carol"));

    interact(&rt, &mut app, |ui| {
        ui.click("Berta").expect("contact");
    });
    assert_eq!(mock.calls(), vec![Call::History(BERTA.into())]);
    assert!(shows(&app, "No messages with Berta yet. Say hello!"));

    // Type in the composer; Shift+Enter breaks the line, Enter sends.
    interact(&rt, &mut app, |ui| {
        ui.click(selector::id(chat::COMPOSER_ID)).expect("composer");
        let _ = ui.typewrite("lunch at 12?");
        let _ = ui.tap_key(iced::keyboard::Key::Named(Named::Enter));
    });
    assert_eq!(
        mock.calls().last(),
        Some(&Call::Send {
            peer: BERTA.into(),
            text: "lunch at 12?".into()
        })
    );
    assert!(
        app.chat.composer.text().trim().is_empty(),
        "composer cleared"
    );
    assert!(shows(&app, "lunch at 12?"), "the bubble shows");
    assert!(shows(&app, "…"), "queued tick");

    // The node reports delivery: the tick follows.
    step(
        &rt,
        &mut app,
        Message::Event(BackendEvent::Node(NodeEvent::MessageState {
            id: "m-out-1".into(),
            to: BERTA.into(),
            state: MessageState::Delivered,
            error: None,
        })),
    );
    assert!(shows(&app, "✓✓"));
    assert!(shows(&app, "Today"), "day separator");
}

#[test]
fn enter_with_nothing_typed_or_too_much_sends_nothing() {
    let rt = runtime();
    let (mut app, mock) = connected(&rt);
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::Open(BERTA.into())),
    );
    step(&rt, &mut app, Message::Chat(chat::Message::Send));
    let huge = "x".repeat(chat::MAX_TEXT_BYTES + 1);
    app.chat.composer = iced::widget::text_editor::Content::with_text(&huge);
    step(&rt, &mut app, Message::Chat(chat::Message::Send));
    assert!(
        !mock.calls().iter().any(|c| matches!(c, Call::Send { .. })),
        "{:?}",
        mock.calls()
    );
    let error = app.chat.error.clone().expect("an error is shown");
    assert!(error.contains("over the 64 KiB limit"), "{error}");
    assert!(shows(&app, &error));
    assert_eq!(app.chat.composer.text(), huge, "the text is kept");

    // A send the node refuses: said so, text given back.
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::Open(CAROL.into())),
    );
    app.chat.composer = iced::widget::text_editor::Content::with_text("hello Carol");
    step(&rt, &mut app, Message::Chat(chat::Message::Send));
    let error = app.chat.error.clone().expect("an error is shown");
    assert!(error.contains("no device of Carol"), "{error}");
    assert_eq!(app.chat.composer.text(), "hello Carol");
}

#[test]
fn a_message_from_the_event_stream_appears_and_counts_as_unread() {
    let rt = runtime();
    let (mut app, mock) = connected(&rt);
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::Open(BERTA.into())),
    );

    // Read the mock's event stream the way the subscription does.
    let mut events = mock.events();
    mock.events
        .send(NodeEvent::MessageReceived {
            message: message("m-in-1", CAROL, ME, "are you in today?", "in"),
            from_name: "Carol".into(),
        })
        .expect("send event");
    mock.events
        .send(NodeEvent::MessageReceived {
            message: message("m-in-2", BERTA, ME, "see you at 12", "in"),
            from_name: "Berta".into(),
        })
        .expect("send event");
    for _ in 0..2 {
        let event = rt.block_on(events.next()).expect("event");
        step(&rt, &mut app, Message::Event(event));
    }

    let session = app.session.as_ref().expect("session");
    assert_eq!(session.contacts[CAROL].unread, 1, "Carol's is unread");
    assert_eq!(session.contacts[BERTA].unread, 0, "Berta's is open");
    assert_eq!(app.title(), "(1) tincan — Me");
    assert!(shows(&app, "see you at 12"), "in the open conversation");
    assert!(shows(&app, "1"), "the badge");

    // A duplicate of the same message (an at-least-once retry) is shown once.
    step(
        &rt,
        &mut app,
        Message::Event(BackendEvent::Node(NodeEvent::MessageReceived {
            message: message("m-in-2", BERTA, ME, "see you at 12", "in"),
            from_name: "Berta".into(),
        })),
    );
    assert_eq!(
        app.session.as_ref().expect("session").conversations[BERTA]
            .messages
            .len(),
        1
    );

    interact(&rt, &mut app, |ui| {
        ui.click("Carol").expect("contact");
    });
    let session = app.session.as_ref().expect("session");
    assert_eq!(session.contacts[CAROL].unread, 0);
    assert_eq!(app.title(), "tincan — Me");
    assert!(shows(&app, "are you in today?"));
}

#[test]
fn the_status_line_follows_role_gateway_and_relay() {
    let rt = runtime();
    let (mut app, mock) = connected(&rt);
    assert!(shows(&app, "LAN only · 1 device online"));

    // Elected gateway, relay up.
    let mut gateway = status("gateway");
    gateway.relay = Some(RelayView {
        addr: "relay.example.com:7443#x".into(),
        connected: true,
        error: None,
    });
    *mock.status.lock().expect("lock") = gateway;
    step(
        &rt,
        &mut app,
        Message::Event(BackendEvent::Node(NodeEvent::RoleChanged {
            role: "gateway".into(),
            gateway: None,
        })),
    );
    assert!(shows(
        &app,
        "This machine is the branch gateway · connected to the relay · 1 device online"
    ));
    assert!(shows(&app, "Branch gateway"), "the gateway badge");

    // Member of a site whose gateway is Berta's desktop.
    let mut member = status("member");
    member.gateway = Some(GatewayView {
        device_id: "bertadev".into(),
        epoch: 3,
    });
    member.outbox = 2;
    *mock.status.lock().expect("lock") = member;
    step(&rt, &mut app, Message::Tick);
    assert!(shows(
        &app,
        "Other branches via gateway Berta · 1 device online · 2 waiting to be delivered"
    ));
    assert!(!shows(&app, "Branch gateway"));

    // A laptop at home whose relay is unreachable.
    let mut roaming = status("roaming");
    roaming.relay = Some(RelayView {
        addr: "relay.example.com:7443#x".into(),
        connected: false,
        error: Some("timed out".into()),
    });
    *mock.status.lock().expect("lock") = roaming.clone();
    step(&rt, &mut app, Message::Tick);
    assert!(shows(&app, "Offline — relay unreachable: timed out"));
    roaming.relay = Some(RelayView {
        addr: "relay.example.com:7443#x".into(),
        connected: true,
        error: None,
    });
    *mock.status.lock().expect("lock") = roaming;
    step(&rt, &mut app, Message::Tick);
    assert!(shows(
        &app,
        "Direct to the relay (no gateway on this network) · 1 device online"
    ));

    // The node goes away.
    step(
        &rt,
        &mut app,
        Message::Event(BackendEvent::Ended("the node stopped".into())),
    );
    assert!(shows(&app, "Offline — the node stopped"));
    assert!(shows(&app, "Reconnect"));
}

#[test]
fn search_filters_and_enter_opens_the_first_match() {
    let rt = runtime();
    let (mut app, mock) = connected(&rt);
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::Search("car".into())),
    );
    assert!(shows(&app, "Carol") && !shows(&app, "Berta"));
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::Search("zed".into())),
    );
    assert!(shows(&app, "Nobody matches “zed”."));
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::Search("BER".into())),
    );
    step(&rt, &mut app, Message::Chat(chat::Message::SearchSubmit));
    let session = app.session.as_ref().expect("session");
    assert_eq!(session.open.as_deref(), Some(BERTA));
    assert_eq!(mock.calls(), vec![Call::History(BERTA.into())]);
    assert!(app.chat.search.is_empty(), "the search is cleared");

    // Alt+Down / Alt+Up walk the list (Berta on the LAN, then Carol),
    // from the composer too.
    step(
        &rt,
        &mut app,
        Message::Shortcut(tincan_gui::app::Shortcut::NextContact),
    );
    assert_eq!(
        app.session.as_ref().expect("session").open.as_deref(),
        Some(CAROL)
    );
    interact(&rt, &mut app, |ui| {
        ui.click(selector::id(chat::COMPOSER_ID)).expect("composer");
        let _ = ui.simulate([iced::Event::Keyboard(iced::keyboard::Event::KeyPressed {
            key: iced::keyboard::Key::Named(Named::ArrowUp),
            modified_key: iced::keyboard::Key::Named(Named::ArrowUp),
            physical_key: iced::keyboard::key::Physical::Unidentified(
                iced::keyboard::key::NativeCode::Unidentified,
            ),
            location: iced::keyboard::Location::Standard,
            modifiers: iced::keyboard::Modifiers::ALT,
            text: None,
            repeat: false,
        })]);
    });
    assert_eq!(
        app.session.as_ref().expect("session").open.as_deref(),
        Some(BERTA)
    );
}

#[test]
fn first_run_checks_the_name_then_creates_the_identity_and_starts_the_node() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let options = tincan_gui::Options {
        home: Some(home.clone()),
        listen: Some("127.0.0.1:0".into()),
        no_mdns: true,
        ..tincan_gui::Options::default()
    };
    let (mut app, task) = rt.block_on(async { App::new(options) });
    settle(&rt, &mut app, task);
    let Screen::FirstRun(setup) = &app.screen else {
        panic!("expected the first-run screen, got {:?}", app.screen);
    };
    assert_eq!(setup.name, tincan_node::platform::os_user_name());
    assert!(shows(&app, "What name should colleagues see?"));

    // Empty: refused with a sentence, nothing created.
    step(
        &rt,
        &mut app,
        Message::Setup(setup::Message::Name("   ".into())),
    );
    interact(&rt, &mut app, |ui| {
        ui.click("Continue").expect("button");
    });
    assert!(shows(&app, "The name is empty"));
    // Huge: said while typing.
    step(
        &rt,
        &mut app,
        Message::Setup(setup::Message::Name("N".repeat(10_000))),
    );
    assert!(shows(&app, "The name is longer than 64 characters"));
    step(&rt, &mut app, Message::Setup(setup::Message::Create));
    step(
        &rt,
        &mut app,
        Message::Setup(setup::Message::Name("Ann\u{7}".into())),
    );
    step(&rt, &mut app, Message::Setup(setup::Message::Create));
    assert!(shows(&app, "The name contains control characters"));
    assert!(!home.join("identity.key").exists());

    // A good name, typed and submitted with Enter.
    step(
        &rt,
        &mut app,
        Message::Setup(setup::Message::Name(String::new())),
    );
    interact(&rt, &mut app, |ui| {
        ui.click(selector::id(setup::NAME_ID)).expect("field");
        let _ = ui.typewrite("  Ann Example ");
        let _ = ui.tap_key(iced::keyboard::Key::Named(Named::Enter));
    });
    assert!(home.join("identity.key").exists());
    assert!(shows(&app, "Hello, Ann Example!"));
    let session = app.session.as_ref().expect("the node started");
    assert_eq!(session.me.name, "Ann Example");
    assert_eq!(session.mode, Mode::Embedded);

    // Optional steps with bad input: clear messages, nothing saved.
    let junk = dir.path().join("not-a-membership.txt");
    std::fs::write(&junk, "hello").expect("write");
    step(
        &rt,
        &mut app,
        Message::Setup(setup::Message::Org(tincan_gui::forms::OrgMessage::Input(
            junk.display().to_string(),
        ))),
    );
    step(
        &rt,
        &mut app,
        Message::Setup(setup::Message::Org(tincan_gui::forms::OrgMessage::Join)),
    );
    let Screen::FirstRun(setup) = &app.screen else {
        panic!("still first run");
    };
    let error = format!("{:?}", setup.org.outcome);
    assert!(error.contains("is not a tincan membership"), "{error}");
    step(
        &rt,
        &mut app,
        Message::Setup(setup::Message::Relay(
            tincan_gui::forms::RelayMessage::Input("relay.example.com:7443".into()),
        )),
    );
    step(
        &rt,
        &mut app,
        Message::Setup(setup::Message::Relay(tincan_gui::forms::RelayMessage::Save)),
    );
    let Screen::FirstRun(setup) = &app.screen else {
        panic!("still first run");
    };
    let error = format!("{:?}", setup.relay.outcome);
    assert!(error.contains("no #FINGERPRINT"), "{error}");
    assert!(!home.join("membership.txt").exists() && !home.join("config.toml").exists());

    // The invite the admin sent, pasted: joined.
    let me = tincan_node::keystore::load(&tincan_node::Home::new(&home)).expect("identity");
    let now = tincan_node::org::now_secs();
    let invite = tincan_core::OrgKey::generate(&mut tincan_node::keystore::OsEntropy)
        .issue("Acme", me.user_id(), now, now + 86_400)
        .expect("issue")
        .to_text();
    step(
        &rt,
        &mut app,
        Message::Setup(setup::Message::Org(tincan_gui::forms::OrgMessage::Input(
            format!("  {invite}\n"),
        ))),
    );
    interact(&rt, &mut app, |ui| {
        ui.click("Join").expect("button");
    });
    let Screen::FirstRun(setup) = &app.screen else {
        panic!("still first run");
    };
    let joined = format!("{:?}", setup.org.outcome);
    assert!(joined.contains("Joined Acme (valid until"), "{joined}");
    assert!(home.join("membership.txt").exists());

    // Finishing restarts the node, which now belongs to the organisation.
    interact(&rt, &mut app, |ui| {
        ui.click("Start using tincan").expect("button");
    });
    assert!(matches!(app.screen, Screen::Main));
    let status = app
        .session
        .as_ref()
        .and_then(|s| s.status.clone())
        .expect("status after the restart");
    assert!(status.org.is_some(), "{status:?}");
    assert!(shows(&app, "Ann Example"));

    // Settings: a node setting is saved to config.toml, and the embedded
    // node restarts to use it (same identity, history kept).
    interact(&rt, &mut app, |ui| {
        ui.click("Settings").expect("button");
    });
    assert!(shows(&app, "Ann Example"), "the profile was read");
    step(
        &rt,
        &mut app,
        Message::Settings(tincan_gui::settings::Message::Gateway(
            tincan_core::GatewayPreference::Never,
        )),
    );
    let config = std::fs::read_to_string(home.join("config.toml")).expect("config.toml");
    assert!(config.contains("gateway = \"never\""), "{config}");
    assert!(shows(
        &app,
        "Saved: this machine will never be the gateway."
    ));
    let before = app.session.as_ref().expect("session").me.clone();
    interact(&rt, &mut app, |ui| {
        ui.click("Restart now").expect("button");
    });
    let session = app.session.as_ref().expect("session");
    assert_eq!(session.me, before);
    assert_eq!(session.mode, Mode::Embedded);
    assert!(session.ended.is_none() && session.status.is_some());
    assert!(matches!(app.screen, Screen::Settings(_)));
    step(
        &rt,
        &mut app,
        Message::Shortcut(tincan_gui::app::Shortcut::Back),
    );

    // Close: the embedded node shuts down and lets go of the home.
    step(
        &rt,
        &mut app,
        Message::CloseRequested(iced::window::Id::unique()),
    );
    let options = tincan_gui::Options {
        home: Some(home),
        listen: Some("127.0.0.1:0".into()),
        no_mdns: true,
        ..tincan_gui::Options::default()
    };
    let reopened = rt
        .block_on(tincan_gui::backend::open(options))
        .expect("the home opens again");
    let tincan_gui::backend::Boot::Ready(connection) = reopened else {
        panic!("the identity exists now");
    };
    rt.block_on(connection.backend().close());
}

#[test]
fn a_second_window_on_the_same_home_attaches_instead_of_starting_a_node() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let home = tincan_node::Home::new(dir.path());
    tincan_gui::profile::create_identity(&home, "Dora").expect("identity");
    let options = tincan_gui::Options {
        home: Some(dir.path().to_path_buf()),
        listen: Some("127.0.0.1:0".into()),
        no_mdns: true,
        ..tincan_gui::Options::default()
    };
    let open = |options: tincan_gui::Options| match rt
        .block_on(tincan_gui::backend::open(options))
        .expect("open")
    {
        tincan_gui::backend::Boot::Ready(connection) => connection,
        other => panic!("expected a node, got {other:?}"),
    };
    let first = open(options.clone());
    let second = open(options);
    assert_eq!(first.backend().mode(), Mode::Embedded);
    assert_eq!(second.backend().mode(), Mode::Attached);
    assert_eq!(
        second.backend().whoami().user_id,
        first.backend().whoami().user_id
    );
    let status = rt
        .block_on(second.backend().status())
        .expect("status via the control socket");
    assert_eq!(status.name, "Dora");
    rt.block_on(second.backend().close());
    rt.block_on(first.backend().close());
}

#[test]
fn settings_show_and_bad_relay_is_refused() {
    let rt = runtime();
    let (mut app, _mock) = connected(&rt);
    interact(&rt, &mut app, |ui| {
        ui.click("Settings").expect("button");
    });
    assert!(matches!(app.screen, Screen::Settings(_)));
    // No home behind the mock: the profile says so instead of panicking.
    assert!(shows(&app, "this window has no home directory"));
    assert!(shows(&app, "Notifications") && shows(&app, "Files"));
    step(
        &rt,
        &mut app,
        Message::Settings(tincan_gui::settings::Message::Relay(
            tincan_gui::forms::RelayMessage::Input("nope#abc".into()),
        )),
    );
    step(
        &rt,
        &mut app,
        Message::Settings(tincan_gui::settings::Message::Relay(
            tincan_gui::forms::RelayMessage::Save,
        )),
    );
    assert!(shows(&app, "Invalid relay \"nope#abc\": \"nope\" is not HOST:PORT (expected HOST:PORT#FINGERPRINT, as `tincan-relay init` prints it)"));
    step(
        &rt,
        &mut app,
        Message::Settings(tincan_gui::settings::Message::Theme(
            tincan_gui::prefs::ThemeChoice::Dark,
        )),
    );
    assert_eq!(app.theme(), iced::Theme::Dark);
    step(
        &rt,
        &mut app,
        Message::Shortcut(tincan_gui::app::Shortcut::ZoomIn),
    );
    assert_eq!(app.scale_factor(), 1.25);
    step(
        &rt,
        &mut app,
        Message::Settings(tincan_gui::settings::Message::Scale(
            tincan_gui::settings::Scale(1.5),
        )),
    );
    assert_eq!(app.scale_factor(), 1.5);
    step(
        &rt,
        &mut app,
        Message::Shortcut(tincan_gui::app::Shortcut::Back),
    );
    assert!(matches!(app.screen, Screen::Main));
}
