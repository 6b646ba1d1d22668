//! The messenger features through the real backends: the app embeds a node
//! (SQLite, QUIC on 127.0.0.1, no mDNS) and talks to a second node started
//! in this test; a second connection attaches to the app's node through
//! its control socket. Asserts on what each node stores and shows.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tincan_gui::app::Message;
use tincan_gui::backend::Mode;
use tincan_gui::chat;
use tincan_gui::presence::Choice;
use tincan_gui::session::PAGE;
use tincan_node::TransferState;
use tincan_node::{
    Home, MessageState, MessageView, Node, NodeConfig, NodeEvent, Request, RoomView, TransferView,
};

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind")
        .port()
}

/// Polls `check` (after `step`ping `tick` through the app) until it holds.
fn wait_until(
    rt: &tokio::runtime::Runtime,
    app: &mut tincan_gui::App,
    what: &str,
    tick: impl Fn() -> Message,
    mut check: impl FnMut(&tincan_gui::App) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        step(rt, app, tick());
        if check(app) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn presence_read_typing_and_files_between_the_app_and_a_real_node() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let (anna_home, berta_home) = (dir.path().join("anna"), dir.path().join("berta"));
    let downloads = dir.path().join("Incoming");
    let home = Home::new(&anna_home);
    tincan_gui::profile::create_identity(&home, "Anna").expect("identity");
    tincan_gui::profile::set_downloads(&home, downloads.to_str().expect("utf8"))
        .expect("downloads");
    let (anna_addr, berta_addr) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );

    let mut config = NodeConfig::from_home(Home::new(&berta_home)).expect("config");
    config.create_identity_as = Some("Berta".into());
    config.mdns = false;
    config.listen = Some(berta_addr.parse().expect("addr"));
    config.peers = vec![anna_addr.clone()];
    let berta = rt.block_on(Node::start(config)).expect("berta starts");
    let mut berta_events = berta.subscribe();
    let berta_id = berta.whoami().user_id;

    let options = tincan_gui::Options {
        home: Some(anna_home.clone()),
        listen: Some(anna_addr),
        peers: vec![berta_addr],
        no_mdns: true,
        ..tincan_gui::Options::default()
    };
    let (mut app, task) = rt.block_on(async { tincan_gui::App::new(options) });
    settle(&rt, &mut app, task);
    assert_eq!(
        app.session.as_ref().expect("node started").mode,
        Mode::Embedded
    );
    let berta_online = |app: &tincan_gui::App| {
        app.session
            .as_ref()
            .and_then(|s| s.contacts.get(&berta_id))
            .is_some_and(|c| c.presence().is_online())
    };
    wait_until(
        &rt,
        &mut app,
        "Berta online",
        || Message::Tick,
        berta_online,
    );

    // Presence and note from the header reach Berta's node.
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::PresencePicked(Choice(
            tincan_core::PresenceState::OutToLunch,
        ))),
    );
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::NoteInput("back at 2".into())),
    );
    step(&rt, &mut app, Message::Chat(chat::Message::NoteSubmit));
    wait_for("Anna's presence at Berta", || {
        let peers = rt.block_on(berta.peers()).ok()?;
        peers
            .iter()
            .any(|p| {
                p.name == "Anna"
                    && p.presence == "out-to-lunch"
                    && p.note.as_deref() == Some("back at 2")
            })
            .then_some(())
    });

    // Berta writes; opening the conversation reads it: Berta sees `read`.
    let sent = rt
        .block_on(berta.send("Anna", "lunch tomorrow?"))
        .expect("send");
    wait_for("the message at Anna", || {
        let history = rt
            .block_on(berta.history("Anna", tincan_node::HistoryQuery::default()))
            .ok()?;
        history
            .iter()
            .any(|m| m.id == sent.id && m.state == MessageState::Delivered)
            .then_some(())
    });
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::Open(berta_id.clone())),
    );
    assert!(shows(&app, "lunch tomorrow?"));
    wait_for("the read receipt at Berta", || {
        let history = rt
            .block_on(berta.history("Anna", tincan_node::HistoryQuery::default()))
            .ok()?;
        history
            .iter()
            .any(|m| m.id == sent.id && m.state == MessageState::Read)
            .then_some(())
    });

    // History paging over real SQLite: more than a page from Berta, many
    // in the same millisecond; the newest page, then the older one, each
    // message once.
    let mut last = None;
    for i in 0..110 {
        last = Some(
            rt.block_on(berta.send("Anna", &format!("page {i}")))
                .expect("send"),
        );
    }
    let last = last.expect("sent");
    wait_for("the last of them delivered", || {
        let history = rt
            .block_on(berta.history("Anna", tincan_node::HistoryQuery::default()))
            .ok()?;
        history
            .iter()
            .any(|m| m.id == last.id && m.state == MessageState::Delivered)
            .then_some(())
    });
    // (No subscription runs in this test: "events were missed" reloads.)
    step(
        &rt,
        &mut app,
        Message::Event(tincan_gui::backend::BackendEvent::Lagged),
    );
    let conversation = |app: &tincan_gui::App| {
        app.session.as_ref().expect("session").conversations[&berta_id].clone()
    };
    assert_eq!(conversation(&app).messages.len(), PAGE as usize);
    assert!(conversation(&app).has_older);
    step(&rt, &mut app, Message::Chat(chat::Message::LoadOlder));
    let c = conversation(&app);
    assert_eq!(c.messages.len(), 111, "all of them, once each");
    assert!(!c.has_older);
    assert_eq!(c.messages[0].text, "lunch tomorrow?");

    // Typing in the composer: Berta's node hears it.
    interact(&rt, &mut app, |ui| {
        ui.click(iced_test::selector::id(chat::COMPOSER_ID))
            .expect("composer");
        let _ = ui.typewrite("sure");
    });
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match berta_events.recv().await {
                    Ok(NodeEvent::Typing { from_name, .. }) if from_name == "Anna" => break,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("berta's events ended: {e}"),
                }
            }
        })
        .await
        .expect("a typing event at Berta")
    });

    // Berta offers a file; the app shows it, Accept lands it in the
    // download folder, byte for byte.
    let report = dir.path().join("report.txt");
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&report, &bytes).expect("write");
    let offer: TransferView = rt
        .block_on(berta.request_as(Request::FileSend {
            peer: "Anna".into(),
            paths: vec![report.to_string_lossy().into_owned()],
        }))
        .expect("file send");
    wait_until(
        &rt,
        &mut app,
        "the offer in the app",
        || Message::ProgressTick,
        |app| shows(app, "Berta offers this"),
    );
    interact(&rt, &mut app, |ui| {
        ui.click("Accept").expect("accept");
    });
    wait_until(
        &rt,
        &mut app,
        "the file received",
        || Message::ProgressTick,
        |app| {
            app.session.as_ref().is_some_and(|s| {
                s.transfers
                    .get(&offer.id)
                    .is_some_and(|t| t.state == TransferState::Done)
            })
        },
    );
    assert_eq!(
        std::fs::read(downloads.join("report.txt")).expect("received file"),
        bytes
    );
    assert!(shows(&app, "Open folder"));

    // A file that vanished before sending: the node's sentence in the UI.
    let gone = dir.path().join("gone.pdf");
    step(
        &rt,
        &mut app,
        Message::FilesPicked {
            peer: berta_id.clone(),
            paths: Some(vec![gone.clone()]),
        },
    );
    let error = app.chat.error.clone().expect("an error is shown");
    assert!(
        error.contains("no such file or folder") && error.contains("gone.pdf"),
        "{error}"
    );
    assert!(shows(&app, &error));

    // A second window attaches to the app's node: the same calls work over
    // the control socket.
    let attached = match rt
        .block_on(tincan_gui::backend::open(tincan_gui::Options {
            home: Some(anna_home),
            no_mdns: true,
            ..tincan_gui::Options::default()
        }))
        .expect("open")
    {
        tincan_gui::backend::Boot::Ready(connection) => connection,
        other => panic!("expected the running node, got {other:?}"),
    };
    let backend = attached.backend();
    assert_eq!(backend.mode(), Mode::Attached);
    let presence = rt
        .block_on(backend.set_presence("busy".into(), None))
        .expect("set presence");
    assert_eq!(presence.presence, "busy");
    assert_eq!(presence.note.as_deref(), Some("back at 2"), "note kept");
    let transfers = rt.block_on(backend.file_list()).expect("file list");
    assert!(transfers.iter().any(|t| t.id == offer.id));
    let page = rt
        .block_on(backend.history(berta_id.clone(), None, 1))
        .expect("history");
    assert_eq!(page.len(), 1);
    rt.block_on(backend.read(berta_id)).expect("read");

    step(
        &rt,
        &mut app,
        Message::CloseRequested(iced::window::Id::unique()),
    );
    rt.block_on(berta.shutdown());
}

#[test]
fn a_room_made_by_a_real_node_shows_in_the_app_and_takes_its_messages() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let (anna_home, berta_home) = (dir.path().join("anna"), dir.path().join("berta"));
    let home = Home::new(&anna_home);
    tincan_gui::profile::create_identity(&home, "Anna").expect("identity");
    let (anna_addr, berta_addr) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let mut config = NodeConfig::from_home(Home::new(&berta_home)).expect("config");
    config.create_identity_as = Some("Berta".into());
    config.mdns = false;
    config.listen = Some(berta_addr.parse().expect("addr"));
    config.peers = vec![anna_addr.clone()];
    let berta = rt.block_on(Node::start(config)).expect("berta starts");
    let berta_id = berta.whoami().user_id;
    let options = tincan_gui::Options {
        home: Some(anna_home.clone()),
        listen: Some(anna_addr),
        peers: vec![berta_addr],
        no_mdns: true,
        ..tincan_gui::Options::default()
    };
    let (mut app, task) = rt.block_on(async { tincan_gui::App::new(options) });
    settle(&rt, &mut app, task);
    wait_until(
        &rt,
        &mut app,
        "Berta online",
        || Message::Tick,
        |app| {
            app.session
                .as_ref()
                .and_then(|s| s.contacts.get(&berta_id))
                .is_some_and(|c| c.presence().is_online())
        },
    );
    wait_for("Anna known at Berta", || {
        let peers = rt.block_on(berta.peers()).ok()?;
        peers
            .iter()
            .any(|p| p.name == "Anna" && p.online)
            .then_some(())
    });

    // Berta makes a room with Anna and writes in it.
    let room: RoomView = rt
        .block_on(berta.request_as(Request::RoomCreate {
            name: "Lunch".into(),
            with: vec!["Anna".into()],
        }))
        .expect("room create");
    rt.block_on(berta.request(Request::RoomTopic {
        room: room.id.clone(),
        topic: "Fridays at noon".into(),
    }))
    .expect("topic");
    rt.block_on(berta.request(Request::RoomSend {
        room: room.id.clone(),
        text: "pizza or sushi?".into(),
    }))
    .expect("room send");
    wait_until(
        &rt,
        &mut app,
        "the room in the app",
        || Message::Tick,
        |app| {
            app.session.as_ref().is_some_and(|s| {
                s.rooms
                    .list
                    .get(&room.id)
                    .is_some_and(|r| r.view.topic == "Fridays at noon")
            })
        },
    );
    assert!(shows(&app, "Rooms") && shows(&app, "Lunch"));
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::OpenRoom(room.id.clone())),
    );
    // (No subscription runs in this test: "events were missed" reloads
    // the open room.)
    wait_until(
        &rt,
        &mut app,
        "Berta's message in the room",
        || Message::Event(tincan_gui::backend::BackendEvent::Lagged),
        |app| shows(app, "pizza or sushi?"),
    );
    assert!(
        shows(&app, "Members: Anna, Berta (admin)"),
        "members by name, the admin marked"
    );

    // Anna answers from the composer: it reaches Berta's room history.
    interact(&rt, &mut app, |ui| {
        ui.click(iced_test::selector::id(chat::COMPOSER_ID))
            .expect("composer");
        let _ = ui.typewrite("sushi!");
        let _ = ui.tap_key(iced::keyboard::Key::Named(
            iced::keyboard::key::Named::Enter,
        ));
    });
    assert!(app.chat.error.is_none(), "{:?}", app.chat.error);
    assert!(shows(&app, "sushi!"));
    wait_for("Anna's message at Berta", || {
        let history: Vec<MessageView> = rt
            .block_on(berta.request_as(Request::RoomHistory {
                room: room.id.clone(),
                limit: None,
                before: None,
                since: None,
            }))
            .ok()?;
        history
            .iter()
            .any(|m| m.text == "sushi!" && m.direction == "in")
            .then_some(())
    });

    // The same through the control socket of the app's node.
    let attached = match rt
        .block_on(tincan_gui::backend::open(tincan_gui::Options {
            home: Some(anna_home),
            no_mdns: true,
            ..tincan_gui::Options::default()
        }))
        .expect("open")
    {
        tincan_gui::backend::Boot::Ready(connection) => connection,
        other => panic!("expected the running node, got {other:?}"),
    };
    let backend = attached.backend();
    assert_eq!(backend.mode(), Mode::Attached);
    let rooms = rt.block_on(backend.rooms()).expect("rooms");
    assert!(rooms.iter().any(|r| r.id == room.id && r.name == "Lunch"));
    let page = rt
        .block_on(backend.room_history(room.id.clone(), None, 1))
        .expect("room history");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].text, "sushi!");
    let sent = rt
        .block_on(backend.room_send(room.id.clone(), "see you".into()))
        .expect("room send");
    assert_eq!(sent.room.as_deref(), Some(room.id.as_str()));
    let made = rt
        .block_on(backend.room_create("Release".into(), vec![berta_id]))
        .expect("room create");
    assert!(made.admin && made.members.len() == 2, "{made:?}");

    step(
        &rt,
        &mut app,
        Message::CloseRequested(iced::window::Id::unique()),
    );
    rt.block_on(berta.shutdown());
}

/// The devices panel through the embedded node: the code the app shows
/// pairs a real second home, which then shows in the list.
#[test]
fn a_code_from_the_settings_screen_pairs_a_second_device() {
    use tincan_gui::app::Screen;
    use tincan_gui::{devices, settings};
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let (anna_home, desk_home) = (dir.path().join("anna"), dir.path().join("desk"));
    tincan_gui::profile::create_identity(&Home::new(&anna_home), "Anna").expect("identity");
    let anna_addr = format!("127.0.0.1:{}", free_port());
    let options = tincan_gui::Options {
        home: Some(anna_home.clone()),
        listen: Some(anna_addr.clone()),
        no_mdns: true,
        ..tincan_gui::Options::default()
    };
    let (mut app, task) = rt.block_on(async { tincan_gui::App::new(options) });
    settle(&rt, &mut app, task);
    interact(&rt, &mut app, |ui| {
        ui.click("Settings").expect("button");
    });
    let panel = |app: &tincan_gui::App| match &app.screen {
        Screen::Settings(s) => s.devices.clone(),
        other => panic!("not on settings: {other:?}"),
    };
    let listed = panel(&app).list.expect("listed").expect("devices");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].this);

    interact(&rt, &mut app, |ui| {
        ui.click("Pair a new device").expect("button");
    });
    let code = panel(&app).pairing.expect("a code on show").code;
    assert!(shows(&app, &format!("Pairing code: {code}")));
    let joined = rt
        .block_on(tincan_node::pair::join(
            &Home::new(&desk_home),
            &tincan_node::pair::JoinOptions {
                code,
                peer: Some(anna_addr.parse().expect("addr")),
                label: "desk".into(),
                force: false,
            },
        ))
        .expect("the desk pairs with the app's code");
    let short: String = joined.device_id.chars().take(8).collect();
    let reload = || Message::Settings(settings::Message::Devices(devices::Message::Changed));
    wait_until(&rt, &mut app, "the desk in the list", reload, |app| {
        shows(app, &format!("desk · {short} · offline"))
    });
}
