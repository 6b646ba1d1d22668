//! The commands of posts and contacts: `edit`, `delete`, `broadcast`,
//! `mute`/`unmute` and
//! `contact add|accept|reject|remove|list`. Each is one control request to
//! the running node (see `control/protocol.rs`).

use anyhow::Result;
use clap::Subcommand;
use tincan_node::{BroadcastView, ContactView, Home, MessageView, MuteView, Request};

use super::chat::show;
use super::{ask, print};

/// The post commands (flattened into the top-level list).
#[derive(Debug, Subcommand)]
pub enum PostCommand {
    /// Change the text of a message you sent, for everyone it went to.
    Edit {
        /// The message id, or at least 6 hex characters of it (`history --json`).
        id: String,
        /// The new text.
        text: String,
        /// Print the changed message(s) as JSON, shaped like `history --json`.
        #[arg(long)]
        json: bool,
    },
    /// Retract a message you sent: its text is removed for everyone it went to.
    Delete {
        /// The message id, or at least 6 hex characters of it.
        id: String,
        /// Print the changed message(s) as JSON, shaped like `history --json`.
        #[arg(long)]
        json: bool,
    },
    /// Send one message to everyone online, or to a contact group.
    Broadcast {
        /// The text.
        text: String,
        /// Only the contacts of this group (`contact add USER --group G`).
        #[arg(long)]
        group: Option<String>,
        /// Print as JSON: {"message","to","names"}.
        #[arg(long)]
        json: bool,
    },
    /// Mute a conversation: no notifications from it, except messages
    /// that @mention you.
    Mute {
        /// The peer: display name or user-id prefix.
        peer: String,
        /// Print as JSON: {"peer","name","muted"}.
        #[arg(long)]
        json: bool,
    },
    /// Unmute a conversation.
    Unmute {
        /// The peer: display name or user-id prefix.
        peer: String,
        /// Print as JSON: {"peer","name","muted"}.
        #[arg(long)]
        json: bool,
    },
    /// The contact list and contact requests.
    #[command(subcommand)]
    Contact(ContactCommand),
}

/// `tincan contact ...`.
#[derive(Debug, Subcommand)]
pub enum ContactCommand {
    /// List contacts: organisation members, accepted contacts, requests.
    List {
        /// Print as JSON: [{"user_id","name","group","state","message","online","presence"}].
        #[arg(long)]
        json: bool,
    },
    /// Add a contact: asks them (organisation members need no asking);
    /// also sets your group and name for someone already listed.
    Add {
        /// Display name, user-id prefix or full user id.
        user: String,
        /// Put them in this group.
        #[arg(long)]
        group: Option<String>,
        /// Call them this in your list.
        #[arg(long)]
        name: Option<String>,
        /// A short message with the request.
        #[arg(long, default_value = "")]
        message: String,
        /// Print the contact as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Accept a contact request.
    Accept {
        /// Their name, user-id prefix or full user id.
        user: String,
        /// Print the contact as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Reject a contact request (their later requests are ignored).
    Reject {
        /// Their name, user-id prefix or full user id.
        user: String,
        /// Print the contact as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove someone from your contact list.
    Remove {
        /// Their name, user-id prefix or full user id.
        user: String,
        /// Print the contact as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one post command against the running node.
pub async fn run(home: &Home, cmd: PostCommand) -> Result<()> {
    match cmd {
        PostCommand::Edit { id, text, json } => {
            let changed: Vec<MessageView> = ask(home, &Request::Edit { id, text }).await?;
            show(json, &changed, |c| {
                println!("edited in {} conversation(s)", c.len())
            })?;
        }
        PostCommand::Delete { id, json } => {
            let changed: Vec<MessageView> = ask(home, &Request::Delete { id }).await?;
            show(json, &changed, |c| {
                println!("deleted in {} conversation(s)", c.len())
            })?;
        }
        PostCommand::Broadcast { text, group, json } => {
            let sent: BroadcastView = ask(home, &Request::Broadcast { text, group }).await?;
            show(json, &sent, |b| {
                println!(
                    "{} {} to {}",
                    b.message.state,
                    b.message.id,
                    b.names
                        .iter()
                        .map(|n| print::terminal_safe(n))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        }
        PostCommand::Mute { peer, json } => mute(home, peer, true, json).await?,
        PostCommand::Unmute { peer, json } => mute(home, peer, false, json).await?,
        PostCommand::Contact(cmd) => contact(home, cmd).await?,
    }
    Ok(())
}

async fn mute(home: &Home, peer: String, muted: bool, json: bool) -> Result<()> {
    let view: MuteView = ask(home, &Request::Mute { peer, muted }).await?;
    show(json, &view, |v| {
        let what = if v.muted { "muted" } else { "unmuted" };
        println!("{what} {}", print::terminal_safe(&v.name))
    })
}

async fn contact(home: &Home, cmd: ContactCommand) -> Result<()> {
    let (request, json) = match cmd {
        ContactCommand::List { json } => {
            let list: Vec<ContactView> = ask(home, &Request::Contacts).await?;
            return show(json, &list, |list| print::contacts(list));
        }
        ContactCommand::Add {
            user,
            group,
            name,
            message,
            json,
        } => (
            Request::ContactAdd {
                user,
                group,
                name,
                message,
            },
            json,
        ),
        ContactCommand::Accept { user, json } => (Request::ContactAccept { user }, json),
        ContactCommand::Reject { user, json } => (Request::ContactReject { user }, json),
        ContactCommand::Remove { user, json } => (Request::ContactRemove { user }, json),
    };
    let view: ContactView = ask(home, &request).await?;
    show(json, &view, |c| {
        println!(
            "{} ({}): {}",
            print::terminal_safe(&c.name),
            c.user_id,
            c.state
        )
    })
}
