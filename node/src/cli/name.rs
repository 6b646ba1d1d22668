//! Names one gives oneself. `tincan name set NAME` renames this user:
//! with a running node the node does it (it announces the name to peers at
//! once); without one the identity file is rewritten here, under the
//! home's lock so that no node starts half-way. The name of a new
//! identity when `init` got no `--name`: asked on a terminal. And
//! `tincan peers forget PEER`: drop a user who is gone for good (an
//! identity replaced by `init --force`) from the running node.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;
use clap::Subcommand;
use tincan_node::keystore::{self, KeystoreError};
use tincan_node::{ForgottenView, Home, Request, WhoAmI};

use super::{ask, print};

/// `tincan name ...`.
#[derive(Debug, Subcommand)]
pub enum NameCommand {
    /// Change your display name (the keys stay): checked as at `init`.
    Set {
        /// The new name, as colleagues will see it.
        name: String,
        /// Print the identity as JSON: {"user_id","device_id","name"}.
        #[arg(long)]
        json: bool,
    },
}

/// `tincan peers ...`.
#[derive(Debug, Subcommand)]
pub enum PeersCommand {
    /// Forget a user who is gone for good (all their devices): they leave
    /// `peers`, names no longer find them, and messages still waiting for
    /// them fail. Only a user who is offline (one online would be back at
    /// once).
    Forget {
        /// The user: a name, a fingerprint or an id prefix, as `send` takes it.
        peer: String,
        /// Print as JSON: {"user_id","name","devices"}.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `peers` subcommand.
pub async fn run_peers(home: &Home, cmd: PeersCommand) -> Result<()> {
    match cmd {
        PeersCommand::Forget { peer, json } => {
            let gone: ForgottenView = ask(home, &Request::PeerForget { peer }).await?;
            if json {
                print::json(&gone)?;
            } else {
                let devices = gone.devices.len();
                println!(
                    "forgot {} ({}) and {devices} device{}",
                    gone.name,
                    gone.user_id,
                    if devices == 1 { "" } else { "s" }
                );
            }
        }
    }
    Ok(())
}

/// Runs one `name` command.
pub async fn run(home: &Home, cmd: NameCommand) -> Result<()> {
    match cmd {
        NameCommand::Set { name, json } => {
            let (who, running) = set(home, name).await?;
            if json {
                print::json(&who)?;
            } else if running {
                println!("you are now {} (peers see it within seconds)", who.name);
            } else {
                println!("you are now {} (peers see it once the node runs)", who.name);
            }
        }
    }
    Ok(())
}

/// Renames through the running node, or in the identity file when none
/// runs; also says which it was.
async fn set(home: &Home, name: String) -> Result<(WhoAmI, bool)> {
    // A home that does not exist has no identity: say so, create nothing.
    keystore::load(home)?;
    match home.try_lock()? {
        Some(_lock) => {
            let identity = keystore::set_name(home, &name)?;
            let who = WhoAmI {
                user_id: identity.user_id().to_string(),
                device_id: identity.device_id().to_string(),
                name: identity.name,
            };
            Ok((who, false))
        }
        None => Ok((ask(home, &Request::NameSet { name }).await?, true)),
    }
}

/// The name for a new identity when `init` got no `--name`: on a terminal
/// the user is asked (the OS user's full name offered, Enter takes it, a
/// refused name is asked again); without one (a script, a service) that
/// default is taken. Refuses before asking when `init` would refuse anyway.
pub fn for_new_identity(home: &Home, force: bool) -> Result<String> {
    if !force && home.identity_path().exists() {
        return Err(KeystoreError::Exists(home.root().display().to_string()).into());
    }
    let default = tincan_node::platform::default_display_name();
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Ok(default);
    }
    let mut stderr = std::io::stderr();
    loop {
        write!(stderr, "Your name, as colleagues will see it [{default}]: ")?;
        stderr.flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            // End of input (Ctrl-D): as Enter.
            writeln!(stderr)?;
            return Ok(default);
        }
        let typed = line.trim();
        if typed.is_empty() {
            return Ok(default);
        }
        match keystore::validate_name(typed) {
            Ok(name) => return Ok(name),
            Err(e) => writeln!(stderr, "{e}; try another")?,
        }
    }
}
