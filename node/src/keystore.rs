//! Loading and creating the device identity on disk.

use std::time::{SystemTime, UNIX_EPOCH};

use tincan_core::name::NameError;
use tincan_core::{Identity, IdentityError};

use crate::home::Home;

pub use tincan_core::name::MAX_NAME_CHARS;
pub use tincan_transport::entropy::OsEntropy;

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// No identity exists in this home yet.
    #[error("no identity in {0}: run `tincan init --name NAME` first")]
    Missing(String),
    /// An identity exists and `--force` was not given.
    #[error(
        "an identity already exists in {0}; use --force to replace it (the old keys are lost)"
    )]
    Exists(String),
    /// A node runs with this home: its identity cannot be replaced under it.
    #[error("a tincan node is running with home {0}; stop it first (init replaces the identity that node runs as)")]
    Running(String),
    /// The display name is empty, too long or hides characters.
    #[error("invalid name: {0}")]
    BadName(#[from] NameError),
    /// The identity file is not a tincan identity.
    #[error("identity file {path} is unreadable: {source}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong with it.
        source: IdentityError,
    },
    /// Reading or writing failed.
    #[error("identity file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// [`tincan_core::name::validate_name`] as a keystore error: the one rule
/// for display names, shared with the relay, which checks the names
/// devices register with.
pub fn validate_name(name: &str) -> Result<String, KeystoreError> {
    Ok(tincan_core::name::validate_name(name)?)
}

/// Loads the identity of `home`.
pub fn load(home: &Home) -> Result<Identity, KeystoreError> {
    let path = home.identity_path();
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(KeystoreError::Missing(home.root().display().to_string()))
        }
        Err(source) => {
            return Err(KeystoreError::Io {
                path: path.display().to_string(),
                source,
            })
        }
    };
    Identity::from_bytes(&bytes).map_err(|source| KeystoreError::Corrupt {
        path: path.display().to_string(),
        source,
    })
}

/// Creates a new user + device identity named `name` in `home`.
pub fn create(home: &Home, name: &str, force: bool) -> Result<Identity, KeystoreError> {
    let name = validate_name(name)?;
    let path = home.identity_path();
    let io = |source| KeystoreError::Io {
        path: path.display().to_string(),
        source,
    };
    if path.exists() && !force {
        return Err(KeystoreError::Exists(home.root().display().to_string()));
    }
    home.create().map_err(io)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let identity = Identity::generate(&name, now, &mut OsEntropy);
    crate::platform::write_secret(&path, &identity.to_bytes()).map_err(io)?;
    Ok(identity)
}

/// `tincan init`: creates a new identity like [`create`], but never under a
/// running node (the node would go on as the old user while the files say
/// the new one, and the old history would sit under the new user).
pub fn init(home: &Home, name: &str, force: bool) -> Result<Identity, KeystoreError> {
    let io = |source| KeystoreError::Io {
        path: home.lock_path().display().to_string(),
        source,
    };
    home.create().map_err(io)?;
    let Some(_lock) = home.try_lock().map_err(io)? else {
        return Err(KeystoreError::Running(home.root().display().to_string()));
    };
    create(home, name, force)
}

/// Changes the display name of the identity in `home` (the keys stay):
/// checked like a new name, written atomically. A running node announces
/// it from its next start (the name travels in its hello and mDNS record).
pub fn set_name(home: &Home, name: &str) -> Result<Identity, KeystoreError> {
    let name = validate_name(name)?;
    let mut identity = load(home)?;
    identity.name = name;
    let path = home.identity_path();
    crate::platform::write_secret(&path, &identity.to_bytes()).map_err(|source| {
        KeystoreError::Io {
            path: path.display().to_string(),
            source,
        }
    })?;
    Ok(identity)
}

/// Loads the identity, creating one named `name` if the home has none.
pub fn load_or_create(home: &Home, name: &str) -> Result<(Identity, bool), KeystoreError> {
    match load(home) {
        Ok(identity) => Ok((identity, false)),
        Err(KeystoreError::Missing(_)) => create(home, name, false).map(|i| (i, true)),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_refuses_to_overwrite_without_force_and_writes_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::new(dir.path().join("h"));
        let first = create(&home, "Alice", false).expect("create");
        assert!(matches!(
            create(&home, "Alice", false),
            Err(KeystoreError::Exists(_))
        ));
        assert_eq!(load(&home).expect("load").device_id(), first.device_id());
        let second = create(&home, "Alice", true).expect("force");
        assert_ne!(second.device_id(), first.device_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(home.identity_path())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn names_are_checked_and_corrupt_files_reported() {
        // The rule itself is tested in tincan_core::name; here, that the
        // keystore applies it and keeps its messages.
        assert_eq!(validate_name(" Bob ").expect("ok"), "Bob");
        assert_eq!(
            validate_name(&"x".repeat(65))
                .expect_err("too long")
                .to_string(),
            "invalid name: the name is longer than 64 characters"
        );
        assert!(matches!(
            validate_name("Bob\u{200B}"),
            Err(KeystoreError::BadName(NameError::Invisible(0x200B)))
        ));
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::new(dir.path());
        std::fs::write(home.identity_path(), b"garbage").expect("write");
        assert!(matches!(load(&home), Err(KeystoreError::Corrupt { .. })));
    }

    #[test]
    fn set_name_keeps_the_keys_and_refuses_bad_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::new(dir.path().join("h"));
        assert!(matches!(
            set_name(&home, "Ann"),
            Err(KeystoreError::Missing(_))
        ));
        let before = create(&home, "Ann", false).expect("create");
        assert!(matches!(
            set_name(&home, " "),
            Err(KeystoreError::BadName(_))
        ));
        assert!(set_name(&home, &"x".repeat(65)).is_err());
        assert_eq!(load(&home).expect("load").name, "Ann", "nothing stored");
        set_name(&home, "  Ann Other ").expect("rename");
        let after = load(&home).expect("load");
        assert_eq!(after.name, "Ann Other");
        assert_eq!(after.device_id(), before.device_id());
        assert_eq!(after.user_id(), before.user_id());
    }
}
