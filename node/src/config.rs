//! Node configuration: defaults, the optional `config.toml` in the home,
//! and command-line overrides, merged in that order.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use tincan_core::site::GatewayPreference;
use tincan_core::RelayId;

use crate::home::Home;

/// The port a node listens on by default. Another node of the same host
/// (a terminal server) that finds it taken falls back to a random port and
/// announces that one over mDNS.
pub const DEFAULT_PORT: u16 = 47_070;

/// What `config.toml` may hold. Every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Listen address, e.g. `"0.0.0.0:47070"`.
    pub listen: Option<String>,
    /// Static peers (`HOST:PORT`), for networks that block multicast.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Whether to use mDNS discovery (default true).
    pub mdns: Option<bool>,
    /// The organisation's relay, `HOST:PORT#FINGERPRINT`.
    pub relay: Option<String>,
    /// Branch-gateway preference: `auto` (default), `prefer` or `never`.
    pub gateway: Option<String>,
    /// Where accepted files go without `--to` (default: the download folder).
    pub downloads: Option<String>,
    /// Full user ids (as `tincan whoami` prints them) whose file offers
    /// are accepted without asking. Never names or prefixes: a name can be
    /// borrowed and a prefix can be ground, an id cannot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auto_accept: Vec<String>,
    /// Cap on serving file chunks, bytes per second (`"20MiB"`, `"5MB"`).
    pub upload_limit: Option<String>,
    /// Cap on file bytes sent to the relay (WAN uploads), bytes per second.
    pub wan_upload_limit: Option<String>,
    /// Most bytes a branch gateway keeps in its cache of files pulled from
    /// the relay (default 2GiB).
    pub file_cache_limit: Option<String>,
    /// Seconds without activity before presence turns `away` by itself
    /// (default 600; 0 never).
    pub away_after_secs: Option<u64>,
    /// Whether to tell senders when their messages were read (default true).
    pub read_receipts: Option<bool>,
    /// Whether new messages raise desktop notifications (default true;
    /// never in Busy/Do-not-disturb or while a window has the focus).
    pub notifications: Option<bool>,
}

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file exists but is not valid TOML for tincan.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A listen address does not parse.
    #[error("invalid listen address {0:?} (expected IP:PORT, e.g. 0.0.0.0:47070)")]
    BadListen(String),
    /// A static peer is not `HOST:PORT`.
    #[error("invalid peer {0:?} (expected HOST:PORT)")]
    BadPeer(String),
    /// A relay address is not `HOST:PORT#FINGERPRINT`.
    #[error(
        "invalid relay {relay:?}: {reason} (expected HOST:PORT#FINGERPRINT, as `tincan-relay init` prints it)"
    )]
    BadRelay {
        /// What was given.
        relay: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A gateway preference other than auto, prefer, never.
    #[error("invalid gateway preference {0:?} (expected auto, prefer or never)")]
    BadGateway(String),
    /// An upload limit that is not a byte rate.
    #[error("invalid upload_limit {0:?} (expected bytes per second, e.g. \"20MiB\")")]
    BadRate(String),
    /// A WAN upload limit that is not a byte rate.
    #[error("invalid wan_upload_limit {0:?} (expected bytes per second, e.g. \"2MiB\")")]
    BadWanRate(String),
    /// A cache limit that is not a size.
    #[error("invalid file_cache_limit {0:?} (expected a size, e.g. \"2GiB\")")]
    BadCacheLimit(String),
    /// An auto-accept entry that is not a full user id (names and id
    /// prefixes are refused: anyone can take a name, or grind a prefix).
    #[error("invalid auto_accept entry {0:?} (expected a full user id, as `tincan whoami` prints it; names and prefixes are not accepted)")]
    BadAutoAccept(String),
    /// The file could not be read.
    #[error("config file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl FileConfig {
    /// Writes the config back to `config.toml` (atomically: temp file +
    /// rename, so a crash leaves the old or the new file, never half).
    pub fn save(&self, home: &Home) -> Result<(), ConfigError> {
        let path = home.config_path();
        let io = |source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        };
        let text = toml::to_string(self).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        home.create().map_err(io)?;
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    /// Reads `config.toml` of `home`; a missing file is the empty config.
    pub fn load(home: &Home) -> Result<Self, ConfigError> {
        let path = home.config_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.display().to_string(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfigError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }
}

/// Everything [`crate::Node::start`] needs.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The home directory.
    pub home: Home,
    /// Where to listen; `None` = every address of both families on
    /// `DEFAULT_PORT` (as `0.0.0.0:PORT` and `[::]:PORT` also mean), falling
    /// back to a random port.
    pub listen: Option<SocketAddr>,
    /// Static peers, `HOST:PORT`.
    pub peers: Vec<String>,
    /// Whether to announce and browse over mDNS.
    pub mdns: bool,
    /// The name for a new identity if the home has none (`None` = refuse to start without one).
    pub create_identity_as: Option<String>,
    /// Whether to serve the control socket (the CLI / bot API).
    pub control_socket: bool,
    /// The organisation's relay, if configured.
    pub relay: Option<RelayAddr>,
    /// Whether this node may become its site's gateway.
    pub gateway: GatewayPreference,
    /// File-transfer settings.
    pub files: crate::file::FilesConfig,
    /// Seconds without activity before presence turns `away` (0 = never).
    pub away_after_secs: u64,
    /// Whether to send read receipts.
    pub read_receipts: bool,
    /// Whether new messages raise notifications (config `notifications`).
    pub notifications: bool,
}

/// The default of [`NodeConfig::away_after_secs`]: ten minutes.
pub const DEFAULT_AWAY_AFTER_SECS: u64 = 600;

/// Where the relay is and which key it must prove: `HOST:PORT#FINGERPRINT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayAddr {
    /// `HOST:PORT` of each node of the relay (one, or several nodes of a
    /// relay cluster sharing one key), resolved when dialled.
    pub host_ports: Vec<String>,
    /// The relay's id; the connection is refused unless the relay proves it.
    pub fingerprint: RelayId,
}

impl RelayAddr {
    /// Parses `HOST:PORT#FINGERPRINT`, or `HOST:PORT,HOST:PORT,...#FINGERPRINT`
    /// for the nodes of a relay cluster (one key, so one fingerprint).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let bad = |reason: String| ConfigError::BadRelay {
            relay: text.to_string(),
            reason,
        };
        let (host_port, fingerprint) = text.trim().split_once('#').ok_or_else(|| {
            bad("no #FINGERPRINT: without the relay's fingerprint its key cannot be checked".into())
        })?;
        let host_ports: Vec<String> = host_port.split(',').map(|h| h.trim().to_string()).collect();
        for h in &host_ports {
            check_peer(h).map_err(|_| bad(format!("{h:?} is not HOST:PORT")))?;
        }
        let fingerprint = fingerprint.trim();
        if fingerprint.is_empty() {
            return Err(bad("the fingerprint after '#' is empty".into()));
        }
        let fingerprint = fingerprint.parse::<RelayId>().map_err(|e| {
            bad(format!(
                "{fingerprint:?} is not a relay fingerprint ({e}); copy it from `tincan-relay init`"
            ))
        })?;
        Ok(Self {
            host_ports,
            fingerprint,
        })
    }
}

impl std::fmt::Display for RelayAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.host_ports.join(","), self.fingerprint)
    }
}

/// Parses a gateway preference.
pub fn parse_gateway(text: &str) -> Result<GatewayPreference, ConfigError> {
    text.trim()
        .parse()
        .map_err(|_| ConfigError::BadGateway(text.to_string()))
}

impl NodeConfig {
    /// Defaults for `home`, merged with its `config.toml`.
    pub fn from_home(home: Home) -> Result<Self, ConfigError> {
        let file = FileConfig::load(&home)?;
        let listen = file.listen.as_deref().map(parse_listen).transpose()?;
        for peer in &file.peers {
            check_peer(peer)?;
        }
        let relay = file.relay.as_deref().map(RelayAddr::parse).transpose()?;
        let files = files_config(&file)?;
        let gateway = file
            .gateway
            .as_deref()
            .map(parse_gateway)
            .transpose()?
            .unwrap_or(GatewayPreference::Auto);
        Ok(Self {
            home,
            listen,
            peers: file.peers,
            mdns: file.mdns.unwrap_or(true),
            create_identity_as: None,
            control_socket: true,
            relay,
            gateway,
            files,
            away_after_secs: file.away_after_secs.unwrap_or(DEFAULT_AWAY_AFTER_SECS),
            read_receipts: file.read_receipts.unwrap_or(true),
            notifications: file.notifications.unwrap_or(true),
        })
    }
}

fn files_config(file: &FileConfig) -> Result<crate::file::FilesConfig, ConfigError> {
    let upload_limit = match &file.upload_limit {
        Some(text) => {
            crate::file::parse_rate(text).ok_or_else(|| ConfigError::BadRate(text.clone()))?
        }
        None => 0,
    };
    let wan_upload_limit = match &file.wan_upload_limit {
        Some(text) => parse_wan_limit(text)?,
        None => 0,
    };
    let cache_limit = match &file.file_cache_limit {
        Some(text) => crate::file::parse_rate(text)
            .filter(|n| *n > 0)
            .ok_or_else(|| ConfigError::BadCacheLimit(text.clone()))?,
        None => crate::file::DEFAULT_CACHE_LIMIT,
    };
    let auto_accept = file
        .auto_accept
        .iter()
        .map(|user| {
            user.parse::<tincan_core::UserId>()
                .map_err(|_| ConfigError::BadAutoAccept(user.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(crate::file::FilesConfig {
        downloads: file.downloads.as_ref().map(std::path::PathBuf::from),
        auto_accept,
        upload_limit,
        wan_upload_limit,
        cache_limit,
    })
}

/// Parses a WAN upload cap (`wan_upload_limit`, `run --wan-upload-limit`).
pub fn parse_wan_limit(text: &str) -> Result<u64, ConfigError> {
    crate::file::parse_rate(text).ok_or_else(|| ConfigError::BadWanRate(text.to_string()))
}

/// Parses a listen address.
pub fn parse_listen(text: &str) -> Result<SocketAddr, ConfigError> {
    text.trim()
        .parse()
        .map_err(|_| ConfigError::BadListen(text.to_string()))
}

/// Checks that a static peer looks like `HOST:PORT` (resolved when dialled).
pub fn check_peer(text: &str) -> Result<(), ConfigError> {
    match text.trim().rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(ConfigError::BadPeer(text.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_accept_takes_full_user_ids_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::new(dir.path());
        let bob = tincan_core::UserId::from_public_key(&[7; 32]);
        let full = bob.to_string();
        for entry in [&full[..8], &full[..full.len() - 1], "Bob", "bob-laptop"] {
            std::fs::write(home.config_path(), format!("auto_accept = [{entry:?}]\n"))
                .expect("write");
            match NodeConfig::from_home(home.clone()) {
                Err(ConfigError::BadAutoAccept(e)) => assert_eq!(e, entry),
                other => panic!("{entry:?} accepted: {other:?}"),
            }
        }
        std::fs::write(home.config_path(), format!("auto_accept = [{full:?}]\n")).expect("write");
        let config = NodeConfig::from_home(home.clone()).expect("config");
        assert_eq!(config.files.auto_accept, [bob]);
    }

    #[test]
    fn file_config_merges_and_rejects_nonsense() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::new(dir.path());
        std::fs::write(
            home.config_path(),
            "listen = \"127.0.0.1:5000\"\npeers = [\"10.0.0.2:47070\"]\nmdns = false\n",
        )
        .expect("write");
        let config = NodeConfig::from_home(home.clone()).expect("config");
        assert_eq!(config.away_after_secs, DEFAULT_AWAY_AFTER_SECS);
        assert!(config.read_receipts);
        assert_eq!(config.listen, Some("127.0.0.1:5000".parse().expect("addr")));
        assert_eq!(config.peers, vec!["10.0.0.2:47070".to_string()]);
        assert!(!config.mdns);
        std::fs::write(
            home.config_path(),
            "away_after_secs = 5\nread_receipts = false\n",
        )
        .expect("write");
        let config = NodeConfig::from_home(home.clone()).expect("config");
        assert_eq!(config.away_after_secs, 5);
        assert!(!config.read_receipts);
        std::fs::write(home.config_path(), "peers = [\"nope\"]\n").expect("write");
        assert!(matches!(
            NodeConfig::from_home(home.clone()),
            Err(ConfigError::BadPeer(_))
        ));
        for (relay, says) in [
            ("10.0.0.9:7443", "no #FINGERPRINT"),
            ("10.0.0.9:7443#", "empty"),
            ("10.0.0.9:7443#abc", "not a relay fingerprint"),
            ("10.0.0.9#abc", "not HOST:PORT"),
            ("10.0.0.9:7443,,10.0.0.8:7443#abc", "not HOST:PORT"),
            ("10.0.0.9:7443,10.0.0.8#abc", "not HOST:PORT"),
        ] {
            let error = RelayAddr::parse(relay).expect_err(relay).to_string();
            assert!(error.contains(says), "{relay}: {error}");
        }
        // The nodes of a relay cluster: several addresses, one fingerprint.
        let fingerprint = RelayId::from_public_key(&[7; 32]);
        let text = format!("r1.example:7443, r2.example:7443,10.0.0.3:7443#{fingerprint}");
        let cluster = RelayAddr::parse(&text).expect("cluster");
        assert_eq!(
            cluster.host_ports,
            vec!["r1.example:7443", "r2.example:7443", "10.0.0.3:7443"]
        );
        assert_eq!(cluster.fingerprint, fingerprint);
        assert_eq!(
            cluster.to_string(),
            format!("r1.example:7443,r2.example:7443,10.0.0.3:7443#{fingerprint}")
        );
        std::fs::write(
            home.config_path(),
            "wan_upload_limit = \"2MiB\"\nfile_cache_limit = \"1GiB\"\n",
        )
        .expect("write");
        let config = NodeConfig::from_home(home.clone()).expect("config");
        assert_eq!(config.files.wan_upload_limit, 2 << 20);
        assert_eq!(config.files.cache_limit, 1 << 30);
        std::fs::write(home.config_path(), "wan_upload_limit = \"fast\"\n").expect("write");
        assert!(matches!(
            NodeConfig::from_home(home.clone()),
            Err(ConfigError::BadWanRate(_))
        ));
        assert!(parse_wan_limit("lots").is_err());
        std::fs::write(home.config_path(), "colour = 1\n").expect("write");
        assert!(matches!(
            NodeConfig::from_home(home),
            Err(ConfigError::Parse { .. })
        ));
    }
}
