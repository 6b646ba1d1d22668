//! File transfers in the actor: the user's commands, offers and control
//! messages arriving end to end, and the views. The data path — driving
//! each incoming transfer's `Pull`, serving chunk requests, applying what
//! file tasks report — is in `file/drive.rs`; offering files in `file/offer.rs`.
//!
//! Invariants:
//! - Offers and control messages (reject, cancel, done, failed) travel as
//!   sealed envelopes through the durable outbox, so a peer that is
//!   offline gets them when it returns; file names never leave envelopes
//!   and the encrypted manifest.
//! - Every state change is written to the store before it is reported, so
//!   a restart resumes from what was verified, never from zero.
//! - Only the devices an offer was sealed to may fetch its bytes, and
//!   control messages count only from the transfer's peer.
//! - Across branches (`file/wan.rs`) the sender uploads the sealed bytes
//!   once to the relay; receivers pull them through their gateway's cache
//!   (or from the relay when roaming), whichever path is up now.

mod drive;
mod notice;
mod offer;
mod wan;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use tincan_core::file::{
    ChunkSet, FileAction, FileOffer, Layout, Manifest, Pull, PullConfig, RateMeter, TokenBucket,
    TransferId,
};
use tincan_core::{Content, DeviceCert, MessageId, UserId};
use tokio::sync::Semaphore;

use super::{Actor, MESSAGE_TTL_MS};
use crate::event::NodeEvent;
use crate::file::cache::FileCache;
use crate::file::sink::StagingMap;
use crate::file::source::Source;
use crate::file::staged::StagedFiles;
use crate::file::{FilesConfig, TransferView, TEST_CORRUPT_CHUNK_ENV};
use crate::keystore::OsEntropy;
use crate::node::NodeError;
use crate::store::{Direction, TransferRecord, TransferState};

/// Chunks served at once, over all transfers (bounds sender memory).
const MAX_SERVING: usize = 32;

type Key = (TransferId, Direction);

/// One transfer in memory.
struct Transfer {
    record: TransferRecord,
    offer: FileOffer,
    manifest: Option<Arc<Manifest>>,
    layout: Option<Arc<Layout>>,
    /// Out: the files on disk.
    sources: Option<Arc<Vec<Source>>>,
    /// In: where each top-level item is staged.
    staging: StagingMap,
    /// In: the staged files' handles and running hashes (this run).
    staged: Option<Arc<StagedFiles>>,
    /// In: verified chunks not in the store yet, and when it was last
    /// written (progress is saved in batches).
    unsaved_chunks: u32,
    saved_at_ms: u64,
    /// In: the state machine, while the transfer is active.
    pull: Option<Pull>,
    /// Out: chunks served at least once.
    served: ChunkSet,
    meter: RateMeter,
    /// A prepare or finish job is running.
    job: bool,
    /// Remove the staging once that job ends (cancelled meanwhile).
    discard_after_job: bool,
    /// Out: the upload to the relay, once one was needed.
    upload: Option<wan::Upload>,
    /// Out, offered to several users: each one's answer so far.
    recipients: BTreeMap<UserId, Option<wan::Outcome>>,
}

impl Transfer {
    /// A transfer known only by its record and offer: manifest, layout and
    /// sources load later; nothing served, no job running.
    fn new(record: TransferRecord, offer: FileOffer) -> Self {
        Self {
            served: ChunkSet::new(0),
            record,
            offer,
            manifest: None,
            layout: None,
            sources: None,
            staging: StagingMap::new(),
            staged: None,
            unsaved_chunks: 0,
            saved_at_ms: 0,
            pull: None,
            meter: RateMeter::new(),
            job: false,
            discard_after_job: false,
            upload: None,
            recipients: BTreeMap::new(),
        }
    }
}

/// The actor's file-transfer state.
pub(super) struct FilesState {
    config: FilesConfig,
    transfers: BTreeMap<Key, Transfer>,
    permits: Arc<Semaphore>,
    bucket: TokenBucket,
    /// Test hook (see [`TEST_CORRUPT_CHUNK_ENV`]).
    corrupt_chunk: Option<u64>,
    /// The WAN upload cap (`wan_upload_limit`).
    wan_bucket: TokenBucket,
    /// Uploads to the relay in flight at once.
    upload_permits: Arc<Semaphore>,
    /// As gateway: the cache of the relay's copies.
    cache: Arc<FileCache>,
    /// Chunks whose last copy did not verify: asked again with
    /// `ChunkAgain`, so caches on the way drop their copy.
    again: std::collections::BTreeSet<(TransferId, u64)>,
}

impl FilesState {
    pub(super) fn new(config: FilesConfig, home: &std::path::Path) -> Self {
        let corrupt_chunk = std::env::var(TEST_CORRUPT_CHUNK_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok());
        if let Some(index) = corrupt_chunk {
            tracing::warn!(
                chunk = index,
                "{TEST_CORRUPT_CHUNK_ENV} is set: one served chunk will be corrupted (test hook)"
            );
        }
        let cache_limit = if config.cache_limit == 0 {
            crate::file::DEFAULT_CACHE_LIMIT
        } else {
            config.cache_limit
        };
        Self {
            bucket: TokenBucket::new(config.upload_limit),
            wan_bucket: TokenBucket::new(config.wan_upload_limit),
            upload_permits: Arc::new(Semaphore::new(wan::UPLOAD_WINDOW)),
            cache: Arc::new(FileCache::open(home.join("file-cache"), cache_limit)),
            again: std::collections::BTreeSet::new(),
            config,
            transfers: BTreeMap::new(),
            permits: Arc::new(Semaphore::new(MAX_SERVING)),
            corrupt_chunk,
        }
    }
}

fn decode_offer(bytes: &[u8]) -> Option<FileOffer> {
    postcard::from_bytes(bytes).ok()
}

impl Actor {
    /// Loads the transfers after a restart; active ones resume.
    pub(super) fn restore_files(&mut self) -> Result<(), crate::store::StoreError> {
        let purged = self
            .store
            .purge_early_notices(self.now.saturating_sub(MESSAGE_TTL_MS))?;
        if purged > 0 {
            tracing::debug!(purged, "forgot early file notices whose offers never came");
        }
        for record in self.store.transfers()? {
            let Some(offer) = decode_offer(&record.offer) else {
                tracing::warn!(transfer = %record.id, "stored offer does not decode; skipped");
                continue;
            };
            let key = (record.id, record.direction);
            let mut t = Transfer::new(record, offer);
            if t.record.direction == Direction::Out {
                t.recipients = self
                    .store
                    .transfer_recipients(&t.record.id)
                    .ok()
                    .flatten()
                    .map(|json| wan::decode_recipients(&json))
                    .unwrap_or_default();
            }
            if !t.record.state.is_final() {
                self.load_manifest(&mut t);
                if let Some(staging) = &t.record.staging {
                    t.staging = serde_json::from_str(staging).unwrap_or_default();
                }
                let active = matches!(
                    t.record.state,
                    TransferState::Accepted | TransferState::Transferring | TransferState::Paused
                );
                if t.record.direction == Direction::In && active {
                    t.pull = Some(match &t.manifest {
                        Some(m) => Pull::resume(
                            t.offer.clone(),
                            (**m).clone(),
                            &t.record.have,
                            PullConfig::default(),
                        ),
                        None => Pull::new(t.offer.clone(), PullConfig::default()),
                    });
                    tracing::info!(transfer = %t.record.id, "resuming incoming transfer");
                }
            }
            self.files.transfers.insert(key, t);
        }
        Ok(())
    }

    fn load_manifest(&self, t: &mut Transfer) {
        let Ok(Some(stored)) = self
            .store
            .transfer_manifest(&t.record.id, t.record.direction)
        else {
            return;
        };
        let Ok(manifest) = Manifest::from_bytes(&stored.manifest) else {
            tracing::warn!(transfer = %t.record.id, "stored manifest does not decode");
            return;
        };
        let layout = Layout::new(&manifest);
        if t.record.direction == Direction::Out {
            t.served = ChunkSet::from_bytes(layout.chunks(), &t.record.have);
            t.sources = stored
                .sources
                .and_then(|s| serde_json::from_str::<Vec<Source>>(&s).ok())
                .map(Arc::new);
        }
        t.layout = Some(Arc::new(layout));
        t.manifest = Some(Arc::new(manifest));
    }

    /// Every transfer, oldest first.
    pub(super) fn transfer_views(&self) -> Vec<TransferView> {
        let keys: Vec<Key> = self.files.transfers.keys().copied().collect();
        let mut views: Vec<TransferView> =
            keys.iter().filter_map(|k| self.transfer_view(k)).collect();
        views.sort_by_key(|v| v.created_at);
        views
    }

    /// Finds a transfer by id or unique prefix (of at least 4 characters).
    fn find_transfer(&self, id: &str) -> Result<Key, NodeError> {
        let id = id.trim().to_ascii_lowercase();
        if id.len() < 4 {
            return Err(NodeError::Transfer(
                "give at least 4 characters of the transfer id (`tincan file list`)".into(),
            ));
        }
        let found: Vec<Key> = self
            .files
            .transfers
            .keys()
            .filter(|(t, _)| t.to_string().starts_with(&id))
            .copied()
            .collect();
        match found.as_slice() {
            [key] => Ok(*key),
            [] => Err(NodeError::Transfer(format!("no transfer {id}"))),
            _ => Err(NodeError::Transfer(format!(
                "{id} matches several transfers; give more characters"
            ))),
        }
    }

    fn default_downloads(&self) -> PathBuf {
        self.files
            .config
            .downloads
            .clone()
            .or_else(|| {
                directories::UserDirs::new().and_then(|d| d.download_dir().map(PathBuf::from))
            })
            .unwrap_or_else(|| self.home.root().join("downloads"))
    }

    /// Accepts an incoming offer (id or unique prefix) into `to` (an
    /// absolute folder; default: the configured download folder).
    pub(super) fn accept(
        &mut self,
        id: &str,
        to: Option<PathBuf>,
    ) -> Result<TransferView, NodeError> {
        if to.as_ref().is_some_and(|to| !to.is_absolute()) {
            let error = "the destination must be an absolute path";
            return Err(NodeError::Transfer(error.into()));
        }
        let key = self.find_transfer(id)?;
        let dest = to.unwrap_or_else(|| self.default_downloads());
        self.accept_key(key, dest)
    }

    fn accept_key(&mut self, key: Key, dest: PathBuf) -> Result<TransferView, NodeError> {
        let Some(t) = self.files.transfers.get_mut(&key) else {
            return Err(NodeError::Transfer("no such transfer".into()));
        };
        if key.1 != Direction::In {
            return Err(NodeError::Transfer("that transfer is one you send".into()));
        }
        if t.record.state != TransferState::Offered {
            return Err(NodeError::Transfer(format!(
                "the transfer is {}, not offered",
                t.record.state
            )));
        }
        // Fail now, not halfway, when the folder cannot be written.
        if crate::file::sink::ensure_folder(&dest).map_err(NodeError::Transfer)? {
            tracing::info!(folder = %dest.display(), "created the folder to receive into");
        }
        let probe = dest.join(format!(".tincan-probe-{}", key.0));
        std::fs::write(&probe, b"")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|e| NodeError::Transfer(crate::file::sink::disk_error(&e, &dest)))?;
        let dest = std::fs::canonicalize(&dest).unwrap_or(dest);
        t.record.dest = Some(dest.display().to_string());
        t.pull = Some(Pull::new(t.offer.clone(), PullConfig::default()));
        tracing::info!(transfer = %key.0, dest = %dest.display(), "accepted");
        self.set_transfer_state(&key, TransferState::Accepted, None);
        self.transfer_view(&key)
            .ok_or_else(|| NodeError::Transfer("transfer vanished".into()))
    }

    pub(super) fn reject(&mut self, id: &str) -> Result<TransferView, NodeError> {
        let key = self.find_transfer(id)?;
        let state = self.files.transfers.get(&key).map(|t| t.record.state);
        if key.1 != Direction::In || state != Some(TransferState::Offered) {
            return Err(NodeError::Transfer(
                "only an incoming offer can be rejected (use `file cancel` otherwise)".into(),
            ));
        }
        self.set_transfer_state(&key, TransferState::Rejected, None);
        self.tell_peer(&key, FileAction::Rejected);
        self.transfer_view(&key)
            .ok_or_else(|| NodeError::Transfer("transfer vanished".into()))
    }

    pub(super) fn cancel(&mut self, id: &str) -> Result<TransferView, NodeError> {
        let key = self.find_transfer(id)?;
        let state = self.files.transfers.get(&key).map(|t| t.record.state);
        if state.is_none_or(TransferState::is_final) {
            return Err(NodeError::Transfer(format!(
                "the transfer is already {}",
                state.map_or("gone", TransferState::as_str)
            )));
        }
        self.stop_transfer(&key, TransferState::Cancelled, None);
        self.tell_peer(&key, FileAction::Cancelled);
        self.transfer_view(&key)
            .ok_or_else(|| NodeError::Transfer("transfer vanished".into()))
    }

    /// Ends a transfer in a final state: stops its pull, removes staged
    /// bytes, persists and reports.
    fn stop_transfer(&mut self, key: &Key, state: TransferState, error: Option<String>) {
        if let Some(t) = self.files.transfers.get_mut(key) {
            t.pull = None;
            if state != TransferState::Done {
                if t.job {
                    t.discard_after_job = true;
                } else {
                    self.discard_staging(key);
                }
            }
        }
        self.set_transfer_state(key, state, error);
    }

    fn discard_staging(&self, key: &Key) {
        let Some(t) = self.files.transfers.get(key) else {
            return;
        };
        if let (Some(dest), false) = (&t.record.dest, t.staging.is_empty()) {
            let (dest, map) = (PathBuf::from(dest), t.staging.clone());
            tokio::task::spawn_blocking(move || crate::file::sink::discard(&dest, &map));
        }
    }

    /// Tells the other side of `key` about `action`, end to end.
    fn tell_peer(&mut self, key: &Key, action: FileAction) {
        let Some(t) = self.files.transfers.get(key) else {
            return;
        };
        let certs: Vec<DeviceCert> = t
            .record
            .devices
            .iter()
            .filter_map(|d| self.certs.get(d).cloned())
            .collect();
        if certs.is_empty() {
            tracing::warn!(transfer = %key.0, "cannot tell the peer: no device certificate known");
            return;
        }
        let (to, now) = (t.record.peer, self.now);
        let content = Content::FileControl {
            transfer: key.0,
            action,
        };
        let id = MessageId::random(&mut OsEntropy);
        if let Err(e) = self.queue_envelope(id, now, &content, to, &certs, &[]) {
            tracing::error!(transfer = %key.0, error = %e, "cannot queue the transfer notice");
        }
    }

    fn set_transfer_state(&mut self, key: &Key, state: TransferState, error: Option<String>) {
        let Some(t) = self.files.transfers.get_mut(key) else {
            return;
        };
        if t.record.state == state && t.record.error == error {
            return;
        }
        t.record.state = state;
        t.record.error = error;
        t.record.updated_at_ms = self.now;
        if let Err(e) = self.store.update_transfer(&t.record) {
            tracing::error!(transfer = %key.0, error = %e, "cannot store transfer state");
        }
        tracing::info!(transfer = %key.0, direction = key.1.as_str(), %state, "transfer state");
        self.emit_transfer(key);
    }

    fn emit_transfer(&self, key: &Key) {
        if let Some(view) = self.transfer_view(key) {
            self.emit(NodeEvent::FileState { transfer: view });
        }
    }

    fn transfer_view(&self, key: &Key) -> Option<TransferView> {
        let t = self.files.transfers.get(key)?;
        let r = &t.record;
        let now = self.now;
        // Direct to the peer, or (in an organisation) through the gateway
        // or the relay, which hold or fetch the relay's copy.
        let connected = r.devices.iter().any(|d| self.conns.contains_key(d))
            || (self.membership.is_some() && self.uplink_conn().is_some());
        let mut state = r.state;
        let moving = matches!(state, TransferState::Accepted | TransferState::Transferring);
        if moving && !connected {
            state = TransferState::Paused;
        }
        let transferring = state == TransferState::Transferring;
        let bytes_done = match &t.pull {
            Some(pull) if pull.manifest().is_some() => pull.bytes_done(),
            _ => r.bytes_done,
        };
        let saved_as = r
            .saved
            .as_deref()
            .and_then(|s| serde_json::from_str::<Vec<String>>(s).ok())
            .unwrap_or_default();
        Some(TransferView {
            id: r.id.to_string(),
            direction: r.direction.as_str().to_string(),
            peer: r.peer.to_string(),
            peer_name: self.book.display_name(&r.peer),
            name: t.offer.name.clone(),
            size: t.offer.size,
            count: t.offer.count,
            bytes_done,
            state,
            error: r.error.clone(),
            rate: transferring.then(|| t.meter.rate(now)).flatten(),
            eta_secs: transferring
                .then(|| t.meter.eta_secs(now, t.offer.size))
                .flatten(),
            bytes_received_total: (r.direction == Direction::In).then_some(r.bytes_total),
            bytes_sent_total: (r.direction == Direction::Out).then_some(r.bytes_total),
            dest: r.dest.clone(),
            saved_as,
            created_at: r.created_at_ms,
            recipients: t
                .recipients
                .iter()
                .map(|(user, outcome)| crate::file::view::RecipientView {
                    user: user.to_string(),
                    name: self.book.display_name(user),
                    state: outcome.as_ref().map(|o| o.state),
                    error: outcome.as_ref().and_then(|o| o.error.clone()),
                })
                .collect(),
        })
    }
}
