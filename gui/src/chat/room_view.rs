//! A room on the main screen: its row in the contact list, and the open
//! room (header with name, topic and members, bubbles with the sender's
//! name, membership lines centred and grey, the composer).

use iced::widget::{button, column, container, row, rule, scrollable, text, Column};
use iced::{Alignment, Element, Fill};
use tincan_node::api::MessageView;

use super::view::{composer, day_separator, placed};
use super::{Chat, Message, MESSAGES_ID};
use crate::session::{Room, Session};
use crate::style::{self, HEADING, SMALL, TEXT};
use crate::timefmt;

/// A room's row in the list; `selected` for the open room.
pub fn row_of(room: &Room, selected: bool) -> Element<'_, Message> {
    let details = column![
        text(&room.view.name).size(TEXT),
        text(room.summary()).size(SMALL).style(style::weak_text),
    ]
    .width(Fill);
    let mut line = row![text("#").size(TEXT).style(style::weak_text), details]
        .spacing(10)
        .align_y(Alignment::Center);
    if room.unread > 0 {
        line = line.push(
            container(text(room.unread.to_string()).size(SMALL))
                .padding([1, 7])
                .style(style::badge),
        );
    }
    button(line)
        .on_press(Message::OpenRoom(room.view.id.clone()))
        .width(Fill)
        .padding([6, 8])
        .style(style::contact_row(selected))
        .into()
}

/// `Members: Anna (admin), Berta`, by name (the node lists them by id).
pub fn members_line(room: &Room) -> String {
    let mut members: Vec<_> = room.view.members.iter().collect();
    members.sort_by_key(|m| (m.name.to_lowercase(), m.user_id.clone()));
    let names: Vec<String> = members
        .into_iter()
        .map(|m| {
            if m.admin {
                format!("{} (admin)", m.name)
            } else {
                m.name.clone()
            }
        })
        .collect();
    format!("Members: {}", names.join(", "))
}

/// The open room.
pub fn pane<'a>(chat: &'a Chat, session: &'a Session, room: &'a Room) -> Element<'a, Message> {
    let mut head = column![text(&room.view.name).size(HEADING)];
    if !room.view.topic.trim().is_empty() {
        head = head.push(text(&room.view.topic).size(SMALL));
    }
    head = head.push(text(members_line(room)).size(SMALL).style(style::weak_text));
    if room.view.disabled {
        head = head.push(
            text("This room is disabled: readable, it takes no new messages.")
                .size(SMALL)
                .style(style::weak_text),
        );
    } else if !room.view.joined {
        head = head.push(
            text("You are no longer a member: messages stay readable here.")
                .size(SMALL)
                .style(style::weak_text),
        );
    }
    let header = container(head.spacing(2)).padding([10, 16]);

    let conversation = session.rooms.conversations.get(room.id());
    let mut messages = Column::new().spacing(6).padding([8, 16]);
    let shown = conversation.map_or(&[][..], |c| c.messages.as_slice());
    if shown.is_empty() {
        let hint = match conversation {
            Some(c) if c.loaded || c.error.is_some() => {
                format!("No messages in {} yet. Say hello!", room.view.name)
            }
            _ => "Loading…".to_string(),
        };
        messages = messages.push(text(hint).size(SMALL).style(style::weak_text));
    }
    let today = timefmt::today();
    let mut last_day = None;
    for message in shown {
        let day = timefmt::day(message.sent_at);
        if day != last_day {
            if let Some(day) = day {
                messages = messages.push(day_separator(timefmt::day_label(day, today)));
            }
            last_day = day;
        }
        messages = messages.push(if message.system {
            system_line(message)
        } else {
            bubble(message, session.name_in_room(room, &message.from))
        });
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
        .height(Fill)
        .width(Fill);
    column![
        header,
        rule::horizontal(1),
        messages,
        composer(chat, &room.view.name, false)
    ]
    .width(Fill)
    .into()
}

/// `Berta joined`, centred and grey.
fn system_line(message: &MessageView) -> Element<'_, Message> {
    container(
        text(format!(
            "{} · {}",
            message.text,
            timefmt::clock(message.sent_at)
        ))
        .size(SMALL)
        .style(style::weak_text),
    )
    .center_x(Fill)
    .into()
}

fn bubble(message: &MessageView, sender: String) -> Element<'_, Message> {
    let outgoing = message.direction == "out";
    let mut body = column![].spacing(3);
    if !outgoing {
        body = body.push(text(sender).size(SMALL).style(style::weak_text));
    }
    let shown = if message.deleted {
        "(message deleted)"
    } else {
        message.text.as_str()
    };
    body = body.push(text(shown).size(TEXT)).push(
        text(timefmt::clock(message.sent_at))
            .size(SMALL)
            .style(style::weak_text),
    );
    placed(body, outgoing)
}
