//! Names on the [`NodeHandle`]: renaming this user while the node runs
//! (`tincan name set`) and forgetting a peer (`tincan peers forget`). One
//! [`Command::Names`] carries them to the actor (`actor/names.rs`).

use tokio::sync::oneshot;

use super::{Command, NodeError, NodeHandle};
use crate::event::{ForgottenView, WhoAmI};

/// Replies of name commands.
type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// Requests of [`Command::Names`].
pub(crate) enum NamesCommand {
    SetName {
        name: String,
        reply: Reply<WhoAmI>,
    },
    Forget {
        peer: String,
        reply: Reply<ForgottenView>,
    },
}

impl NodeHandle {
    /// Renames this user: the name is checked as at `init`, written to the
    /// identity file (the keys stay), and announced at once (a newly signed
    /// LAN record, the hello of every new link). Returns who this is now.
    pub async fn set_name(&self, name: &str) -> Result<WhoAmI, NodeError> {
        let name = name.to_string();
        let who = self
            .ask(|reply| Command::Names(NamesCommand::SetName { name, reply }))
            .await??;
        *self
            .whoami
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = who.clone();
        Ok(who)
    }

    /// Forgets a user (a name or id as `send` takes it) and all their
    /// devices: gone from the peer book and the store, messages still
    /// waiting for them fail, and their old LAN records do not bring them
    /// back. Refused for oneself and for a user with a device online.
    pub async fn forget_peer(&self, peer: &str) -> Result<ForgottenView, NodeError> {
        let peer = peer.to_string();
        self.ask(|reply| Command::Names(NamesCommand::Forget { peer, reply }))
            .await?
    }
}
