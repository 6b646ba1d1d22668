//! The main screen driven through the real `update` and `view` with a mock
//! backend (see `common/mod.rs`): sending, receiving from the mocked event
//! stream, unread counts, the status line, search and settings. Presence,
//! files, typing, notifications and paging are in `app_features.rs`, rooms
//! in `app_rooms.rs`.

mod common;

use common::*;
use iced::futures::StreamExt;
use iced::keyboard::key::Named;
use iced_test::selector;
use tincan_gui::app::{Message, Screen};
use tincan_gui::backend::{Backend, BackendEvent};

use tincan_gui::chat;
use tincan_node::{GatewayView, MessageState, NodeEvent, RelayView};

#[test]
fn composer_send_goes_to_the_backend_and_shows_as_a_bubble() {
    let rt = runtime();
    let (mut app, mock) = connected(&rt);
    assert!(shows(&app, "On this LAN") && shows(&app, "Other branches"));
    assert!(shows(&app, "Berta") && shows(&app, "Carol"));

    interact(&rt, &mut app, |ui| {
        ui.click("Berta").expect("contact");
    });
    assert_eq!(
        mock.calls(),
        vec![Call::Read(BERTA.into()), Call::History(BERTA.into())],
        "opening reads the conversation and loads its newest page"
    );
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
    // Nor does a repeat of Carol's count twice.
    step(
        &rt,
        &mut app,
        Message::Event(BackendEvent::Node(NodeEvent::MessageReceived {
            message: message("m-in-1", CAROL, ME, "are you in today?", "in"),
            from_name: "Carol".into(),
        })),
    );
    assert_eq!(app.title(), "(1) tincan — Me");

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
        addr: Some("relay.example.com:7443".into()),
        addrs: vec!["relay.example.com:7443".into()],
        fingerprint: "x".into(),
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
        addr: None,
        addrs: vec!["relay.example.com:7443".into()],
        fingerprint: "x".into(),
        connected: false,
        error: Some("timed out".into()),
    });
    *mock.status.lock().expect("lock") = roaming.clone();
    step(&rt, &mut app, Message::Tick);
    assert!(shows(&app, "Offline — relay unreachable: timed out"));
    roaming.relay = Some(RelayView {
        addr: Some("relay.example.com:7443".into()),
        addrs: vec!["relay.example.com:7443".into()],
        fingerprint: "x".into(),
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
    assert_eq!(
        mock.calls(),
        vec![Call::Read(BERTA.into()), Call::History(BERTA.into())]
    );
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

#[test]
fn settings_list_pair_and_remove_this_users_devices() {
    use tincan_gui::backend::BackendEvent;
    use tincan_node::NodeEvent;
    let rt = runtime();
    let (mut app, mock) = connected(&rt);
    mock.devices
        .lock()
        .expect("lock")
        .push(device("deskdevice", "desk", false, false));
    interact(&rt, &mut app, |ui| {
        ui.click("Settings").expect("button");
    });
    assert!(shows(&app, "laptop · medevice · this device"));
    assert!(shows(&app, "desk · deskdevi · offline"));

    interact(&rt, &mut app, |ui| {
        ui.click("Pair a new device").expect("button");
    });
    assert!(mock.calls.lock().expect("lock").contains(&Call::PairDevice));
    assert!(shows(&app, "Pairing code: ABCDE-FGHJK"));

    // The new device typed the code: the node says so, the list reloads.
    let phone = device("phonedevice", "phone", false, true);
    mock.devices.lock().expect("lock").push(phone.clone());
    step(
        &rt,
        &mut app,
        Message::Event(BackendEvent::Node(NodeEvent::DevicePaired {
            device: phone,
        })),
    );
    assert!(!shows(&app, "Pairing code: ABCDE-FGHJK"));
    assert!(shows(
        &app,
        "Paired phone: messages to you now reach it too."
    ));
    assert!(shows(&app, "phone · phonedev · online"));

    // Removing asks once more; the first "Remove" is the desk's row.
    interact(&rt, &mut app, |ui| {
        ui.click("Remove").expect("button");
    });
    assert!(!mock
        .calls
        .lock()
        .expect("lock")
        .iter()
        .any(|c| matches!(c, Call::RemoveDevice(_))));
    interact(&rt, &mut app, |ui| {
        ui.click("Really remove").expect("button");
    });
    assert!(mock
        .calls
        .lock()
        .expect("lock")
        .contains(&Call::RemoveDevice("deskdevice".into())));
    assert!(shows(
        &app,
        "Removed desk: it gets nothing new, and every peer refuses it."
    ));
    assert!(!shows(&app, "desk · deskdevi · offline"));
    assert!(shows(&app, "phone · phonedev · online"));
}
