//! Command-line parsing (clap) and the command implementations.

mod chat;
mod device;
mod file;
mod name;
mod org;
mod post;
mod print;
mod room;
mod when;

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use tincan_node::{
    config, keystore, ControlClient, ControlError, HistoryQuery, Home, MessageView, Node,
    NodeConfig, PeerView, Request, StatusView, WhoAmI,
};

/// tincan — an office messenger with no server: nodes on a LAN find each
/// other over mDNS and talk directly over end-to-end encrypted QUIC.
#[derive(Debug, Parser)]
#[command(name = "tincan", version, about, long_about = None)]
pub struct Cli {
    /// Home directory (identity, history, config, control socket).
    /// Default: the platform data dir, e.g. ~/.local/share/tincan.
    #[arg(long, global = true, env = "TINCAN_HOME", value_name = "DIR")]
    home: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create this device's identity (a user key and a device key).
    Init {
        /// Your display name, as colleagues will see it [default: asked on
        /// a terminal, offering your full name as the OS knows it; without
        /// a terminal that name is taken].
        #[arg(long)]
        name: Option<String>,
        /// Replace an existing identity (its keys are lost).
        #[arg(long)]
        force: bool,
        /// Print the new identity as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Your display name: `name set NAME` renames you (with or without a
    /// running node; peers see the new name within seconds).
    #[command(subcommand)]
    Name(name::NameCommand),
    /// Show this device's identity (works without a running node).
    Whoami {
        /// Print as JSON: {"user_id","device_id","name"}.
        #[arg(long)]
        json: bool,
    },
    /// Run the node in the foreground (on first run creates an identity,
    /// asking for your name on a terminal). Stop with Ctrl-C.
    Run {
        /// QUIC listen address [default: 47070 on every IPv6 and IPv4 address, or a random port if taken].
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// A peer to dial directly (when multicast is blocked); repeatable.
        #[arg(long = "peer", value_name = "HOST:PORT")]
        peers: Vec<String>,
        /// Do not use mDNS (no LAN announce or discovery).
        #[arg(long)]
        no_mdns: bool,
        /// The display name for a new identity [default: asked on a
        /// terminal, offering your full name as the OS knows it; without a
        /// terminal the OS user name].
        #[arg(long)]
        name: Option<String>,
        /// The organisation's relay, HOST:PORT#FINGERPRINT, or the nodes of a relay
        /// cluster, HOST:PORT,HOST:PORT,...#FINGERPRINT (overrides config.toml).
        #[arg(long, value_name = "HOST:PORT#FINGERPRINT")]
        relay: Option<String>,
        /// Branch gateway: auto (default), prefer, or never (e.g. on a laptop).
        #[arg(long, value_name = "auto|prefer|never")]
        gateway: Option<String>,
        /// Do not tell senders when you read their messages (overrides config.toml).
        #[arg(long)]
        no_read_receipts: bool,
        /// Cap on file bytes sent to the relay across branches, per second
        /// (e.g. 2MiB; applied where they leave for the WAN: on the gateway
        /// or a roaming device). Overrides `wan_upload_limit` in config.toml.
        #[arg(long, value_name = "RATE")]
        wan_upload_limit: Option<String>,
    },
    /// Organisations: create one (admin), enrol and revoke members, join one.
    #[command(subcommand)]
    Org(org::OrgCommand),
    /// The relay that bridges branches and roaming laptops.
    #[command(subcommand)]
    Relay(org::RelayCommand),
    /// List peers: colleagues found on the LAN or configured
    /// (`peers forget PEER` removes one who is gone for good).
    Peers {
        /// Print as JSON: [{"name","user_id","device_id","addrs","online","via","presence","note","blocked"}].
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        command: Option<name::PeersCommand>,
    },
    /// Send a text message (end-to-end encrypted).
    Send {
        /// The recipient: display name or user-id prefix; several separated
        /// by commas (`bob,carol`) get one message sealed to all of them.
        peer: String,
        /// The text (at most 64 KiB; bigger content belongs in a file
        /// transfer); `-` reads it from standard input, e.g.
        /// `df -h | tincan send bob -`.
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        text: Option<String>,
        /// Read the text from this file (UTF-8, at most 64 KiB).
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Wait until the recipient's device acknowledges it; exit 0 only then.
        #[arg(long)]
        wait: bool,
        /// With --wait: stop waiting after SECS (the message is not lost: it
        /// stays queued here, or the relay holds it; the error says which).
        #[arg(long, value_name = "SECS", requires = "wait")]
        timeout: Option<u64>,
        /// Reply to this message (its id, or at least 6 hex characters of
        /// it, from `history --json`); its start is quoted. `@name` in the
        /// text mentions a user.
        #[arg(long, value_name = "ID")]
        reply_to: Option<String>,
        /// Print the message as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the conversation with a peer, oldest first (reads the database
    /// directly when no node runs).
    History {
        /// The peer: display name or user-id prefix.
        peer: String,
        /// At most this many (newest) messages.
        #[arg(long)]
        limit: Option<u32>,
        /// Only messages sent before this Unix time in milliseconds.
        #[arg(long, value_name = "UNIX_MS")]
        before: Option<u64>,
        /// Only messages sent at or after this Unix time in milliseconds.
        #[arg(long, value_name = "UNIX_MS")]
        since: Option<u64>,
        /// Print as JSON: [{"id","from","to","text","sent_at","state","direction","received_at","offline","reply_to","mentions","broadcast","edited_at","deleted"}].
        #[arg(long)]
        json: bool,
    },
    /// Show the running node's status.
    Status {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print live events (messages, delivery states, peers) as JSON lines.
    Watch,
    /// File transfer: send, accept, reject, cancel, list.
    #[command(subcommand)]
    File(file::FileCommand),
    #[command(flatten)]
    Chat(chat::ChatCommand),
    #[command(flatten)]
    Post(post::PostCommand),
    /// Your devices: pair a new one with a code, list them, remove a lost one.
    #[command(subcommand)]
    Device(device::DeviceCommand),
    /// Rooms: persistent group chats (create, invite, join, leave, list,
    /// send, history, topic, admin, remove, disable).
    #[command(subcommand)]
    Room(room::RoomCommand),
}

fn home_of(cli_home: Option<PathBuf>) -> Result<Home> {
    match cli_home {
        Some(dir) => Ok(Home::new(dir)),
        None => Home::platform_default().context("cannot find a home directory; pass --home DIR"),
    }
}

/// Runs one CLI invocation.
pub async fn run(cli: Cli) -> Result<()> {
    let home = home_of(cli.home)?;
    match cli.command {
        Command::Init { name, force, json } => {
            let name = match name {
                Some(name) => name,
                None => name::for_new_identity(&home, force)?,
            };
            let identity = keystore::init(&home, &name, force)?;
            let who = WhoAmI {
                user_id: identity.user_id().to_string(),
                device_id: identity.device_id().to_string(),
                name: identity.name.clone(),
            };
            if json {
                print::json(&who)?;
            } else {
                println!(
                    "created identity for {} in {}",
                    who.name,
                    home.root().display()
                );
                print::whoami(&who, &identity.user_id().fingerprint());
            }
        }
        Command::Whoami { json } => {
            let identity = keystore::load(&home)?;
            let who = WhoAmI {
                user_id: identity.user_id().to_string(),
                device_id: identity.device_id().to_string(),
                name: identity.name.clone(),
            };
            if json {
                print::json(&who)?;
            } else {
                print::whoami(&who, &identity.user_id().fingerprint());
            }
        }
        Command::Run {
            listen,
            peers,
            no_mdns,
            name,
            relay,
            gateway,
            no_read_receipts,
            wan_upload_limit,
        } => {
            let options = RunOptions {
                listen,
                peers,
                no_mdns,
                name,
                relay,
                gateway,
                no_read_receipts,
                wan_upload_limit,
            };
            run_node(home, options).await?
        }
        Command::Name(cmd) => name::run(&home, cmd).await?,
        Command::Org(cmd) => org::run_org(&home, cmd).await?,
        Command::Relay(cmd) => org::run_relay(&home, cmd)?,
        Command::Peers {
            command: Some(cmd), ..
        } => name::run_peers(&home, cmd).await?,
        Command::Peers {
            json,
            command: None,
        } => {
            let peers: Vec<PeerView> = ask(&home, &Request::Peers).await?;
            if json {
                print::json(&peers)?;
            } else {
                print::peers(&peers);
            }
        }
        Command::Send {
            peer,
            text,
            file,
            wait,
            timeout,
            reply_to,
            json,
        } => {
            let text = message_text(text, file)?;
            let request = Request::Send {
                peer,
                text,
                wait,
                timeout_secs: timeout,
                reply_to,
            };
            let sent: MessageView = ask(&home, &request).await?;
            if json {
                print::json(&sent)?;
            } else {
                println!("{} {}", sent.state, sent.id);
            }
        }
        Command::History {
            peer,
            limit,
            before,
            since,
            json,
        } => {
            let query = HistoryQuery {
                limit,
                before_ms: before,
                since_ms: since,
            };
            let (messages, authors) = history(&home, peer, query).await?;
            if json {
                print::json(&messages)?;
            } else {
                print::history(&messages, &authors);
            }
        }
        Command::Status { json } => {
            let status: StatusView = ask(&home, &Request::Status).await?;
            if json {
                print::json(&status)?;
            } else {
                print::status(&status);
            }
        }
        Command::File(cmd) => file::run(&home, cmd).await?,
        Command::Chat(cmd) => chat::run(&home, cmd).await?,
        Command::Post(cmd) => post::run(&home, cmd).await?,
        Command::Device(cmd) => device::run(&home, cmd).await?,
        Command::Room(cmd) => room::run(&home, cmd).await?,
        Command::Watch => {
            let client = ControlClient::connect(&home).await?;
            let mut events = client.watch().await?;
            loop {
                let line = events.next_raw().await?;
                println!("{line}");
            }
        }
    }
    Ok(())
}

/// The text of `send`: as given, from standard input (`-`) or from a file,
/// refused when over the text limit (a file transfer carries more).
fn message_text(text: Option<String>, file: Option<PathBuf>) -> Result<String> {
    use std::io::Read;
    let max = tincan_core::wire::MAX_TEXT_LEN;
    let (text, source) = match (text.as_deref(), file) {
        (Some("-"), _) => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .take(max as u64 + 3)
                .read_to_end(&mut bytes)
                .context("cannot read the message from standard input")?;
            (bytes, "standard input".to_string())
        }
        (Some(_), _) => (text.unwrap_or_default().into_bytes(), "the message".into()),
        (None, Some(path)) => {
            let mut bytes = Vec::new();
            std::fs::File::open(&path)
                .and_then(|f| f.take(max as u64 + 3).read_to_end(&mut bytes))
                .with_context(|| format!("cannot read {}", path.display()))?;
            (bytes, path.display().to_string())
        }
        (None, None) => bail!("give the text, `-` for standard input, or --file FILE"),
    };
    let over = || {
        anyhow::anyhow!(
            "{source} is over the {}-KiB limit for a message; send it as a file instead (`tincan file send`)",
            max / 1024
        )
    };
    // Up to a line end over the limit may still fit once the line end is
    // dropped; beyond, it is too big (and may be cut inside a character).
    if text.len() > max + 2 {
        return Err(over());
    }
    let mut text = String::from_utf8(text).map_err(|_| {
        anyhow::anyhow!(
            "{source} is not UTF-8 text; send it as a file instead (`tincan file send`)"
        )
    })?;
    // What `echo` or a file adds at the end is not part of the message.
    if source != "the message" && text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.len() > max {
        return Err(over());
    }
    Ok(text)
}

/// The conversation with `peer` and who is who in it: from the running
/// node, or read-only from the database when none runs.
async fn history(
    home: &Home,
    peer: String,
    query: HistoryQuery,
) -> Result<(Vec<MessageView>, print::Authors)> {
    let request = Request::History {
        peer: peer.clone(),
        limit: query.limit,
        before: query.before_ms,
        since: query.since_ms,
    };
    match ControlClient::connect(home).await {
        Ok(mut client) => {
            let data = client.request(&request).await?;
            let messages =
                serde_json::from_value(data).context("unexpected answer from the node")?;
            Ok((messages, authors(home, false).await?))
        }
        Err(ControlError::NotRunning(_)) => {
            let stored = tincan_node::read_history(home, &peer, &query)?;
            let me = keystore::load(home)?.user_id().to_string();
            Ok((stored.messages, print::Authors::new(me, stored.names)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Display names of the running node's peers (and room members with
/// `rooms`), to print who wrote what.
async fn authors(home: &Home, rooms: bool) -> Result<print::Authors> {
    let me = keystore::load(home)?.user_id().to_string();
    let peers: Vec<PeerView> = ask(home, &Request::Peers).await?;
    let mut names: Vec<(String, String)> = peers.into_iter().map(|p| (p.user_id, p.name)).collect();
    if rooms {
        let rooms: Vec<tincan_node::RoomView> = ask(home, &Request::RoomList).await?;
        names.extend(
            rooms
                .into_iter()
                .flat_map(|r| r.members)
                .map(|m| (m.user_id, m.name)),
        );
    }
    Ok(print::Authors::new(me, names))
}

async fn ask<T: serde::de::DeserializeOwned>(home: &Home, request: &Request) -> Result<T> {
    let mut client = ControlClient::connect(home).await?;
    let data = client.request(request).await?;
    serde_json::from_value(data).context("unexpected answer from the node")
}

/// The flags of `tincan run`.
struct RunOptions {
    listen: Option<String>,
    peers: Vec<String>,
    no_mdns: bool,
    name: Option<String>,
    relay: Option<String>,
    gateway: Option<String>,
    no_read_receipts: bool,
    wan_upload_limit: Option<String>,
}

async fn run_node(home: Home, options: RunOptions) -> Result<()> {
    // A first run on a terminal asks for the name, as `init` does; a
    // service or script takes the OS user name.
    let name = match options.name {
        Some(name) => name,
        None if !home.identity_path().exists() && std::io::stdin().is_terminal() => {
            name::for_new_identity(&home, false)?
        }
        None => tincan_node::platform::os_user_name(),
    };
    init_tracing();
    let mut node_config = NodeConfig::from_home(home)?;
    if let Some(listen) = options.listen {
        node_config.listen = Some(config::parse_listen(&listen)?);
    }
    for peer in &options.peers {
        config::check_peer(peer)?;
    }
    node_config.peers.extend(options.peers);
    if options.no_mdns {
        node_config.mdns = false;
    }
    if let Some(relay) = options.relay {
        node_config.relay = Some(config::RelayAddr::parse(&relay)?);
    }
    if let Some(gateway) = options.gateway {
        node_config.gateway = config::parse_gateway(&gateway)?;
    }
    if options.no_read_receipts {
        node_config.read_receipts = false;
    }
    if let Some(limit) = options.wan_upload_limit {
        node_config.files.wan_upload_limit = config::parse_wan_limit(&limit)?;
    }
    node_config.create_identity_as = Some(name);
    let node = Node::start(node_config).await?;
    let who = node.whoami();
    eprintln!(
        "tincan running as {} ({}) on {} — Ctrl-C to stop",
        who.name,
        who.user_id,
        node.listen_addr()
    );
    wait_for_signal().await;
    node.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// One line per command: its path, its positionals and every flag with
    /// its value name, so a renamed flag or a lost command fails here.
    fn describe(command: &clap::Command, path: &str, out: &mut String) {
        let mut words = vec![path.to_string()];
        // Positionals in the order they are typed, then flags by name.
        for arg in command.get_positionals() {
            let name = arg
                .get_value_names()
                .map(|names| names.join(" "))
                .unwrap_or_else(|| arg.get_id().to_string());
            let many = arg.get_num_args().is_some_and(|n| n.max_values() > 1);
            let word = format!("<{name}>{}", if many { "..." } else { "" });
            words.push(optional(arg, word));
        }
        let mut flags: Vec<&clap::Arg> = command
            .get_arguments()
            .filter(|a| !a.is_positional())
            .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
            .collect();
        flags.sort_by_key(|a| a.get_long().map(str::to_string));
        for arg in flags {
            let mut word = match (arg.get_long(), arg.get_short()) {
                (Some(long), Some(short)) => format!("-{short}|--{long}"),
                (Some(long), None) => format!("--{long}"),
                (None, Some(short)) => format!("-{short}"),
                (None, None) => arg.get_id().to_string(),
            };
            if arg.get_action().takes_values() {
                let value = arg
                    .get_value_names()
                    .map(|names| names.join(" "))
                    .unwrap_or_else(|| arg.get_id().to_string().to_uppercase());
                word = format!("{word} <{value}>");
            }
            if matches!(arg.get_action(), clap::ArgAction::Append) {
                word.push_str("...");
            }
            words.push(optional(arg, word));
        }
        out.push_str(&words.join(" "));
        out.push('\n');
        let mut subcommands: Vec<&clap::Command> = command.get_subcommands().collect();
        subcommands.sort_by_key(|c| c.get_name().to_string());
        for sub in subcommands {
            if sub.get_name() != "help" {
                describe(sub, &format!("{path} {}", sub.get_name()), out);
            }
        }
    }

    fn optional(arg: &clap::Arg, word: String) -> String {
        if arg.is_required_set() {
            word
        } else {
            format!("[{word}]")
        }
    }

    #[test]
    fn commands_and_flags_are_as_pinned() {
        let mut out = String::new();
        describe(&super::Cli::command(), "tincan", &mut out);
        tincan_node::golden::check("cli.txt", &out);
    }
}
