//! What the screens' actions do: tasks on the backend and on the home's
//! files (blocking file I/O runs on tokio's blocking pool), node restarts.

use iced::futures::future::BoxFuture;
use iced::widget::operation;
use iced::Task;
use tincan_node::api::MessageView;

use super::boot::{load_history, load_room_history};
use super::{App, Message, Screen};
use crate::backend::{self, BackendError, Mode};
use crate::chat;
use crate::devices;
use crate::forms::{OrgMessage, RelayMessage};
use crate::profile;
use crate::settings;
use crate::setup;

/// Runs blocking `f` off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(format!("internal error: {e}")))
}

impl App {
    fn home_or_error(&self) -> Result<tincan_node::Home, String> {
        self.home
            .clone()
            .ok_or_else(|| "this window has no home directory".to_string())
    }

    pub(super) fn save_prefs(&self) -> Task<Message> {
        let Ok(home) = self.home_or_error() else {
            return Task::none();
        };
        let prefs = self.prefs.clone();
        Task::perform(blocking(move || prefs.save(&home)), Message::PrefsSaved)
    }

    /// Stops the node (if embedded) and opens the home again, so that new
    /// organisation, relay or gateway settings take effect.
    pub(super) fn restart(&mut self) -> Task<Message> {
        let Some(options) = self.options.clone() else {
            return Task::none(); // a given backend: nothing to reopen
        };
        if self.opening {
            self.restart_after_open = true;
            return Task::none();
        }
        let Some(connection) = self.connection.take() else {
            return self.open_home();
        };
        if let Some(s) = &mut self.session {
            s.status = None;
            s.status_error = None;
        }
        self.opening = true;
        Task::perform(
            async move {
                connection.backend().close().await;
                backend::open(options).await
            },
            Message::Opened,
        )
    }

    pub(super) fn update_setup(&mut self, message: setup::Message) -> Task<Message> {
        let Screen::FirstRun(setup) = &mut self.screen else {
            return Task::none();
        };
        let created = matches!(message, setup::Message::Created(Ok(_)));
        let action = setup.update(message);
        let home = self.home_or_error();
        let task = match action {
            setup::Action::None => Task::none(),
            setup::Action::CreateIdentity(name) => Task::perform(
                blocking(move || profile::create_identity(&home?, &name)),
                |r| Message::Setup(setup::Message::Created(r)),
            ),
            setup::Action::JoinOrg(source) => {
                Task::perform(blocking(move || profile::join_org(&home?, &source)), |r| {
                    Message::Setup(setup::Message::Org(OrgMessage::Done(r)))
                })
            }
            setup::Action::SetRelay(relay) => {
                Task::perform(blocking(move || profile::set_relay(&home?, &relay)), |r| {
                    Message::Setup(setup::Message::Relay(RelayMessage::Done(r)))
                })
            }
            setup::Action::Finish { changed } => {
                self.screen = Screen::Main;
                let focus = operation::focus(chat::SEARCH_ID);
                return if changed {
                    Task::batch([self.restart(), focus])
                } else {
                    focus
                };
            }
        };
        if created {
            // The identity exists: start the node now, so colleagues show
            // up while the optional steps are on screen.
            return Task::batch([task, self.open_home()]);
        }
        task
    }

    pub(super) fn update_chat(&mut self, message: chat::Message) -> Task<Message> {
        let Some(session) = &mut self.session else {
            return Task::none();
        };
        match self.chat.update(session, message) {
            chat::Action::None => Task::none(),
            chat::Action::Open(user_id) => self.open_conversation(user_id),
            chat::Action::LoadOlder(user_id) => {
                let (Some(connection), Some(before)) =
                    (&self.connection, session.begin_older(&user_id))
                else {
                    return Task::none();
                };
                load_history(connection.backend(), user_id, Some(before))
            }
            chat::Action::Typing(peer) => self.typed(peer),
            chat::Action::SetPresence { presence, note } => {
                let Some(connection) = &self.connection else {
                    return Task::none();
                };
                let is_note = note.is_some();
                Task::perform(
                    connection.backend().set_presence(presence, note),
                    move |result| Message::Presence {
                        result,
                        note: is_note,
                    },
                )
            }
            chat::Action::PickFiles(peer) => {
                Task::perform(crate::file::pick_files(), move |paths| {
                    Message::FilesPicked {
                        peer: peer.clone(),
                        paths,
                    }
                })
            }
            chat::Action::FileAccept(id) => self.transfer_call(|b| b.file_accept(id)),
            chat::Action::FileReject(id) => self.transfer_call(|b| b.file_reject(id)),
            chat::Action::FileCancel(id) => self.transfer_call(|b| b.file_cancel(id)),
            chat::Action::OpenFolder(folder) => Task::perform(
                blocking(move || crate::file::open_folder(&folder)),
                Message::FolderOpened,
            ),
            chat::Action::Send { peer, text } => self.send_text(text, |b, t| b.send(peer, t)),
            chat::Action::OpenRoom(room) => self.open_room(room),
            chat::Action::RoomSend { room, text } => {
                self.send_text(text, |b, t| b.room_send(room, t))
            }
            chat::Action::OpenSettings => self.open_settings(),
            chat::Action::Reconnect => self.restart(),
        }
    }

    /// Opens a conversation: focus the composer, mark it read (receipts go
    /// to the sender) and load its history the first time.
    fn open_conversation(&mut self, user_id: String) -> Task<Message> {
        let load = self.session.as_mut().is_some_and(|s| s.open(&user_id));
        self.chat.drop_hover = false;
        let focus = operation::focus(chat::COMPOSER_ID);
        let Some(connection) = &self.connection else {
            return focus;
        };
        let backend = connection.backend();
        let mut tasks = vec![
            focus,
            Task::perform(backend.read(user_id.clone()), Message::Read),
        ];
        if load {
            tasks.push(load_history(backend, user_id, None));
        }
        Task::batch(tasks)
    }

    /// Opens a room: focus the composer and load its history the first
    /// time.
    fn open_room(&mut self, room: String) -> Task<Message> {
        let load = self.session.as_mut().is_some_and(|s| s.open_room(&room));
        self.chat.drop_hover = false;
        let focus = operation::focus(chat::COMPOSER_ID);
        match &self.connection {
            Some(connection) if load => {
                Task::batch([focus, load_room_history(connection.backend(), room)])
            }
            _ => focus,
        }
    }

    /// Sends `text` through the node (to a peer or a room), or tells the
    /// composer why it cannot.
    fn send_text(
        &mut self,
        text: String,
        send: impl FnOnce(
            &dyn backend::Backend,
            String,
        ) -> BoxFuture<'static, Result<MessageView, BackendError>>,
    ) -> Task<Message> {
        let Some(connection) = &self.connection else {
            self.chat.send_failed(&text, "the node is not running");
            return Task::none();
        };
        let sending = send(connection.backend(), text.clone());
        Task::perform(sending, move |result| Message::Sent {
            text: text.clone(),
            result,
        })
    }

    /// Shows the settings with the profile and this user's devices.
    fn open_settings(&mut self) -> Task<Message> {
        self.screen = Screen::Settings(Box::default());
        let home = self.home_or_error();
        let profile = Task::perform(blocking(move || profile::load(&home?)), |r| {
            Message::Settings(settings::Message::Loaded(r))
        });
        Task::batch([profile, self.devices_task(devices::Action::Load)])
    }

    /// Asks the node what the devices panel needs; the answer comes back
    /// to the panel.
    pub(super) fn devices_task(&self, action: devices::Action) -> Task<Message> {
        let Some(connection) = &self.connection else {
            return Task::none();
        };
        let backend = connection.backend();
        let to_panel = |m: devices::Message| Message::Settings(settings::Message::Devices(m));
        let text = |e: crate::backend::BackendError| e.0;
        match action {
            devices::Action::None => Task::none(),
            devices::Action::Load => Task::perform(backend.devices(), move |r| {
                to_panel(devices::Message::Loaded(r.map_err(text)))
            }),
            devices::Action::Pair => Task::perform(backend.pair_device(), move |r| {
                to_panel(devices::Message::PairShown(r.map_err(text)))
            }),
            devices::Action::Remove(device) => {
                Task::perform(backend.remove_device(device), move |r| {
                    to_panel(devices::Message::Removed(r.map_err(text)))
                })
            }
        }
    }

    /// Leaves Settings: what arrived in the open conversation meanwhile is
    /// on screen now, so it counts as read.
    pub(super) fn back_to_main(&mut self) -> Task<Message> {
        self.screen = Screen::Main;
        let seen = self.session.as_mut().and_then(|s| s.seen_open());
        match (seen, &self.connection) {
            (Some(peer), Some(c)) if self.focused => {
                Task::perform(c.backend().read(peer), Message::Read)
            }
            _ => Task::none(),
        }
    }

    fn transfer_call(
        &mut self,
        call: impl FnOnce(
            &dyn crate::backend::Backend,
        ) -> iced::futures::future::BoxFuture<
            'static,
            Result<tincan_node::TransferView, crate::backend::BackendError>,
        >,
    ) -> Task<Message> {
        let Some(connection) = &self.connection else {
            self.chat.error = Some("File: the node is not running".into());
            return Task::none();
        };
        self.chat.error = None;
        Task::perform(call(connection.backend()), Message::Transfer)
    }

    pub(super) fn update_settings(&mut self, message: settings::Message) -> Task<Message> {
        let Screen::Settings(settings) = &mut self.screen else {
            return Task::none();
        };
        let action = settings.update(message);
        let home = self.home_or_error();
        let embedded = self.session.as_ref().map(|s| s.mode) == Some(Mode::Embedded);
        match action {
            settings::Action::None => Task::none(),
            settings::Action::JoinOrg(source) => Task::perform(
                blocking(move || {
                    let home = home?;
                    let joined = profile::join_org(&home, &source)?;
                    Ok((joined, profile::load(&home)))
                }),
                |r| match r {
                    Ok((joined, profile)) => Message::Settings(settings::Message::OrgJoined(
                        Box::new(joined),
                        Box::new(profile),
                    )),
                    Err(e) => Message::Settings(settings::Message::Org(OrgMessage::Done(Err(e)))),
                },
            ),
            settings::Action::SetRelay(relay) => {
                Task::perform(blocking(move || profile::set_relay(&home?, &relay)), |r| {
                    Message::Settings(settings::Message::Relay(RelayMessage::Done(r)))
                })
            }
            settings::Action::SetGateway(gateway) => Task::perform(
                blocking(move || profile::set_gateway(&home?, gateway).map(|()| gateway)),
                |r| Message::Settings(settings::Message::GatewaySaved(r)),
            ),
            settings::Action::Theme(theme) => {
                self.prefs.theme = theme;
                self.save_prefs()
            }
            settings::Action::Scale(scale) => {
                self.scale = scale;
                self.prefs.scale = scale;
                self.save_prefs()
            }
            settings::Action::SetName(name) => {
                Task::perform(blocking(move || profile::set_name(&home?, &name)), |r| {
                    Message::Settings(settings::Message::NameSaved(r))
                })
            }
            settings::Action::SetIdle(secs) => Task::perform(
                blocking(move || profile::set_away_after(&home?, secs).map(|()| secs)),
                |r| Message::Settings(settings::Message::IdleSaved(r)),
            ),
            settings::Action::SetDownloads(folder) => Task::perform(
                blocking(move || profile::set_downloads(&home?, &folder)),
                |r| Message::Settings(settings::Message::DownloadsSaved(r)),
            ),
            settings::Action::PickDownloads => {
                if let Err(e) = crate::file::picker_available() {
                    return Task::done(Message::Settings(settings::Message::DownloadsSaved(Err(
                        e,
                    ))));
                }
                Task::perform(crate::file::pick_folder(), |folder| {
                    Message::Settings(settings::Message::DownloadsPicked(folder))
                })
            }
            settings::Action::Notifications(on) => {
                self.prefs.notifications = on;
                self.save_prefs()
            }
            settings::Action::Devices(action) => self.devices_task(action),
            settings::Action::Restart if embedded => self.restart(),
            settings::Action::Restart => Task::none(),
            settings::Action::Back => {
                Task::batch([self.back_to_main(), operation::focus(chat::SEARCH_ID)])
            }
        }
    }
}
