//! The directory as a scripted client holds it, by a node's rules
//! (`Frame::Directory` parts merged by device, `Frame::DirectoryUpdate`s
//! applied only to their base), and the ways a test makes it miss pushes.

use std::sync::Mutex;

use tincan_core::route::directory::{DirectoryUpdate, HeldDirectory};
use tincan_core::route::DirectoryEntry;
use tincan_core::wire::Frame;
use tincan_transport::rpc;

use super::{Client, Inbound};

/// How a client takes the directory pushes the relay sends it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DirectoryMode {
    /// Apply and answer, as a node does.
    #[default]
    Apply,
    /// Answer an error and apply nothing (a push that did not take).
    Refuse,
    /// Neither apply nor answer until [`Client::release_held`] (a push that
    /// is late: the relay times out, and it lands after the next one).
    Hold,
}

/// The directory a client holds, by a node's rules, and the pushes it
/// holds back.
#[derive(Default)]
pub(super) struct DirectoryState {
    pub(super) view: Mutex<HeldDirectory>,
    pub(super) mode: Mutex<DirectoryMode>,
    pub(super) held: Mutex<Vec<(Frame, quinn::SendStream)>>,
}

impl DirectoryState {
    /// Applies one push to the view; the answer a node would give.
    pub(super) fn apply(&self, frame: Frame) -> Frame {
        let mut view = self.view.lock().expect("view");
        match frame {
            Frame::Directory(entries) => {
                view.merge(entries);
                Frame::Ack
            }
            Frame::DirectoryUpdate(update) => match view.handle_update(update) {
                Ok(_) => Frame::Ack,
                Err(e) => Frame::Error(e.to_string()),
            },
            other => Frame::Error(format!("not a directory push: {}", other.name())),
        }
    }
}

impl Client {
    /// How directory pushes are taken from now on.
    pub fn set_directory_mode(&self, mode: DirectoryMode) {
        *self.directory.mode.lock().expect("mode") = mode;
    }

    /// Directory pushes held back so far ([`DirectoryMode::Hold`]).
    pub fn held_count(&self) -> usize {
        self.directory.held.lock().expect("held").len()
    }

    /// Applies and answers the pushes held back, oldest first (the relay
    /// has given up on them: they land late).
    pub async fn release_held(&self) {
        let held = std::mem::take(&mut *self.directory.held.lock().expect("held"));
        for (frame, mut send) in held {
            let answer = self.directory.apply(frame);
            let _ = rpc::answer(&mut send, &answer).await;
        }
    }

    /// The directory as this client holds it now, sorted by device.
    pub fn view(&self) -> Vec<DirectoryEntry> {
        let view = self.directory.view.lock().expect("view");
        view.entries().values().cloned().collect()
    }

    /// The version this client holds (versioned pushes only).
    pub fn view_version(&self) -> Option<u64> {
        self.directory.view.lock().expect("view").version()
    }

    /// Every versioned push received so far.
    pub async fn updates(&self) -> Vec<DirectoryUpdate> {
        self.received()
            .await
            .into_iter()
            .filter_map(|i| match i {
                Inbound::Update(u) => Some(u),
                _ => None,
            })
            .collect()
    }
}
