//! Colours and shapes shared by the screens, derived from the theme's
//! palette so that light and dark both read well.

use iced::widget::{container, text};
use iced::{border, Background, Border, Color, Element, Length, Theme};

use crate::session::Presence;
use crate::status::Tone;

/// Body text size at 100 %.
pub const TEXT: f32 = 15.0;
/// Secondary text (timestamps, hints).
pub const SMALL: f32 = 12.5;
/// Headings.
pub const HEADING: f32 = 18.0;
/// Widest a bubble grows, so long lines stay readable.
pub const BUBBLE_MAX: f32 = 560.0;
/// Width of the contact list.
pub const SIDEBAR: f32 = 290.0;

const GREEN: Color = Color::from_rgb(0.18, 0.68, 0.35);
const AMBER: Color = Color::from_rgb(0.93, 0.62, 0.12);
const RED: Color = Color::from_rgb(0.85, 0.25, 0.25);
const GREY: Color = Color::from_rgb(0.6, 0.6, 0.62);
const ORANGE: Color = Color::from_rgb(0.85, 0.45, 0.1);
const MAGENTA: Color = Color::from_rgb(0.72, 0.22, 0.55);

/// A round dot of `color`, `size` pixels across.
pub fn dot<'a, M: 'a>(color: Color, size: f32) -> Element<'a, M> {
    container(text(""))
        .width(Length::Fixed(size))
        .height(Length::Fixed(size))
        .style(move |_: &Theme| container::Style {
            background: Some(Background::Color(color)),
            border: border::rounded(size / 2.0),
            ..container::Style::default()
        })
        .into()
}

/// The presence dot's colour: one per state (the header's picker relies
/// on it to repaint, see `chat/view.rs`).
pub fn presence_color(presence: Presence) -> Color {
    match presence {
        Presence::Online => GREEN,
        Presence::Away => AMBER,
        Presence::OutToLunch => ORANGE,
        Presence::Busy => RED,
        Presence::OnThePhone => MAGENTA,
        Presence::Offline => GREY,
    }
}

/// The status line's dot colour.
pub fn tone_color(tone: Tone) -> Color {
    match tone {
        Tone::Good => GREEN,
        Tone::Warning => AMBER,
        Tone::Offline => RED,
        Tone::Unknown => GREY,
    }
}

/// Text in the colour of errors.
pub fn error_text(theme: &Theme) -> text::Style {
    text::Style {
        color: Some(theme.extended_palette().danger.base.color),
    }
}

/// Text in the colour of success.
pub fn ok_text(theme: &Theme) -> text::Style {
    text::Style {
        color: Some(theme.extended_palette().success.base.color),
    }
}

/// Dimmed text (timestamps, hints).
pub fn weak_text(theme: &Theme) -> text::Style {
    let palette = theme.extended_palette();
    text::Style {
        color: Some(Color {
            a: 0.65,
            ..palette.background.base.text
        }),
    }
}

/// A message bubble: ours in the primary colour, theirs in a soft grey.
pub fn bubble(outgoing: bool) -> impl Fn(&Theme) -> container::Style {
    move |theme: &Theme| {
        let palette = theme.extended_palette();
        let pair = if outgoing {
            palette.primary.weak
        } else {
            palette.background.weak
        };
        container::Style {
            background: Some(Background::Color(pair.color)),
            text_color: Some(pair.text),
            border: border::rounded(12),
            ..container::Style::default()
        }
    }
}

/// The sidebar and the status bar: a step away from the background.
pub fn panel(theme: &Theme) -> container::Style {
    let palette = theme.extended_palette();
    container::Style {
        background: Some(Background::Color(palette.background.weakest.color)),
        text_color: Some(palette.background.weakest.text),
        ..container::Style::default()
    }
}

/// The unread-count badge.
pub fn badge(theme: &Theme) -> container::Style {
    let palette = theme.extended_palette();
    container::Style {
        background: Some(Background::Color(palette.primary.base.color)),
        text_color: Some(palette.primary.base.text),
        border: border::rounded(9),
        ..container::Style::default()
    }
}

/// A card on the settings and first-run screens.
pub fn card(theme: &Theme) -> container::Style {
    let palette = theme.extended_palette();
    container::Style {
        background: Some(Background::Color(palette.background.weakest.color)),
        text_color: Some(palette.background.weakest.text),
        border: Border {
            width: 1.0,
            radius: 8.0.into(),
            color: palette.background.strong.color,
        },
        ..container::Style::default()
    }
}

/// The colour of a failed message's mark.
pub fn failed_color() -> Color {
    RED
}

/// A row of the contact list; `selected` for the open conversation.
pub fn contact_row(
    selected: bool,
) -> impl Fn(&Theme, iced::widget::button::Status) -> iced::widget::button::Style {
    use iced::widget::button::{Status, Style};
    move |theme: &Theme, status: Status| {
        let palette = theme.extended_palette();
        let background = match (selected, status) {
            (true, _) => Some(palette.background.strong.color),
            (false, Status::Hovered | Status::Pressed) => Some(palette.background.weak.color),
            (false, _) => None,
        };
        Style {
            background: background.map(Background::Color),
            text_color: palette.background.base.text,
            border: border::rounded(6),
            ..Style::default()
        }
    }
}

/// A quiet button with a frame (the sidebar's Settings).
pub fn framed_button(
    theme: &Theme,
    status: iced::widget::button::Status,
) -> iced::widget::button::Style {
    use iced::widget::button::{Status, Style};
    let palette = theme.extended_palette();
    let background = match status {
        Status::Hovered | Status::Pressed => palette.background.weak.color,
        _ => palette.background.base.color,
    };
    Style {
        background: Some(Background::Color(background)),
        text_color: palette.background.base.text,
        border: Border {
            width: 1.0,
            radius: 6.0.into(),
            color: palette.background.strong.color,
        },
        ..Style::default()
    }
}

/// The header's presence picker, framed in the presence colour.
pub fn presence_picker(
    color: Color,
) -> impl Fn(&Theme, iced::widget::pick_list::Status) -> iced::widget::pick_list::Style {
    move |theme: &Theme, status| {
        let mut style = iced::widget::pick_list::default(theme, status);
        style.border = Border {
            width: 1.5,
            radius: 6.0.into(),
            color,
        };
        style
    }
}
