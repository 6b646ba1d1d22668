//! `tincan-relay`: a thin clap wrapper around the `tincan_relay` library.

mod cli;

use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use cli::{Cli, Command, RunArgs};
use tincan_relay::{key, RelayConfig, RelayHome};

fn main() {
    if let Err(e) = real_main() {
        // One clear line (no backtrace dump), non-zero exit.
        eprintln!("error: {}", tincan_core::report::one_line(e.as_ref()));
        std::process::exit(1);
    }
}

fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let home = match cli.home.clone() {
        Some(dir) => RelayHome::new(dir),
        None => RelayHome::platform_default()
            .context("no home directory on this system: give --home DIR")?,
    };
    match cli.command {
        Command::Init { json, force } => init(&home, json, force),
        Command::Run(args) => run(home, *args),
        Command::Status { json } => status(&home, json),
    }
}

fn init(home: &RelayHome, json: bool, force: bool) -> anyhow::Result<()> {
    let identity = key::create(home, force)?;
    let fingerprint = key::fingerprint(&identity).to_string();
    if json {
        println!("{}", serde_json::json!({ "fingerprint": fingerprint }));
    } else {
        println!("relay key created in {}", home.root().display());
        println!("fingerprint: {fingerprint}");
        println!("devices pin it as HOST:PORT#{fingerprint}");
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run(home: RelayHome, args: RunArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut config = RelayConfig::new(home, args.listen, args.orgs);
    config.metrics = args.metrics;
    config.mail_ttl = Duration::from_secs(args.mail_ttl_days.saturating_mul(24 * 3600));
    config.mailbox_quota = args.mailbox_quota;
    config.mailbox_quota_bytes = args.mailbox_quota_bytes;
    config.file_quota_bytes = args.file_quota_bytes;
    config.rate = args.rate;
    config.lease_ttl_ms = args.lease_ttl_ms;
    config.max_conns_per_ip = args.max_conns_per_ip;
    config.org_mail_quota_bytes = args.org_mail_quota_bytes;
    config.max_devices_per_user = args.max_devices_per_user;
    config.max_handshakes = args.max_handshakes;
    config.retry_above = args.retry_above;
    config.conn_rate_per_ip = args.conn_rate_per_ip;
    if let Some(text) = &args.engine {
        config.engine = Some(tincan_relay::engine::NatsEngineConfig {
            urls: tincan_relay::config::parse_engine(text)?,
            replicas: args.engine_replicas,
        });
    }
    if config.rate == 0 {
        bail!("--rate must be at least 1");
    }
    if config.conn_rate_per_ip == 0 {
        bail!("--conn-rate-per-ip must be at least 1");
    }
    runtime()?.block_on(async move {
        let relay = tincan_relay::start(config).await?;
        println!(
            "tincan-relay listening on {} fingerprint {}",
            relay.local_addr(),
            relay.fingerprint()
        );
        if let Some(addr) = relay.metrics_addr() {
            println!("metrics on http://{addr}/metrics");
        }
        wait_for_signal().await;
        relay.shutdown().await;
        anyhow::Ok(())
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
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
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn status(home: &RelayHome, json: bool) -> anyhow::Result<()> {
    let view = runtime()?.block_on(tincan_relay::control::status(&home.control_socket_path()))?;
    if json {
        println!("{}", serde_json::to_string(&view)?);
        return Ok(());
    }
    println!("relay {} on {}", view.fingerprint, view.listen);
    println!("stored mail: {}", view.mail_total);
    for org in &view.orgs {
        let online = org.devices.iter().filter(|d| d.online).count();
        let direct = org.devices.iter().filter(|d| d.online && d.direct).count();
        println!(
            "organisation {}: {} devices ({online} online: {direct} connected directly, {} through a branch gateway), {} sites, {} stored",
            org.org_id,
            org.devices.len(),
            online - direct,
            org.sites.len(),
            org.mail
        );
        for d in &org.devices {
            let place = match (&d.site, d.direct, d.online) {
                (_, true, _) => "direct".to_string(),
                (Some(site), _, _) => format!("site {site}"),
                (None, _, true) => "online".to_string(),
                _ => "offline".to_string(),
            };
            println!("  device {} {:<20} {}", d.device_id, d.name, place);
        }
        for s in &org.sites {
            println!(
                "  site {} epoch {} holder {} ({} members)",
                s.site,
                s.epoch,
                s.holder.as_deref().unwrap_or("none"),
                s.members.len()
            );
        }
    }
    Ok(())
}
