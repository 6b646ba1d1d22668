//! The main screen's messenger features through the real `update` and
//! `view` with a mock backend (see `common/mod.rs`): presence, file offers
//! and progress, dropped files, typing, notifications and read marks,
//! history paging.

mod common;

use common::*;
use iced::keyboard::key::Named;
use iced_test::selector;
use std::time::Instant;
use tincan_gui::app::Message;
use tincan_gui::backend::BackendEvent;

use tincan_core::PresenceState;
use tincan_gui::chat;
use tincan_gui::presence::Choice;
use tincan_gui::session::{PAGE, TYPING_SHOWN};
use tincan_node::NodeEvent;
use tincan_node::TransferState;

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
