//! The relay's key: a plain tincan [`Identity`] named "relay" in
//! `HOME/relay.key` (0600). Its device key is the relay's TLS key, and the
//! [`RelayId`] of that key is the fingerprint users pin in
//! `HOST:PORT#FINGERPRINT`.

use std::time::{SystemTime, UNIX_EPOCH};

use tincan_core::{Identity, IdentityError, RelayId};
use tincan_transport::entropy::OsEntropy;

use crate::config::RelayHome;

/// Why the relay key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A key exists and `--force` was not given.
    #[error("a relay key already exists in {0}; use --force to replace it (devices that pinned the old fingerprint will refuse the relay)")]
    Exists(String),
    /// The key file is not a tincan identity.
    #[error("relay key {path} is unreadable: {source}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong with it.
        source: IdentityError,
    },
    /// Reading or writing failed.
    #[error("relay key {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The fingerprint of a relay identity: its device key's [`RelayId`].
pub fn fingerprint(identity: &Identity) -> RelayId {
    RelayId::from_public_key(&identity.cert.device_key)
}

/// Loads the key of `home`, or `None` if there is none yet.
pub fn load(home: &RelayHome) -> Result<Option<Identity>, KeyError> {
    let path = home.key_path();
    match std::fs::read(&path) {
        Ok(bytes) => Identity::from_bytes(&bytes)
            .map(Some)
            .map_err(|source| KeyError::Corrupt {
                path: path.display().to_string(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KeyError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Creates a new key in `home`; refuses to replace one unless `force`.
pub fn create(home: &RelayHome, force: bool) -> Result<Identity, KeyError> {
    let path = home.key_path();
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    if path.exists() && !force {
        return Err(KeyError::Exists(home.root().display().to_string()));
    }
    home.create().map_err(io)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let identity = Identity::generate("relay", now, &mut OsEntropy);
    tincan_transport::secret::write_secret(&path, &identity.to_bytes()).map_err(io)?;
    Ok(identity)
}

/// Loads the key, creating one if the home has none; tells whether it was
/// created.
pub fn load_or_create(home: &RelayHome) -> Result<(Identity, bool), KeyError> {
    match load(home)? {
        Some(identity) => Ok((identity, false)),
        None => create(home, false).map(|i| (i, true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_load_and_refuse_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = RelayHome::new(dir.path().join("r"));
        assert!(load(&home).expect("load").is_none());
        let (first, created) = load_or_create(&home).expect("create");
        assert!(created);
        assert!(matches!(create(&home, false), Err(KeyError::Exists(_))));
        let again = load(&home).expect("load").expect("present");
        assert_eq!(fingerprint(&again), fingerprint(&first));
        assert_eq!(fingerprint(&first).to_string().len(), 32);
        let replaced = create(&home, true).expect("force");
        assert_ne!(fingerprint(&replaced), fingerprint(&first));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(home.key_path())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
