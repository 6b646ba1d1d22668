//! The home's files that the first-run and settings screens change, through
//! the same library calls as the CLI: `tincan init` (identity) and the
//! display name, `tincan org join` (membership), `tincan relay set`, the
//! gateway preference, the idle time and the download folder
//! (`config.toml`). Plain blocking file I/O: callers run these in a task.
//!
//! Every error is a sentence for the user; nothing here panics on bad input.

use std::path::{Path, PathBuf};

use chrono::TimeZone;
use tincan_core::{GatewayPreference, Membership, MembershipError};
use tincan_node::config::{self, FileConfig, RelayAddr};
use tincan_node::{keystore, org, Home};

/// Biggest file accepted as a membership (a real one is a few hundred bytes).
const MAX_MEMBERSHIP_FILE: u64 = 64 * 1024;

/// The printable prefix of a membership (an invite pasted as text).
const MEMBERSHIP_PREFIX: &str = "tincan-membership:";

/// The organisation this user joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgInfo {
    /// Its name.
    pub name: String,
    /// Its id.
    pub id: String,
    /// When the membership expires, Unix seconds.
    pub expires_at: u64,
}

impl OrgInfo {
    fn from_membership(m: &Membership) -> Self {
        Self {
            name: m.org_name.clone(),
            id: m.org_id().to_string(),
            expires_at: m.expires_at,
        }
    }

    /// "Acme (valid until 2027-03-01)".
    pub fn describe(&self) -> String {
        let until = i64::try_from(self.expires_at)
            .ok()
            .and_then(|secs| chrono::Local.timestamp_opt(secs, 0).single())
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| "?".into());
        format!("{} (valid until {until})", self.name)
    }
}

/// What the settings screen shows about this home.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// The display name.
    pub name: String,
    /// The user id.
    pub user_id: String,
    /// Its short form, `abcd-efgh`.
    pub fingerprint: String,
    /// The organisation, if joined.
    pub org: Option<OrgInfo>,
    /// Why the membership file is unusable, if it is.
    pub org_error: Option<String>,
    /// The relay in `config.toml`, if any.
    pub relay: Option<String>,
    /// The gateway preference in `config.toml`.
    pub gateway: GatewayPreference,
    /// Idle seconds before presence turns away (0: never).
    pub away_after_secs: u64,
    /// The download folder in `config.toml`, if set.
    pub downloads: Option<String>,
}

/// Reads the identity, membership and `config.toml` of `home`.
pub fn load(home: &Home) -> Result<Profile, String> {
    let identity = keystore::load(home).map_err(|e| e.to_string())?;
    let (org, org_error) = match org::load_membership(home, &identity) {
        Ok(m) => (m.as_ref().map(OrgInfo::from_membership), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let file = FileConfig::load(home).map_err(|e| e.to_string())?;
    let gateway = file
        .gateway
        .as_deref()
        .and_then(|g| config::parse_gateway(g).ok())
        .unwrap_or_default();
    Ok(Profile {
        name: identity.name.clone(),
        user_id: identity.user_id().to_string(),
        fingerprint: identity.user_id().fingerprint(),
        org,
        org_error,
        relay: file.relay,
        gateway,
        away_after_secs: file
            .away_after_secs
            .unwrap_or(config::DEFAULT_AWAY_AFTER_SECS),
        downloads: file.downloads,
    })
}

/// Checks a display name as `tincan init` does.
pub fn check_name(name: &str) -> Result<String, String> {
    keystore::validate_name(name).map_err(|e| match e {
        keystore::KeystoreError::BadName(reason) => capitalise(&reason.to_string()),
        other => other.to_string(),
    })
}

/// Creates this device's identity named `name` (`tincan init --name`).
/// Returns the name as stored.
pub fn create_identity(home: &Home, name: &str) -> Result<String, String> {
    let identity = keystore::create(home, name, false).map_err(|e| e.to_string())?;
    Ok(identity.name)
}

/// Joins an organisation (`tincan org join`): `source` is the pasted
/// invite (`tincan-membership:...`) or the path of the membership file.
pub fn join_org(home: &Home, source: &str) -> Result<OrgInfo, String> {
    let source = source.trim();
    if source.is_empty() {
        return Err("Paste the invite text or the path of the membership file.".into());
    }
    let (text, origin) = if source.starts_with(MEMBERSHIP_PREFIX) {
        (source.to_string(), "the pasted text".to_string())
    } else {
        let path = expand_home(source);
        (read_membership_file(&path)?, path.display().to_string())
    };
    let membership = Membership::from_text(&text).map_err(|e| match e {
        MembershipError::Malformed => format!(
            "{origin} is not a tincan membership: it should be the text \"{MEMBERSHIP_PREFIX}…\" your admin sent."
        ),
        other => format!("{origin}: {other}."),
    })?;
    let identity = keystore::load(home).map_err(|e| e.to_string())?;
    org::save_membership(home, &identity, &membership).map_err(|e| e.to_string())?;
    Ok(OrgInfo::from_membership(&membership))
}

fn read_membership_file(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("There is no file {shown}."),
        _ => format!("Cannot read {shown}: {e}."),
    })?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a file."));
    }
    if meta.len() > MAX_MEMBERSHIP_FILE {
        return Err(format!(
            "{shown} is not a tincan membership file (far too big: {} bytes).",
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("Cannot read {shown}: {e}."))?;
    String::from_utf8(bytes)
        .map_err(|_| format!("{shown} is not a tincan membership file (it is not text)."))
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Sets the relay (`tincan relay set`); an empty text removes it
/// (`tincan relay unset`). Returns the relay as saved.
pub fn set_relay(home: &Home, text: &str) -> Result<Option<String>, String> {
    let relay = if text.trim().is_empty() {
        None
    } else {
        Some(
            RelayAddr::parse(text)
                .map_err(|e| capitalise(&e.to_string()))?
                .to_string(),
        )
    };
    let mut file = FileConfig::load(home).map_err(|e| e.to_string())?;
    file.relay = relay.clone();
    file.save(home).map_err(|e| e.to_string())?;
    Ok(relay)
}

/// Saves the branch-gateway preference in `config.toml`.
pub fn set_gateway(home: &Home, gateway: GatewayPreference) -> Result<(), String> {
    let mut file = FileConfig::load(home).map_err(|e| e.to_string())?;
    file.gateway = Some(gateway.as_str().to_string());
    file.save(home).map_err(|e| e.to_string())
}

/// Changes the display name (kept with the keys). Returns it as stored.
pub fn set_name(home: &Home, name: &str) -> Result<String, String> {
    check_name(name)?;
    let identity = keystore::set_name(home, name).map_err(|e| capitalise(&e.to_string()))?;
    Ok(identity.name)
}

/// Saves the idle time before auto-away (`away_after_secs`; 0: never).
pub fn set_away_after(home: &Home, secs: u64) -> Result<(), String> {
    let mut file = FileConfig::load(home).map_err(|e| e.to_string())?;
    file.away_after_secs = Some(secs);
    file.save(home).map_err(|e| e.to_string())
}

/// Saves the download folder (`downloads`): it must be an absolute path
/// of a folder that exists or can be made. An empty text goes back to the
/// platform's download folder. Returns the folder as saved.
pub fn set_downloads(home: &Home, text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    let folder = if text.is_empty() {
        None
    } else {
        let path = expand_home(text);
        if !path.is_absolute() {
            return Err(format!(
                "{text} is not a full path; start it with / (or ~/ for your home)."
            ));
        }
        if path.exists() && !path.is_dir() {
            return Err(format!("{} is a file, not a folder.", path.display()));
        }
        std::fs::create_dir_all(&path)
            .map_err(|e| format!("Cannot make the folder {}: {e}.", path.display()))?;
        Some(path.display().to_string())
    };
    let mut file = FileConfig::load(home).map_err(|e| e.to_string())?;
    file.downloads = folder.clone();
    file.save(home).map_err(|e| e.to_string())?;
    Ok(folder)
}

/// `Text` from `text`: errors of the node library start lowercase.
pub fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_gets_sentences_not_panics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::new(dir.path().join("h"));
        assert_eq!(check_name("   ").unwrap_err(), "The name is empty");
        assert!(check_name(&"x".repeat(500))
            .unwrap_err()
            .contains("longer than"));
        assert_eq!(check_name("  Ann ").expect("ok"), "Ann");
        create_identity(&home, "Ann").expect("create");

        let junk = dir.path().join("junk.txt");
        std::fs::write(&junk, "hello world").expect("write");
        let error = join_org(&home, junk.to_str().expect("utf8")).unwrap_err();
        assert!(error.contains("is not a tincan membership"), "{error}");
        let error = join_org(&home, "/nonexistent/file").unwrap_err();
        assert!(error.contains("There is no file"), "{error}");
        let error = join_org(&home, "tincan-membership:AAAA").unwrap_err();
        assert!(error.contains("not a tincan membership"), "{error}");
        let binary = dir.path().join("bin");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).expect("write");
        assert!(join_org(&home, binary.to_str().expect("utf8"))
            .unwrap_err()
            .contains("not text"));

        let error = set_relay(&home, "relay.example.com").unwrap_err();
        assert!(error.contains("FINGERPRINT"), "{error}");
        assert_eq!(set_relay(&home, "").expect("unset"), None);
        set_gateway(&home, GatewayPreference::Never).expect("gateway");
        let profile = load(&home).expect("profile");
        assert_eq!(profile.gateway, GatewayPreference::Never);
        assert_eq!(profile.name, "Ann");
        assert!(profile.org.is_none() && profile.relay.is_none());

        assert_eq!(set_name(&home, "").unwrap_err(), "The name is empty");
        assert_eq!(set_name(&home, " Ann B ").expect("rename"), "Ann B");
        set_away_after(&home, 300).expect("idle");
        assert!(set_downloads(&home, "relative/dir")
            .unwrap_err()
            .contains("not a full path"));
        assert!(set_downloads(&home, junk.to_str().expect("utf8"))
            .unwrap_err()
            .contains("is a file"));
        let incoming = dir.path().join("Incoming");
        let saved = set_downloads(&home, incoming.to_str().expect("utf8")).expect("downloads");
        assert!(incoming.is_dir());
        let profile = load(&home).expect("profile");
        assert_eq!(profile.name, "Ann B");
        assert_eq!(profile.away_after_secs, 300);
        assert_eq!(profile.downloads, saved);
    }
}
