//! The receiver's side of a transfer as a sans-IO state machine: which
//! item to fetch next, how many in flight, what to do with a bad or lost
//! chunk, and when the transfer is complete.
//!
//! # Drive loop
//! The node calls the `handle_*` inputs with the current time, then polls:
//! [`Pull::poll_fetch`] until `None` (start one fetch each),
//! [`Pull::poll_event`] until `None`, and sleeps until
//! [`Pull::poll_timeout`]. The node does the I/O: it fetches the sealed
//! bytes, opens them with [`super::crypt`], writes the plaintext, and
//! reports the outcome with [`Pull::handle_chunk`].
//!
//! # States
//! `Manifest` (fetch and check the manifest) → `Preparing` (the node
//! creates the staging files) → `Running` (chunks in flight, at most
//! [`PullConfig::window`]) → `Finishing` (every chunk verified; the node
//! checks each whole file from disk and moves it into place) → `Done`;
//! or `Failed` with a sentence for the user. While the link to the holder
//! is down nothing is fetched (the node shows the transfer as paused);
//! fetches that were in flight are asked again once it is back.
//!
//! # Retries
//! A chunk that arrives but does not verify is fetched again, at most
//! [`PullConfig::max_corrupt`] times, then the transfer fails. A fetch
//! lost to the network (stream reset, timeout, busy holder) is retried
//! without limit after a growing pause: the network coming back is
//! exactly what resumption is for. A refusal from the holder (file
//! changed, cancelled) or a local disk error fails the transfer at once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::crypt::{self, ChunkError};
use super::manifest::{ChunkPlace, Layout, Manifest};
use super::{ChunkSet, FileOffer, FileRefusal};

/// Knobs of a [`Pull`].
#[derive(Clone, Debug)]
pub struct PullConfig {
    /// Most fetches in flight at once.
    pub window: usize,
    /// Times one chunk may fail verification before the transfer fails.
    pub max_corrupt: u32,
    /// How long one fetch may take before it counts as lost (ms).
    pub fetch_timeout_ms: u64,
    /// Longest pause after lost fetches (ms).
    pub max_backoff_ms: u64,
}

impl Default for PullConfig {
    fn default() -> Self {
        Self {
            window: 16,
            max_corrupt: 5,
            fetch_timeout_ms: 60_000,
            max_backoff_ms: 10_000,
        }
    }
}

/// Where a pull is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PullState {
    /// Fetching the manifest.
    Manifest,
    /// Waiting for the node to prepare the staging files.
    Preparing,
    /// Fetching chunks.
    Running,
    /// Every chunk is verified; the node checks and moves the files.
    Finishing,
    /// Complete.
    Done,
    /// Given up, with the reason for the user.
    Failed(String),
}

/// What the node should fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fetch {
    /// The sealed manifest.
    Manifest,
    /// One sealed chunk, which belongs at `place`.
    Chunk {
        /// Global chunk index.
        index: u64,
        /// Where its plaintext goes.
        place: ChunkPlace,
        /// Its blake3 hash in the manifest.
        hash: [u8; 32],
    },
}

/// Why a fetch did not deliver a verified, written chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchFault {
    /// The bytes arrived but did not open or verify.
    Corrupt(ChunkError),
    /// The network lost it (reset, timeout): ask again.
    Lost(String),
    /// The holder refused.
    Refused(FileRefusal),
    /// Writing it locally failed (no space, permission): fatal.
    Disk(String),
}

/// Why the final check of the files failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinishFault {
    /// These chunks do not match on disk (e.g. lost in an OS crash).
    BadChunks(Vec<u64>),
    /// A file could not be checked or moved into place.
    Io(String),
}

/// What happened, for the node to persist or act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PullEvent {
    /// The manifest is verified: persist it and prepare the staging files,
    /// then call [`Pull::handle_prepared`].
    ManifestReady,
    /// Chunk `index` is verified and written: persist [`Pull::have`].
    Verified {
        /// The chunk.
        index: u64,
        /// Its plaintext length.
        len: u32,
    },
    /// Every chunk is verified: check the files and move them into place,
    /// then call [`Pull::handle_finished`].
    Finished,
    /// The transfer failed for good.
    Failed {
        /// A sentence for the user.
        reason: String,
    },
}

/// The receiver's state machine for one transfer.
#[derive(Debug)]
pub struct Pull {
    config: PullConfig,
    offer: FileOffer,
    manifest: Option<Manifest>,
    layout: Option<Layout>,
    have: ChunkSet,
    state: PullState,
    link_up: bool,
    /// Fetches in flight: chunk index (`None` = manifest) → deadline.
    in_flight: BTreeMap<Option<u64>, u64>,
    /// Chunks to ask again before new ones.
    retry: VecDeque<u64>,
    queued: BTreeSet<u64>,
    /// Scan position for chunks never asked yet.
    cursor: u64,
    corrupt: BTreeMap<u64, u32>,
    /// Consecutive lost fetches (reset by any success) and the pause.
    lost_streak: u32,
    hold_until: u64,
    rescans: u32,
    events: VecDeque<PullEvent>,
}

impl Pull {
    /// A new pull for `offer`, starting with the manifest.
    pub fn new(offer: FileOffer, config: PullConfig) -> Self {
        Self::build(offer, None, ChunkSet::new(0), config)
    }

    /// A pull resumed from stored state: the verified `manifest` and the
    /// chunks already verified (`have`). It starts in `Preparing`.
    pub fn resume(offer: FileOffer, manifest: Manifest, have: &[u8], config: PullConfig) -> Self {
        let layout = Layout::new(&manifest);
        let have = ChunkSet::from_bytes(layout.chunks(), have);
        Self::build(offer, Some(manifest), have, config)
    }

    fn build(
        offer: FileOffer,
        manifest: Option<Manifest>,
        have: ChunkSet,
        config: PullConfig,
    ) -> Self {
        let layout = manifest.as_ref().map(Layout::new);
        let state = if manifest.is_some() {
            PullState::Preparing
        } else {
            PullState::Manifest
        };
        Self {
            config,
            offer,
            manifest,
            layout,
            have,
            state,
            link_up: false,
            in_flight: BTreeMap::new(),
            retry: VecDeque::new(),
            queued: BTreeSet::new(),
            cursor: 0,
            corrupt: BTreeMap::new(),
            lost_streak: 0,
            hold_until: 0,
            rescans: 0,
            events: VecDeque::new(),
        }
    }

    /// The state.
    pub fn state(&self) -> &PullState {
        &self.state
    }

    /// The offer.
    pub fn offer(&self) -> &FileOffer {
        &self.offer
    }

    /// The verified manifest, once fetched.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    /// The chunk layout, once the manifest is known.
    pub fn layout(&self) -> Option<&Layout> {
        self.layout.as_ref()
    }

    /// The verified chunks.
    pub fn have(&self) -> &ChunkSet {
        &self.have
    }

    /// Whether the link to the holder is up.
    pub fn is_link_up(&self) -> bool {
        self.link_up
    }

    /// Fetches in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Plaintext bytes verified so far.
    pub fn bytes_done(&self) -> u64 {
        let (Some(layout), Some(manifest)) = (&self.layout, &self.manifest) else {
            return 0;
        };
        if self.have.is_full() {
            return manifest.total_size();
        }
        let chunk = u64::from(manifest.chunk_size);
        let mut done = self.have.count() * chunk;
        // Last chunks of files are short: correct for the ones we have.
        for (i, file) in manifest.files.iter().enumerate() {
            let range = layout.file_chunks(i as u32);
            if let Some(last) = range.end.checked_sub(1).filter(|l| *l >= range.start) {
                if self.have.contains(last) {
                    done -= chunk - (file.size - (last - range.start) * chunk);
                }
            }
        }
        done
    }

    /// The name of file `file` of the manifest, for messages.
    pub fn file_name(&self, file: u32) -> String {
        super::manifest::file_name(self.manifest.as_ref(), file)
    }

    /// The link to the holder came up or went down.
    pub fn handle_link(&mut self, _now: u64, up: bool) {
        if up == self.link_up {
            return;
        }
        self.link_up = up;
        if up {
            self.hold_until = 0;
            self.lost_streak = 0;
        } else {
            // Whatever was in flight is lost with the connection; ask again
            // once it is back, without counting it against the chunk.
            let lost: Vec<Option<u64>> = self.in_flight.keys().copied().collect();
            self.in_flight.clear();
            for index in lost.into_iter().flatten() {
                self.requeue(index);
            }
        }
    }

    /// The manifest fetch ended with the sealed bytes or a fault.
    pub fn handle_manifest(&mut self, now: u64, result: Result<Vec<u8>, FetchFault>) {
        if self.in_flight.remove(&None).is_none() || self.state != PullState::Manifest {
            return;
        }
        let sealed = match result {
            Ok(sealed) => sealed,
            Err(fault) => return self.fault(now, None, fault),
        };
        let plain = match crypt::open_manifest(
            &self.offer.key,
            &self.offer.transfer,
            &self.offer.manifest_hash,
            sealed,
        ) {
            Ok(plain) => plain,
            Err(e) => return self.fault(now, None, FetchFault::Corrupt(e)),
        };
        let manifest = match Manifest::from_bytes(&plain).and_then(|m| {
            m.validate(&self.offer)?;
            Ok(m)
        }) {
            Ok(m) => m,
            Err(e) => return self.fail(format!("the sender's manifest is invalid: {e}")),
        };
        let layout = Layout::new(&manifest);
        self.have = ChunkSet::new(layout.chunks());
        self.layout = Some(layout);
        self.manifest = Some(manifest);
        self.lost_streak = 0;
        self.state = PullState::Preparing;
        self.events.push_back(PullEvent::ManifestReady);
    }

    /// The node prepared the staging files; `lost` lists files whose
    /// staged bytes were missing (their chunks are fetched again).
    pub fn handle_prepared(&mut self, result: Result<Vec<u32>, String>) {
        if self.state != PullState::Preparing {
            return;
        }
        match result {
            Ok(lost) => {
                if let Some(layout) = &self.layout {
                    for file in lost {
                        for index in layout.file_chunks(file) {
                            self.have.remove(index);
                        }
                    }
                }
                self.cursor = 0;
                self.state = PullState::Running;
                self.check_complete();
            }
            Err(e) => self.fail(e),
        }
    }

    /// A chunk fetch ended: `Ok` once the chunk is verified and written.
    pub fn handle_chunk(&mut self, now: u64, index: u64, result: Result<(), FetchFault>) {
        let was_in_flight = self.in_flight.remove(&Some(index)).is_some();
        if !matches!(self.state, PullState::Running) {
            return;
        }
        match result {
            Ok(()) => {
                self.lost_streak = 0;
                if self.have.insert(index) {
                    let len = self
                        .layout
                        .as_ref()
                        .and_then(|l| l.place(index))
                        .map_or(0, |p| p.len);
                    self.events.push_back(PullEvent::Verified { index, len });
                }
                self.check_complete();
            }
            // A late answer to a fetch already given up on: the retry decides.
            Err(_) if !was_in_flight => {}
            Err(fault) => self.fault(now, Some(index), fault),
        }
    }

    /// The final check of the files ended.
    pub fn handle_finished(&mut self, result: Result<(), FinishFault>) {
        if self.state != PullState::Finishing {
            return;
        }
        match result {
            Ok(()) => self.state = PullState::Done,
            Err(FinishFault::Io(e)) => self.fail(e),
            Err(FinishFault::BadChunks(bad)) => {
                self.rescans += 1;
                if self.rescans > 1 || bad.is_empty() {
                    return self.fail(
                        "the received files do not match their hashes even after fetching the bad parts again".into(),
                    );
                }
                for index in bad {
                    self.have.remove(index);
                }
                self.cursor = 0;
                self.state = PullState::Running;
            }
        }
    }

    /// Fetches past their deadline count as lost.
    pub fn handle_timeout(&mut self, now: u64) {
        let expired: Vec<Option<u64>> = self
            .in_flight
            .iter()
            .filter(|(_, &deadline)| deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            self.in_flight.remove(&key);
            self.fault(now, key, FetchFault::Lost("no answer in time".into()));
        }
    }

    /// The next fetch to start, if the window and the state allow one.
    #[must_use]
    pub fn poll_fetch(&mut self, now: u64) -> Option<Fetch> {
        if !self.link_up || now < self.hold_until || self.in_flight.len() >= self.config.window {
            return None;
        }
        self.hold_until = 0;
        let deadline = now + self.config.fetch_timeout_ms;
        match self.state {
            PullState::Manifest if self.in_flight.is_empty() => {
                self.in_flight.insert(None, deadline);
                Some(Fetch::Manifest)
            }
            PullState::Running => {
                let index = self.next_chunk()?;
                let layout = self.layout.as_ref()?;
                let place = layout.place(index)?;
                let hash = self.manifest.as_ref()?.files[place.file as usize].chunks
                    [(index - layout.file_chunks(place.file).start) as usize];
                self.in_flight.insert(Some(index), deadline);
                Some(Fetch::Chunk { index, place, hash })
            }
            _ => None,
        }
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<PullEvent> {
        self.events.pop_front()
    }

    /// When to call [`Pull::handle_timeout`] (or poll again after a pause).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        let deadline = self.in_flight.values().min().copied();
        // A pause that has not been polled past yet.
        let hold = (self.link_up && self.hold_until > 0).then_some(self.hold_until);
        match (deadline, hold) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn next_chunk(&mut self) -> Option<u64> {
        while let Some(index) = self.retry.pop_front() {
            self.queued.remove(&index);
            if !self.have.contains(index) && !self.in_flight.contains_key(&Some(index)) {
                return Some(index);
            }
        }
        let total = self.have.len();
        while self.cursor < total {
            let index = self.cursor;
            self.cursor += 1;
            if !self.have.contains(index) && !self.in_flight.contains_key(&Some(index)) {
                return Some(index);
            }
        }
        None
    }

    fn requeue(&mut self, index: u64) {
        if self.queued.insert(index) {
            self.retry.push_back(index);
        }
    }

    fn fault(&mut self, now: u64, key: Option<u64>, fault: FetchFault) {
        match fault {
            FetchFault::Corrupt(error) => {
                let count = {
                    let count = self.corrupt.entry(key.unwrap_or(u64::MAX)).or_insert(0);
                    *count += 1;
                    *count
                };
                if count >= self.config.max_corrupt {
                    let what = match key {
                        Some(index) => {
                            let file = self
                                .layout
                                .as_ref()
                                .and_then(|l| l.place(index))
                                .map_or(0, |p| p.file);
                            format!("part {index} of {}", self.file_name(file))
                        }
                        None => "the file list".to_string(),
                    };
                    return self.fail(format!(
                        "{what} failed verification {count} times ({error}); giving up"
                    ));
                }
                if let Some(index) = key {
                    self.requeue(index);
                }
            }
            FetchFault::Refused(refusal) if refusal.is_transient() => self.lost(now, key),
            FetchFault::Lost(_) => self.lost(now, key),
            FetchFault::Refused(refusal) => {
                let reason = refusal.describe(|f| self.file_name(f));
                self.fail(reason)
            }
            FetchFault::Disk(error) => self.fail(error),
        }
    }

    fn lost(&mut self, now: u64, key: Option<u64>) {
        // The fetches of one window fail together (a holder that has
        // nothing yet refuses all of them): that is one failure, not 16,
        // or the pause would jump to the maximum at once.
        if now >= self.hold_until {
            self.lost_streak = self.lost_streak.saturating_add(1);
            let pause = (250u64 << self.lost_streak.min(8)).min(self.config.max_backoff_ms);
            self.hold_until = now + pause;
        }
        if let Some(index) = key {
            self.requeue(index);
        }
    }

    fn check_complete(&mut self) {
        if self.state == PullState::Running && self.have.is_full() {
            self.state = PullState::Finishing;
            self.events.push_back(PullEvent::Finished);
        }
    }

    fn fail(&mut self, reason: String) {
        if matches!(self.state, PullState::Done | PullState::Failed(_)) {
            return;
        }
        self.in_flight.clear();
        self.state = PullState::Failed(reason.clone());
        self.events.push_back(PullEvent::Failed { reason });
    }
}

#[cfg(test)]
mod tests;
