//! One file transfer in the conversation: a card with the name and size,
//! what is happening (words from `file::describe`), a progress bar
//! while it moves, and the buttons that fit its state — Accept / Reject
//! for an offer, Cancel while it can move, Open folder when received.

use iced::widget::{button, column, container, progress_bar, row, space, text};
use iced::{Alignment, Element, Fill};
use tincan_node::api::TransferState;
use tincan_node::api::TransferView;

use super::Message;
use crate::file;
use crate::style::{self, SMALL, TEXT};

/// The card; incoming on the left, outgoing on the right, like bubbles.
pub fn card(t: &TransferView) -> Element<'_, Message> {
    let incoming = t.direction == "in";
    let count = if t.count > 1 {
        format!(" · {} files", t.count)
    } else {
        String::new()
    };
    let title = row![
        text(&t.name).size(TEXT),
        text(format!("{}{count}", file::size(t.size)))
            .size(SMALL)
            .style(style::weak_text),
    ]
    .spacing(6)
    .align_y(Alignment::Center);
    let state = text(file::describe(t)).size(SMALL);
    let state = match t.state {
        TransferState::Failed => state.color(style::failed_color()),
        TransferState::Done => state.style(style::ok_text),
        _ => state.style(style::weak_text),
    };
    let mut body = column![title].spacing(6);
    if matches!(
        t.state,
        TransferState::Transferring | TransferState::Paused | TransferState::Accepted
    ) {
        body = body.push(
            row![
                progress_bar(0.0..=1.0, file::progress(t)).girth(8),
                text(format!("{:.0} %", file::progress(t) * 100.0)).size(SMALL),
            ]
            .spacing(8)
            .align_y(Alignment::Center),
        );
    }
    body = body.push(state);

    let mut buttons = row![].spacing(8);
    if file::awaits_answer(t) {
        buttons = buttons
            .push(
                button(text("Accept").size(SMALL))
                    .on_press(Message::FileAccept(t.id.clone()))
                    .padding([4, 12]),
            )
            .push(
                button(text("Reject").size(SMALL))
                    .on_press(Message::FileReject(t.id.clone()))
                    .style(style::framed_button)
                    .padding([4, 12]),
            );
    } else if file::is_active(t) {
        buttons = buttons.push(
            button(text("Cancel").size(SMALL))
                .on_press(Message::FileCancel(t.id.clone()))
                .style(style::framed_button)
                .padding([4, 12]),
        );
    } else if file::folder_of(t).is_some() {
        buttons = buttons.push(
            button(text("Open folder").size(SMALL))
                .on_press(Message::OpenFolder(t.id.clone()))
                .style(style::framed_button)
                .padding([4, 12]),
        );
    }
    body = body.push(buttons);

    let card = container(body)
        .padding([8, 12])
        .max_width(style::BUBBLE_MAX)
        .style(style::card);
    if incoming {
        row![card, space().width(Fill)].into()
    } else {
        row![space().width(Fill), card].into()
    }
}
