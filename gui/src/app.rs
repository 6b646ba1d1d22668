//! The application: [`App`] (state), [`Message`], `update`, `view`,
//! `subscription`. Screens are an enum; each screen is a component that
//! owns its messages and answers with an action, which `update` turns into
//! tasks on the backend or the home's files — never blocking the UI thread.
//! `app/effects.rs` runs the screens' actions, `app/answers.rs` takes the
//! node's answers to them, `app/events.rs` handles the node's and the
//! window's events (read marks, notifications, drops).

mod answers;
mod effects;
mod events;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iced::keyboard::{self, key::Named, Key};
use iced::widget::{button, center, column, operation, text};
use iced::{window, Alignment, Element, Task, Theme};
use tincan_node::{
    Home, MessageView, PeerView, PresenceView, ReadView, RoomView, StatusView, TransferView,
    TypingView,
};

use crate::backend::{self, Backend, BackendError, BackendEvent, Boot, Connection};
use crate::chat::{self, Chat};
use crate::notify::Delivery;
use crate::options::{Options, SCALE_RANGE};
use crate::prefs::Prefs;
use crate::session::Session;
use crate::session::{Alert, PAGE};
use crate::settings::{self, Settings};
use crate::setup::{self, Setup};
use crate::style::{self, SMALL, TEXT};

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
    /// Boots the app for `options`: opens the home in a task.
    pub fn new(options: Options) -> (Self, Task<Message>) {
        let home = options.home();
        let prefs = home.as_ref().map(Prefs::load).unwrap_or_default();
        let scale = options.scale.unwrap_or(prefs.scale);
        let mut app = Self {
            options: Some(options),
            home: home.as_ref().ok().cloned(),
            prefs,
            scale,
            screen: Screen::Starting("Starting tincan…".into()),
            connection: None,
            session: None,
            chat: Chat::default(),
            opening: false,
            restart_after_open: false,
            focused: true,
            window: None,
            delivery: Delivery::detect(),
            notified: Vec::new(),
            typing_sent: None,
            activity_sent: None,
        };
        let task = match home {
            Ok(_) => app.open_home(),
            Err(e) => {
                app.screen = Screen::Failed(e);
                Task::none()
            }
        };
        (app, task)
    }

    /// An app already connected to `backend` (tests, embedding): starts on
    /// the main screen and asks the backend for its status and peers.
    pub fn with_backend(backend: Arc<dyn Backend>) -> (Self, Task<Message>) {
        let mut app = Self {
            options: None,
            home: None,
            prefs: Prefs::default(),
            scale: 1.0,
            screen: Screen::Starting(String::new()),
            connection: None,
            session: None,
            chat: Chat::default(),
            opening: false,
            restart_after_open: false,
            focused: true,
            window: None,
            // Tests and embedders: decide, never pop up.
            delivery: Delivery::Off,
            notified: Vec::new(),
            typing_sent: None,
            activity_sent: None,
        };
        let task = app.connected(Connection::new(backend));
        (app, task)
    }

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

    fn open_home(&mut self) -> Task<Message> {
        match self.options.clone() {
            Some(options) => {
                self.opening = true;
                Task::perform(backend::open(options), Message::Opened)
            }
            None => Task::none(),
        }
    }

    /// Takes `connection` into use: a new session (or the old one, kept
    /// across a node restart), status, peers and the open conversation.
    fn connected(&mut self, connection: Connection) -> Task<Message> {
        let backend = connection.backend();
        let me = backend.whoami();
        let mode = backend.mode();
        match &mut self.session {
            Some(session) if session.me.user_id == me.user_id => {
                session.me = me;
                session.mode = mode;
                session.ended = None;
                session.status = None;
            }
            _ => self.session = Some(Session::new(me, mode)),
        }
        let mut tasks = vec![
            Task::perform(backend.status(), Message::Status),
            Task::perform(backend.peers(), Message::Peers),
            Task::perform(backend.presence(), |result| Message::Presence {
                result,
                note: false,
            }),
            Task::perform(backend.file_list(), Message::Transfers),
            Task::perform(backend.rooms(), Message::Rooms),
        ];
        if let Some(open) = self.session.as_ref().and_then(|s| s.open.clone()) {
            tasks.push(load_history(backend, open, None));
        }
        if let Some(room) = self.session.as_ref().and_then(|s| s.open_room.clone()) {
            tasks.push(load_room_history(backend, room));
        }
        self.connection = Some(connection);
        match self.screen {
            Screen::FirstRun(_) | Screen::Settings(_) | Screen::Main => {}
            _ => {
                self.screen = Screen::Main;
                tasks.push(operation::focus(chat::SEARCH_ID));
            }
        }
        Task::batch(tasks)
    }

    /// Handles one message.
    pub fn update(&mut self, message: Message) -> Task<Message> {
        match message {
            Message::Opened(Ok(Boot::Ready(connection))) => {
                self.opening = false;
                let task = self.connected(connection);
                if std::mem::take(&mut self.restart_after_open) {
                    return Task::batch([task, self.restart()]);
                }
                task
            }
            Message::Opened(Ok(Boot::NeedsIdentity { .. })) => {
                self.opening = false;
                self.screen = Screen::FirstRun(Setup::new(tincan_node::platform::os_user_name()));
                operation::focus(setup::NAME_ID)
            }
            Message::Opened(Err(e)) => {
                self.opening = false;
                self.restart_after_open = false;
                match &mut self.screen {
                    // The identity exists; the node could not start.
                    Screen::FirstRun(_) | Screen::Main | Screen::Settings(_)
                        if self.session.is_some() =>
                    {
                        if let Some(s) = &mut self.session {
                            s.ended = Some(format!("the node could not start: {e}"));
                        }
                    }
                    _ => self.screen = Screen::Failed(e.0),
                }
                Task::none()
            }
            Message::Retry => {
                self.screen = Screen::Starting("Starting tincan…".into());
                self.open_home()
            }
            Message::Setup(message) => self.update_setup(message),
            Message::Chat(message) => self.update_chat(message),
            Message::Settings(message) => self.update_settings(message),
            Message::Event(event) => self.on_event(event),
            Message::Status(status) => {
                if let Some(s) = &mut self.session {
                    s.apply_status(status.map_err(|e| e.0));
                }
                Task::none()
            }
            Message::Peers(Ok(peers)) => {
                if let Some(s) = &mut self.session {
                    s.apply_peers(peers);
                }
                Task::none()
            }
            Message::Peers(Err(e)) => {
                tracing::debug!(error = %e, "peers");
                Task::none()
            }
            Message::Rooms(Ok(rooms)) => {
                if let Some(s) = &mut self.session {
                    s.apply_rooms(rooms);
                }
                Task::none()
            }
            Message::Rooms(Err(e)) => {
                tracing::debug!(error = %e, "rooms");
                Task::none()
            }
            Message::RoomHistory {
                room,
                before,
                limit,
                result,
            } => {
                if let Some(s) = &mut self.session {
                    s.apply_room_history(&room, before, limit, result.map_err(|e| e.0));
                }
                Task::none()
            }
            Message::History {
                user,
                before,
                limit,
                result,
            } => {
                if let Some(s) = &mut self.session {
                    s.apply_history(&user, before, limit, result.map_err(|e| e.0));
                }
                Task::none()
            }
            message @ (Message::Presence { .. }
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
            Message::Sent { text, result } => {
                match result {
                    Ok(message) => {
                        if let Some(s) = &mut self.session {
                            s.apply_sent(message);
                        }
                    }
                    Err(e) => self.chat.send_failed(&text, &e.0),
                }
                Task::none()
            }
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

    fn on_shortcut(&mut self, shortcut: Shortcut) -> Task<Message> {
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

/// A task loading one history page of `user` (see [`Session::apply_history`]).
fn load_history(backend: &dyn Backend, user: String, before: Option<u64>) -> Task<Message> {
    Task::perform(backend.history(user.clone(), before, PAGE), move |result| {
        Message::History {
            user: user.clone(),
            before,
            limit: PAGE,
            result,
        }
    })
}

/// A task loading the newest history page of `room` (see
/// [`Session::apply_room_history`]).
fn load_room_history(backend: &dyn Backend, room: String) -> Task<Message> {
    Task::perform(
        backend.room_history(room.clone(), None, PAGE),
        move |result| Message::RoomHistory {
            room: room.clone(),
            before: None,
            limit: PAGE,
            result,
        },
    )
}

/// Maps unhandled key presses to shortcuts.
fn shortcut(event: keyboard::Event) -> Option<Message> {
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
