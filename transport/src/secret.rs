//! Files that hold secrets (identity keys, the relay's key): private
//! directories and atomic owner-only writes.
//!
//! Kept apart from the node's other OS-specific bits (`platform`) because
//! the relay writes its key and restricts its data directory the same way
//! and must not link the node for it. Unix permissions; elsewhere the
//! permission steps are no-ops and the write is still atomic.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Makes a directory private to the user (0700 on Unix; no-op elsewhere).
pub fn restrict_dir(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Writes a secret file atomically: a 0600 temp file, fsync, rename.
/// A crash leaves either the old file or the new one, never half of one.
pub fn write_secret(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file: File = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        // Persist the rename itself.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_replaces_the_old_file_and_is_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        write_secret(&path, b"old").expect("first write");
        write_secret(&path, b"new").expect("second write");
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
        assert!(!path.with_extension("tmp").exists(), "no temp file left");
        restrict_dir(dir.path()).expect("restrict");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode();
            assert_eq!(mode(&path) & 0o777, 0o600);
            assert_eq!(mode(dir.path()) & 0o777, 0o700);
        }
    }
}
