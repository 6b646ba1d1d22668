//! The keys that work on every screen: focus, search, zoom, back, and
//! stepping through conversations.
//!
//! Kept apart because these are the only messages not owned by a screen:
//! the window's unhandled key presses are mapped here, and each shortcut
//! decides for itself which screens it means something on.

use iced::keyboard::{self, key::Named, Key};
use iced::widget::operation;
use iced::Task;

use super::{App, Message, Screen};
use crate::chat;
use crate::options::SCALE_RANGE;

/// Keys that work everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shortcut {
    /// Tab.
    FocusNext,
    /// Shift+Tab.
    FocusPrevious,
    /// Ctrl+F.
    Search,
    /// Ctrl+Plus.
    ZoomIn,
    /// Ctrl+Minus.
    ZoomOut,
    /// Ctrl+0.
    ZoomReset,
    /// Escape.
    Back,
    /// Alt+Down: the next conversation in the list.
    NextContact,
    /// Alt+Up: the previous one.
    PreviousContact,
}

impl App {
    pub(super) fn on_shortcut(&mut self, shortcut: Shortcut) -> Task<Message> {
        let zoom = |app: &mut Self, scale: f32| {
            app.scale = scale.clamp(*SCALE_RANGE.start(), *SCALE_RANGE.end());
            app.prefs.scale = app.scale;
            app.save_prefs()
        };
        match shortcut {
            Shortcut::FocusNext => operation::focus_next(),
            Shortcut::FocusPrevious => operation::focus_previous(),
            Shortcut::Search => match self.screen {
                Screen::Main => operation::focus(chat::SEARCH_ID),
                _ => Task::none(),
            },
            Shortcut::ZoomIn => zoom(self, self.scale + 0.25),
            Shortcut::ZoomOut => zoom(self, self.scale - 0.25),
            Shortcut::ZoomReset => zoom(self, 1.0),
            Shortcut::NextContact | Shortcut::PreviousContact => match self.screen {
                Screen::Main => {
                    let delta = if shortcut == Shortcut::NextContact {
                        1
                    } else {
                        -1
                    };
                    self.update_chat(chat::Message::Step(delta))
                }
                _ => Task::none(),
            },
            Shortcut::Back => match self.screen {
                Screen::Settings(_) => self.back_to_main(),
                _ => Task::none(),
            },
        }
    }
}

/// Maps unhandled key presses to shortcuts.
pub(super) fn shortcut(event: keyboard::Event) -> Option<Message> {
    let keyboard::Event::KeyPressed { key, modifiers, .. } = event else {
        return None;
    };
    let shortcut = match key.as_ref() {
        Key::Named(Named::Tab) if modifiers.shift() => Shortcut::FocusPrevious,
        Key::Named(Named::Tab) => Shortcut::FocusNext,
        Key::Named(Named::Escape) => Shortcut::Back,
        Key::Named(Named::ArrowDown) if modifiers.alt() => Shortcut::NextContact,
        Key::Named(Named::ArrowUp) if modifiers.alt() => Shortcut::PreviousContact,
        Key::Character("f") if modifiers.command() => Shortcut::Search,
        Key::Character("+" | "=") if modifiers.command() => Shortcut::ZoomIn,
        Key::Character("-") if modifiers.command() => Shortcut::ZoomOut,
        Key::Character("0") if modifiers.command() => Shortcut::ZoomReset,
        _ => return None,
    };
    Some(Message::Shortcut(shortcut))
}
