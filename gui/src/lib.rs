//! tincan-gui: the desktop app. An iced application (State / Message /
//! update / view / subscription) over a tincan node that it embeds, or over
//! the `tincan run` daemon of the same home, through the [`backend::Backend`]
//! trait.
//!
//! # Layout
//! - [`options`]: the command line (the same node flags as `tincan run`).
//! - [`app`]: [`App`], its [`Message`], `update`, `view`, `subscription`;
//!   screens as an enum; `app/effects.rs` turns the screens' actions into tasks.
//! - [`backend`]: the [`backend::Backend`] trait; `backend/node.rs` embeds a
//!   node or attaches to a daemon (never two nodes on one home).
//! - [`session`]: contacts, conversations (paged), unread counts, typing,
//!   transfers, own presence — pure data.
//! - [`presence`]: presence states in words, the header's picker entries.
//! - [`notify`]: whether a new message notifies, and the notification.
//! - [`file`](mod@file): transfers in words; the file picker and "Open folder".
//! - [`status`]: the connection line (LAN only / via gateway / relay / offline).
//! - [`chat`], [`setup`], [`settings`], [`forms`]: the screens and shared forms,
//!   each owning its messages.
//! - [`profile`], [`prefs`]: the home's files (identity, membership,
//!   `config.toml`) and the app's own `gui.toml`.
//! - [`style`], [`timefmt`]: colours, sizes, times.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod backend;
pub mod chat;
pub mod devices;
pub mod file;
pub mod forms;
pub mod notify;
pub mod options;
pub mod prefs;
pub mod presence;
pub mod profile;
pub mod session;
pub mod settings;
pub mod setup;
pub mod status;
pub mod style;
pub mod timefmt;

pub use app::{App, Message};
pub use options::Options;

/// Opens the window and runs until it is closed.
pub fn run(options: Options) -> iced::Result {
    iced::application(move || App::new(options.clone()), App::update, App::view)
        .title(App::title)
        .theme(App::theme)
        .scale_factor(App::scale_factor)
        .subscription(App::subscription)
        .exit_on_close_request(false)
        .window_size((1100.0, 720.0))
        .centered()
        .run()
}
