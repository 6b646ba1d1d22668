//! `tincan org ...` and `tincan relay ...`: organisation administration and
//! joining, relay configuration. These work on the home's files and need no
//! running node; when one runs, it is told to reload.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde::Serialize;
use tincan_core::{Membership, OrgKey, UserId};
use tincan_node::config::{FileConfig, RelayAddr};
use tincan_node::org::{self, now_secs, OrgAdmin};
use tincan_node::{keystore, ControlClient, Home, Request};

use super::print;

/// Days a membership lasts unless `--days` says otherwise.
const DEFAULT_DAYS: u64 = 365;

/// Organisation commands.
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organisation: its key stays in this (the admin's) home,
    /// and this user becomes its first member.
    Init {
        /// The organisation's name, e.g. "Acme".
        #[arg(long)]
        name: String,
        /// Replace an existing organisation key (members must be re-issued).
        #[arg(long)]
        force: bool,
        /// Print as JSON: {"org_id","name"}.
        #[arg(long)]
        json: bool,
    },
    /// Issue a signed membership for a user (their `tincan whoami` user id).
    Issue {
        /// The member's user id.
        user_id: String,
        /// How long it is valid.
        #[arg(long, default_value_t = DEFAULT_DAYS)]
        days: u64,
        /// Where to write the membership file (give it to the user).
        #[arg(long)]
        out: PathBuf,
        /// Print as JSON: {"org_id","user_id","expires_at","file"}.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a user: a new signed revocation list, spread by the running
    /// node to the relay and the LAN.
    Revoke {
        /// The user id to revoke.
        user_id: String,
        /// Print as JSON: {"org_id","serial","revoked"}.
        #[arg(long)]
        json: bool,
    },
    /// Join an organisation with the membership file the admin issued.
    Join {
        /// The membership file (or a file holding the pasted text).
        file: PathBuf,
        /// Print as JSON: {"org_id","org_name","expires_at"}.
        #[arg(long)]
        json: bool,
    },
    /// Show the organisation this node belongs to.
    Show {
        /// Print as JSON: {"org_id","org_name","expires_at"} or null.
        #[arg(long)]
        json: bool,
    },
}

/// Relay commands.
#[derive(Debug, Subcommand)]
pub enum RelayCommand {
    /// Use this relay: `HOST:PORT#FINGERPRINT` (as `tincan-relay init` prints), or
    /// the nodes of a relay cluster: `HOST:PORT,HOST:PORT,...#FINGERPRINT`.
    Set {
        /// The relay.
        relay: String,
    },
    /// Stop using a relay (LAN only).
    Unset,
}

#[derive(Serialize)]
struct MembershipView {
    org_id: String,
    org_name: String,
    user_id: String,
    expires_at: u64,
}

impl From<&Membership> for MembershipView {
    fn from(m: &Membership) -> Self {
        Self {
            org_id: m.org_id().to_string(),
            org_name: m.org_name.clone(),
            user_id: m.user.to_string(),
            expires_at: m.expires_at,
        }
    }
}

/// Tells a running node to reload its organisation files; no node is fine.
async fn notify_node(home: &Home) -> bool {
    let Ok(mut client) = ControlClient::connect(home).await else {
        return false;
    };
    client.request(&Request::ReloadOrg).await.is_ok()
}

fn show(view: &MembershipView, json: bool) -> Result<()> {
    if json {
        print::json(view)
    } else {
        println!("organisation: {} ({})", view.org_name, view.org_id);
        println!("member:       {}", view.user_id);
        println!(
            "valid until:  {}",
            super::when::date_time_secs(view.expires_at)
        );
        Ok(())
    }
}

/// Runs one `org` command.
pub async fn run_org(home: &Home, cmd: OrgCommand) -> Result<()> {
    match cmd {
        OrgCommand::Init { name, force, json } => {
            let name = name.trim().to_string();
            let identity = keystore::load(home)?;
            let key = OrgKey::generate(&mut keystore::OsEntropy);
            let admin = OrgAdmin::create(home, key, &name, force)?;
            let now = now_secs();
            let membership =
                admin
                    .key
                    .issue(&name, identity.user_id(), now, now + 10 * 365 * 86_400)?;
            org::save_membership(home, &identity, &membership)?;
            let org_id = admin.key.id().to_string();
            if json {
                print::json(&serde_json::json!({ "org_id": org_id, "name": name }))?;
            } else {
                println!("created organisation {name}: {org_id}");
                println!("serve it with: tincan-relay run --org {org_id}");
                println!("enrol a colleague with: tincan org issue THEIR_USER_ID --out FILE");
            }
        }
        OrgCommand::Issue {
            user_id,
            days,
            out,
            json,
        } => {
            let admin = OrgAdmin::load(home)?;
            let user: UserId = user_id
                .parse()
                .with_context(|| format!("{user_id:?} is not a user id (see `tincan whoami`)"))?;
            let now = now_secs();
            let membership =
                admin
                    .key
                    .issue(&admin.name, user, now, now + days.saturating_mul(86_400))?;
            std::fs::write(&out, format!("{}\n", membership.to_text()))
                .with_context(|| format!("cannot write {}", out.display()))?;
            if json {
                print::json(&serde_json::json!({
                    "org_id": admin.key.id().to_string(),
                    "user_id": user.to_string(),
                    "expires_at": membership.expires_at,
                    "file": out.display().to_string(),
                }))?;
            } else {
                println!("membership for {user} written to {}", out.display());
                println!("they run: tincan org join {}", out.display());
            }
        }
        OrgCommand::Revoke { user_id, json } => {
            let admin = OrgAdmin::load(home)?;
            let user: UserId = user_id
                .parse()
                .with_context(|| format!("{user_id:?} is not a user id"))?;
            let list = admin.revoke(home, user)?;
            let told = notify_node(home).await;
            if json {
                print::json(&serde_json::json!({
                    "org_id": admin.key.id().to_string(),
                    "serial": list.serial,
                    "revoked": list.revoked.iter().map(ToString::to_string).collect::<Vec<_>>(),
                }))?;
            } else {
                println!("revoked {user} (revocation list {})", list.serial);
                if !told {
                    println!("no node is running here: the list spreads when `tincan run` starts");
                }
            }
        }
        OrgCommand::Join { file, json } => {
            let identity = keystore::load(home)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let membership = Membership::from_text(&text)
                .with_context(|| format!("{} is not a tincan membership file", file.display()))?;
            org::save_membership(home, &identity, &membership)?;
            let view = MembershipView::from(&membership);
            if !json {
                println!("joined {}; restart `tincan run` to use it", view.org_name);
            }
            show(&view, json)?;
        }
        OrgCommand::Show { json } => {
            let identity = keystore::load(home)?;
            match org::load_membership(home, &identity)? {
                Some(m) => show(&MembershipView::from(&m), json)?,
                None if json => print::json(&serde_json::Value::Null)?,
                None => println!("not in an organisation (tincan org join FILE)"),
            }
        }
    }
    Ok(())
}

/// Runs one `relay` command.
pub fn run_relay(home: &Home, cmd: RelayCommand) -> Result<()> {
    let mut file = FileConfig::load(home)?;
    match cmd {
        RelayCommand::Set { relay } => {
            let addr = RelayAddr::parse(&relay)?;
            file.relay = Some(addr.to_string());
            file.save(home)?;
            println!("relay set to {addr}; restart `tincan run` to use it");
        }
        RelayCommand::Unset => {
            file.relay = None;
            file.save(home)?;
            println!("relay removed; restart `tincan run`");
        }
    }
    Ok(())
}
