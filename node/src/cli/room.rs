//! `tincan room ...`: persistent group chats. Each subcommand is one
//! control request to the running node (see `control/protocol.rs`).

use anyhow::Result;
use clap::Subcommand;
use serde::Serialize;
use tincan_node::{
    Home, MessageView, Request, RoomJoinView, RoomLinkView, RoomTypingView, RoomView,
};

use super::{ask, print};

/// `tincan room ...`.
#[derive(Debug, Subcommand)]
pub enum RoomCommand {
    /// Create a room; you are its admin. `--with bob,carol` adds people at
    /// once (the ad-hoc multiparty chat: a 1:1 plus a third person).
    Create {
        /// The room's name (at most 100 characters; end-to-end encrypted).
        name: String,
        /// People to add at once: names or user-id prefixes, comma-separated.
        #[arg(long, value_delimiter = ',')]
        with: Vec<String>,
        /// Print the room as JSON: {"id","name","topic","members","disabled","joined","admin"}.
        #[arg(long)]
        json: bool,
    },
    /// Add people to a room (admins); they are members at once.
    Invite {
        /// Room id, id prefix or unique name.
        room: String,
        /// People to add: names or user-id prefixes.
        #[arg(required = true)]
        users: Vec<String>,
        /// Print the room as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Join a room you were not added to, with a join link an admin gave
    /// you (`tincan room link`), or rejoin a room you left.
    Join {
        /// A join link (`tincan-room:...`), or the id or name of a room you left.
        room: String,
        /// Print as JSON: {"room","joined","requested"}.
        #[arg(long)]
        json: bool,
    },
    /// Make a join link for people not in the room yet (admins). Share it
    /// over tincan: whoever brings it to `room join` is added by your node.
    Link {
        /// Room id, id prefix or unique name.
        room: String,
        /// Print as JSON: {"room","link"}.
        #[arg(long)]
        json: bool,
    },
    /// Leave a room (its history stays readable here).
    Leave {
        /// Room id, id prefix or unique name.
        room: String,
        /// Print the room as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List your rooms.
    List {
        /// Print as JSON: a list of rooms.
        #[arg(long)]
        json: bool,
    },
    /// Send a text to a room (end-to-end encrypted to its current members).
    Send {
        /// Room id, id prefix or unique name.
        room: String,
        /// The text (at most 64 KiB).
        text: String,
        /// Print the message as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A room's messages and membership changes, oldest first.
    History {
        /// Room id, id prefix or unique name.
        room: String,
        /// At most this many (newest) messages.
        #[arg(long)]
        limit: Option<u32>,
        /// Only messages sent before this Unix time in milliseconds.
        #[arg(long, value_name = "UNIX_MS")]
        before: Option<u64>,
        /// Only messages sent at or after this Unix time in milliseconds.
        #[arg(long, value_name = "UNIX_MS")]
        since: Option<u64>,
        /// Print as JSON: messages shaped like `history --json` plus "room"
        /// (and "system": true on membership lines).
        #[arg(long)]
        json: bool,
    },
    /// Set the topic (admins); "" clears it.
    Topic {
        /// Room id, id prefix or unique name.
        room: String,
        /// The topic (at most 1000 characters; end-to-end encrypted).
        topic: String,
        /// Print the room as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rename a room (admins).
    Rename {
        /// Room id, id prefix or unique name.
        room: String,
        /// The new name.
        name: String,
        /// Print the room as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a member an admin (admins).
    Admin {
        /// Room id, id prefix or unique name.
        room: String,
        /// The member: name or user-id prefix.
        user: String,
        /// Print the room as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a member (admins); they get no later messages.
    Remove {
        /// Room id, id prefix or unique name.
        room: String,
        /// The member: name or user-id prefix.
        user: String,
        /// Print the room as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Disable a room (admins): it stays readable and takes no new messages.
    Disable {
        /// Room id, id prefix or unique name.
        room: String,
        /// Print the room as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Tell the room you are typing (at most once per 3 s; never stored).
    Typing {
        /// Room id, id prefix or unique name.
        room: String,
        /// Print as JSON: {"room","sent"}.
        #[arg(long)]
        json: bool,
    },
}

fn show<T: Serialize>(json: bool, value: &T, human: impl FnOnce(&T)) -> Result<()> {
    if json {
        print::json(value)
    } else {
        human(value);
        Ok(())
    }
}

fn room_line(r: &RoomView) {
    let names: Vec<String> = r
        .members
        .iter()
        .map(|m| {
            let name = print::terminal_safe(&m.name);
            if m.admin {
                format!("{name} (admin)")
            } else {
                name
            }
        })
        .collect();
    let mut flags = String::new();
    if r.disabled {
        flags += " [disabled]";
    }
    if !r.joined {
        flags += " [not a member]";
    }
    println!(
        "{}  {}{flags}\n    topic: {}\n    members: {}",
        r.id,
        print::terminal_safe(&r.name),
        print::terminal_safe(&r.topic),
        names.join(", ")
    );
}

/// Runs one `tincan room` command against the running node.
pub async fn run(home: &Home, cmd: RoomCommand) -> Result<()> {
    let room_reply = |json: bool, view: RoomView| show(json, &view, room_line);
    match cmd {
        RoomCommand::Create { name, with, json } => {
            room_reply(json, ask(home, &Request::RoomCreate { name, with }).await?)?
        }
        RoomCommand::Invite { room, users, json } => {
            room_reply(json, ask(home, &Request::RoomInvite { room, users }).await?)?
        }
        RoomCommand::Join { room, json } => {
            let view: RoomJoinView = ask(home, &Request::RoomJoin { room }).await?;
            show(json, &view, |v| {
                if v.joined {
                    println!("joined {}", v.room)
                } else {
                    println!(
                        "asked to join {}; you are added once the link's admin is reachable",
                        v.room
                    )
                }
            })?;
        }
        RoomCommand::Link { room, json } => {
            let view: RoomLinkView = ask(home, &Request::RoomLink { room }).await?;
            show(json, &view, |v| println!("{}", v.link))?;
        }
        RoomCommand::Leave { room, json } => {
            room_reply(json, ask(home, &Request::RoomLeave { room }).await?)?
        }
        RoomCommand::List { json } => {
            let rooms: Vec<RoomView> = ask(home, &Request::RoomList).await?;
            show(json, &rooms, |rooms| {
                if rooms.is_empty() {
                    println!("no rooms yet (`tincan room create NAME`)");
                }
                rooms.iter().for_each(room_line);
            })?;
        }
        RoomCommand::Send { room, text, json } => {
            let sent: MessageView = ask(home, &Request::RoomSend { room, text }).await?;
            show(json, &sent, |m| println!("{} {}", m.state, m.id))?;
        }
        RoomCommand::History {
            room,
            limit,
            before,
            since,
            json,
        } => {
            let request = Request::RoomHistory {
                room,
                limit,
                before,
                since,
            };
            let messages: Vec<MessageView> = ask(home, &request).await?;
            if json {
                print::json(&messages)?;
            } else {
                print::history(&messages, &super::authors(home, true).await?);
            }
        }
        RoomCommand::Topic { room, topic, json } => {
            room_reply(json, ask(home, &Request::RoomTopic { room, topic }).await?)?
        }
        RoomCommand::Rename { room, name, json } => {
            room_reply(json, ask(home, &Request::RoomRename { room, name }).await?)?
        }
        RoomCommand::Admin { room, user, json } => {
            room_reply(json, ask(home, &Request::RoomAdmin { room, user }).await?)?
        }
        RoomCommand::Remove { room, user, json } => {
            room_reply(json, ask(home, &Request::RoomRemove { room, user }).await?)?
        }
        RoomCommand::Disable { room, json } => {
            room_reply(json, ask(home, &Request::RoomDisable { room }).await?)?
        }
        RoomCommand::Typing { room, json } => {
            let view: RoomTypingView = ask(home, &Request::RoomTyping { room }).await?;
            show(json, &view, |v| {
                println!("{}", if v.sent { "sent" } else { "not sent" })
            })?;
        }
    }
    Ok(())
}
