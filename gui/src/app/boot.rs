//! Getting to a running session: opening the home (which starts or
//! attaches to the node), the first-run screen when there is no identity
//! yet, and taking a connection into use.
//!
//! Kept apart from `update` because this is the one path that runs again
//! on every node restart: a session that survives it keeps its open
//! conversation, and only a new user gets a new session.

use std::sync::Arc;

use iced::widget::operation;
use iced::Task;

use super::{App, Message, Screen};
use crate::backend::{self, Backend, BackendError, Boot, Connection};
use crate::chat::{self, Chat};
use crate::notify::Delivery;
use crate::options::Options;
use crate::prefs::Prefs;
use crate::session::{Session, PAGE};
use crate::setup::{self, Setup};

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
            ..Self::unconnected(
                Screen::Starting("Starting tincan…".into()),
                Delivery::detect(),
            )
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
        // Tests and embedders: decide, never pop up.
        let mut app = Self::unconnected(Screen::Starting(String::new()), Delivery::Off);
        let task = app.connected(Connection::new(backend));
        (app, task)
    }

    /// An app showing `screen`, with no home, default preferences, no
    /// connection and nothing open yet.
    fn unconnected(screen: Screen, delivery: Delivery) -> Self {
        Self {
            options: None,
            home: None,
            prefs: Prefs::default(),
            scale: 1.0,
            screen,
            connection: None,
            session: None,
            chat: Chat::default(),
            opening: false,
            restart_after_open: false,
            focused: true,
            window: None,
            delivery,
            notified: Vec::new(),
            typing_sent: None,
            activity_sent: None,
        }
    }

    pub(super) fn open_home(&mut self) -> Task<Message> {
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
    pub(super) fn connected(&mut self, connection: Connection) -> Task<Message> {
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

    /// The home opened (or not): the main screen, the first-run screen, or
    /// the failure.
    pub(super) fn opened(&mut self, result: Result<Boot, BackendError>) -> Task<Message> {
        match result {
            Ok(Boot::Ready(connection)) => {
                self.opening = false;
                let task = self.connected(connection);
                if std::mem::take(&mut self.restart_after_open) {
                    return Task::batch([task, self.restart()]);
                }
                task
            }
            Ok(Boot::NeedsIdentity { .. }) => {
                self.opening = false;
                self.screen = Screen::FirstRun(Setup::new(tincan_node::platform::os_user_name()));
                operation::focus(setup::NAME_ID)
            }
            Err(e) => {
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
        }
    }
}

/// A task loading one history page of `user` (see [`Session::apply_history`]).
pub(super) fn load_history(
    backend: &dyn Backend,
    user: String,
    before: Option<u64>,
) -> Task<Message> {
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
pub(super) fn load_room_history(backend: &dyn Backend, room: String) -> Task<Message> {
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
