//! What the node's and the window's events lead to: the session is
//! updated, a message in the open conversation of a focused window is
//! marked read, one that nobody sees counts as unread and may notify
//! (see `notify::decide`), files dropped onto the window are offered to
//! the open conversation.

use std::path::PathBuf;
use std::time::Instant;

use std::time::Duration;

use iced::{keyboard, window, Subscription, Task};

use super::boot::{load_history, load_room_history};
use super::shortcut::shortcut;
use super::{
    App, Message, Screen, ACTIVITY_EVERY, NOTIFIED_KEPT, PROGRESS_EVERY, STATUS_EVERY, TYPING_EVERY,
};
use crate::backend::BackendEvent;
use crate::backend::Connection;
use crate::devices;
use crate::notify::{self, Decision, Delivery};
use crate::session::Alert;
use crate::settings;

impl App {
    /// Node events, the status refresh, shortcuts, the close button,
    /// window focus and file drops, typing expiry, transfer progress.
    pub fn subscription(&self) -> Subscription<Message> {
        let mut subscriptions = vec![
            keyboard::listen().filter_map(shortcut),
            iced::event::listen_with(|event, _, _| match event {
                iced::Event::Keyboard(keyboard::Event::KeyPressed { .. })
                | iced::Event::Mouse(iced::mouse::Event::ButtonPressed(_)) => {
                    Some(Message::UserActive)
                }
                _ => None,
            }),
            window::close_requests().map(Message::CloseRequested),
            window::events().filter_map(|(id, event)| match event {
                window::Event::Focused
                | window::Event::Unfocused
                | window::Event::Opened { .. }
                | window::Event::FileHovered(_)
                | window::Event::FileDropped(_)
                | window::Event::FilesHoveredLeft => Some(Message::Window(id, event)),
                _ => None,
            }),
        ];
        if let Some(connection) = &self.connection {
            subscriptions.push(
                Subscription::run_with(connection.clone(), |c: &Connection| c.backend().events())
                    .map(Message::Event),
            );
            subscriptions.push(iced::time::every(STATUS_EVERY).map(|_| Message::Tick));
        }
        if let Some(session) = &self.session {
            if !session.typing.is_empty() {
                subscriptions
                    .push(iced::time::every(Duration::from_secs(1)).map(|_| Message::TypingTick));
            }
            let moving = session.transfers.values().any(|t| {
                matches!(
                    t.state,
                    tincan_node::TransferState::Accepted | tincan_node::TransferState::Transferring
                )
            });
            if moving && self.connection.is_some() {
                subscriptions
                    .push(iced::time::every(PROGRESS_EVERY).map(|_| Message::ProgressTick));
            }
        }
        Subscription::batch(subscriptions)
    }

    pub(super) fn on_event(&mut self, event: BackendEvent) -> Task<Message> {
        let (Some(session), Some(connection)) = (&mut self.session, &self.connection) else {
            return Task::none();
        };
        let backend = connection.backend();
        match event {
            BackendEvent::Node(event) => {
                let devices = devices_news(&event)
                    .filter(|_| matches!(self.screen, Screen::Settings(_)))
                    .map(|m| Task::done(Message::Settings(settings::Message::Devices(m))));
                let effects = session.apply_event(event, Instant::now());
                let mut tasks: Vec<Task<Message>> = devices.into_iter().collect();
                if effects.refresh_status {
                    tasks.push(Task::perform(backend.status(), Message::Status));
                }
                if effects.refresh_rooms {
                    tasks.push(Task::perform(backend.rooms(), Message::Rooms));
                }
                if let Some(alert) = effects.alert {
                    tasks.push(self.on_alert(alert));
                }
                Task::batch(tasks)
            }
            BackendEvent::Lagged => {
                let mut tasks = vec![
                    Task::perform(backend.status(), Message::Status),
                    Task::perform(backend.peers(), Message::Peers),
                    Task::perform(backend.file_list(), Message::Transfers),
                    Task::perform(backend.rooms(), Message::Rooms),
                ];
                if let Some(open) = session.open.clone() {
                    tasks.push(load_history(backend, open, None));
                }
                if let Some(room) = session.open_room.clone() {
                    tasks.push(load_room_history(backend, room));
                }
                Task::batch(tasks)
            }
            BackendEvent::Ended(why) => {
                session.ended = Some(why);
                Task::none()
            }
        }
    }

    /// A new message or offer: read it if it is on screen, otherwise count
    /// it and maybe notify.
    fn on_alert(&mut self, alert: Alert) -> Task<Message> {
        let (Some(session), Some(connection)) = (&mut self.session, &self.connection) else {
            return Task::none();
        };
        let on_screen = alert.in_open && self.focused && matches!(self.screen, Screen::Main);
        if on_screen {
            return Task::perform(connection.backend().read(alert.from), Message::Read);
        }
        if alert.in_open {
            session.mark_unread(&alert.from);
        }
        let decision = notify::decide(
            &alert,
            self.focused,
            session.presence.as_ref(),
            self.prefs.notifications,
        );
        if decision != Decision::Notify {
            tracing::debug!(?decision, "no notification");
            return Task::none();
        }
        self.notified.push(alert.clone());
        if self.notified.len() > NOTIFIED_KEPT {
            self.notified.remove(0);
        }
        if self.delivery == Delivery::Off {
            return Task::none();
        }
        let mut tasks = vec![Task::perform(
            tokio::task::spawn_blocking(move || notify::show(&alert)),
            |_| Message::Notified,
        )];
        if let Some(id) = self.window {
            tasks.push(window::request_user_attention(
                id,
                Some(window::UserAttention::Informational),
            ));
        }
        Task::batch(tasks)
    }

    pub(super) fn on_window(&mut self, id: window::Id, event: window::Event) -> Task<Message> {
        self.window = Some(id);
        let main = matches!(self.screen, Screen::Main);
        let open = self.session.as_ref().and_then(|s| s.open.clone());
        match event {
            window::Event::Focused => {
                self.focused = true;
                let seen = self
                    .session
                    .as_mut()
                    .filter(|_| main)
                    .and_then(|s| s.seen_open());
                match (seen, &self.connection) {
                    (Some(peer), Some(c)) => Task::perform(c.backend().read(peer), Message::Read),
                    _ => Task::none(),
                }
            }
            window::Event::Unfocused => {
                self.focused = false;
                Task::none()
            }
            window::Event::FileHovered(_) => {
                self.chat.drop_hover = main && open.is_some();
                Task::none()
            }
            window::Event::FilesHoveredLeft => {
                self.chat.drop_hover = false;
                Task::none()
            }
            window::Event::FileDropped(path) => {
                self.chat.drop_hover = false;
                match open {
                    Some(peer) if main => self.send_files(peer, vec![path]),
                    _ => Task::none(),
                }
            }
            _ => Task::none(),
        }
    }

    /// Offers `paths` to `peer`; a vanished or unreadable file comes back
    /// as the node's sentence above the composer.
    pub(super) fn send_files(&mut self, peer: String, paths: Vec<PathBuf>) -> Task<Message> {
        let Some(connection) = &self.connection else {
            self.chat.error = Some("File: the node is not running".into());
            return Task::none();
        };
        self.chat.error = None;
        Task::perform(
            connection.backend().file_send(peer, paths),
            Message::Transfer,
        )
    }

    /// The user typed to `peer`: tell the node, at most every
    /// [`TYPING_EVERY`].
    pub(super) fn typed(&mut self, peer: String) -> Task<Message> {
        let now = Instant::now();
        if let Some((last_peer, at)) = &self.typing_sent {
            if *last_peer == peer && now.duration_since(*at) < TYPING_EVERY {
                return Task::none();
            }
        }
        let Some(connection) = &self.connection else {
            return Task::none();
        };
        self.typing_sent = Some((peer.clone(), now));
        Task::perform(connection.backend().typing(peer), Message::Typed)
    }

    /// A key or click: tell the node the user is here — at once when
    /// auto-away holds (so the header turns back), else now and then.
    pub(super) fn user_active(&mut self) -> Task<Message> {
        let (Some(session), Some(connection)) = (&self.session, &self.connection) else {
            return Task::none();
        };
        let now = Instant::now();
        let away = session.presence.as_ref().is_some_and(|p| p.auto_away);
        let recent = self
            .activity_sent
            .is_some_and(|at| now.duration_since(at) < ACTIVITY_EVERY);
        if recent && !away {
            return Task::none();
        }
        self.activity_sent = Some(now);
        Task::perform(connection.backend().activity(), |result| {
            Message::Presence {
                result,
                note: false,
            }
        })
    }
}

/// What a node event means for the devices panel, if anything.
fn devices_news(event: &tincan_node::NodeEvent) -> Option<devices::Message> {
    use tincan_node::api::NodeEvent;
    match event {
        NodeEvent::DevicePaired { device } => Some(devices::Message::Paired(device.clone())),
        NodeEvent::PairingFailed { reason } => {
            Some(devices::Message::PairingFailed(reason.clone()))
        }
        NodeEvent::DeviceRemoved { .. } => Some(devices::Message::Changed),
        _ => None,
    }
}
