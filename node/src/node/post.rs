//! The [`NodeHandle`] side of replies, edits, retractions, broadcasts and
//! the contact list; one [`Command::Post`] or [`Command::Contact`] carries
//! each to the actor (`actor/posts.rs`, `actor/contacts.rs`).

use tokio::sync::oneshot;

use super::{Command, NodeError, NodeHandle};
use crate::event::{BroadcastView, ContactView, MessageView, MuteView};

/// Replies of fallible commands.
type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// Requests of [`Command::Post`].
pub(crate) enum PostCommand {
    Reply {
        peer: String,
        text: String,
        reply_to: String,
        reply: Reply<MessageView>,
    },
    Edit {
        id: String,
        text: String,
        reply: Reply<Vec<MessageView>>,
    },
    Retract {
        id: String,
        reply: Reply<Vec<MessageView>>,
    },
    Broadcast {
        text: String,
        group: Option<String>,
        reply: Reply<BroadcastView>,
    },
    Focus {
        focused: bool,
        reply: oneshot::Sender<()>,
    },
    Mute {
        peer: String,
        muted: bool,
        reply: Reply<MuteView>,
    },
}

/// Requests of [`Command::Contact`].
pub(crate) enum ContactCommand {
    List(Reply<Vec<ContactView>>),
    Add {
        user: String,
        group: Option<String>,
        name: Option<String>,
        message: String,
        reply: Reply<ContactView>,
    },
    Accept {
        user: String,
        reply: Reply<ContactView>,
    },
    Reject {
        user: String,
        reply: Reply<ContactView>,
    },
    Remove {
        user: String,
        reply: Reply<ContactView>,
    },
}

impl NodeHandle {
    async fn post<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> PostCommand,
    ) -> Result<T, NodeError> {
        self.ask(|reply| Command::Post(make(reply))).await
    }

    async fn contact<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> ContactCommand,
    ) -> Result<T, NodeError> {
        self.ask(|reply| Command::Contact(make(reply))).await
    }

    /// Sends `text` to `peer` as a reply to message `reply_to` (an id or
    /// a prefix of at least 6 hex characters), quoting its start.
    pub async fn reply(
        &self,
        peer: &str,
        text: &str,
        reply_to: &str,
    ) -> Result<MessageView, NodeError> {
        let (peer, text, reply_to) = (peer.into(), text.into(), reply_to.into());
        self.post(|reply| PostCommand::Reply {
            peer,
            text,
            reply_to,
            reply,
        })
        .await?
    }

    /// Replaces the text of one of this user's messages, for everyone it
    /// went to; returns the changed rows (one per conversation).
    pub async fn edit(&self, id: &str, text: &str) -> Result<Vec<MessageView>, NodeError> {
        let (id, text) = (id.into(), text.into());
        self.post(|reply| PostCommand::Edit { id, text, reply })
            .await?
    }

    /// Retracts one of this user's messages, for everyone it went to.
    pub async fn retract(&self, id: &str) -> Result<Vec<MessageView>, NodeError> {
        let id = id.into();
        self.post(|reply| PostCommand::Retract { id, reply })
            .await?
    }

    /// Sends `text` as one broadcast to everyone online, or to the
    /// contacts of `group`.
    pub async fn broadcast(
        &self,
        text: &str,
        group: Option<&str>,
    ) -> Result<BroadcastView, NodeError> {
        let (text, group) = (text.into(), group.map(str::to_string));
        self.post(|reply| PostCommand::Broadcast { text, group, reply })
            .await?
    }

    /// Tells the node whether a client window of this user has the focus
    /// (the node then shows no desktop notifications).
    pub async fn set_focus(&self, focused: bool) -> Result<(), NodeError> {
        self.post(|reply| PostCommand::Focus { focused, reply })
            .await
    }

    /// Mutes (or unmutes) the conversation with `peer`: no notifications
    /// from it, except for messages that mention this user.
    pub async fn mute(&self, peer: &str, muted: bool) -> Result<MuteView, NodeError> {
        let peer = peer.into();
        self.post(|reply| PostCommand::Mute { peer, muted, reply })
            .await?
    }

    /// The contact list: organisation members, accepted contacts and
    /// pending requests.
    pub async fn contacts(&self) -> Result<Vec<ContactView>, NodeError> {
        self.contact(ContactCommand::List).await?
    }

    /// Adds a user (asks them, unless they are in this organisation or
    /// asked first), optionally into `group` and under `name`.
    pub async fn contact_add(
        &self,
        user: &str,
        group: Option<&str>,
        name: Option<&str>,
        message: &str,
    ) -> Result<ContactView, NodeError> {
        let (user, group, name, message) = (
            user.into(),
            group.map(str::to_string),
            name.map(str::to_string),
            message.into(),
        );
        self.contact(|reply| ContactCommand::Add {
            user,
            group,
            name,
            message,
            reply,
        })
        .await?
    }

    /// Accepts a user's contact request.
    pub async fn contact_accept(&self, user: &str) -> Result<ContactView, NodeError> {
        let user = user.into();
        self.contact(|reply| ContactCommand::Accept { user, reply })
            .await?
    }

    /// Rejects a user's contact request (their later requests are ignored).
    pub async fn contact_reject(&self, user: &str) -> Result<ContactView, NodeError> {
        let user = user.into();
        self.contact(|reply| ContactCommand::Reject { user, reply })
            .await?
    }

    /// Removes a user from the contact list (an organisation member stays
    /// listed, without group or name of yours).
    pub async fn contact_remove(&self, user: &str) -> Result<ContactView, NodeError> {
        let user = user.into();
        self.contact(|reply| ContactCommand::Remove { user, reply })
            .await?
    }
}
