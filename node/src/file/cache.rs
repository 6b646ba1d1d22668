//! The branch gateway's cache of sealed file content from the relay.
//!
//! Across branches a file is uploaded once to the relay; each destination
//! branch's gateway fetches every item once, keeps it here, and serves it
//! to its LAN members (and to its own pull), so the bytes cross that
//! branch's WAN link once however many of its members receive the file.
//!
//! # Invariants
//! - Items are the sealed bytes (the gateway cannot read them), stored as
//!   `HOME/file-cache/TRANSFER/ITEM`, keyed by transfer id and item. A
//!   sealed item is a pure function of (content key, transfer, index), so
//!   this key names exactly one content; the same content under another
//!   transfer is another key, and is sealed to other bytes anyway.
//! - One fetch per item at a time: concurrent askers wait for the first
//!   one's result (a per-item lock), so four members asking at once cost
//!   one WAN copy.
//! - Written to a temporary name and renamed, so a crash never leaves a
//!   partial item to serve. A member whose copy failed to verify asks with
//!   `ChunkAgain`, which drops the cached copy before fetching anew.
//! - Bounded: above [`FileCache::limit`] bytes the least recently written
//!   items are deleted (an evicted item is fetched again if still asked).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tincan_core::file::{FetchFault, FileRequest, TransferId};

use super::stream;

type ItemKey = (TransferId, Option<u64>);

/// The cache (shared by the gateway's serving and fetching tasks).
#[derive(Debug)]
pub struct FileCache {
    dir: PathBuf,
    limit: u64,
    used: AtomicU64,
    locks: Mutex<HashMap<ItemKey, Arc<tokio::sync::Mutex<()>>>>,
    /// Test hook ([`super::TEST_CORRUPT_CACHED_CHUNK_ENV`]).
    corrupt_once: Mutex<Option<u64>>,
}

impl FileCache {
    /// A cache in `dir` holding at most `limit` bytes; counts what a
    /// previous run left there.
    pub fn open(dir: PathBuf, limit: u64) -> Self {
        let used = files_under(&dir).iter().map(|(_, len, _)| len).sum();
        let corrupt_once = std::env::var(super::TEST_CORRUPT_CACHED_CHUNK_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok());
        if let Some(index) = corrupt_once {
            tracing::warn!(
                chunk = index,
                "{} is set: one cached chunk will be corrupted (test hook)",
                super::TEST_CORRUPT_CACHED_CHUNK_ENV
            );
        }
        Self {
            dir,
            limit,
            used: AtomicU64::new(used),
            locks: Mutex::new(HashMap::new()),
            corrupt_once: Mutex::new(corrupt_once),
        }
    }

    /// The most bytes kept.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes held now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn path(&self, key: &ItemKey) -> PathBuf {
        let item = key
            .1
            .map_or_else(|| "manifest".to_string(), |i| i.to_string());
        self.dir.join(key.0.to_string()).join(item)
    }

    /// The sealed bytes of `request`: from the cache, or fetched once from
    /// `upstream` (the relay) and kept.
    pub async fn get(
        &self,
        upstream: &quinn::Connection,
        request: FileRequest,
        timeout: Duration,
    ) -> Result<Vec<u8>, FetchFault> {
        let key = (request.transfer(), request.item());
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(key).or_default().clone()
        };
        let result = {
            let _held = lock.lock().await;
            self.get_locked(&key, upstream, request, timeout).await
        };
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        if Arc::strong_count(&lock) == 2 {
            locks.remove(&key);
        }
        result
    }

    async fn get_locked(
        &self,
        key: &ItemKey,
        upstream: &quinn::Connection,
        request: FileRequest,
        timeout: Duration,
    ) -> Result<Vec<u8>, FetchFault> {
        let path = self.path(key);
        if matches!(request, FileRequest::ChunkAgain { .. }) {
            tracing::info!(transfer = %key.0, item = ?key.1, "a copy did not verify; dropping the cached item and fetching it again");
            self.drop_file(&path).await;
        } else if let Ok(data) = tokio::fs::read(&path).await {
            tracing::debug!(transfer = %key.0, item = ?key.1, "served from the gateway cache");
            return Ok(data);
        }
        let mut data = stream::fetch_any(upstream, request.plain(), timeout).await?;
        {
            let mut hook = self.corrupt_once.lock().unwrap_or_else(|e| e.into_inner());
            if key.1.is_some() && *hook == key.1 {
                *hook = None;
                tracing::warn!(chunk = ?key.1, "test hook: corrupting this cached chunk once");
                if let Some(b) = data.first_mut() {
                    *b ^= 0x5a;
                }
            }
        }
        if let Err(e) = self.store(&path, &data).await {
            // Serving still works; only the next asker pays again.
            tracing::warn!(error = %e, "cannot write to the file cache");
        }
        Ok(data)
    }

    async fn drop_file(&self, path: &Path) {
        if let Ok(meta) = tokio::fs::metadata(path).await {
            if tokio::fs::remove_file(path).await.is_ok() {
                self.used
                    .fetch_sub(meta.len().min(self.used()), Ordering::Relaxed);
            }
        }
    }

    async fn store(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        let len = data.len() as u64;
        if len > self.limit {
            return Ok(());
        }
        if self.used().saturating_add(len) > self.limit {
            self.evict(len).await;
        }
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let temp = path.with_extension("part");
        tokio::fs::write(&temp, data).await?;
        tokio::fs::rename(&temp, path).await?;
        self.used.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    /// Deletes the oldest items until `room` more bytes fit.
    async fn evict(&self, room: u64) {
        let dir = self.dir.clone();
        let mut files = tokio::task::spawn_blocking(move || files_under(&dir))
            .await
            .unwrap_or_default();
        files.sort_by_key(|(_, _, modified)| *modified);
        for (path, len, _) in files {
            if self.used().saturating_add(room) <= self.limit {
                break;
            }
            if tokio::fs::remove_file(&path).await.is_ok() {
                self.used.fetch_sub(len.min(self.used()), Ordering::Relaxed);
                tracing::debug!(path = %path.display(), "evicted from the file cache");
                if let Some(parent) = path.parent() {
                    let _ = tokio::fs::remove_dir(parent).await;
                }
            }
        }
    }
}

/// Every cached item: path, length, last write.
fn files_under(dir: &Path) -> Vec<(PathBuf, u64, SystemTime)> {
    let mut out = Vec::new();
    let Ok(transfers) = std::fs::read_dir(dir) else {
        return out;
    };
    for transfer in transfers.flatten() {
        let Ok(items) = std::fs::read_dir(transfer.path()) else {
            continue;
        };
        for item in items.flatten() {
            if let Ok(meta) = item.metadata() {
                if meta.is_file() {
                    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                    out.push((item.path(), meta.len(), modified));
                }
            }
        }
    }
    out
}
