//! The messenger commands: `presence`, `activity`, `read`, `typing`,
//! `block`, `unblock`, `blocked`, `search` and `export`. Each is one
//! control request to the running node (see `control/protocol.rs`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use tincan_node::{
    BlockedView, ExportView, Home, PresenceView, ReadView, Request, SearchHitView, TypingView,
};

use super::{ask, print};

/// The messenger commands (flattened into the top-level list).
#[derive(Debug, Subcommand)]
pub enum ChatCommand {
    /// Show your presence, or set it (`tincan presence set busy --note "in a meeting"`).
    Presence {
        #[command(subcommand)]
        action: Option<PresenceAction>,
        /// Print as JSON: {"presence","note","auto_away","chosen","shown","idle_secs","away_after_secs"}.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Tell the node you are active (clears auto-away; for screensaver hooks).
    Activity {
        /// Print your presence as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Mark the conversation with a peer read (and tell the senders, unless
    /// read receipts are off).
    Read {
        /// The peer: display name or user-id prefix.
        peer: String,
        /// Print as JSON: {"peer","marked","receipts"}.
        #[arg(long)]
        json: bool,
    },
    /// Tell a peer you are typing (at most once per 3 s; never stored).
    Typing {
        /// The peer: display name or user-id prefix.
        peer: String,
        /// Print as JSON: {"peer","sent"}.
        #[arg(long)]
        json: bool,
    },
    /// Block a user: nothing from them is shown, stored or notified, and
    /// they see you offline.
    Block {
        /// Display name, user-id prefix or full user id.
        user: String,
        /// Print as JSON: {"user_id","name","blocked_at"}.
        #[arg(long)]
        json: bool,
    },
    /// Unblock a user.
    Unblock {
        /// The name they were blocked as, a user-id prefix or full user id.
        user: String,
        /// Print as JSON: {"user_id","name","blocked_at"}.
        #[arg(long)]
        json: bool,
    },
    /// List blocked users.
    Blocked {
        /// Print as JSON: [{"user_id","name","blocked_at"}].
        #[arg(long)]
        json: bool,
    },
    /// Full-text search of the history (every word must match, as a
    /// prefix), best matches first.
    Search {
        /// The words to look for.
        #[arg(required = true)]
        words: Vec<String>,
        /// Only the conversation with this peer.
        #[arg(long)]
        peer: Option<String>,
        /// At most this many results [default: 100].
        #[arg(long)]
        limit: Option<u32>,
        /// Print as JSON: messages shaped like `history --json`, plus "highlight".
        #[arg(long)]
        json: bool,
    },
    /// Export conversations to a file (JSON that reads back, or HTML).
    Export {
        /// The file format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
        /// Only the conversation with this peer [default: all].
        #[arg(long)]
        peer: Option<String>,
        /// Where to write it (an existing file is replaced only with --force).
        #[arg(long)]
        out: PathBuf,
        /// Replace the file at --out if there is one.
        #[arg(long)]
        force: bool,
        /// Print a summary as JSON: {"out","format","conversations","messages","rooms"}.
        #[arg(long)]
        json: bool,
    },
}

/// `tincan presence ...`.
#[derive(Debug, Subcommand)]
pub enum PresenceAction {
    /// Set your presence: online, away, busy, on-the-phone, out-to-lunch or
    /// appear-offline.
    Set {
        /// The presence.
        state: String,
        /// A note shown with it (at most 256 characters; "" clears it;
        /// without --note the current note stays).
        #[arg(long)]
        note: Option<String>,
    },
}

/// Formats of `tincan export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// JSON: {"format","version","exported_at","user_id","name","conversations":[{"peer","name","messages"}],"rooms":[{"id","name","members","messages"}]}.
    Json,
    /// A standalone HTML page.
    Html,
}

/// `tincan export --json`.
#[derive(Serialize)]
struct ExportSummary {
    out: String,
    format: &'static str,
    conversations: usize,
    messages: usize,
    /// Rooms exported (their messages are not counted in `messages`).
    rooms: usize,
}

/// Runs one messenger command against the running node.
pub async fn run(home: &Home, cmd: ChatCommand) -> Result<()> {
    match cmd {
        ChatCommand::Presence { action, json } => {
            let request = match action {
                None => Request::Presence,
                Some(PresenceAction::Set { state, note }) => {
                    if let Err(e) = state.parse::<tincan_core::PresenceState>() {
                        bail!("{e}");
                    }
                    Request::SetPresence {
                        presence: state,
                        note,
                    }
                }
            };
            let view: PresenceView = ask(home, &request).await?;
            show(json, &view, print::presence)?;
        }
        ChatCommand::Activity { json } => {
            let view: PresenceView = ask(home, &Request::Activity).await?;
            show(json, &view, print::presence)?;
        }
        ChatCommand::Read { peer, json } => {
            let view: ReadView = ask(home, &Request::Read { peer }).await?;
            show(json, &view, |v| {
                println!(
                    "marked {} message(s) read; {} read receipt(s) queued",
                    v.marked, v.receipts
                )
            })?;
        }
        ChatCommand::Typing { peer, json } => {
            let view: TypingView = ask(home, &Request::Typing { peer }).await?;
            show(json, &view, |v| {
                println!("{}", if v.sent { "sent" } else { "not sent" })
            })?;
        }
        ChatCommand::Block { user, json } => {
            let view: BlockedView = ask(home, &Request::Block { user }).await?;
            show(json, &view, |v| {
                println!("blocked {} ({})", v.name, v.user_id)
            })?;
        }
        ChatCommand::Unblock { user, json } => {
            let view: BlockedView = ask(home, &Request::Unblock { user }).await?;
            show(json, &view, |v| {
                println!("unblocked {} ({})", v.name, v.user_id)
            })?;
        }
        ChatCommand::Blocked { json } => {
            let list: Vec<BlockedView> = ask(home, &Request::Blocked).await?;
            show(json, &list, |list| {
                if list.is_empty() {
                    println!("nobody is blocked");
                }
                for b in list {
                    println!("{:<24} {}", print::terminal_safe(&b.name), b.user_id);
                }
            })?;
        }
        ChatCommand::Search {
            words,
            peer,
            limit,
            json,
        } => {
            let request = Request::Search {
                words: words.join(" "),
                peer,
                limit,
            };
            let hits: Vec<SearchHitView> = ask(home, &request).await?;
            show(json, &hits, |hits| print::search(hits))?;
        }
        ChatCommand::Export {
            format,
            peer,
            out,
            force,
            json,
        } => {
            if !force && out.exists() {
                bail!(
                    "{} already exists; pass --force to replace it, or choose another --out",
                    out.display()
                );
            }
            let export: ExportView = ask(home, &Request::Export { peer }).await?;
            let (bytes, name) = match format {
                ExportFormat::Json => (serde_json::to_vec_pretty(&export)?, "json"),
                ExportFormat::Html => (export.to_html().into_bytes(), "html"),
            };
            write_atomically(&out, &bytes)?;
            let summary = ExportSummary {
                out: out.display().to_string(),
                format: name,
                conversations: export.conversations.len(),
                messages: export.conversations.iter().map(|c| c.messages.len()).sum(),
                rooms: export.rooms.len(),
            };
            show(json, &summary, |s| {
                println!(
                    "exported {} message(s) of {} conversation(s) to {}",
                    s.messages, s.conversations, s.out
                )
            })?;
        }
    }
    Ok(())
}

/// Prints `value` as JSON or with `human`.
pub(super) fn show<T: Serialize>(json: bool, value: &T, human: impl FnOnce(&T)) -> Result<()> {
    if json {
        print::json(value)
    } else {
        human(value);
        Ok(())
    }
}

/// Writes `bytes` to `path` through a temporary file in the same
/// directory, so a crash leaves the old file or the new one, never half.
/// Errors name `path`, the file the user asked for, not the temporary one.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}
