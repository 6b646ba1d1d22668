//! The data path of file transfers in the actor: driving each incoming
//! transfer's `Pull` (link up/down, fetches to start, events to persist),
//! serving the chunk requests of peers, and applying what the file tasks
//! report. Called after every actor event (`drive_files`) and from the
//! events themselves (`on_files_event`).

use std::path::PathBuf;
use std::sync::Arc;

use tincan_core::file::pull::FinishFault;
use tincan_core::file::{
    crypt, file_name, Fetch, FetchFault, FileAction, FileRefusal, FileRequest, PullEvent, PullState,
};
use tincan_core::DeviceId;

use super::{Key, Transfer};
use crate::file::sink;
use crate::file::staged::StagedFiles;
use crate::node::actor::Actor;
use crate::node::file_task::{self, ChunkJob, FilesEvent, ServeJob};
use crate::store::{Direction, TransferState};

/// Verified chunks between two saves of a pull's progress.
const PROGRESS_SAVE_CHUNKS: u32 = 8;
/// Longest time between two saves of a pull's progress (ms).
const PROGRESS_SAVE_MS: u64 = 1_000;

impl Actor {
    /// Starts the fetches every active incoming transfer may start now and
    /// applies its events.
    pub(in crate::node::actor) fn drive_files(&mut self) {
        let now = self.now;
        let keys: Vec<Key> = self
            .files
            .transfers
            .iter()
            .filter(|(_, t)| t.pull.is_some())
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            self.drive_pull(&key, now);
        }
        self.drive_uploads(now);
    }

    fn drive_pull(&mut self, key: &Key, now: u64) {
        let tx = self.link_tx.clone();
        let conn = self
            .files
            .transfers
            .get(key)
            .and_then(|t| self.holder_for(&t.record));
        let Some(t) = self.files.transfers.get_mut(key) else {
            return;
        };
        let Some(pull) = t.pull.as_mut() else {
            return;
        };
        pull.handle_link(now, conn.is_some());
        if pull.poll_timeout().is_some_and(|at| at <= now) {
            pull.handle_timeout(now);
        }
        let mut prepare = *pull.state() == PullState::Preparing && !t.job;
        while let Some(fetch) = pull.poll_fetch(now) {
            let Some(conn) = conn.clone() else { break };
            match fetch {
                Fetch::Manifest => {
                    file_task::fetch_manifest(conn, key.0, t.offer.manifest_len, tx.clone())
                }
                Fetch::Chunk { index, place, hash } => {
                    let (Some(dest), Some(manifest)) = (&t.record.dest, &t.manifest) else {
                        continue;
                    };
                    let files = t.staged.get_or_insert_with(|| {
                        Arc::new(StagedFiles::new(
                            PathBuf::from(dest),
                            t.staging.clone(),
                            manifest.clone(),
                        ))
                    });
                    let job = ChunkJob {
                        transfer: key.0,
                        index,
                        key: t.offer.key,
                        place,
                        hash,
                        files: files.clone(),
                        again: self.files.again.contains(&(key.0, index)),
                    };
                    file_task::fetch_chunk(conn, job, tx.clone());
                }
            }
        }
        let mut events = Vec::new();
        while let Some(event) = pull.poll_event() {
            events.push(event);
        }
        let mut verified = 0;
        for event in events {
            match event {
                PullEvent::ManifestReady => {
                    self.on_manifest_ready(key);
                    prepare = true;
                }
                PullEvent::Verified { .. } => verified += 1,
                PullEvent::Finished => self.start_finish(key),
                PullEvent::Failed { reason } => {
                    tracing::warn!(transfer = %key.0, %reason, "incoming transfer failed");
                    self.stop_transfer(key, TransferState::Failed, Some(reason.clone()));
                    self.tell_peer(key, FileAction::Failed(reason));
                    return;
                }
            }
        }
        if verified > 0 {
            self.save_progress(key, now, verified);
        }
        if prepare {
            self.start_prepare(key);
        }
    }

    /// Writes the pull's progress into the record, and into the store
    /// every [`PROGRESS_SAVE_CHUNKS`] chunks or [`PROGRESS_SAVE_MS`] (a
    /// crash re-fetches at most that much; every state change stores the
    /// whole record anyway).
    fn save_progress(&mut self, key: &Key, now: u64, verified: u32) {
        let Some(t) = self.files.transfers.get_mut(key) else {
            return;
        };
        let mut complete = false;
        if let Some(pull) = &t.pull {
            t.record.have = pull.have().as_bytes().to_vec();
            t.record.bytes_done = pull.bytes_done();
            t.meter.handle_progress(now, t.record.bytes_done);
            complete = pull.have().is_full();
        }
        t.record.updated_at_ms = now;
        t.unsaved_chunks += verified;
        if complete
            || t.unsaved_chunks >= PROGRESS_SAVE_CHUNKS
            || now >= t.saved_at_ms + PROGRESS_SAVE_MS
        {
            t.unsaved_chunks = 0;
            t.saved_at_ms = now;
            if let Err(e) = self.store.update_transfer(&t.record) {
                tracing::error!(transfer = %key.0, error = %e, "cannot store transfer progress");
            }
        }
        if matches!(t.record.state, TransferState::Accepted) && t.record.bytes_done > 0 {
            self.set_transfer_state(key, TransferState::Transferring, None);
        }
    }

    fn on_manifest_ready(&mut self, key: &Key) {
        let Some(t) = self.files.transfers.get_mut(key) else {
            return;
        };
        let Some(manifest) = t.pull.as_ref().and_then(|p| p.manifest()).cloned() else {
            return;
        };
        if let Err(e) = self
            .store
            .set_transfer_manifest(&key.0, key.1, &manifest.to_bytes())
        {
            tracing::error!(transfer = %key.0, error = %e, "cannot store manifest");
        }
        t.layout = Some(std::sync::Arc::new(tincan_core::file::Layout::new(
            &manifest,
        )));
        t.manifest = Some(std::sync::Arc::new(manifest));
    }

    /// Picks the staging names (once, persisted) and creates the staging
    /// files off the actor.
    fn start_prepare(&mut self, key: &Key) {
        let tx = self.link_tx.clone();
        let Some(t) = self.files.transfers.get_mut(key) else {
            return;
        };
        let (Some(dest), Some(manifest), Some(pull)) = (&t.record.dest, &t.manifest, &t.pull)
        else {
            return;
        };
        let dest = PathBuf::from(dest);
        if t.staging.is_empty() {
            t.staging = sink::plan_staging(&dest, &manifest.top_levels());
            t.record.staging = serde_json::to_string(&t.staging).ok();
            if let Err(e) = self.store.update_transfer(&t.record) {
                tracing::error!(transfer = %key.0, error = %e, "cannot store staging names");
            }
        }
        let layout = tincan_core::file::Layout::new(manifest);
        let claimed: Vec<bool> = (0..manifest.files.len() as u32)
            .map(|f| layout.file_chunks(f).any(|i| pull.have().contains(i)))
            .collect();
        let (map, manifest, transfer) = (t.staging.clone(), manifest.clone(), key.0);
        t.job = true;
        // Staged files may be (re)created: no handle or hash survives that.
        t.staged = None;
        file_task::blocking(
            move || sink::prepare(&dest, &map, &manifest, |f| claimed[f as usize]),
            move |result| FilesEvent::Prepared { transfer, result },
            tx,
        );
    }

    fn start_finish(&mut self, key: &Key) {
        let tx = self.link_tx.clone();
        let Some(t) = self.files.transfers.get_mut(key) else {
            return;
        };
        let (Some(dest), Some(manifest)) = (&t.record.dest, &t.manifest) else {
            return;
        };
        let (dest, map, manifest, transfer) = (
            PathBuf::from(dest),
            t.staging.clone(),
            manifest.clone(),
            key.0,
        );
        t.job = true;
        let staged = t.staged.clone();
        tracing::info!(%transfer, "every chunk verified; checking the files and moving them into place");
        file_task::blocking(
            move || {
                sink::finish(&dest, &map, &manifest, |file| {
                    staged.as_ref().and_then(|s| s.whole_hash(file))
                })
            },
            move |result| FilesEvent::Finished { transfer, result },
            tx,
        );
    }

    pub(in crate::node::actor) fn on_files_event(&mut self, event: FilesEvent) {
        let now = self.now;
        match event {
            FilesEvent::Request {
                from,
                request,
                send,
            } => self.on_file_request(from, request, send, now),
            FilesEvent::Scanned { job, result } => self.on_scanned(*job, result),
            FilesEvent::Manifest { transfer, result } => {
                if let Some(pull) = self.in_pull(transfer) {
                    pull.handle_manifest(now, result);
                }
            }
            FilesEvent::Fetched {
                transfer,
                index,
                received,
                result,
            } => {
                let key = (transfer, Direction::In);
                if matches!(result, Err(FetchFault::Corrupt(_))) {
                    self.files.again.insert((transfer, index));
                } else {
                    self.files.again.remove(&(transfer, index));
                }
                if let Some(t) = self.files.transfers.get_mut(&key) {
                    t.record.bytes_total += received;
                    if let Some(pull) = t.pull.as_mut() {
                        pull.handle_chunk(now, index, result);
                    }
                }
            }
            FilesEvent::Prepared { transfer, result } => {
                if self.job_done(transfer) {
                    if let Some(pull) = self.in_pull(transfer) {
                        pull.handle_prepared(result);
                    }
                }
            }
            FilesEvent::Finished { transfer, result } => {
                if self.job_done(transfer) {
                    self.on_finished(transfer, result);
                }
            }
            FilesEvent::Served {
                transfer,
                index,
                bytes,
                result,
            } => self.on_served(transfer, index, bytes, result, now),
            FilesEvent::Upload {
                from,
                header,
                send,
                recv,
            } => self.on_member_upload(from, header, send, recv, now),
            FilesEvent::Uploaded {
                transfer,
                item,
                result,
            } => self.on_uploaded(transfer, item, result, now),
        }
    }

    fn in_pull(
        &mut self,
        transfer: tincan_core::file::TransferId,
    ) -> Option<&mut tincan_core::file::Pull> {
        self.files
            .transfers
            .get_mut(&(transfer, Direction::In))
            .and_then(|t| t.pull.as_mut())
    }

    /// Clears the job flag; returns false (after discarding the staging)
    /// when the transfer was stopped while the job ran.
    fn job_done(&mut self, transfer: tincan_core::file::TransferId) -> bool {
        let key = (transfer, Direction::In);
        let Some(t) = self.files.transfers.get_mut(&key) else {
            return false;
        };
        t.job = false;
        if t.discard_after_job {
            t.discard_after_job = false;
            self.discard_staging(&key);
            return false;
        }
        t.pull.is_some()
    }

    fn on_finished(
        &mut self,
        transfer: tincan_core::file::TransferId,
        result: Result<Vec<PathBuf>, FinishFault>,
    ) {
        let key = (transfer, Direction::In);
        let saved = result.as_ref().ok().cloned();
        if let Some(pull) = self.in_pull(transfer) {
            pull.handle_finished(result.map(|_| ()));
            if *pull.state() != PullState::Done {
                return; // bad chunks are fetched again, or it failed (events)
            }
        }
        if let Some(t) = self.files.transfers.get_mut(&key) {
            let paths: Vec<String> = saved
                .unwrap_or_default()
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            t.record.saved = serde_json::to_string(&paths).ok();
            t.record.bytes_done = t.offer.size;
            t.pull = None;
            tracing::info!(%transfer, saved = ?paths, "transfer complete");
        }
        self.set_transfer_state(&key, TransferState::Done, None);
        self.tell_peer(&key, FileAction::Done);
    }

    /// A peer asks for sealed bytes of a transfer we send.
    fn on_file_request(
        &mut self,
        from: DeviceId,
        request: FileRequest,
        send: quinn::SendStream,
        now: u64,
    ) {
        let key = (request.transfer(), Direction::Out);
        let send = if self.files.transfers.contains_key(&key) {
            send
        } else {
            match self.serve_from_relay(from, &request, send) {
                Some(send) => send,
                None => return,
            }
        };
        let refusal = match self.files.transfers.get(&key) {
            None => Some(FileRefusal::Unknown),
            Some(t) if !t.record.devices.contains(&from) => Some(FileRefusal::Unknown),
            Some(t) if t.record.state == TransferState::Cancelled => Some(FileRefusal::Cancelled),
            Some(t)
                if matches!(
                    t.record.state,
                    TransferState::Rejected | TransferState::Failed
                ) =>
            {
                Some(FileRefusal::Unknown)
            }
            Some(_) => None,
        };
        if let Some(refusal) = refusal {
            tracing::debug!(transfer = %key.0, %from, ?refusal, "file request refused");
            return file_task::refuse(send, refusal);
        }
        if self.files.transfers[&key].manifest.is_none() {
            let mut t = self.files.transfers.remove(&key).expect("checked above");
            self.load_manifest(&mut t);
            self.files.transfers.insert(key, t);
        }
        let tx = self.link_tx.clone();
        let permits = self.files.permits.clone();
        let t: &mut Transfer = self.files.transfers.get_mut(&key).expect("checked above");
        let (Some(manifest), Some(layout), Some(sources)) = (&t.manifest, &t.layout, &t.sources)
        else {
            return file_task::refuse(send, FileRefusal::Unknown);
        };
        match request {
            FileRequest::Manifest { transfer } => {
                let sealed = crypt::seal_manifest(&t.offer.key, &transfer, manifest.to_bytes());
                file_task::serve_manifest(send, transfer, sealed, tx);
            }
            FileRequest::Chunk { transfer, index }
            | FileRequest::ChunkAgain { transfer, index } => {
                let Some(place) = layout.place(index) else {
                    return file_task::refuse(send, FileRefusal::BadRequest);
                };
                let file = &manifest.files[place.file as usize];
                let local = (index - layout.file_chunks(place.file).start) as usize;
                let corrupt = self.files.corrupt_chunk == Some(index);
                if corrupt {
                    self.files.corrupt_chunk = None;
                }
                let job = ServeJob {
                    transfer,
                    index,
                    key: t.offer.key,
                    source: sources[place.file as usize].clone(),
                    place,
                    hash: file.chunks[local],
                    delay_ms: self.files.bucket.reserve(now, u64::from(place.len)),
                    corrupt,
                };
                file_task::serve_chunk(send, job, permits, tx);
            }
            _ => file_task::refuse(send, FileRefusal::BadRequest),
        }
    }

    fn on_served(
        &mut self,
        transfer: tincan_core::file::TransferId,
        index: Option<u64>,
        bytes: u64,
        result: Result<(), Option<FileRefusal>>,
        now: u64,
    ) {
        let key = (transfer, Direction::Out);
        let Some(t) = self.files.transfers.get_mut(&key) else {
            return;
        };
        match result {
            Ok(()) => {
                t.record.bytes_total += bytes;
                if let (Some(index), Some(layout)) = (index, &t.layout) {
                    if t.served.insert(index) {
                        t.record.bytes_done += layout.place(index).map_or(0, |p| u64::from(p.len));
                        t.record.have = t.served.as_bytes().to_vec();
                    }
                }
                t.meter.handle_progress(now, t.record.bytes_done);
                t.record.updated_at_ms = now;
                if let Err(e) = self.store.update_transfer(&t.record) {
                    tracing::error!(%transfer, error = %e, "cannot store transfer progress");
                }
                if matches!(
                    t.record.state,
                    TransferState::Offered | TransferState::Accepted
                ) {
                    self.set_transfer_state(&key, TransferState::Transferring, None);
                }
            }
            Err(Some(refusal)) if !refusal.is_transient() && !t.record.state.is_final() => {
                let name_of = |f: u32| file_name(t.manifest.as_deref(), f);
                let reason = refusal
                    .describe_own(name_of)
                    .unwrap_or_else(|| refusal.describe(name_of));
                tracing::warn!(%transfer, %reason, "outgoing transfer failed");
                self.set_transfer_state(&key, TransferState::Failed, Some(reason));
            }
            Err(_) => {}
        }
    }
}
