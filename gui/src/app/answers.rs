//! The node's answers to what the app and the screens asked for: status,
//! peers, rooms, history pages, sends, presence, read marks, typing
//! notices, transfers, the file picker, "Open folder".
//! Failures become sentences where the user looks (the header, the line
//! above the composer); answers nobody waits for are only logged.

use iced::Task;

use super::{App, Message};
use crate::profile;

impl App {
    /// Takes the node's answers to the app's own refreshes and page loads
    /// (the messages `update` routes here): status, peers, rooms, history.
    pub(super) fn on_refresh(&mut self, message: Message) -> Task<Message> {
        match message {
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
            _ => Task::none(),
        }
    }

    /// Handles one answer (the messages `update` routes here).
    pub(super) fn on_answer(&mut self, message: Message) -> Task<Message> {
        match message {
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
            Message::Presence { result, note } => {
                match result {
                    Ok(presence) => {
                        if note {
                            self.chat.note_saved(presence.note.as_deref());
                        } else {
                            self.chat.presence_known(presence.note.as_deref());
                        }
                        if let Some(s) = &mut self.session {
                            s.apply_presence(presence);
                        }
                    }
                    Err(e) => self.chat.presence_error = Some(profile::capitalise(&e.0)),
                }
                Task::none()
            }
            Message::Read(result) => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "read");
                }
                Task::none()
            }
            Message::Typed(result) => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "typing");
                }
                Task::none()
            }
            Message::Transfer(result) => {
                match result {
                    Ok(transfer) => {
                        if let Some(s) = &mut self.session {
                            s.apply_transfer(transfer);
                        }
                    }
                    Err(e) => self.chat.error = Some(format!("File: {}", e.0)),
                }
                Task::none()
            }
            Message::Transfers(Ok(transfers)) => {
                if let Some(s) = &mut self.session {
                    s.apply_transfers(transfers);
                }
                Task::none()
            }
            Message::Transfers(Err(e)) => {
                tracing::debug!(error = %e, "file list");
                Task::none()
            }
            Message::FilesPicked { peer, paths } => match paths {
                Some(paths) if !paths.is_empty() => self.send_files(peer, paths),
                _ => Task::none(),
            },
            Message::FolderOpened(result) => {
                if let Err(e) = result {
                    self.chat.error = Some(e);
                }
                Task::none()
            }
            _ => Task::none(),
        }
    }
}
