//! The sender's files: scanning what the user named into a manifest, and
//! reading chunks to serve.
//!
//! A scan walks folders recursively in name order, keeps relative paths
//! below each named item (its own name first), and refuses names that
//! are not UTF-8 or not safe components (see `manifest::is_safe_component`)
//! rather than renaming them silently. Symbolic links inside folders and
//! special files are skipped; a named link is followed. Each file is
//! hashed chunk by chunk with one reused buffer, and its size and mtime
//! are compared before and after, so a file written to during the scan is
//! an error, not a wrong manifest.
//!
//! Serving re-checks size and mtime and the chunk's hash before sealing:
//! a file that changed or vanished since the offer is refused with
//! [`FileRefusal::Changed`] / [`FileRefusal::Vanished`], never sent as
//! different bytes under the same chunk nonce.

use std::fs::{File, Metadata};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use tincan_core::file::manifest::{is_safe_component, offer_name};
use tincan_core::file::{FileEntry, FileRefusal, Manifest, MAX_FILES};

/// One file as the sender saw it when scanning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Absolute path on the sender.
    pub path: PathBuf,
    /// Size then.
    pub size: u64,
    /// Modification time then, ns since the Unix epoch.
    pub mtime_ns: i64,
}

/// The result of a scan.
#[derive(Clone, Debug)]
pub struct Scanned {
    /// The manifest to offer.
    pub manifest: Manifest,
    /// The source file of each manifest file, same order.
    pub sources: Vec<Source>,
    /// The display name: the item's name, or `NAME and N more`.
    pub name: String,
}

/// Why the named paths cannot be offered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// Nothing was named.
    #[error("no files to send")]
    Empty,
    /// A named path does not exist.
    #[error("{0}: no such file or folder")]
    NotFound(PathBuf),
    /// A path cannot be read.
    #[error("{0}: permission denied")]
    PermissionDenied(PathBuf),
    /// A name is not valid UTF-8 or holds characters a receiver could not
    /// safely use (control characters, `\`).
    #[error(
        "{0}: the file name cannot be sent (not UTF-8, or it holds control characters or '\\')"
    )]
    BadName(PathBuf),
    /// Two named items have the same name.
    #[error("two items are named {0:?}; send them separately or rename one")]
    Duplicate(String),
    /// A named path is neither a file nor a folder.
    #[error("{0}: not a regular file or folder")]
    NotAFile(PathBuf),
    /// A file changed while it was being read.
    #[error("{0}: the file changed while it was being read; try again")]
    Changed(PathBuf),
    /// More than `MAX_FILES` files.
    #[error("more than {MAX_FILES} files")]
    TooMany,
    /// Another I/O error.
    #[error("{path}: {error}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
}

fn io_error(path: &Path, error: std::io::Error) -> ScanError {
    match error.kind() {
        ErrorKind::NotFound => ScanError::NotFound(path.to_path_buf()),
        ErrorKind::PermissionDenied => ScanError::PermissionDenied(path.to_path_buf()),
        _ => ScanError::Io {
            path: path.to_path_buf(),
            error,
        },
    }
}

/// Modification time in ns since the epoch (0 if the platform has none).
pub fn mtime_ns(meta: &Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn component(path: &Path) -> Result<String, ScanError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ScanError::BadName(path.to_path_buf()))?;
    if is_safe_component(name) {
        Ok(name.to_string())
    } else {
        Err(ScanError::BadName(path.to_path_buf()))
    }
}

struct Walk {
    files: Vec<(String, PathBuf)>,
    dirs: Vec<String>,
}

impl Walk {
    fn add(&mut self, rel: String, path: PathBuf) -> Result<(), ScanError> {
        if self.files.len() + self.dirs.len() >= 2 * MAX_FILES as usize
            || self.files.len() >= MAX_FILES as usize
        {
            return Err(ScanError::TooMany);
        }
        self.files.push((rel, path));
        Ok(())
    }

    fn dir(&mut self, rel: &str, path: &Path) -> Result<(), ScanError> {
        self.dirs.push(rel.to_string());
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| io_error(path, e))?
            .map(|e| e.map(|e| e.path()).map_err(|e| io_error(path, e)))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for entry in entries {
            let meta = std::fs::symlink_metadata(&entry).map_err(|e| io_error(&entry, e))?;
            let name = component(&entry)?;
            let child = format!("{rel}/{name}");
            if meta.file_type().is_symlink() {
                tracing::info!(path = %entry.display(), "skipping a symbolic link inside a folder");
            } else if meta.is_dir() {
                self.dir(&child, &entry)?;
            } else if meta.is_file() {
                self.add(child, entry)?;
            }
        }
        Ok(())
    }
}

/// Scans `paths` (absolute) into a manifest of `chunk_size` chunks.
pub fn scan(paths: &[PathBuf], chunk_size: u32) -> Result<Scanned, ScanError> {
    if paths.is_empty() {
        return Err(ScanError::Empty);
    }
    let mut walk = Walk {
        files: Vec::new(),
        dirs: Vec::new(),
    };
    let mut tops: Vec<String> = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
        let name = component(path)?;
        if tops.contains(&name) {
            return Err(ScanError::Duplicate(name));
        }
        tops.push(name.clone());
        if meta.is_dir() {
            walk.dir(&name, path)?;
        } else if meta.is_file() {
            walk.add(name, path.clone())?;
        } else {
            return Err(ScanError::NotAFile(path.clone()));
        }
    }
    // Folders that hold files are implied by the files' paths.
    let dirs: Vec<String> = walk
        .dirs
        .into_iter()
        .filter(|d| {
            let prefix = format!("{d}/");
            !walk.files.iter().any(|(f, _)| f.starts_with(&prefix))
        })
        .collect();
    let mut files = Vec::with_capacity(walk.files.len());
    let mut sources = Vec::with_capacity(walk.files.len());
    let mut buf = vec![0u8; chunk_size as usize];
    for (rel, path) in walk.files {
        let (entry, source) = hash_file(rel, &path, &mut buf)?;
        files.push(entry);
        sources.push(source);
    }
    let manifest = Manifest {
        chunk_size,
        dirs,
        files,
    };
    // The receiver derives the same name from the manifest and refuses
    // any other, so it is computed from the manifest, not from `tops`.
    let name = offer_name(&manifest.top_levels());
    Ok(Scanned {
        manifest,
        sources,
        name,
    })
}

fn hash_file(rel: String, path: &Path, buf: &mut [u8]) -> Result<(FileEntry, Source), ScanError> {
    let mut file = File::open(path).map_err(|e| io_error(path, e))?;
    let before = file.metadata().map_err(|e| io_error(path, e))?;
    let size = before.len();
    let mut whole = blake3::Hasher::new();
    let mut chunks = Vec::with_capacity(size.div_ceil(buf.len() as u64) as usize);
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        file.read_exact(&mut buf[..n]).map_err(|e| match e.kind() {
            ErrorKind::UnexpectedEof => ScanError::Changed(path.to_path_buf()),
            _ => io_error(path, e),
        })?;
        chunks.push(*blake3::hash(&buf[..n]).as_bytes());
        whole.update(&buf[..n]);
        left -= n as u64;
    }
    let after = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    if after.len() != size || mtime_ns(&after) != mtime_ns(&before) {
        return Err(ScanError::Changed(path.to_path_buf()));
    }
    Ok((
        FileEntry {
            path: rel,
            size,
            hash: *whole.finalize().as_bytes(),
            chunks,
        },
        Source {
            path: path.to_path_buf(),
            size,
            mtime_ns: mtime_ns(&before),
        },
    ))
}

/// Reads `len` bytes at `offset` of file `file` (manifest index) for
/// serving, checking that the file is unchanged and the bytes hash to
/// `hash`.
pub fn read_chunk(
    source: &Source,
    file: u32,
    offset: u64,
    len: u32,
    hash: &[u8; 32],
) -> Result<Vec<u8>, FileRefusal> {
    let refuse = |e: std::io::Error| match e.kind() {
        ErrorKind::NotFound => FileRefusal::Vanished { file },
        ErrorKind::UnexpectedEof => FileRefusal::Changed { file },
        ErrorKind::PermissionDenied => FileRefusal::Unreadable {
            file,
            error: "permission denied".into(),
        },
        _ => FileRefusal::Unreadable {
            file,
            error: e.to_string(),
        },
    };
    let mut f = File::open(&source.path).map_err(refuse)?;
    let meta = f.metadata().map_err(refuse)?;
    if meta.len() != source.size || mtime_ns(&meta) != source.mtime_ns {
        return Err(FileRefusal::Changed { file });
    }
    // One allocation with room for the AEAD tag, so sealing never copies,
    // read into without zero-filling it first.
    let mut buf = Vec::with_capacity(len as usize + tincan_core::file::crypt::TAG_LEN);
    f.seek(SeekFrom::Start(offset)).map_err(refuse)?;
    (&mut f)
        .take(u64::from(len))
        .read_to_end(&mut buf)
        .map_err(refuse)?;
    if buf.len() != len as usize {
        return Err(FileRefusal::Changed { file });
    }
    if blake3::hash(&buf).as_bytes() != hash {
        return Err(FileRefusal::Changed { file });
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_folders_with_relative_paths_and_refuses_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("photos");
        std::fs::create_dir_all(root.join("2024/empty")).unwrap();
        std::fs::write(root.join("a.jpg"), vec![1u8; 10]).unwrap();
        std::fs::write(root.join("2024/b.jpg"), vec![2u8; 3]).unwrap();
        let single = dir.path().join("note.txt");
        std::fs::write(&single, b"hi").unwrap();

        let scanned = scan(&[root.clone(), single.clone()], 4).unwrap();
        let paths: Vec<_> = scanned
            .manifest
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        assert_eq!(paths, ["photos/2024/b.jpg", "photos/a.jpg", "note.txt"]);
        assert_eq!(scanned.manifest.dirs, ["photos/2024/empty"]);
        assert_eq!(scanned.name, "photos and 1 more");

        // A hidden file is named, never counted in "and N more".
        let hidden = dir.path().join(".bash_profile");
        std::fs::write(&hidden, b"x").unwrap();
        let with_hidden = scan(&[single.clone(), hidden.clone()], 4).unwrap();
        assert_eq!(
            with_hidden.name,
            "note.txt and 1 more, including .bash_profile"
        );
        let a = &scanned.manifest.files[1];
        assert_eq!(a.chunks.len(), 3);
        assert_eq!(a.hash, *blake3::hash(&[1u8; 10]).as_bytes());
        assert_eq!(a.chunks[2], *blake3::hash(&[1u8; 2]).as_bytes());

        // Serving checks the hash and notices changes.
        let src = &scanned.sources[1];
        assert_eq!(read_chunk(src, 1, 8, 2, &a.chunks[2]), Ok(vec![1, 1]));
        assert_eq!(
            read_chunk(src, 1, 0, 4, &[0; 32]),
            Err(FileRefusal::Changed { file: 1 })
        );
        std::fs::write(root.join("a.jpg"), vec![1u8; 11]).unwrap();
        assert_eq!(
            read_chunk(src, 1, 8, 2, &a.chunks[2]),
            Err(FileRefusal::Changed { file: 1 })
        );
        std::fs::remove_file(root.join("a.jpg")).unwrap();
        assert_eq!(
            read_chunk(src, 1, 8, 2, &a.chunks[2]),
            Err(FileRefusal::Vanished { file: 1 })
        );

        assert!(matches!(
            scan(&[dir.path().join("missing")], 4),
            Err(ScanError::NotFound(_))
        ));
        assert!(matches!(
            scan(&[single.clone(), single], 4),
            Err(ScanError::Duplicate(_))
        ));
        let evil = dir.path().join("bad\u{1b}name");
        std::fs::write(&evil, b"x").unwrap();
        assert!(matches!(scan(&[evil], 4), Err(ScanError::BadName(_))));
        assert!(matches!(scan(&[], 4), Err(ScanError::Empty)));
    }
}
