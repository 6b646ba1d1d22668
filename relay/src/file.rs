//! Sealed file content across branches: the relay keeps what a sender
//! uploads once and serves it to each destination branch's gateway (which
//! caches it for its LAN) and to roaming recipients.
//!
//! # What is stored
//! The very bytes a LAN holder serves: the sealed manifest and sealed
//! chunks of a transfer, encrypted end to end under a per-transfer key the
//! relay never sees (it travels only inside the sealed offer), so names
//! and contents stay unreadable here. Items are keyed by (organisation,
//! transfer id, item); devices see only their own organisation's items.
//!
//! # Invariants
//! - An upload is streamed to `files/ORG/TRANSFER/ITEM.part-N` a bounded
//!   buffer at a time, fsynced and renamed into place; only then is its
//!   row added (with the quota check in the same transaction), so a killed
//!   relay never serves a half-written item, and memory never holds more
//!   than one buffer of an upload.
//! - Per organisation at most [`RelayConfig::file_quota_bytes`] are stored;
//!   an upload over it is refused with `FileRefused(QuotaExceeded)` and
//!   nothing is kept.
//! - Items live for the mail TTL and are deleted by the expiry sweep
//!   ([`expire`]), file and row.
//!
//! [`RelayConfig::file_quota_bytes`]: crate::config::RelayConfig::file_quota_bytes

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tincan_core::file::{FileRefusal, FileRequest, FileUpload};
use tincan_core::wire::Frame;
use tokio::io::AsyncWriteExt;

use crate::server::{Peer, Shared};
use crate::store::{BlobKey, PutBlob};

/// Longest an upload's bytes may take to arrive (1 MiB on a slow uplink).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Unique suffixes of temporary upload files.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// Where an item's bytes live.
pub fn blob_path(shared: &Shared, key: &BlobKey) -> PathBuf {
    let item = key
        .item
        .map_or_else(|| "manifest".to_string(), |i| i.to_string());
    shared
        .config
        .home
        .files_dir()
        .join(key.org.to_string())
        .join(key.transfer.to_string())
        .join(item)
}

/// Takes an upload whose header was read; `recv` holds its bytes.
/// Answers `Ack` (stored, or there already) or `FileRefused`.
pub async fn upload(
    shared: &Arc<Shared>,
    peer: &Peer,
    header: FileUpload,
    recv: &mut quinn::RecvStream,
) -> Frame {
    if !header.len_ok() {
        let _ = recv.stop(crate::close::STREAM_MALFORMED);
        return Frame::FileRefused(FileRefusal::BadRequest);
    }
    let key = BlobKey {
        org: peer.org,
        transfer: header.transfer,
        item: header.item,
    };
    let len = u64::from(header.len);
    let quota = shared.config.file_quota_bytes;
    let now = shared.clock.wall_ms();
    let (have, used) = match shared
        .store
        .run(move |db| Ok((db.blob_len(&key, now)?, db.blob_bytes(&key.org)?)))
        .await
    {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "file store lookup failed");
            let _ = recv.stop(crate::close::STREAM_MALFORMED);
            return Frame::FileRefused(FileRefusal::Busy);
        }
    };
    if have.is_some() {
        // A retry: the bytes are here; do not take them again.
        let _ = recv.stop(0u32.into());
        return Frame::Ack;
    }
    if used.saturating_add(len) > quota {
        let _ = recv.stop(0u32.into());
        shared.metrics.refused("file_quota");
        tracing::info!(org = %peer.org, device = %peer.device, used, len, quota, "file upload over the organisation's quota refused");
        return Frame::FileRefused(FileRefusal::QuotaExceeded { limit: quota });
    }
    let path = blob_path(shared, &key);
    match tokio::time::timeout(UPLOAD_TIMEOUT, write_blob(&path, recv, len)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::info!(device = %peer.device, transfer = %key.transfer, error = %e, "file upload not stored");
            return Frame::FileRefused(FileRefusal::Busy);
        }
        Err(_) => {
            let _ = recv.stop(0u32.into());
            return Frame::FileRefused(FileRefusal::Busy);
        }
    }
    let expires = now.saturating_add(shared.config.mail_ttl.as_millis() as u64);
    match shared
        .store
        .run(move |db| db.put_blob(&key, len, now, expires, quota))
        .await
    {
        Ok(PutBlob::Stored) => {
            shared.metrics.file_items_stored.inc();
            tracing::debug!(transfer = %key.transfer, item = ?key.item, len, "file item stored");
            Frame::Ack
        }
        Ok(PutBlob::Exists) => Frame::Ack,
        Ok(PutBlob::OverQuota { .. }) => {
            // Raced with other uploads: this one does not fit after all.
            let _ = tokio::fs::remove_file(&path).await;
            shared.metrics.refused("file_quota");
            Frame::FileRefused(FileRefusal::QuotaExceeded { limit: quota })
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot record a stored file item");
            Frame::FileRefused(FileRefusal::Busy)
        }
    }
}

/// Streams exactly `len` bytes from `recv` into `path` (temp file,
/// fsync, rename).
async fn write_blob(path: &PathBuf, recv: &mut quinn::RecvStream, len: u64) -> Result<(), String> {
    let dir = path.parent().ok_or("no parent directory")?;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let temp = path.with_extension(format!(
        "part-{}-{}",
        std::process::id(),
        NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
    ));
    let result = async {
        let mut file = tokio::fs::File::create(&temp)
            .await
            .map_err(|e| e.to_string())?;
        let mut got = 0u64;
        while let Some(chunk) = recv
            .read_chunk(64 * 1024, true)
            .await
            .map_err(|e| e.to_string())?
        {
            got += chunk.bytes.len() as u64;
            if got > len {
                return Err(format!("more than the {len} bytes announced"));
            }
            file.write_all(&chunk.bytes)
                .await
                .map_err(|e| e.to_string())?;
        }
        if got != len {
            return Err(format!("{got} of {len} bytes arrived"));
        }
        file.sync_all().await.map_err(|e| e.to_string())?;
        drop(file);
        tokio::fs::rename(&temp, path)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&temp).await;
    }
    result
}

/// Serves a file request from a device of the organisation: the stored
/// sealed bytes, or `Busy` while they have not been uploaded (yet).
pub async fn serve(
    shared: &Arc<Shared>,
    peer: &Peer,
    request: FileRequest,
    mut send: quinn::SendStream,
) {
    let key = BlobKey {
        org: peer.org,
        transfer: request.transfer(),
        item: request.item(),
    };
    let now = shared.clock.wall_ms();
    let found = shared
        .store
        .run(move |db| db.blob_len(&key, now))
        .await
        .ok()
        .flatten();
    let data = match found {
        Some(_) => tokio::fs::read(blob_path(shared, &key)).await.ok(),
        None => None,
    };
    match data {
        Some(data) => {
            shared.metrics.file_items_served.inc();
            tracing::debug!(device = %peer.device, transfer = %key.transfer, item = ?key.item, len = data.len(), "file item served");
            if let Err(e) = tincan_transport::file_stream::answer_data(&mut send, data).await {
                tracing::debug!(device = %peer.device, error = %e, "file item not delivered");
            }
        }
        None => {
            tracing::debug!(device = %peer.device, transfer = %key.transfer, item = ?key.item, "file item not here (yet)");
            tincan_transport::file_stream::answer_refusal(&mut send, FileRefusal::Busy).await;
        }
    }
}

/// Deletes expired items, rows and files.
pub async fn expire(shared: &Arc<Shared>) {
    let now = shared.clock.wall_ms();
    match shared.store.run(move |db| db.expire_blobs(now)).await {
        Ok(keys) => {
            for key in &keys {
                let path = blob_path(shared, key);
                let _ = tokio::fs::remove_file(&path).await;
                if let Some(dir) = path.parent() {
                    // Empty once its last item goes; fails harmlessly before.
                    let _ = tokio::fs::remove_dir(dir).await;
                }
            }
            if !keys.is_empty() {
                tracing::info!(items = keys.len(), "expired file items deleted");
            }
        }
        Err(e) => tracing::warn!(error = %e, "file expiry failed"),
    }
}
