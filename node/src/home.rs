//! The home directory: where one node keeps its identity, database, config
//! and control socket. One home = one node; a lock file enforces it.

use std::path::{Path, PathBuf};

/// File names inside a home directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// A home rooted at `root` (not created yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The platform default: `$XDG_DATA_HOME/tincan` on Linux, the
    /// Application Support / AppData equivalents elsewhere.
    pub fn platform_default() -> Option<Self> {
        directories::ProjectDirs::from("", "", "tincan").map(|d| Self::new(d.data_dir()))
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The secret identity (0600).
    pub fn identity_path(&self) -> PathBuf {
        self.root.join("identity.key")
    }

    /// The SQLite database (history, outbox, peers).
    pub fn database_path(&self) -> PathBuf {
        self.root.join("tincan.db")
    }

    /// The optional TOML configuration.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// The control socket of the running daemon.
    pub fn control_socket_path(&self) -> PathBuf {
        self.root.join("control.sock")
    }

    /// The organisation key (admin's home only, 0600).
    pub fn org_key_path(&self) -> PathBuf {
        self.root.join("org.key")
    }

    /// This user's organisation membership.
    pub fn membership_path(&self) -> PathBuf {
        self.root.join("membership.txt")
    }

    /// The newest organisation revocation list seen.
    pub fn revocations_path(&self) -> PathBuf {
        self.root.join("revocations.bin")
    }

    /// The lock held by the running node.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join("node.lock")
    }

    /// Takes the lock a running node holds for as long as it runs; commands
    /// that must not run beside a node (`init`, `device add`, `name set`
    /// without one) take it too. `Ok(None)`: a node holds it. Released when
    /// the returned file is dropped (or the process dies). The directory
    /// must exist ([`Home::create`]).
    pub fn try_lock(&self) -> std::io::Result<Option<std::fs::File>> {
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.lock_path())?;
        Ok(lock.try_lock().is_ok().then_some(lock))
    }

    /// Creates the directory (0700 on Unix: it holds secrets).
    pub fn create(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.root)?;
        crate::platform::restrict_dir(&self.root)
    }
}
