//! Rooms in the main screen through the real `update` and `view` with a
//! mock backend (see `common/mod.rs`): the Rooms group, the room view with
//! members, sending to a room, room events and their notifications.

mod common;

use common::*;
use iced::keyboard::key::Named;
use iced_test::selector;
use tincan_gui::app::Message;
use tincan_gui::backend::BackendEvent;
use tincan_gui::App;

use tincan_gui::chat;
use tincan_node::NodeEvent;

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
