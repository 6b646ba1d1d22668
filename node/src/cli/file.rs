//! `tincan file ...`: offering, accepting and watching file transfers.
//! Paths are made absolute here (the daemon has another working
//! directory); `--wait` polls the daemon and draws a progress bar
//! (indicatif, on stderr, only when it is a terminal).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tincan_node::{ControlClient, Home, Request, TransferView};

use super::print::terminal_safe;

#[derive(Debug, Subcommand)]
pub enum FileCommand {
    /// Offer files and folders to a peer (end-to-end encrypted; folders
    /// are sent whole, with their relative paths).
    Send {
        /// The recipient: display name or user-id prefix; several as
        /// `bob,carol,dave` (one transfer for all, one copy per branch);
        /// or a room's name or id (offered to its current members).
        peer: String,
        /// Files and folders to send.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Wait until the recipient has everything (progress bar); exit 0 only then.
        #[arg(long)]
        wait: bool,
        /// With --wait: stop waiting after SECS (the transfer goes on).
        #[arg(long, value_name = "SECS", requires = "wait")]
        timeout: Option<u64>,
        /// Print the transfer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Accept an offer (ID or a unique prefix, see `file list`).
    Accept {
        /// The transfer id.
        id: String,
        /// Destination folder [default: your download folder].
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
        /// Wait until every file is verified and in place (progress bar).
        #[arg(long)]
        wait: bool,
        /// With --wait: stop waiting after SECS (the transfer goes on).
        #[arg(long, value_name = "SECS", requires = "wait")]
        timeout: Option<u64>,
        /// Print the transfer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Decline an offer; the sender is told.
    Reject {
        /// The transfer id.
        id: String,
        /// Print the transfer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a transfer, incoming or outgoing; the other side is told.
    Cancel {
        /// The transfer id.
        id: String,
        /// Print the transfer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List transfers with state, progress, rate and ETA.
    List {
        /// Print as JSON: [{"id","direction","peer","name","size","bytes_done","state",...}].
        #[arg(long)]
        json: bool,
    },
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

pub async fn run(home: &Home, cmd: FileCommand) -> Result<()> {
    match cmd {
        FileCommand::Send {
            peer,
            paths,
            wait,
            timeout,
            json,
        } => {
            let paths = paths
                .iter()
                .map(|p| absolute(p).map(|p| p.display().to_string()))
                .collect::<Result<Vec<_>>>()?;
            let view: TransferView = ask(home, &Request::FileSend { peer, paths }).await?;
            if !json {
                println!(
                    "offered {} ({}) to {}: {}",
                    terminal_safe(&view.name),
                    human(view.size),
                    terminal_safe(&view.peer_name),
                    view.id
                );
            }
            finish(home, view, wait, timeout, json).await
        }
        FileCommand::Accept {
            id,
            to,
            wait,
            timeout,
            json,
        } => {
            let to = to
                .map(|d| absolute(&d).map(|d| d.display().to_string()))
                .transpose()?;
            let view: TransferView = ask(home, &Request::FileAccept { id, to }).await?;
            if !json {
                println!(
                    "accepted {} ({}) into {}",
                    terminal_safe(&view.name),
                    human(view.size),
                    view.dest.as_deref().unwrap_or("?")
                );
            }
            finish(home, view, wait, timeout, json).await
        }
        FileCommand::Reject { id, json } => {
            let view: TransferView = ask(home, &Request::FileReject { id }).await?;
            show(&view, json)
        }
        FileCommand::Cancel { id, json } => {
            let view: TransferView = ask(home, &Request::FileCancel { id }).await?;
            show(&view, json)
        }
        FileCommand::List { json } => {
            let views: Vec<TransferView> = ask(home, &Request::FileList).await?;
            if json {
                return super::print::json(&views);
            }
            if views.is_empty() {
                println!("no transfers");
            }
            for v in &views {
                line(v);
            }
            Ok(())
        }
    }
}

fn show(view: &TransferView, json: bool) -> Result<()> {
    if json {
        super::print::json(view)
    } else {
        line(view);
        Ok(())
    }
}

fn line(v: &TransferView) {
    let arrow = if v.direction == "out" { "→" } else { "←" };
    let mut extra = String::new();
    if let Some(rate) = v.rate {
        extra.push_str(&format!(" {}/s", human(rate)));
    }
    if let Some(eta) = v.eta_secs {
        extra.push_str(&format!(" eta {eta}s"));
    }
    if let Some(error) = &v.error {
        extra.push_str(&format!(": {}", terminal_safe(error)));
    }
    println!(
        "{} {arrow} {:<16} {:<12} {} {}/{}{extra}",
        &v.id[..8.min(v.id.len())],
        terminal_safe(&v.peer_name),
        v.state.as_str(),
        terminal_safe(&v.name),
        human(v.bytes_done),
        human(v.size),
    );
}

fn human(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

/// Prints the result, after waiting for the end when asked.
async fn finish(
    home: &Home,
    view: TransferView,
    wait: bool,
    timeout: Option<u64>,
    json: bool,
) -> Result<()> {
    let view = if wait {
        watch(home, view, timeout).await?
    } else {
        view
    };
    if json {
        super::print::json(&view)?;
    } else if wait {
        for path in &view.saved_as {
            println!("saved {}", terminal_safe(path));
        }
        println!("{} {}", view.state.as_str(), view.id);
    }
    if wait && view.state.as_str() != "done" {
        bail!(
            "transfer {}: {}",
            view.state.as_str(),
            view.error.as_deref().unwrap_or("it did not complete")
        );
    }
    Ok(())
}

/// Polls the transfer until it is final, drawing a progress bar.
async fn watch(home: &Home, start: TransferView, timeout: Option<u64>) -> Result<TransferView> {
    let bar = ProgressBar::with_draw_target(Some(start.size), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:12} [{bar:32}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let deadline = timeout.map(|s| Instant::now() + Duration::from_secs(s));
    let mut client = ControlClient::connect(home).await?;
    let mut view = start;
    loop {
        bar.set_position(view.bytes_done);
        bar.set_message(view.state.as_str().to_string());
        if view.state.is_final() {
            bar.finish_and_clear();
            return Ok(view);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            bar.abandon();
            bail!(
                "not finished within {} s; the transfer goes on (`tincan file list`)",
                timeout.unwrap_or(0)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let data = client.request(&Request::FileList).await?;
        let views: Vec<TransferView> =
            serde_json::from_value(data).context("unexpected answer from the node")?;
        match views.into_iter().find(|v| v.id == view.id) {
            Some(v) => view = v,
            None => bail!("the transfer vanished"),
        }
    }
}

async fn ask<T: serde::de::DeserializeOwned>(home: &Home, request: &Request) -> Result<T> {
    let mut client = ControlClient::connect(home).await?;
    let data = client.request(request).await?;
    serde_json::from_value(data).context("unexpected answer from the node")
}
