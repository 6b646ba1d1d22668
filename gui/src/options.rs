//! The command line of `tincan-gui`: the same home and node flags as
//! `tincan run`, plus the display scale.

use std::path::PathBuf;

use clap::Parser;
use tincan_node::api::{Home, NodeConfig};
use tincan_node::config::{self, ConfigError};

/// tincan — the office messenger with no server. Opens the messenger
/// window; the node runs inside it, or the app attaches to a `tincan run`
/// already running for the same home.
#[derive(Clone, Debug, Default, Parser)]
#[command(name = "tincan-gui", version, about, long_about = None)]
pub struct Options {
    /// Home directory (identity, history, config, control socket), shared
    /// with the `tincan` CLI. Default: the platform data dir.
    #[arg(long, env = "TINCAN_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// QUIC listen address [default: 0.0.0.0:47070, or a random port if taken].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// A peer to dial directly (when multicast is blocked); repeatable.
    #[arg(long = "peer", value_name = "HOST:PORT")]
    pub peers: Vec<String>,
    /// Do not use mDNS (no LAN announce or discovery).
    #[arg(long)]
    pub no_mdns: bool,
    /// The organisation's relay, HOST:PORT#FINGERPRINT (overrides config.toml).
    #[arg(long, value_name = "HOST:PORT#FINGERPRINT")]
    pub relay: Option<String>,
    /// Branch gateway: auto, prefer or never (overrides config.toml).
    #[arg(long, value_name = "auto|prefer|never")]
    pub gateway: Option<String>,
    /// Zoom factor for everything in the window, e.g. 1.5 (on top of the
    /// desktop's own scaling) [default: the saved setting, else 1].
    #[arg(long, env = "ICED_SCALE", value_name = "FACTOR", value_parser = parse_scale)]
    pub scale: Option<f32>,
}

/// Smallest and largest zoom accepted.
pub const SCALE_RANGE: std::ops::RangeInclusive<f32> = 0.5..=4.0;

fn parse_scale(text: &str) -> Result<f32, String> {
    let value: f32 = text
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{text:?} is not a number (e.g. 1.5)"))?;
    // Accept "150%" as well as "1.5".
    let value = if text.trim().ends_with('%') {
        value / 100.0
    } else {
        value
    };
    if SCALE_RANGE.contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{value} is out of range ({}..={})",
            SCALE_RANGE.start(),
            SCALE_RANGE.end()
        ))
    }
}

impl Options {
    /// The home directory to use.
    pub fn home(&self) -> Result<Home, String> {
        match &self.home {
            Some(dir) => Ok(Home::new(dir)),
            None => Home::platform_default()
                .ok_or_else(|| "cannot find a home directory; pass --home DIR".to_string()),
        }
    }

    /// Checks the node flags, so that a typo is reported before a window opens.
    pub fn check(&self) -> Result<(), ConfigError> {
        if let Some(listen) = &self.listen {
            config::parse_listen(listen)?;
        }
        for peer in &self.peers {
            config::check_peer(peer)?;
        }
        if let Some(relay) = &self.relay {
            config::RelayAddr::parse(relay)?;
        }
        if let Some(gateway) = &self.gateway {
            config::parse_gateway(gateway)?;
        }
        Ok(())
    }

    /// The node configuration: `config.toml` of `home`, then these flags
    /// on top (as `tincan run` does). Never creates an identity: the
    /// first-run screen does that.
    pub fn node_config(&self, home: Home) -> Result<NodeConfig, ConfigError> {
        let mut node = NodeConfig::from_home(home)?;
        if let Some(listen) = &self.listen {
            node.listen = Some(config::parse_listen(listen)?);
        }
        for peer in &self.peers {
            config::check_peer(peer)?;
        }
        node.peers.extend(self.peers.iter().cloned());
        if self.no_mdns {
            node.mdns = false;
        }
        if let Some(relay) = &self.relay {
            node.relay = Some(config::RelayAddr::parse(relay)?);
        }
        if let Some(gateway) = &self.gateway {
            node.gateway = config::parse_gateway(gateway)?;
        }
        node.create_identity_as = None;
        Ok(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_like_tincan_run() {
        let options = Options::try_parse_from([
            "tincan-gui",
            "--home",
            "/tmp/h",
            "--no-mdns",
            "--listen",
            "127.0.0.1:5000",
            "--peer",
            "127.0.0.1:5001",
            "--scale",
            "150%",
        ])
        .expect("parse");
        assert!(options.no_mdns);
        assert_eq!(options.scale, Some(1.5));
        assert!(options.check().is_ok());
        let bad = Options {
            relay: Some("nope".into()),
            ..Options::default()
        };
        assert!(bad.check().unwrap_err().to_string().contains("HOST:PORT"));
        assert!(Options::try_parse_from(["tincan-gui", "--scale", "9"]).is_err());
    }
}
