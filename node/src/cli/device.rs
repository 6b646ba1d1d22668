//! `tincan device ...`: several devices per user. `pair` (on a device
//! holding the user key) shows a code and waits; `add` (on the new device,
//! before it runs a node) enrols it with that code; `list` and `remove`
//! ask the running node.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use tincan_node::pair::JoinOptions;
use tincan_node::{ControlClient, DeviceView, Home, NodeEvent, PairingView, Request, StatusView};

use super::{ask, print};

/// `tincan device ...`.
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Show a pairing code for a new device of yours and wait until it is
    /// used (5 minutes, single use). Run on a device that holds your user
    /// key (the one you started on).
    Pair {
        /// Print JSON lines: first {"code","expires_at"}, then
        /// {"paired":{device}} or {"error":"..."}.
        #[arg(long)]
        json: bool,
    },
    /// Enrol this device as another device of an existing user, with the
    /// code `tincan device pair` shows there. Run before `tincan run`.
    Add {
        /// The pairing code (case, spaces and dashes do not matter).
        code: String,
        /// Where the other device listens (`tincan status` there shows it)
        /// [default: the device showing a code on this LAN, found by mDNS].
        #[arg(long, value_name = "HOST:PORT")]
        peer: Option<String>,
        /// What to call this device in `device list` [default: the host name].
        #[arg(long)]
        label: Option<String>,
        /// Pair even though this home has history of its own (it is moved
        /// aside to tincan.db.before-pairing-*, not mixed in).
        #[arg(long)]
        force: bool,
        /// Print as JSON: {"user_id","device_id","name","label","org","relay","devices"}.
        #[arg(long)]
        json: bool,
    },
    /// List your devices.
    List {
        /// Print as JSON: [{"device_id","label","this","online","added_at"}].
        #[arg(long)]
        json: bool,
    },
    /// Remove one of your devices (a lost laptop): it gets nothing new, and
    /// your peers, the gateway and the relay refuse it. Needs the user key.
    Remove {
        /// Device id (a unique prefix of 4+ characters) or its label.
        device: String,
        /// Print the removed device as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `device` command.
pub async fn run(home: &Home, cmd: DeviceCommand) -> Result<()> {
    match cmd {
        DeviceCommand::Pair { json } => pair(home, json).await,
        DeviceCommand::Add {
            code,
            peer,
            label,
            force,
            json,
        } => {
            let peer = match peer {
                Some(peer) => Some(
                    tokio::net::lookup_host(&peer)
                        .await
                        .with_context(|| format!("cannot resolve {peer:?} (expected HOST:PORT)"))?
                        .next()
                        .with_context(|| format!("{peer:?} resolves to no address"))?,
                ),
                None => None,
            };
            let label = label.unwrap_or_else(tincan_node::platform::device_label);
            let label = tincan_node::keystore::validate_name(&label)?;
            let options = JoinOptions {
                code,
                peer,
                label,
                force,
            };
            let joined = tincan_node::pair::join(home, &options).await?;
            if json {
                print::json(&joined)?;
            } else {
                println!(
                    "this device is now one of {}'s devices ({} in all); start it with `tincan run`",
                    joined.name, joined.devices
                );
            }
            Ok(())
        }
        DeviceCommand::List { json } => {
            let devices: Vec<DeviceView> = ask(home, &Request::DeviceList).await?;
            if json {
                print::json(&devices)?;
            } else {
                for d in &devices {
                    println!(
                        "{} {:<24} {} {}",
                        if d.online { "●" } else { "○" },
                        d.label,
                        d.device_id,
                        if d.this { "(this device)" } else { "" }
                    );
                }
            }
            Ok(())
        }
        DeviceCommand::Remove { device, json } => {
            let removed: DeviceView = ask(home, &Request::DeviceRemove { device }).await?;
            if json {
                print::json(&removed)?;
            } else {
                println!("removed {} ({})", removed.label, removed.device_id);
            }
            Ok(())
        }
    }
}

async fn pair(home: &Home, json: bool) -> Result<()> {
    // Subscribe before the code exists, so the outcome cannot be missed.
    let mut events = ControlClient::connect(home).await?.watch().await?;
    let shown: PairingView = ask(home, &Request::DevicePair).await?;
    if json {
        println!("{}", serde_json::to_string(&shown)?);
    } else {
        let status: StatusView = ask(home, &Request::Status).await?;
        println!(
            "pairing code: {}  (single use, valid for 5 minutes)",
            shown.code
        );
        println!(
            "on the new device run:  tincan device add {}   (on this LAN; elsewhere add --peer <this machine's address>:{})",
            shown.code,
            status.listen.rsplit(':').next().unwrap_or_default()
        );
        println!("waiting...");
    }
    loop {
        let event = events.next().await;
        match event {
            Ok(NodeEvent::DevicePaired { device }) => {
                if json {
                    println!("{}", serde_json::json!({ "paired": device }));
                } else {
                    println!("paired {} ({})", device.label, device.device_id);
                }
                return Ok(());
            }
            Ok(NodeEvent::PairingFailed { reason }) => {
                if json {
                    println!("{}", serde_json::json!({ "error": reason }));
                }
                bail!("pairing failed: {reason}");
            }
            Ok(_) => {}
            // Events of kinds this build does not know are skipped.
            Err(tincan_node::ControlError::Protocol(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
