//! The staged files of one incoming transfer while its chunks arrive.
//!
//! Three things make a large transfer finish sooner without trusting
//! anything less:
//! - one open handle per file while its chunks come in (no open/seek per
//!   chunk): a chunk is written at its offset with `pwrite`;
//! - write-behind: every [`SYNC_EVERY`] bytes written to a file, its data
//!   is flushed to disk (`fdatasync`), so the final fsync before the move
//!   finds little left to write, and the part already hashed is dropped
//!   from the page cache (`posix_fadvise(DONTNEED)`): a 4 GiB download
//!   neither evicts everything else the user had cached nor needs fresh
//!   memory for every page (it reuses what it just gave back, which is
//!   much cheaper, notably on virtual machines);
//! - the whole-file blake3, computed as the chunks land in order (a chunk
//!   that arrives early is read back from the page cache when its turn
//!   comes), so the final check does not read the whole file again.
//!
//! The whole-file hash covers exactly the bytes this process wrote. After
//! a restart (or for a file whose chunks were partly written by an
//! earlier run) there is no running hash and `sink::finish` reads the
//! file back from disk, which also catches bytes lost in a crash.

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rustix::fs::Advice;
use tincan_core::file::manifest::ChunkPlace;
use tincan_core::file::Manifest;

use super::sink::{disk_error, staged_path, StagingMap};

/// Bytes written to one file between two write-behind flushes.
pub const SYNC_EVERY: u64 = 64 * 1024 * 1024;

/// The staged files of one incoming transfer (shared by its chunk tasks).
pub struct StagedFiles {
    dest: PathBuf,
    staging: StagingMap,
    manifest: Arc<Manifest>,
    /// [`SYNC_EVERY`], smaller in tests.
    sync_every: u64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Files with chunks still to come, by manifest index.
    open: HashMap<u32, OpenFile>,
    /// Whole-file hashes of the files whose every chunk this process
    /// wrote, in order.
    hashed: HashMap<u32, [u8; 32]>,
}

/// An open staged file. Writes to it take turns: the kernel serialises
/// writes to one file anyway, and a writer waiting in the kernel spins on
/// a CPU (the one the other chunk tasks need), where one waiting here
/// sleeps.
struct Handle {
    file: File,
    writing: Mutex<()>,
}

struct OpenFile {
    file: Arc<Handle>,
    hasher: blake3::Hasher,
    /// Offset up to which `hasher` has seen the file.
    hashed_to: u64,
    /// Offsets of chunks written beyond `hashed_to`, not hashed yet.
    ahead: BTreeSet<u64>,
    /// `false` once a chunk before this run's first one is missing from
    /// the hash (written by an earlier run): no whole-file hash then.
    complete: bool,
    written_since_sync: u64,
    /// Up to here the page cache was told the bytes are not needed again.
    dropped_to: u64,
}

impl StagedFiles {
    /// The staged files of a transfer into `dest` (staging names in
    /// `staging`), laid out by `manifest`.
    pub fn new(dest: PathBuf, staging: StagingMap, manifest: Arc<Manifest>) -> Self {
        StagedFiles {
            dest,
            staging,
            manifest,
            sync_every: SYNC_EVERY,
            state: Mutex::new(State::default()),
        }
    }

    fn path(&self, file: u32) -> Option<PathBuf> {
        let entry = self.manifest.files.get(file as usize)?;
        Some(staged_path(&self.dest, &self.staging, &entry.path))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A chunk task that panicked leaves the hashes as they were.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes a verified chunk into its staged file (which must exist: a
    /// cancelled transfer's staging is gone and stays gone).
    pub fn write(&self, place: ChunkPlace, data: &[u8]) -> Result<(), String> {
        let path = self
            .path(place.file)
            .ok_or_else(|| format!("no file {} in the manifest", place.file))?;
        let handle = self.handle(place.file, &path)?;
        {
            let _turn = handle
                .writing
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            handle
                .file
                .write_all_at(data, place.offset)
                .map_err(|e| disk_error(&e, &path))?;
        }
        if let Some((handle, hashed)) = self.advance(place, data, &path) {
            handle.file.sync_data().map_err(|e| disk_error(&e, &path))?;
            // Only a hint: the bytes are on disk and hashed either way.
            let len = std::num::NonZeroU64::new(hashed.end.saturating_sub(hashed.start));
            if let Some(len) = len {
                let _ =
                    rustix::fs::fadvise(&handle.file, hashed.start, Some(len), Advice::DontNeed);
            }
        }
        Ok(())
    }

    /// The open handle of `file`, opened on its first chunk.
    fn handle(&self, file: u32, path: &Path) -> Result<Arc<Handle>, String> {
        let mut state = self.lock();
        if let Some(open) = state.open.get(&file) {
            return Ok(open.file.clone());
        }
        let handle = Arc::new(Handle {
            file: OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(|e| disk_error(&e, path))?,
            writing: Mutex::new(()),
        });
        state.open.insert(
            file,
            OpenFile {
                file: handle.clone(),
                hasher: blake3::Hasher::new(),
                hashed_to: 0,
                ahead: BTreeSet::new(),
                complete: true,
                written_since_sync: 0,
                dropped_to: 0,
            },
        );
        Ok(handle)
    }

    /// Feeds the running hash with what is now contiguous and says whether
    /// a write-behind flush is due (returning the handle to flush and the
    /// hashed bytes the flush lets go of).
    fn advance(
        &self,
        place: ChunkPlace,
        data: &[u8],
        path: &Path,
    ) -> Option<(Arc<Handle>, std::ops::Range<u64>)> {
        let entry = self.manifest.files.get(place.file as usize)?;
        let chunk_size = u64::from(self.manifest.chunk_size.max(1));
        let mut state = self.lock();
        let open = state.open.get_mut(&place.file)?;
        if place.offset == open.hashed_to {
            open.hasher.update(data);
            open.hashed_to += data.len() as u64;
            let mut buf = Vec::new();
            while open.ahead.remove(&open.hashed_to) {
                let len = (entry.size - open.hashed_to).min(chunk_size) as usize;
                buf.resize(len, 0);
                if let Err(e) = open.file.file.read_exact_at(&mut buf, open.hashed_to) {
                    // No running hash then: the final check reads it all.
                    tracing::debug!(path = %path.display(), error = %e, "cannot read a chunk back");
                    open.complete = false;
                    break;
                }
                open.hasher.update(&buf);
                open.hashed_to += len as u64;
            }
        } else if place.offset > open.hashed_to {
            open.ahead.insert(place.offset);
        }
        open.written_since_sync += data.len() as u64;
        let sync = (open.written_since_sync >= self.sync_every).then(|| {
            open.written_since_sync = 0;
            let hashed = open.dropped_to..open.hashed_to;
            open.dropped_to = open.hashed_to;
            (open.file.clone(), hashed)
        });
        if open.hashed_to >= entry.size || !open.complete {
            // Every chunk is in (or the hash cannot be had): close it.
            if let Some(done) = state.open.remove(&place.file) {
                if done.complete && done.hashed_to == entry.size {
                    state
                        .hashed
                        .insert(place.file, *done.hasher.finalize().as_bytes());
                }
            }
        }
        sync
    }

    /// The whole-file hash of `file` if this process wrote all of it in
    /// this transfer (`None`: read it back to check it).
    pub fn whole_hash(&self, file: u32) -> Option<[u8; 32]> {
        self.lock().hashed.get(&file).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(files: &[(&str, &[u8])], chunk: usize) -> Manifest {
        Manifest {
            chunk_size: chunk as u32,
            dirs: Vec::new(),
            files: files
                .iter()
                .map(|(path, data)| crate::file::test_entry(path, data, chunk))
                .collect(),
        }
    }

    fn place(file: u32, offset: u64, len: usize) -> ChunkPlace {
        ChunkPlace {
            file,
            offset,
            len: len as u32,
        }
    }

    #[test]
    fn chunks_in_any_order_give_the_whole_file_hash() {
        let dir = tempfile::tempdir().unwrap();
        let a: Vec<u8> = (0..10u8).collect();
        let m = Arc::new(manifest(&[("a.bin", &a), ("b.bin", b"xy")], 4));
        let staging = StagingMap::from([
            ("a.bin".to_string(), "a.bin.part".to_string()),
            ("b.bin".to_string(), "b.bin.part".to_string()),
        ]);
        std::fs::write(dir.path().join("a.bin.part"), b"").unwrap();
        std::fs::write(dir.path().join("b.bin.part"), b"").unwrap();
        let staged = StagedFiles::new(dir.path().into(), staging, m.clone());
        // Chunks 2 and 1 come before chunk 0.
        staged.write(place(0, 8, 2), &a[8..]).unwrap();
        staged.write(place(0, 4, 4), &a[4..8]).unwrap();
        assert_eq!(staged.whole_hash(0), None);
        staged.write(place(0, 0, 4), &a[..4]).unwrap();
        assert_eq!(staged.whole_hash(0), Some(m.files[0].hash));
        assert_eq!(std::fs::read(dir.path().join("a.bin.part")).unwrap(), a);
        // A file only partly written here has no whole-file hash.
        assert_eq!(staged.whole_hash(1), None);
        staged.write(place(1, 0, 2), b"xy").unwrap();
        assert_eq!(staged.whole_hash(1), Some(m.files[1].hash));
    }

    #[test]
    fn a_file_resumed_from_an_earlier_run_has_no_whole_file_hash() {
        let dir = tempfile::tempdir().unwrap();
        let a = b"0123456789".to_vec();
        let m = Arc::new(manifest(&[("a.bin", &a)], 4));
        let staging = StagingMap::from([("a.bin".to_string(), "a.bin.part".to_string())]);
        // Chunk 0 was written by an earlier run.
        std::fs::write(dir.path().join("a.bin.part"), &a[..4]).unwrap();
        let staged = StagedFiles::new(dir.path().into(), staging, m);
        staged.write(place(0, 4, 4), &a[4..8]).unwrap();
        staged.write(place(0, 8, 2), &a[8..]).unwrap();
        assert_eq!(staged.whole_hash(0), None);
        assert_eq!(std::fs::read(dir.path().join("a.bin.part")).unwrap(), a);
    }

    /// Write-behind and dropping hashed pages, with a flush every 8 bytes:
    /// whatever the order, the file and its hash come out right.
    #[test]
    fn flushing_and_dropping_pages_keep_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let a: Vec<u8> = (0..40u8).collect();
        let m = Arc::new(manifest(&[("a.bin", &a)], 4));
        let staging = StagingMap::from([("a.bin".to_string(), "a.bin.part".to_string())]);
        std::fs::write(dir.path().join("a.bin.part"), b"").unwrap();
        let staged = StagedFiles {
            sync_every: 8,
            ..StagedFiles::new(dir.path().into(), staging, m.clone())
        };
        for chunk in [1u64, 0, 2, 3, 5, 4, 9, 6, 7, 8] {
            let at = chunk as usize * 4;
            staged
                .write(place(0, chunk * 4, 4), &a[at..at + 4])
                .unwrap();
        }
        assert_eq!(staged.whole_hash(0), Some(m.files[0].hash));
        assert_eq!(std::fs::read(dir.path().join("a.bin.part")).unwrap(), a);
    }

    #[test]
    fn a_missing_staged_file_is_an_error_not_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let m = Arc::new(manifest(&[("a.bin", b"abcd")], 4));
        let staging = StagingMap::from([("a.bin".to_string(), "a.bin.part".to_string())]);
        let staged = StagedFiles::new(dir.path().into(), staging, m);
        let err = staged.write(place(0, 0, 4), b"abcd").unwrap_err();
        assert!(err.contains("a.bin.part"), "{err}");
        assert!(!dir.path().join("a.bin.part").exists());
    }
}
