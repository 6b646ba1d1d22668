//! The messenger features of the [`NodeHandle`]: presence, activity, read
//! receipts, typing, blocking, search and export. One [`Command::Chat`]
//! carries them to the actor (`actor/presence.rs`, `actor/receipts.rs`,
//! `actor/history.rs`).

use tincan_core::PresenceState;
use tokio::sync::oneshot;

use super::{Command, NodeError, NodeHandle};
use crate::event::{BlockedView, PresenceView, ReadView, SearchHitView, TypingView};
use crate::export::ExportView;

/// Replies of fallible chat commands.
type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// Requests of [`Command::Chat`].
pub(crate) enum ChatCommand {
    Presence(oneshot::Sender<PresenceView>),
    SetPresence {
        state: PresenceState,
        note: Option<String>,
        reply: Reply<PresenceView>,
    },
    Activity(oneshot::Sender<PresenceView>),
    Read {
        peer: String,
        reply: Reply<ReadView>,
    },
    Typing {
        peer: String,
        reply: Reply<TypingView>,
    },
    Block {
        user: String,
        reply: Reply<BlockedView>,
    },
    Unblock {
        user: String,
        reply: Reply<BlockedView>,
    },
    Blocked(Reply<Vec<BlockedView>>),
    Search {
        words: String,
        peer: Option<String>,
        limit: Option<u32>,
        reply: Reply<Vec<SearchHitView>>,
    },
    Export {
        peer: Option<String>,
        reply: Reply<ExportView>,
    },
}

impl NodeHandle {
    async fn chat<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> ChatCommand,
    ) -> Result<T, NodeError> {
        self.ask(|reply| Command::Chat(make(reply))).await
    }

    /// This user's presence.
    pub async fn presence(&self) -> Result<PresenceView, NodeError> {
        self.chat(ChatCommand::Presence).await
    }

    /// Sets this user's presence; `note: None` keeps the current note,
    /// `Some("")` clears it. Peers hear of it at once.
    pub async fn set_presence(
        &self,
        state: PresenceState,
        note: Option<String>,
    ) -> Result<PresenceView, NodeError> {
        self.chat(|reply| ChatCommand::SetPresence { state, note, reply })
            .await?
    }

    /// Reports user activity (a GUI's input events): clears auto-away.
    pub async fn activity(&self) -> Result<PresenceView, NodeError> {
        self.chat(ChatCommand::Activity).await
    }

    /// Marks the conversation with `peer` read and, unless read receipts
    /// are off, tells the senders' devices (signed, durable).
    pub async fn read(&self, peer: &str) -> Result<ReadView, NodeError> {
        let peer = peer.to_string();
        self.chat(|reply| ChatCommand::Read { peer, reply }).await?
    }

    /// Tells `peer` this user is typing (at most once per 3 s per peer).
    pub async fn typing(&self, peer: &str) -> Result<TypingView, NodeError> {
        let peer = peer.to_string();
        self.chat(|reply| ChatCommand::Typing { peer, reply })
            .await?
    }

    /// Blocks a user (name, user-id prefix or full user id).
    pub async fn block(&self, user: &str) -> Result<BlockedView, NodeError> {
        let user = user.to_string();
        self.chat(|reply| ChatCommand::Block { user, reply })
            .await?
    }

    /// Unblocks a user.
    pub async fn unblock(&self, user: &str) -> Result<BlockedView, NodeError> {
        let user = user.to_string();
        self.chat(|reply| ChatCommand::Unblock { user, reply })
            .await?
    }

    /// The block list.
    pub async fn blocked(&self) -> Result<Vec<BlockedView>, NodeError> {
        self.chat(ChatCommand::Blocked).await?
    }

    /// Full-text search over the history, best first.
    pub async fn search(
        &self,
        words: &str,
        peer: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<SearchHitView>, NodeError> {
        let (words, peer) = (words.to_string(), peer.map(str::to_string));
        self.chat(|reply| ChatCommand::Search {
            words,
            peer,
            limit,
            reply,
        })
        .await?
    }

    /// Every conversation (or the one with `peer`) for `tincan export`.
    pub async fn export(&self, peer: Option<&str>) -> Result<ExportView, NodeError> {
        let peer = peer.map(str::to_string);
        self.chat(|reply| ChatCommand::Export { peer, reply })
            .await?
    }
}
