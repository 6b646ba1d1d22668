//! The main screen's widgets. Reads [`Chat`] and [`Session`], decides nothing.

use iced::keyboard::key::Named;
use iced::keyboard::Key;
use iced::widget::text_editor::{self, Binding, KeyPress};
use iced::widget::{
    button, center, column, container, pick_list, row, rule, scrollable, space, text, text_input,
    tooltip, Column,
};
use iced::{Alignment, Element, Fill, Length};
use tincan_node::api::{MessageState, MessageView, PresenceView, TransferView};

use super::{file_view, room_view, Chat, Message, COMPOSER_ID, MESSAGES_ID, NOTE_ID, SEARCH_ID};
use crate::presence::Choice;
use crate::session::{Contact, Group, Presence, Session};
use crate::status;
use crate::style::{self, HEADING, SMALL, TEXT};
use crate::timefmt;

/// The whole main screen.
pub fn view<'a>(chat: &'a Chat, session: &'a Session) -> Element<'a, Message> {
    let body = row![
        sidebar(chat, session),
        rule::vertical(1),
        conversation(chat, session)
    ]
    .height(Fill);
    column![body, rule::horizontal(1), status_bar(session)].into()
}

fn sidebar<'a>(chat: &'a Chat, session: &'a Session) -> Element<'a, Message> {
    let header = own_presence(chat, session);
    let search = text_input("Search colleagues", &chat.search)
        .id(SEARCH_ID)
        .on_input(Message::Search)
        .on_submit(Message::SearchSubmit)
        .size(TEXT)
        .padding(8);

    let groups = session.visible_contacts(&chat.search);
    let rooms = session.visible_rooms(&chat.search);
    let mut list = Column::new().spacing(2);
    if groups.is_empty() && rooms.is_empty() {
        let hint = if chat.search.trim().is_empty() {
            "No colleagues yet. They appear here as soon as their tincan runs on this network."
                .to_string()
        } else {
            format!("Nobody matches “{}”.", chat.search.trim())
        };
        list = list.push(text(hint).size(SMALL).style(style::weak_text));
    }
    for (group, contacts) in groups {
        list = list.push(
            container(text(group.title()).size(SMALL).style(style::weak_text)).padding([8, 4]),
        );
        for contact in contacts {
            let selected = session.open.as_deref() == Some(contact.user_id.as_str());
            list = list.push(contact_row(contact, selected));
        }
    }
    if !rooms.is_empty() {
        list = list.push(
            container(
                text(Group::Rooms.title())
                    .size(SMALL)
                    .style(style::weak_text),
            )
            .padding([8, 4]),
        );
        for room in rooms {
            let selected = session.open_room.as_deref() == Some(room.id());
            list = list.push(room_view::row_of(room, selected));
        }
    }

    container(
        column![header, search, scrollable(list).height(Fill)]
            .spacing(12)
            .padding(12),
    )
    .width(Length::Fixed(style::SIDEBAR))
    .height(Fill)
    .style(style::panel)
    .into()
}

/// What this user's own presence means beyond its name, if anything.
pub fn presence_hint(presence: &PresenceView) -> Option<String> {
    let choice = Choice::parse(&presence.presence)?;
    if presence.auto_away {
        let back = Choice::parse(&presence.chosen).unwrap_or(Choice::ALL[0]);
        return Some(format!(
            "Away after {} min idle; {back} again on your next input",
            presence.idle_secs / 60
        ));
    }
    match choice.0 {
        tincan_core::PresenceState::Busy => Some("Do not disturb: no notifications".into()),
        tincan_core::PresenceState::AppearOffline => {
            Some("Colleagues see you as offline; messages still arrive".into())
        }
        _ => None,
    }
}

/// The sidebar's header: own name and dot, presence picker, note, Settings.
fn own_presence<'a>(chat: &'a Chat, session: &'a Session) -> Element<'a, Message> {
    let choice = session
        .presence
        .as_ref()
        .and_then(|p| Choice::parse(&p.presence));
    let dot = choice.map_or(Presence::Offline, Choice::dot);
    // The frame takes the presence colour. Besides showing it, that makes
    // the renderer repaint the whole box when the state changes: iced
    // 0.14's software renderer otherwise repaints only the lower half of a
    // vertically centred label that changes alone (seen under Xvfb).
    let picker = pick_list(Choice::ALL, choice, Message::PresencePicked)
        .placeholder("…")
        .text_size(SMALL)
        .padding([4, 8])
        .width(Fill)
        .style(style::presence_picker(style::presence_color(dot)));
    let top = row![
        style::dot(style::presence_color(dot), 10.0),
        text(&session.me.name).size(HEADING).width(Fill),
        button(text("Settings").size(SMALL))
            .on_press(Message::OpenSettings)
            .style(style::framed_button)
            .padding([4, 10]),
    ]
    .spacing(8)
    .align_y(Alignment::Center);
    let note = text_input("Add a note for colleagues (Enter sets it)", &chat.note)
        .id(NOTE_ID)
        .on_input(Message::NoteInput)
        .on_submit(Message::NoteSubmit)
        .size(SMALL)
        .padding(6);
    let mut header = column![top, picker, note].spacing(6);
    if let Some(hint) = session.presence.as_ref().and_then(presence_hint) {
        header = header.push(text(hint).size(SMALL).style(style::weak_text));
    }
    if let Some(error) = &chat.presence_error {
        header = header.push(text(error).size(SMALL).style(style::error_text));
    }
    header.into()
}

/// `busy · in a meeting`.
fn presence_line(contact: &Contact) -> String {
    match contact.note() {
        Some(note) => format!("{} · {note}", contact.presence().label()),
        None => contact.presence().label().to_string(),
    }
}

fn contact_row(contact: &Contact, selected: bool) -> Element<'_, Message> {
    let presence = contact.presence();
    let details = column![
        text(&contact.name).size(TEXT),
        text(presence_line(contact))
            .size(SMALL)
            .style(style::weak_text),
    ]
    .width(Fill);
    let mut line = row![style::dot(style::presence_color(presence), 10.0), details]
        .spacing(10)
        .align_y(Alignment::Center);
    if contact.unread > 0 {
        line = line.push(
            container(text(contact.unread.to_string()).size(SMALL))
                .padding([1, 7])
                .style(style::badge),
        );
    }
    button(line)
        .on_press(Message::Open(contact.user_id.clone()))
        .width(Fill)
        .padding([6, 8])
        .style(style::contact_row(selected))
        .into()
}

fn conversation<'a>(chat: &'a Chat, session: &'a Session) -> Element<'a, Message> {
    if let Some(room) = session.open_room_view() {
        return room_view::pane(chat, session, room);
    }
    let Some(contact) = session.open_contact() else {
        return center(
            column![
                text("Pick a colleague on the left to start a conversation.").size(TEXT),
                text("Tip: type a name in the search box and press Enter.")
                    .size(SMALL)
                    .style(style::weak_text),
            ]
            .spacing(6)
            .align_x(Alignment::Center),
        )
        .into();
    };
    let presence = contact.presence();
    let devices = match contact.devices.len() {
        0 => String::new(),
        1 => " · 1 device".to_string(),
        n => format!(" · {n} devices"),
    };
    let header = row![
        style::dot(style::presence_color(presence), 12.0),
        column![
            text(&contact.name).size(HEADING),
            text(format!(
                "{} · {}{devices}",
                presence_line(contact),
                contact.group().phrase()
            ))
            .size(SMALL)
            .style(style::weak_text),
        ]
    ]
    .spacing(10)
    .align_y(Alignment::Center)
    .padding([10, 16]);

    let conversation = session.conversations.get(&contact.user_id);
    let transfers = session.transfers_with(&contact.user_id);
    let mut messages = Column::new().spacing(6).padding([8, 16]);
    if let Some(c) = conversation {
        if c.loading_older {
            messages = messages.push(
                text("Loading older messages…")
                    .size(SMALL)
                    .style(style::weak_text),
            );
        } else if c.has_older {
            messages = messages.push(
                container(
                    button(text("Load older messages").size(SMALL))
                        .on_press(Message::LoadOlder)
                        .style(style::framed_button)
                        .padding([4, 12]),
                )
                .center_x(Fill),
            );
        }
    }
    let shown = conversation.map_or(&[][..], |c| c.messages.as_slice());
    match conversation {
        _ if !shown.is_empty() || !transfers.is_empty() => {
            let today = timefmt::today();
            let mut last_day = None;
            let has_older = conversation.is_some_and(|c| c.has_older);
            for item in timeline(shown, &transfers, has_older) {
                let day = timefmt::day(item.at());
                if day != last_day {
                    if let Some(day) = day {
                        messages = messages.push(day_separator(timefmt::day_label(day, today)));
                    }
                    last_day = day;
                }
                messages = messages.push(match item {
                    Item::Message(m) => bubble(m, m.direction == "out"),
                    Item::File(t) => file_view::card(t),
                });
            }
        }
        Some(c) if !c.loaded && c.error.is_none() => {
            messages = messages.push(text("Loading…").size(SMALL).style(style::weak_text));
        }
        None => {
            messages = messages.push(text("Loading…").size(SMALL).style(style::weak_text));
        }
        _ => {
            messages = messages.push(
                text(format!("No messages with {} yet. Say hello!", contact.name))
                    .size(SMALL)
                    .style(style::weak_text),
            );
        }
    }
    if let Some(error) = conversation.and_then(|c| c.error.as_ref()) {
        messages = messages.push(
            text(format!("Cannot load the history: {error}"))
                .size(SMALL)
                .style(style::error_text),
        );
    }
    let messages = scrollable(messages)
        .id(MESSAGES_ID)
        .anchor_bottom()
        .on_scroll(|viewport| Message::Scrolled {
            // Anchored at the bottom: the reversed offset is the distance
            // from the top.
            near_top: viewport.absolute_offset_reversed().y < NEAR_TOP,
        })
        .height(Fill)
        .width(Fill);

    let mut pane = column![header, rule::horizontal(1), messages];
    if let Some(name) = session.typing_name(&contact.user_id) {
        pane = pane.push(
            container(
                text(format!("{name} is typing…"))
                    .size(SMALL)
                    .style(style::weak_text),
            )
            .padding([2, 16]),
        );
    }
    pane.push(composer(chat, &contact.name, true))
        .width(Fill)
        .into()
}

/// How close to the top (pixels) the list must scroll to load older messages.
const NEAR_TOP: f32 = 48.0;

/// A message or a file transfer, in the conversation's order.
enum Item<'a> {
    Message(&'a MessageView),
    File(&'a TransferView),
}

impl Item<'_> {
    fn at(&self) -> u64 {
        match self {
            Item::Message(m) => m.sent_at,
            Item::File(t) => t.created_at,
        }
    }
}

/// Messages and transfers merged by time. Transfers older than the oldest
/// loaded message wait until that page is loaded, so a card never sits
/// above messages that are still to come.
fn timeline<'a>(
    messages: &'a [MessageView],
    transfers: &[&'a TransferView],
    has_older: bool,
) -> Vec<Item<'a>> {
    let oldest = messages.first().map(|m| m.sent_at);
    let mut items: Vec<Item<'a>> = messages.iter().map(Item::Message).collect();
    items.extend(
        transfers
            .iter()
            .filter(|t| !has_older || oldest.is_none_or(|o| t.created_at >= o))
            .map(|t| Item::File(t)),
    );
    items.sort_by_key(Item::at);
    items
}

pub(super) fn day_separator<'a>(label: String) -> Element<'a, Message> {
    row![
        rule::horizontal(1),
        text(label).size(SMALL).style(style::weak_text),
        rule::horizontal(1),
    ]
    .spacing(10)
    .align_y(Alignment::Center)
    .padding([6, 0])
    .into()
}

/// The mark after an outgoing message's time, and what it means.
pub fn tick(state: MessageState) -> (&'static str, &'static str) {
    match state {
        MessageState::Queued => ("…", "Queued: waiting for a way to their device"),
        MessageState::Sent => ("✓", "Sent: handed on, not yet on their device"),
        MessageState::Delivered => ("✓✓", "Delivered to their device"),
        MessageState::Read => ("✓✓", "Read"),
        MessageState::Failed => ("✕", "Not delivered"),
    }
}

fn bubble(message: &MessageView, outgoing: bool) -> Element<'_, Message> {
    let mut meta = row![text(timefmt::clock(message.sent_at))
        .size(SMALL)
        .style(style::weak_text)]
    .spacing(4);
    if outgoing {
        let (mark, meaning) = tick(message.state);
        let mark = match message.state {
            MessageState::Read => text(mark).size(SMALL).style(style::ok_text),
            MessageState::Failed => text(mark).size(SMALL).color(style::failed_color()),
            _ => text(mark).size(SMALL).style(style::weak_text),
        };
        meta = meta.push(tooltip(
            mark,
            container(text(meaning).size(SMALL))
                .padding(6)
                .style(style::card),
            tooltip::Position::Top,
        ));
    }
    let mut body = column![text(&message.text).size(TEXT), meta].spacing(3);
    if message.state == MessageState::Failed {
        body = body.push(
            text(format!(
                "Not delivered: {}",
                message.error.as_deref().unwrap_or("gave up")
            ))
            .size(SMALL)
            .color(style::failed_color()),
        );
    }
    placed(body, outgoing)
}

/// A bubble around `body`, on the right for our own messages, on the left
/// for others'.
pub(super) fn placed<'a>(body: Column<'a, Message>, outgoing: bool) -> Element<'a, Message> {
    let bubble = container(body.align_x(if outgoing {
        Alignment::End
    } else {
        Alignment::Start
    }))
    .padding([7, 12])
    .max_width(style::BUBBLE_MAX)
    .style(style::bubble(outgoing));
    if outgoing {
        row![space().width(Fill), bubble].into()
    } else {
        row![bubble, space().width(Fill)].into()
    }
}

/// Enter sends, Shift+Enter breaks the line, Alt+Up/Down switch the
/// conversation; the rest as usual.
fn composer_keys(key_press: KeyPress) -> Option<Binding<Message>> {
    let focused = matches!(key_press.status, text_editor::Status::Focused { .. });
    if focused && key_press.modifiers.alt() {
        match key_press.key {
            Key::Named(Named::ArrowDown) => return Some(Binding::Custom(Message::Step(1))),
            Key::Named(Named::ArrowUp) => return Some(Binding::Custom(Message::Step(-1))),
            _ => {}
        }
    }
    if focused && key_press.key == Key::Named(Named::Enter) {
        return Some(if key_press.modifiers.shift() {
            Binding::Enter
        } else {
            Binding::Custom(Message::Send)
        });
    }
    Binding::from_key_press(key_press)
}

/// The composer; `files`: with "Send file…" (1:1 conversations only).
pub(super) fn composer<'a>(chat: &'a Chat, name: &str, files: bool) -> Element<'a, Message> {
    let editor = iced::widget::text_editor(&chat.composer)
        .id(COMPOSER_ID)
        .placeholder(format!("Message {name}"))
        .on_action(Message::Edit)
        .key_binding(composer_keys)
        .size(TEXT)
        .padding(10)
        .max_height(180.0);
    let send = button(text("Send").size(TEXT))
        .on_press_maybe((!chat.composer.is_empty()).then_some(Message::Send))
        .padding([10, 18]);
    let attach = tooltip(
        button(text("Send file…").size(TEXT))
            .on_press(Message::AttachFiles)
            .style(style::framed_button)
            .padding([10, 12]),
        container(text("Or drop files onto the window").size(SMALL))
            .padding(6)
            .style(style::card),
        tooltip::Position::Top,
    );
    let mut pane = Column::new().spacing(6).padding([10, 16]);
    if chat.drop_hover {
        pane = pane.push(
            text(format!("Drop to send to {name}"))
                .size(TEXT)
                .style(style::ok_text),
        );
    }
    if let Some(error) = &chat.error {
        pane = pane.push(text(error).size(SMALL).style(style::error_text));
    }
    let line = if files {
        row![attach, editor, send]
    } else {
        row![editor, send]
    };
    let hint = if files {
        "Enter sends · Shift+Enter starts a new line · drop files here to send them"
    } else {
        "Enter sends · Shift+Enter starts a new line"
    };
    pane.push(line.spacing(8).align_y(Alignment::End))
        .push(text(hint).size(SMALL).style(style::weak_text))
        .into()
}

fn status_bar(session: &Session) -> Element<'_, Message> {
    let line = status::describe(session);
    let mut bar = row![style::dot(style::tone_color(line.tone), 9.0)]
        .spacing(8)
        .align_y(Alignment::Center);
    if line.is_gateway {
        bar = bar.push(
            container(text("Branch gateway").size(SMALL))
                .padding([1, 8])
                .style(style::badge),
        );
    }
    bar = bar.push(text(line.text).size(SMALL).width(Fill));
    if session.ended.is_some() {
        bar = bar.push(
            button(text("Reconnect").size(SMALL))
                .on_press(Message::Reconnect)
                .padding([3, 10]),
        );
    }
    container(bar.padding([5, 12]))
        .width(Fill)
        .style(style::panel)
        .into()
}
