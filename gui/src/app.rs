//! The application: [`App`] (state), [`Message`], `update`, `view`,
//! `subscription`. Screens are an enum; each screen is a component that
//! owns its messages and answers with an action, which `update` turns into
//! tasks on the backend or the home's files — never blocking the UI thread.
//! `app/boot.rs` opens the home and takes a connection into use,
//! `app/effects.rs` runs the screens' actions, `app/answers.rs` takes the
//! node's answers to them, `app/events.rs` handles the node's and the
//! window's events (read marks, notifications, drops), `app/shortcut.rs`
//! the keys that work everywhere.

mod answers;
mod boot;
mod effects;
mod events;
mod shortcut;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use iced::widget::{button, center, column, text};
use iced::{window, Alignment, Element, Task, Theme};
use tincan_node::api::{
    Home, MessageView, PeerView, PresenceView, ReadView, RoomView, StatusView, TransferView,
    TypingView,
};

use crate::backend::{self, BackendError, BackendEvent, Boot, Connection};
use crate::chat::{self, Chat};
use crate::notify::Delivery;
use crate::options::Options;
use crate::prefs::Prefs;
use crate::session::Alert;
use crate::session::Session;
use crate::settings::{self, Settings};
use crate::setup::{self, Setup};
use crate::style::{self, SMALL, TEXT};

pub use shortcut::Shortcut;

/// How often the status line is refreshed (relay connectivity has no event).
pub const STATUS_EVERY: Duration = Duration::from_secs(3);

/// How often running transfers are asked for their progress (the node
/// sends events only when a state changes).
pub const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// At most one typing notice per this long (the node limits further).
pub const TYPING_EVERY: Duration = Duration::from_secs(1);

/// At most one activity report per this long while the user is not away
/// (the node's idle clock needs no finer grain than its minutes).
pub const ACTIVITY_EVERY: Duration = Duration::from_secs(30);

/// How many decided notifications [`App::notified`] keeps.
const NOTIFIED_KEPT: usize = 20;

/// Which screen shows.
#[derive(Debug)]
pub enum Screen {
    /// Opening the home / starting the node.
    Starting(String),
    /// No identity yet.
    FirstRun(Setup),
    /// Contacts and conversations.
    Main,
    /// Settings.
    Settings(Box<Settings>),
    /// The node cannot start; says why, offers to retry.
    Failed(String),
}

/// The whole app state.
#[derive(Debug)]
pub struct App {
    /// How to open the home again (restart, reconnect); `None` for an app
    /// given a backend, which has no home to reopen.
    options: Option<Options>,
    home: Option<Home>,
    /// Theme and zoom as saved.
    pub prefs: Prefs,
    /// The zoom in use (the `--scale` flag wins over the saved one).
    pub scale: f32,
    /// The visible screen.
    pub screen: Screen,
    connection: Option<Connection>,
    /// What is known about the node, once connected.
    pub session: Option<Session>,
    /// The main screen's own state (kept while Settings shows).
    pub chat: Chat,
    /// A home is being opened (a node starting); a restart asked for
    /// meanwhile waits for it, so one home never sees two starts at once.
    opening: bool,
    restart_after_open: bool,
    /// Whether the window has the keyboard focus (assumed until told).
    pub focused: bool,
    /// The window, once an event named it (for attention requests).
    window: Option<window::Id>,
    /// Where notifications go (off in tests and without a display).
    delivery: Delivery,
    /// The notifications decided on, newest last (the last few): shown on
    /// the desktop, or only recorded where delivery is off.
    pub notified: Vec<Alert>,
    /// The last typing notice: to whom, when.
    typing_sent: Option<(String, Instant)>,
    /// The last activity report.
    activity_sent: Option<Instant>,
}

/// Everything that can happen.
#[derive(Clone, Debug)]
pub enum Message {
    /// The home was opened (node started or attached), or not.
    Opened(Result<Boot, BackendError>),
    /// The first-run screen.
    Setup(setup::Message),
    /// The main screen.
    Chat(chat::Message),
    /// The settings screen.
    Settings(settings::Message),
    /// From the node's event stream.
    Event(BackendEvent),
    /// The node's status.
    Status(Result<StatusView, BackendError>),
    /// The node's peers.
    Peers(Result<Vec<PeerView>, BackendError>),
    /// Every room the node knows.
    Rooms(Result<Vec<RoomView>, BackendError>),
    /// A page of a room's history.
    RoomHistory {
        /// The room's id.
        room: String,
        /// Where the page ends (`None`: the newest page).
        before: Option<u64>,
        /// The page size asked for.
        limit: u32,
        /// The messages and membership lines.
        result: Result<Vec<MessageView>, BackendError>,
    },
    /// A page of a conversation's history.
    History {
        /// The contact's user id.
        user: String,
        /// Where the page ends (`None`: the newest page).
        before: Option<u64>,
        /// The page size asked for.
        limit: u32,
        /// The messages.
        result: Result<Vec<MessageView>, BackendError>,
    },
    /// This user's presence; `note`: the answer to setting the note.
    Presence {
        /// The node's answer.
        result: Result<PresenceView, BackendError>,
        /// Whether it answers a note change.
        note: bool,
    },
    /// A conversation was marked read (or not).
    Read(Result<ReadView, BackendError>),
    /// A typing notice went out (or not).
    Typed(Result<TypingView, BackendError>),
    /// A transfer command's answer (send, accept, reject, cancel).
    Transfer(Result<TransferView, BackendError>),
    /// Every transfer.
    Transfers(Result<Vec<TransferView>, BackendError>),
    /// The file picker's answer for a conversation (`None`: cancelled).
    FilesPicked {
        /// The recipient's user id.
        peer: String,
        /// The files and folders picked.
        paths: Option<Vec<PathBuf>>,
    },
    /// "Open folder" ran (or not).
    FolderOpened(Result<(), String>),
    /// An event of the window (focus, dropped files).
    Window(window::Id, window::Event),
    /// Time to forget typing indicators that ran out.
    TypingTick,
    /// Time to ask running transfers for their progress.
    ProgressTick,
    /// A desktop notification was handed to the desktop.
    Notified,
    /// A key or mouse button was pressed in the window.
    UserActive,
    /// A send was queued (or refused); `text` to give back on failure.
    Sent {
        /// What was sent.
        text: String,
        /// The node's answer.
        result: Result<MessageView, BackendError>,
    },
    /// Time to refresh the status.
    Tick,
    /// A keyboard shortcut.
    Shortcut(Shortcut),
    /// "Try again" on the failure screen.
    Retry,
    /// The window's close button.
    CloseRequested(window::Id),
    /// The node let go; quit.
    Exit,
    /// A preference was saved (or not).
    PrefsSaved(Result<(), String>),
}

impl App {
    /// The window title: unread count, app, who.
    pub fn title(&self) -> String {
        match &self.session {
            Some(s) if s.total_unread() > 0 => {
                format!("({}) tincan — {}", s.total_unread(), s.me.name)
            }
            Some(s) => format!("tincan — {}", s.me.name),
            None => "tincan".into(),
        }
    }

    /// Light or dark.
    pub fn theme(&self) -> Theme {
        self.prefs.theme.theme()
    }

    /// The zoom factor.
    pub fn scale_factor(&self) -> f32 {
        self.scale
    }

    /// Handles one message.
    pub fn update(&mut self, message: Message) -> Task<Message> {
        match message {
            Message::Opened(result) => self.opened(result),
            Message::Retry => {
                self.screen = Screen::Starting("Starting tincan…".into());
                self.open_home()
            }
            Message::Setup(message) => self.update_setup(message),
            Message::Chat(message) => self.update_chat(message),
            Message::Settings(message) => self.update_settings(message),
            Message::Event(event) => self.on_event(event),
            message @ (Message::Status(_)
            | Message::Peers(_)
            | Message::Rooms(_)
            | Message::RoomHistory { .. }
            | Message::History { .. }) => self.on_refresh(message),
            message @ (Message::Sent { .. }
            | Message::Presence { .. }
            | Message::Read(_)
            | Message::Typed(_)
            | Message::Transfer(_)
            | Message::Transfers(_)
            | Message::FilesPicked { .. }
            | Message::FolderOpened(_)) => self.on_answer(message),
            Message::Window(id, event) => self.on_window(id, event),
            Message::TypingTick => {
                if let Some(s) = &mut self.session {
                    s.expire_typing(Instant::now());
                }
                Task::none()
            }
            Message::ProgressTick => match &self.connection {
                Some(c) => Task::perform(c.backend().file_list(), Message::Transfers),
                None => Task::none(),
            },
            Message::Notified => Task::none(),
            Message::UserActive => self.user_active(),
            Message::Tick => match (&self.connection, &self.session) {
                (Some(c), Some(s)) if s.ended.is_none() => Task::batch([
                    Task::perform(c.backend().status(), Message::Status),
                    Task::perform(c.backend().peers(), Message::Peers),
                    // Membership and topic changes have no event of their own.
                    Task::perform(c.backend().rooms(), Message::Rooms),
                    // Auto-away happens in the node, on its clock.
                    Task::perform(c.backend().presence(), |result| Message::Presence {
                        result,
                        note: false,
                    }),
                ]),
                _ => Task::none(),
            },
            Message::Shortcut(shortcut) => self.on_shortcut(shortcut),
            Message::CloseRequested(_) => {
                let Some(connection) = self.connection.take() else {
                    return iced::exit();
                };
                self.screen = Screen::Starting("Closing…".into());
                Task::perform(
                    async move {
                        let close = connection.backend().close();
                        let _ = tokio::time::timeout(Duration::from_secs(3), close).await;
                    },
                    |()| Message::Exit,
                )
            }
            Message::Exit => iced::exit(),
            Message::PrefsSaved(result) => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "cannot save preferences");
                }
                Task::none()
            }
        }
    }

    /// The screen.
    pub fn view(&self) -> Element<'_, Message> {
        match &self.screen {
            Screen::Starting(what) => center(text(what.as_str()).size(TEXT)).into(),
            Screen::Failed(why) => center(
                column![
                    text("tincan cannot start").size(style::HEADING + 4.0),
                    text(why.as_str()).size(TEXT).style(style::error_text),
                    button(text("Try again").size(TEXT))
                        .on_press(Message::Retry)
                        .padding([8, 18]),
                ]
                .spacing(14)
                .max_width(640)
                .align_x(Alignment::Center),
            )
            .padding(24)
            .into(),
            Screen::FirstRun(setup) => setup.view().map(Message::Setup),
            Screen::Main => match &self.session {
                Some(session) => self.chat.view(session).map(Message::Chat),
                None => center(text("Starting the node…").size(SMALL)).into(),
            },
            Screen::Settings(settings) => {
                let mode = self
                    .session
                    .as_ref()
                    .map_or(backend::Mode::Embedded, |s| s.mode);
                settings.view(&self.prefs, mode).map(Message::Settings)
            }
        }
    }
}
