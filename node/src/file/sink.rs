//! The receiver's files: staging, chunk writes, and the final move.
//!
//! Each top-level item of a transfer (a file, or a folder with everything
//! below it) is written under a staging name in the destination:
//! `NAME.part` (`NAME (1).part`, ... when taken), chosen once and stored,
//! so a resumed transfer finds its own bytes again. Chunks are written at
//! their offsets; nothing is ever written outside the staging names (the
//! manifest's paths are checked by core before they get here).
//!
//! When every chunk is verified, [`finish`] re-reads every file and checks
//! its whole-file blake3 hash (a mismatch names the bad chunks, which are
//! fetched again), fsyncs files and folders, and moves each item to the
//! first free name of `NAME`, `NAME (1).ext`, `NAME (2).ext`, ... — files
//! with a hard link (which fails rather than replace anything) and folders
//! with a rename onto a name that does not exist. An existing file is
//! never overwritten.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use tincan_core::file::manifest::top_level;
use tincan_core::file::pull::FinishFault;
use tincan_core::file::{Layout, Manifest};

/// Top-level name → staging name in the destination folder.
pub type StagingMap = BTreeMap<String, String>;

/// A sentence for a local disk error, naming `what`.
pub fn disk_error(error: &std::io::Error, what: &Path) -> String {
    // ENOSPC is 28 on Linux and the BSDs; StorageFull covers the rest.
    if error.kind() == ErrorKind::StorageFull || error.raw_os_error() == Some(28) {
        format!("no space left on device (writing {})", what.display())
    } else if error.kind() == ErrorKind::PermissionDenied {
        format!("permission denied writing {}", what.display())
    } else {
        format!("cannot write {}: {error}", what.display())
    }
}

/// Makes sure `dest` is a folder to receive into: an existing folder, or
/// one created now when its parent exists. Missing parents are not
/// created (a mistyped `/nonexistent/dl` must not make folders at the
/// root of the disk); a file in the way is "not a folder". Returns
/// whether the folder was created.
pub fn ensure_folder(dest: &Path) -> Result<bool, String> {
    match std::fs::metadata(dest) {
        Ok(meta) if meta.is_dir() => return Ok(false),
        Ok(_) => return Err(format!("{} is not a folder", dest.display())),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(disk_error(&e, dest)),
    }
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(format!(
                "cannot create the folder {}: {} does not exist (only the folder named is created, not the folders above it)",
                dest.display(),
                parent.display()
            ));
        }
    }
    std::fs::create_dir(dest).map_err(|e| disk_error(&e, dest))?;
    Ok(true)
}

/// `name`, then `name (1).ext`, `name (2).ext`, ... (the extension is
/// what follows the last dot, unless the name starts with it).
pub fn numbered(name: &str, n: u32, is_dir: bool) -> String {
    if n == 0 {
        return name.to_string();
    }
    match name.rfind('.').filter(|&i| i > 0 && !is_dir) {
        Some(dot) => format!("{} ({n}){}", &name[..dot], &name[dot..]),
        None => format!("{name} ({n})"),
    }
}

/// Picks staging names for `tops` in `dest` that nothing occupies.
pub fn plan_staging(dest: &Path, tops: &[String]) -> StagingMap {
    let mut map = StagingMap::new();
    for top in tops {
        let name = (0..)
            .map(|n| format!("{}.part", numbered(top, n, true)))
            .find(|c| !dest.join(c).exists() && !map.values().any(|v: &String| v == c))
            .unwrap_or_else(|| format!("{top}.part"));
        map.insert(top.clone(), name);
    }
    map
}

/// Where relative manifest path `rel` is staged.
pub fn staged_path(dest: &Path, map: &StagingMap, rel: &str) -> PathBuf {
    let top = top_level(rel);
    let staged_top = map.get(top).map_or(top, String::as_str);
    let rest = &rel[top.len()..];
    let mut path = dest.join(staged_top);
    for part in rest.split('/').filter(|p| !p.is_empty()) {
        path.push(part);
    }
    path
}

/// Creates the staging folders and (empty) files that are missing.
/// Returns the manifest indices of files that had verified chunks
/// (`claimed`) but whose staged file is gone: their chunks must come again.
pub fn prepare(
    dest: &Path,
    map: &StagingMap,
    manifest: &Manifest,
    claimed: impl Fn(u32) -> bool,
) -> Result<Vec<u32>, String> {
    ensure_folder(dest)?;
    for dir in &manifest.dirs {
        let path = staged_path(dest, map, dir);
        std::fs::create_dir_all(&path).map_err(|e| disk_error(&e, &path))?;
    }
    let mut lost = Vec::new();
    for (i, file) in manifest.files.iter().enumerate() {
        let path = staged_path(dest, map, &file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| disk_error(&e, parent))?;
        }
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(_) => {
                if claimed(i as u32) {
                    lost.push(i as u32);
                }
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(disk_error(&e, &path)),
        }
    }
    Ok(lost)
}

/// Checks every staged file against the manifest, fsyncs, and moves each
/// top-level item into place; returns the final paths. `known` gives the
/// whole-file hash of a file this process wrote in full
/// (`crate::file::staged`); other files are read back and hashed.
pub fn finish(
    dest: &Path,
    map: &StagingMap,
    manifest: &Manifest,
    known: impl Fn(u32) -> Option<[u8; 32]>,
) -> Result<Vec<PathBuf>, FinishFault> {
    let io = |e: std::io::Error, p: &Path| FinishFault::Io(disk_error(&e, p));
    let layout = Layout::new(manifest);
    let mut bad = Vec::new();
    let mut buf = vec![0u8; manifest.chunk_size as usize];
    for (i, file) in manifest.files.iter().enumerate() {
        let path = staged_path(dest, map, &file.path);
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io(e, &path))?;
        if f.metadata().map_err(|e| io(e, &path))?.len() != file.size {
            f.set_len(file.size).map_err(|e| io(e, &path))?;
        } else if known(i as u32) == Some(file.hash) {
            f.sync_all().map_err(|e| io(e, &path))?;
            continue;
        }
        let mut whole = blake3::Hasher::new();
        let mut left = file.size;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            f.read_exact(&mut buf[..n]).map_err(|e| io(e, &path))?;
            whole.update(&buf[..n]);
            left -= n as u64;
        }
        if whole.finalize().as_bytes() != &file.hash {
            // Rare (bytes lost on disk, e.g. an OS crash after the bitmap
            // was saved): find the bad chunks with a second pass.
            let before = bad.len();
            f.seek(SeekFrom::Start(0)).map_err(|e| io(e, &path))?;
            let first = layout.file_chunks(i as u32).start;
            let mut left = file.size;
            for (c, want) in file.chunks.iter().enumerate() {
                let n = left.min(buf.len() as u64) as usize;
                f.read_exact(&mut buf[..n]).map_err(|e| io(e, &path))?;
                if blake3::hash(&buf[..n]).as_bytes() != want {
                    bad.push(first + c as u64);
                }
                left -= n as u64;
            }
            if bad.len() == before {
                // Chunk hashes agree but the whole does not: the manifest
                // itself is inconsistent; no re-fetch can fix that.
                return Err(FinishFault::Io(format!(
                    "{} does not match its hash",
                    file.path
                )));
            }
            continue;
        }
        f.sync_all().map_err(|e| io(e, &path))?;
    }
    if !bad.is_empty() {
        return Err(FinishFault::BadChunks(bad));
    }
    for staged in map.values() {
        let path = dest.join(staged);
        if path.is_dir() {
            sync_dirs(&path);
        }
    }
    let mut saved = Vec::new();
    for top in manifest.top_levels() {
        let staged = dest.join(map.get(&top).map_or(top.as_str(), String::as_str));
        let is_dir = staged.is_dir();
        let mut n = 0;
        let target = loop {
            let candidate = dest.join(numbered(&top, n, is_dir));
            let moved = if is_dir {
                if candidate.symlink_metadata().is_ok() {
                    Err(ErrorKind::AlreadyExists.into())
                } else {
                    std::fs::rename(&staged, &candidate)
                }
            } else {
                std::fs::hard_link(&staged, &candidate).and_then(|()| std::fs::remove_file(&staged))
            };
            match moved {
                Ok(()) => break candidate,
                Err(e) if e.kind() == ErrorKind::AlreadyExists && n < 10_000 => n += 1,
                // File systems without hard links: rename onto a free name.
                Err(_) if !is_dir && candidate.symlink_metadata().is_err() => {
                    std::fs::rename(&staged, &candidate).map_err(|e| io(e, &candidate))?;
                    break candidate;
                }
                Err(e) => return Err(io(e, &candidate)),
            }
        };
        saved.push(target);
    }
    if let Ok(d) = File::open(dest) {
        let _ = d.sync_all();
    }
    Ok(saved)
}

fn sync_dirs(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                sync_dirs(&entry.path());
            }
        }
    }
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Removes the staging items of a transfer (cancelled or failed): nothing
/// half-written is left behind.
pub fn discard(dest: &Path, map: &StagingMap) {
    for staged in map.values() {
        let path = dest.join(staged);
        let result = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if let Err(e) = result {
            if e.kind() != ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove staging");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::staged::StagedFiles;
    use std::sync::Arc;
    use tincan_core::file::manifest::ChunkPlace;

    use crate::file::test_entry as entry;

    #[test]
    fn names_are_numbered_before_the_extension() {
        assert_eq!(numbered("a.txt", 0, false), "a.txt");
        assert_eq!(numbered("a.txt", 1, false), "a (1).txt");
        assert_eq!(numbered(".bashrc", 2, false), ".bashrc (2)");
        assert_eq!(numbered("v1.2", 1, true), "v1.2 (1)");
    }

    #[test]
    fn stage_write_finish_without_overwriting() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path();
        std::fs::write(dest.join("a.txt"), b"mine").unwrap();
        std::fs::write(dest.join("a.txt.part"), b"someone else's").unwrap();
        let data = b"0123456789";
        let manifest = Manifest {
            chunk_size: 4,
            dirs: vec!["pics/empty".into()],
            files: vec![entry("a.txt", data, 4), entry("pics/x/y.bin", b"yy", 4)],
        };
        let tops = manifest.top_levels();
        let map = plan_staging(dest, &tops);
        assert_eq!(map["a.txt"], "a.txt (1).part");
        assert_eq!(map["pics"], "pics.part");
        assert_eq!(prepare(dest, &map, &manifest, |_| false), Ok(vec![]));
        let staged = StagedFiles::new(dest.into(), map.clone(), Arc::new(manifest.clone()));
        let at = |file: u32, offset: u64, data: &[u8]| ChunkPlace {
            file,
            offset,
            len: data.len() as u32,
        };
        // Chunks out of order, one of them wrong at first (so the running
        // hash is wrong too, and finish reads the file back to find it).
        staged.write(at(0, 8, b"89"), b"89").unwrap();
        staged.write(at(0, 0, b"0123"), b"0123").unwrap();
        staged.write(at(0, 4, b"XXXX"), b"XXXX").unwrap();
        staged.write(at(1, 0, b"yy"), b"yy").unwrap();
        let known = |f| staged.whole_hash(f);
        assert_eq!(
            finish(dest, &map, &manifest, known),
            Err(FinishFault::BadChunks(vec![1]))
        );
        staged.write(at(0, 4, b"4567"), b"4567").unwrap();
        let saved = finish(dest, &map, &manifest, known).unwrap();
        assert_eq!(saved, [dest.join("a (1).txt"), dest.join("pics")]);
        assert_eq!(std::fs::read(dest.join("a.txt")).unwrap(), b"mine");
        assert_eq!(std::fs::read(dest.join("a (1).txt")).unwrap(), data);
        assert_eq!(std::fs::read(dest.join("pics/x/y.bin")).unwrap(), b"yy");
        assert!(dest.join("pics/empty").is_dir());
        assert!(!dest.join("a.txt (1).part").exists() && !dest.join("pics.part").exists());
        assert_eq!(
            std::fs::read(dest.join("a.txt.part")).unwrap(),
            b"someone else's"
        );

        // A lost staging file is reported; discard removes staging.
        let map2 = plan_staging(dest, &tops);
        assert_eq!(prepare(dest, &map2, &manifest, |f| f == 1), Ok(vec![1]));
        discard(dest, &map2);
        assert!(!dest.join(&map2["pics"]).exists());
        let gone = StagedFiles::new(dest.into(), map2, Arc::new(manifest.clone()));
        assert!(gone.write(at(0, 0, b"x"), b"x").is_err());
    }

    #[test]
    fn a_receiving_folder_is_made_without_its_parents_and_never_over_a_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let new = tmp.path().join("dl");
        assert_eq!(ensure_folder(&new), Ok(true));
        assert_eq!(ensure_folder(&new), Ok(false));
        let deep = tmp.path().join("nonexistent/dl");
        let err = ensure_folder(&deep).expect_err("parents are not made");
        assert!(err.contains("does not exist"), "{err}");
        assert!(!tmp.path().join("nonexistent").exists());
        let file = tmp.path().join("notes.txt");
        std::fs::write(&file, b"x").expect("write");
        let err = ensure_folder(&file).expect_err("a file is no folder");
        assert!(err.ends_with("notes.txt is not a folder"), "{err}");
    }

    #[test]
    fn disk_errors_read_well() {
        let full = std::io::Error::from_raw_os_error(28);
        assert!(disk_error(&full, Path::new("/x")).starts_with("no space left on device"));
        let denied = std::io::Error::from(ErrorKind::PermissionDenied);
        assert!(disk_error(&denied, Path::new("/x")).contains("permission denied"));
    }
}
