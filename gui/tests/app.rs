//! The main screen driven through the real `update` and `view` with a mock
//! backend (see `common/mod.rs`): sending, receiving from the mocked event
//! stream, unread counts, the status line, search, settings, presence,
//! file offers and progress, dropped files, typing, notifications and read
//! marks, history paging.

mod common;

use common::*;
use iced::futures::StreamExt;
use iced::keyboard::key::Named;
use iced_test::selector;
use std::time::Instant;
use tincan_gui::app::{Message, Screen};
use tincan_gui::backend::{Backend, BackendEvent};
use tincan_gui::App;

use tincan_core::PresenceState;
use tincan_gui::chat;
use tincan_gui::presence::Choice;
use tincan_gui::session::{PAGE, TYPING_SHOWN};
use tincan_node::store::TransferState;
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
fn switching_presence_reaches_the_backend_and_shows_in_the_header() {
    let rt = runtime();
    let (mut app, mock) = connected(&rt);
    let session = app.session.as_ref().expect("session");
    assert_eq!(
        session.presence.as_ref().map(|p| p.presence.as_str()),
        Some("online"),
        "asked for on connecting"
    );
    assert!(!shows(&app, "Do not disturb: no notifications"));

    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::PresencePicked(Choice(PresenceState::Busy))),
    );
    assert_eq!(
        mock.calls().last(),
        Some(&Call::SetPresence {
            presence: "busy".into(),
            note: None
        })
    );
    let session = app.session.as_ref().expect("session");
    assert_eq!(
        session.presence.as_ref().expect("presence").presence,
        "busy"
    );
    assert!(shows(&app, "Do not disturb: no notifications"));

    // The note, typed into its field and set with Enter; the state stays.
    interact(&rt, &mut app, |ui| {
        ui.click(selector::id(chat::NOTE_ID)).expect("note field");
        let _ = ui.typewrite("in a meeting until 3");
        let _ = ui.tap_key(iced::keyboard::Key::Named(Named::Enter));
    });
    assert_eq!(
        mock.calls().last(),
        Some(&Call::SetPresence {
            presence: "busy".into(),
            note: Some("in a meeting until 3".into())
        })
    );
    let presence = app.session.as_ref().expect("session").presence.clone();
    assert_eq!(
        presence.and_then(|p| p.note).as_deref(),
        Some("in a meeting until 3")
    );

    // A note the node refuses: its sentence, nothing changed.
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::NoteInput("x".repeat(300))),
    );
    step(&rt, &mut app, Message::Chat(chat::Message::NoteSubmit));
    assert!(shows(&app, "The note is longer than 256 characters"));
    assert_eq!(
        mock.presence.lock().expect("lock").note.as_deref(),
        Some("in a meeting until 3")
    );

    // Appear offline says what the others see.
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::PresencePicked(Choice(
            PresenceState::AppearOffline,
        ))),
    );
    assert!(shows(
        &app,
        "Colleagues see you as offline; messages still arrive"
    ));

    // A colleague's presence and note, from the event stream.
    let mut busy_berta = peer(BERTA, "Berta", "bertadev", true, "lan");
    busy_berta.presence = "on-the-phone".into();
    busy_berta.note = Some("with a customer".into());
    step(
        &rt,
        &mut app,
        Message::Event(BackendEvent::Node(NodeEvent::Presence { peer: busy_berta })),
    );
    assert!(shows(&app, "on the phone · with a customer"));

    // Auto-away, picked up on the status refresh; the next key or click
    // tells the node (once), and the header follows.
    {
        let mut presence = presence_view("away", None);
        presence.auto_away = true;
        presence.chosen = "online".into();
        presence.idle_secs = 660;
        *mock.presence.lock().expect("lock") = presence;
    }
    step(&rt, &mut app, Message::Tick);
    assert!(shows(
        &app,
        "Away after 11 min idle; Online again on your next input"
    ));
    step(&rt, &mut app, Message::UserActive);
    step(&rt, &mut app, Message::UserActive);
    let reports = mock
        .calls()
        .iter()
        .filter(|c| **c == Call::Activity)
        .count();
    assert_eq!(reports, 1, "one report, not one per key");
    assert!(!shows(&app, "Online again on your next input"));
    let session = app.session.as_ref().expect("session");
    assert_eq!(
        session.presence.as_ref().expect("presence").presence,
        "online"
    );
}

#[test]
fn a_file_offer_from_an_event_is_accepted_and_shows_progress() {
    let rt = runtime();
    let (mut app, mock) = connected(&rt);
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::Open(BERTA.into())),
    );
    let offer = transfer("t-in-1", BERTA, "Berta", "in");
    mock.transfers.lock().expect("lock").push(offer.clone());
    step(
        &rt,
        &mut app,
        Message::Event(BackendEvent::Node(NodeEvent::FileOffered {
            transfer: offer.clone(),
        })),
    );
    assert!(shows(&app, "report.pdf") && shows(&app, "Berta offers this"));
    assert!(shows(&app, "4.0 MiB"));

    interact(&rt, &mut app, |ui| {
        ui.click("Accept").expect("accept button");
    });
    assert_eq!(
        mock.calls().last(),
        Some(&Call::FileAccept("t-in-1".into()))
    );
    assert!(shows(&app, "Starting…") && shows(&app, "Cancel"));
    assert!(!shows(&app, "Accept"));

    // Progress from the node: bar, percentage, rate, time left.
    let mut moving = offer.clone();
    moving.state = TransferState::Transferring;
    moving.bytes_done = 2 * 1024 * 1024;
    moving.rate = Some(1024 * 1024);
    moving.eta_secs = Some(2);
    step(
        &rt,
        &mut app,
        Message::Event(BackendEvent::Node(NodeEvent::FileState {
            transfer: moving.clone(),
        })),
    );
    assert!(shows(&app, "50 %"));
    assert!(shows(&app, "2.0 MiB of 4.0 MiB · 1.0 MiB/s · 2 s left"));

    // Done: where it went, and "Open folder".
    let mut done = moving;
    done.state = TransferState::Done;
    done.bytes_done = done.size;
    done.saved_as = vec!["/home/me/Downloads/report.pdf".into()];
    step(
        &rt,
        &mut app,
        Message::Event(BackendEvent::Node(NodeEvent::FileState { transfer: done })),
    );
    assert!(shows(&app, "Saved as /home/me/Downloads/report.pdf"));
    assert!(shows(&app, "Open folder") && !shows(&app, "Cancel"));

    // A second offer, declined.
    let mut second = transfer("t-in-2", BERTA, "Berta", "in");
    second.name = "slides.odp".into();
    mock.transfers.lock().expect("lock").push(second.clone());
    step(
        &rt,
        &mut app,
        Message::Event(BackendEvent::Node(NodeEvent::FileOffered {
            transfer: second,
        })),
    );
    interact(&rt, &mut app, |ui| {
        ui.click("Reject").expect("reject button");
    });
    assert_eq!(
        mock.calls().last(),
        Some(&Call::FileReject("t-in-2".into()))
    );
    assert!(shows(&app, "You declined it"));
}

#[test]
fn a_dropped_file_is_offered_and_a_vanished_one_is_said_so() {
    let rt = runtime();
    let (mut app, mock) = connected(&rt);
    let dir = tempfile::tempdir().expect("tempdir");
    let window = iced::window::Id::unique();
    // Nothing open: a drop does nothing.
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "hello").expect("write");
    step(
        &rt,
        &mut app,
        Message::Window(window, iced::window::Event::FileDropped(file.clone())),
    );
    assert!(!mock
        .calls()
        .iter()
        .any(|c| matches!(c, Call::FileSend { .. })));

    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::Open(BERTA.into())),
    );
    step(
        &rt,
        &mut app,
        Message::Window(window, iced::window::Event::FileHovered(file.clone())),
    );
    assert!(shows(&app, "Drop to send to Berta"));
    step(
        &rt,
        &mut app,
        Message::Window(window, iced::window::Event::FileDropped(file.clone())),
    );
    assert_eq!(
        mock.calls().last(),
        Some(&Call::FileSend {
            peer: BERTA.into(),
            paths: vec![file.clone()]
        })
    );
    assert!(!shows(&app, "Drop to send to Berta"));
    assert!(shows(&app, "notes.txt") && shows(&app, "Waiting for Berta to accept"));

    let gone = dir.path().join("gone.txt");
    step(
        &rt,
        &mut app,
        Message::Window(window, iced::window::Event::FileDropped(gone.clone())),
    );
    let error = app.chat.error.clone().expect("an error is shown");
    assert_eq!(
        error,
        format!("File: {}: no such file or folder", gone.display())
    );
    assert!(shows(&app, &error));
}

#[test]
fn typing_shows_from_events_and_is_sent_while_typing() {
    let rt = runtime();
    let (mut app, mock) = connected(&rt);
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::Open(BERTA.into())),
    );
    let typing = |from: &str, name: &str| {
        Message::Event(BackendEvent::Node(NodeEvent::Typing {
            from: from.into(),
            from_name: name.into(),
            device_id: "dev".into(),
        }))
    };
    step(&rt, &mut app, typing(BERTA, "Berta"));
    assert!(shows(&app, "Berta is typing…"));
    // Carol types to us too: not in Berta's conversation.
    step(&rt, &mut app, typing(CAROL, "Carol"));
    assert!(!shows(&app, "Carol is typing…"));
    // Berta's message ends her typing.
    step(
        &rt,
        &mut app,
        Message::Event(BackendEvent::Node(NodeEvent::MessageReceived {
            message: message("m-in-9", BERTA, ME, "done", "in"),
            from_name: "Berta".into(),
        })),
    );
    assert!(!shows(&app, "Berta is typing…"));
    // It also runs out by itself.
    step(&rt, &mut app, typing(BERTA, "Berta"));
    app.session
        .as_mut()
        .expect("session")
        .expire_typing(Instant::now() + TYPING_SHOWN);
    assert!(!shows(&app, "Berta is typing…"));

    // Typing in the composer tells the node, not once per key.
    interact(&rt, &mut app, |ui| {
        ui.click(selector::id(chat::COMPOSER_ID)).expect("composer");
        let _ = ui.typewrite("on my way");
    });
    let sent: Vec<_> = mock
        .calls()
        .into_iter()
        .filter(|c| matches!(c, Call::Typing(_)))
        .collect();
    assert_eq!(sent, vec![Call::Typing(BERTA.into())]);
}

#[test]
fn notifications_only_when_unfocused_and_not_busy_and_read_marks_follow_focus() {
    let rt = runtime();
    let (mut app, mock) = connected(&rt);
    let window = iced::window::Id::unique();
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::Open(BERTA.into())),
    );
    let mut n = 0;
    let mut incoming = |from: &str, name: &str| {
        n += 1;
        Message::Event(BackendEvent::Node(NodeEvent::MessageReceived {
            message: message(&format!("m-{n}"), from, ME, &format!("text {n}"), "in"),
            from_name: name.into(),
        }))
    };
    let reads = |mock: &MockBackend| {
        mock.calls()
            .iter()
            .filter(|c| matches!(c, Call::Read(_)))
            .count()
    };

    // Focused, in the open conversation: read at once, no notification.
    let before = reads(&mock);
    step(&rt, &mut app, incoming(BERTA, "Berta"));
    assert_eq!(reads(&mock), before + 1);
    // Focused, another conversation: unread badge, no notification.
    step(&rt, &mut app, incoming(CAROL, "Carol"));
    assert!(app.notified.is_empty());

    // Unfocused: a notification, and the open conversation is not read.
    step(
        &rt,
        &mut app,
        Message::Window(window, iced::window::Event::Unfocused),
    );
    let before = reads(&mock);
    step(&rt, &mut app, incoming(BERTA, "Berta"));
    assert_eq!(reads(&mock), before, "nobody saw it");
    assert_eq!(app.notified.len(), 1);
    assert_eq!(app.notified[0].title, "Berta");
    assert_eq!(app.notified[0].body, "text 3");
    assert_eq!(app.title(), "(2) tincan — Me");
    // A file offer notifies too.
    step(
        &rt,
        &mut app,
        Message::Event(BackendEvent::Node(NodeEvent::FileOffered {
            transfer: transfer("t-9", CAROL, "Carol", "in"),
        })),
    );
    assert_eq!(app.notified.len(), 2);
    assert_eq!(app.notified[1].body, "offers report.pdf");

    // Busy (do not disturb): quiet.
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::PresencePicked(Choice(PresenceState::Busy))),
    );
    step(&rt, &mut app, incoming(CAROL, "Carol"));
    assert_eq!(app.notified.len(), 2);

    // Online again but notifications turned off in Settings: quiet.
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::PresencePicked(Choice(PresenceState::Online))),
    );
    app.prefs.notifications = false;
    step(&rt, &mut app, incoming(CAROL, "Carol"));
    assert_eq!(app.notified.len(), 2);
    app.prefs.notifications = true;
    step(&rt, &mut app, incoming(CAROL, "Carol"));
    assert_eq!(app.notified.len(), 3);

    // Focus back: the open conversation counts as read.
    let before = reads(&mock);
    step(
        &rt,
        &mut app,
        Message::Window(window, iced::window::Event::Focused),
    );
    assert_eq!(reads(&mock), before + 1);
    assert_eq!(mock.calls().last(), Some(&Call::Read(BERTA.into())));
    assert_eq!(
        app.session.as_ref().expect("session").contacts[BERTA].unread,
        0
    );
}

#[test]
fn scrolling_to_the_top_loads_older_messages() {
    let rt = runtime();
    let (mut app, mock) = connected(&rt);
    let now = now_ms();
    let total = 150u64;
    *mock.history.lock().expect("lock") = (0..total)
        .map(|i| {
            let mut m = message(&format!("h-{i:03}"), BERTA, ME, &format!("old {i}"), "in");
            m.sent_at = now - (total - i) * 60_000;
            m
        })
        .collect();
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::Open(BERTA.into())),
    );
    let conversation =
        |app: &tincan_gui::App| app.session.as_ref().expect("session").conversations[BERTA].clone();
    assert_eq!(conversation(&app).messages.len(), PAGE as usize);
    assert!(conversation(&app).has_older);
    assert!(shows(&app, "old 149") && !shows(&app, "old 10"));
    assert!(shows(&app, "Load older messages"));

    // Scrolled near the top: the page before the oldest shown.
    let oldest = conversation(&app).messages[0].sent_at;
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::Scrolled { near_top: true }),
    );
    assert_eq!(
        mock.calls().last(),
        Some(&Call::HistoryBefore {
            peer: BERTA.into(),
            before: oldest + 1,
            limit: PAGE
        })
    );
    let c = conversation(&app);
    assert_eq!(c.messages.len(), total as usize, "all, once each");
    assert!(c.messages.windows(2).all(|w| w[0].sent_at <= w[1].sent_at));
    assert!(!c.has_older, "a short page: nothing older");
    assert!(shows(&app, "old 10") && !shows(&app, "Load older messages"));

    // At the top again: nothing more to ask.
    let calls = mock.calls().len();
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::Scrolled { near_top: true }),
    );
    assert_eq!(mock.calls().len(), calls);
}

#[test]
fn a_message_that_arrives_while_settings_show_is_read_on_coming_back() {
    let rt = runtime();
    let (mut app, mock) = connected(&rt);
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::Open(BERTA.into())),
    );
    step(&rt, &mut app, Message::Chat(chat::Message::OpenSettings));
    let calls = mock.calls().len();
    step(
        &rt,
        &mut app,
        Message::Event(BackendEvent::Node(NodeEvent::MessageReceived {
            message: message("m-s-1", BERTA, ME, "still there?", "in"),
            from_name: "Berta".into(),
        })),
    );
    assert_eq!(mock.calls().len(), calls, "not read while Settings show");
    assert_eq!(app.title(), "(1) tincan — Me");
    step(
        &rt,
        &mut app,
        Message::Shortcut(tincan_gui::app::Shortcut::Back),
    );
    assert_eq!(mock.calls().last(), Some(&Call::Read(BERTA.into())));
    assert_eq!(app.title(), "tincan — Me");
    assert!(shows(&app, "still there?"));
}

/// The mock knows the room "Lunch" with a membership line and one message;
/// the next tick brings it into the list.
fn with_lunch_room(rt: &tokio::runtime::Runtime, app: &mut App, mock: &MockBackend) {
    *mock.rooms.lock().expect("lock") = vec![lunch_room()];
    let mut joined = room_message("r-sys-1", LUNCH, BERTA, "Berta joined");
    joined.system = true;
    *mock.room_messages.lock().expect("lock") = vec![
        joined,
        room_message("r-in-1", LUNCH, BERTA, "pizza or sushi?"),
    ];
    step(rt, app, Message::Tick);
}

#[test]
fn the_rooms_group_lists_a_room_and_opening_it_shows_members_and_history() {
    let rt = runtime();
    let (mut app, mock) = connected(&rt);
    assert!(!shows(&app, "Rooms"), "no rooms, no group");
    with_lunch_room(&rt, &mut app, &mock);
    assert!(shows(&app, "Rooms") && shows(&app, "Lunch"));
    assert!(shows(&app, "3 members"));

    // The search finds rooms too; Enter opens the first match.
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::Search("lun".into())),
    );
    assert!(shows(&app, "Lunch") && !shows(&app, "Berta"));
    step(&rt, &mut app, Message::Chat(chat::Message::SearchSubmit));
    assert_eq!(mock.calls(), vec![Call::RoomHistory(LUNCH.into())]);
    assert!(shows(&app, "Fridays at noon"), "the topic");
    assert!(
        shows(&app, "Members: Berta, Carol, Me (admin)"),
        "members, admin marked"
    );
    assert!(shows(&app, "pizza or sushi?"), "a message");
    assert!(shows(&app, "Berta"), "its sender's name");
    let session = app.session.as_ref().expect("session");
    let clock = tincan_gui::timefmt::clock(session.rooms.conversations[LUNCH].messages[0].sent_at);
    assert!(
        shows(&app, &format!("Berta joined · {clock}")),
        "the membership line"
    );
    assert!(session.open.is_none(), "no 1:1 conversation is open");
    assert!(
        !session.conversations.contains_key(BERTA),
        "room messages stay out of the chat with their author"
    );
}

#[test]
fn enter_in_a_room_sends_to_the_room_and_shows_the_bubble() {
    let rt = runtime();
    let (mut app, mock) = connected(&rt);
    with_lunch_room(&rt, &mut app, &mock);
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::OpenRoom(LUNCH.into())),
    );
    interact(&rt, &mut app, |ui| {
        ui.click(selector::id(chat::COMPOSER_ID)).expect("composer");
        let _ = ui.typewrite("sushi!");
        let _ = ui.tap_key(iced::keyboard::Key::Named(Named::Enter));
    });
    assert_eq!(
        mock.calls().last(),
        Some(&Call::RoomSend {
            room: LUNCH.into(),
            text: "sushi!".into()
        })
    );
    assert!(!mock.calls().iter().any(|c| matches!(c, Call::Send { .. })));
    assert!(
        app.chat.composer.text().trim().is_empty(),
        "composer cleared"
    );
    assert!(shows(&app, "sushi!"), "the bubble shows");
    let session = app.session.as_ref().expect("session");
    assert_eq!(session.rooms.conversations[LUNCH].messages.len(), 3);

    // A room the node refuses: the text comes back with the reason.
    mock.rooms.lock().expect("lock").clear();
    interact(&rt, &mut app, |ui| {
        ui.click(selector::id(chat::COMPOSER_ID)).expect("composer");
        let _ = ui.typewrite("anyone?");
        let _ = ui.tap_key(iced::keyboard::Key::Named(Named::Enter));
    });
    assert_eq!(app.chat.composer.text().trim(), "anyone?");
    assert!(shows(&app, &format!("Not sent: no room {LUNCH}")));
}

#[test]
fn a_room_message_event_lands_in_its_room_and_counts_unread_when_not_open() {
    let rt = runtime();
    let (mut app, mock) = connected(&rt);
    with_lunch_room(&rt, &mut app, &mock);
    step(
        &rt,
        &mut app,
        Message::Chat(chat::Message::Open(BERTA.into())),
    );
    let received = |id: &str, text: &str| {
        Message::Event(BackendEvent::Node(NodeEvent::MessageReceived {
            message: room_message(id, LUNCH, CAROL, text),
            from_name: "Carol".into(),
        }))
    };
    step(&rt, &mut app, received("r-in-2", "sushi it is"));
    // A repeat (at-least-once delivery) does not count twice.
    step(&rt, &mut app, received("r-in-2", "sushi it is"));
    let session = app.session.as_ref().expect("session");
    assert_eq!(session.rooms.list[LUNCH].unread, 1);
    assert_eq!(session.contacts[CAROL].unread, 0, "not a 1:1 message");
    assert!(!session.conversations.contains_key(CAROL));
    assert_eq!(app.title(), "(1) tincan — Me");
    assert!(shows(&app, "1"), "the room's badge");

    interact(&rt, &mut app, |ui| {
        ui.click("Lunch").expect("room");
    });
    assert_eq!(
        app.session.as_ref().expect("session").rooms.list[LUNCH].unread,
        0
    );
    assert_eq!(app.title(), "tincan — Me");
    assert!(shows(&app, "sushi it is") && shows(&app, "pizza or sushi?"));

    // While the room is open, a new message shows without counting.
    step(&rt, &mut app, received("r-in-3", "12:30 then"));
    assert!(shows(&app, "12:30 then"));
    assert_eq!(
        app.session.as_ref().expect("session").rooms.list[LUNCH].unread,
        0
    );

    // A message of a room the app does not know yet reloads the list.
    *mock.rooms.lock().expect("lock") = vec![lunch_room(), {
        let mut other = lunch_room();
        other.id = "0therroom".into();
        other.name = "Release".into();
        other
    }];
    step(
        &rt,
        &mut app,
        Message::Event(BackendEvent::Node(NodeEvent::MessageReceived {
            message: room_message("r-in-4", "0therroom", BERTA, "ship it"),
            from_name: "Berta".into(),
        })),
    );
    assert!(shows(&app, "Release"), "the new room is listed");
    let session = app.session.as_ref().expect("session");
    assert_eq!(
        session.rooms.list["0therroom"].unread, 1,
        "and its message counted"
    );
    assert_eq!(app.title(), "(1) tincan — Me");
}

#[test]
fn a_room_message_notifies_when_the_window_is_unfocused() {
    let rt = runtime();
    let (mut app, mock) = connected(&rt);
    with_lunch_room(&rt, &mut app, &mock);
    let window = iced::window::Id::unique();
    step(
        &rt,
        &mut app,
        Message::Window(window, iced::window::Event::Unfocused),
    );
    step(
        &rt,
        &mut app,
        Message::Event(BackendEvent::Node(NodeEvent::MessageReceived {
            message: room_message("r-in-9", LUNCH, CAROL, "standup in 5"),
            from_name: "Carol".into(),
        })),
    );
    assert_eq!(app.notified.len(), 1, "{:?}", app.notified);
    assert_eq!(app.notified[0].title, "Carol in Lunch");
    assert_eq!(app.notified[0].body, "standup in 5");
    // A membership line is no news.
    let mut line = room_message("r-sys-9", LUNCH, BERTA, "Berta left");
    line.system = true;
    step(
        &rt,
        &mut app,
        Message::Event(BackendEvent::Node(NodeEvent::MessageReceived {
            message: line,
            from_name: "Berta".into(),
        })),
    );
    assert_eq!(app.notified.len(), 1);
}
