//! File transfer plumbing of the node: the events file tasks report to
//! the actor, and the tasks themselves — one per chunk fetched (receiver)
//! or served (sender). Like `link.rs`, these tasks decide nothing: the actor
//! (`actor/file.rs`) drives `tincan_core::file::Pull` and picks what
//! to fetch and serve; the tasks move sealed bytes between a stream and
//! the disk (`crate::file`) and say how it went. The stream format is
//! documented in `crate::file::stream`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tincan_core::file::crypt::{self, TAG_LEN};
use tincan_core::file::manifest::ChunkPlace;
use tincan_core::file::pull::FinishFault;
use tincan_core::file::{FetchFault, FileRefusal, FileRequest, FileUpload, TransferId};
use tincan_core::{DeviceCert, DeviceId, UserId};
use tokio::sync::{mpsc, Semaphore};

use super::link::LinkEvent;
use super::Responder;
use crate::file::cache::FileCache;
use crate::file::source::{self, ScanError, Scanned, Source};
use crate::file::staged::StagedFiles;
use crate::file::stream;

/// Longest one fetch may take (a 1 MiB chunk, even on a slow link).
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the CPU-heavy part of one chunk (read, hash and seal; or open,
/// hash and write) on the blocking pool, at most one per CPU at a time
/// over the whole node. A window of 16 chunks would otherwise be sealed
/// or opened 16 at once, each preempted by the others, every 1 MiB buffer
/// falling out of the CPU cache between its steps. `None`: the pool is
/// shutting down.
async fn chunk_work<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    static CPUS: std::sync::LazyLock<Semaphore> = std::sync::LazyLock::new(|| {
        Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    });
    let _turn = CPUS.acquire().await.ok()?;
    tokio::task::spawn_blocking(work).await.ok()
}

/// A `file send` waiting for its scan.
pub(crate) struct SendJob {
    /// The first user (the transfer's `peer`).
    pub to: UserId,
    /// Every user it is offered to.
    pub users: Vec<UserId>,
    pub certs: Vec<DeviceCert>,
    /// Where the request's answer goes once the scan ended.
    pub reply: Responder,
}

/// What file tasks tell the actor.
pub(crate) enum FilesEvent {
    /// A peer asks for sealed bytes; the actor answers on `send`.
    Request {
        from: DeviceId,
        request: FileRequest,
        send: quinn::SendStream,
    },
    /// The scan of a `file send` ended.
    Scanned {
        job: Box<SendJob>,
        result: Result<Box<Scanned>, ScanError>,
    },
    /// A manifest fetch ended.
    Manifest {
        transfer: TransferId,
        result: Result<Vec<u8>, FetchFault>,
    },
    /// A chunk fetch ended; `Ok` = verified and written. `received`
    /// counts the sealed bytes that arrived, good or bad.
    Fetched {
        transfer: TransferId,
        index: u64,
        received: u64,
        result: Result<(), FetchFault>,
    },
    /// The staging files are ready (or not).
    Prepared {
        transfer: TransferId,
        result: Result<Vec<u32>, String>,
    },
    /// The final check and move ended.
    Finished {
        transfer: TransferId,
        result: Result<Vec<PathBuf>, FinishFault>,
    },
    /// Serving one item ended: `Err(None)` = the stream broke.
    Served {
        transfer: TransferId,
        index: Option<u64>,
        bytes: u64,
        result: Result<(), Option<FileRefusal>>,
    },
    /// A LAN member uploads sealed bytes for the relay (we are, or were,
    /// its gateway); `recv` holds the bytes after the header.
    Upload {
        from: DeviceId,
        header: FileUpload,
        send: quinn::SendStream,
        recv: quinn::RecvStream,
    },
    /// One item of our own upload to the relay ended.
    Uploaded {
        transfer: TransferId,
        item: Option<u64>,
        result: Result<(), FetchFault>,
    },
}

/// Where an incoming transfer's sealed bytes come from right now.
#[derive(Clone)]
pub(crate) enum Holder {
    /// Over a connection: the sender on the LAN, our gateway (which
    /// serves from its cache), or the relay (roaming).
    Conn(quinn::Connection),
    /// Through our own cache of the relay's copy (we are the gateway:
    /// our LAN members share what we fetch).
    Cache(Arc<FileCache>, quinn::Connection),
}

impl Holder {
    async fn get(&self, request: FileRequest, max_len: usize) -> Result<Vec<u8>, FetchFault> {
        match self {
            Holder::Conn(conn) => stream::fetch(conn, request, max_len, FETCH_TIMEOUT).await,
            Holder::Cache(cache, relay) => {
                let data = cache.get(relay, request, FETCH_TIMEOUT).await?;
                if data.len() > max_len {
                    return Err(FetchFault::Lost(format!(
                        "the cached item has {} bytes, more than the {max_len} expected",
                        data.len()
                    )));
                }
                Ok(data)
            }
        }
    }
}

/// Scans the paths of a `file send` off the actor.
pub(crate) fn scan(
    paths: Vec<PathBuf>,
    chunk_size: u32,
    job: SendJob,
    tx: mpsc::Sender<LinkEvent>,
) {
    tokio::spawn(async move {
        let result = tokio::task::spawn_blocking(move || source::scan(&paths, chunk_size))
            .await
            .unwrap_or(Err(ScanError::Empty))
            .map(Box::new);
        let event = FilesEvent::Scanned {
            job: Box::new(job),
            result,
        };
        let _ = tx.send(LinkEvent::Files(event)).await;
    });
}

/// Fetches the sealed manifest.
pub(crate) fn fetch_manifest(
    holder: Holder,
    transfer: TransferId,
    len: u32,
    tx: mpsc::Sender<LinkEvent>,
) {
    tokio::spawn(async move {
        let request = FileRequest::Manifest { transfer };
        let result = holder.get(request, len as usize + TAG_LEN).await;
        let _ = tx
            .send(LinkEvent::Files(FilesEvent::Manifest { transfer, result }))
            .await;
    });
}

/// One chunk to fetch, open, verify and write.
pub(crate) struct ChunkJob {
    pub transfer: TransferId,
    pub index: u64,
    pub key: [u8; 32],
    pub place: ChunkPlace,
    pub hash: [u8; 32],
    /// The staged files of its transfer.
    pub files: Arc<StagedFiles>,
    /// The last copy did not verify: ask caches on the way for a new one.
    pub again: bool,
}

/// Fetches, opens, verifies and writes one chunk.
pub(crate) fn fetch_chunk(holder: Holder, job: ChunkJob, tx: mpsc::Sender<LinkEvent>) {
    tokio::spawn(async move {
        let ChunkJob {
            transfer,
            index,
            key,
            place,
            hash,
            files,
            again,
        } = job;
        let request = if again {
            FileRequest::ChunkAgain { transfer, index }
        } else {
            FileRequest::Chunk { transfer, index }
        };
        let max = place.len as usize + TAG_LEN;
        let (received, result) = match holder.get(request, max).await {
            Ok(sealed) => {
                // Plaintext bytes, so the counter compares with file sizes.
                let received = (sealed.len() as u64).saturating_sub(TAG_LEN as u64);
                let written = chunk_work(move || {
                    let plain = crypt::open_chunk(&key, &transfer, index, place.len, &hash, sealed)
                        .map_err(FetchFault::Corrupt)?;
                    files.write(place, &plain).map_err(FetchFault::Disk)
                })
                .await
                .unwrap_or_else(|| Err(FetchFault::Disk("shutting down".into())));
                (received, written)
            }
            Err(fault) => (0, Err(fault)),
        };
        let event = FilesEvent::Fetched {
            transfer,
            index,
            received,
            result,
        };
        let _ = tx.send(LinkEvent::Files(event)).await;
    });
}

/// One chunk to serve.
pub(crate) struct ServeJob {
    pub transfer: TransferId,
    pub index: u64,
    pub key: [u8; 32],
    pub source: Source,
    pub place: ChunkPlace,
    pub hash: [u8; 32],
    /// Wait this long first (the upload cap).
    pub delay_ms: u64,
    /// Test hook: flip a byte of the sealed chunk.
    pub corrupt: bool,
}

/// Reads chunk `index` from the sender's disk, checks it against its
/// manifest hash and seals it.
async fn read_sealed(
    key: [u8; 32],
    transfer: TransferId,
    index: u64,
    source: Source,
    place: ChunkPlace,
    hash: [u8; 32],
) -> Result<Vec<u8>, FileRefusal> {
    chunk_work(move || {
        let plain = source::read_chunk(&source, place.file, place.offset, place.len, &hash)?;
        Ok(crypt::seal_chunk(&key, &transfer, index, plain))
    })
    .await
    .unwrap_or(Err(FileRefusal::Busy))
}

/// Waits for one of `permits`, then `delay_ms` (the rate cap): the start
/// of every paced send, so memory and bandwidth stay bounded.
async fn paced(
    permits: Arc<Semaphore>,
    delay_ms: u64,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    let permit = permits.acquire_owned().await.ok()?;
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    Some(permit)
}

/// Reads, checks, seals and sends one chunk; at most as many at once as
/// `permits` allows, so memory stays bounded whatever the demand.
pub(crate) fn serve_chunk(
    mut send: quinn::SendStream,
    job: ServeJob,
    permits: Arc<Semaphore>,
    tx: mpsc::Sender<LinkEvent>,
) {
    tokio::spawn(async move {
        let Some(_permit) = paced(permits, job.delay_ms).await else {
            return;
        };
        let ServeJob {
            transfer,
            index,
            key,
            source,
            place,
            hash,
            corrupt,
            ..
        } = job;
        let sealed = read_sealed(key, transfer, index, source, place, hash).await;
        let result = match sealed {
            Ok(mut sealed) => {
                if corrupt {
                    tracing::warn!(chunk = index, "test hook: corrupting this chunk once");
                    if let Some(b) = sealed.first_mut() {
                        *b ^= 0x5a;
                    }
                }
                stream::answer_data(&mut send, sealed).await.map_err(|e| {
                    tracing::debug!(chunk = index, error = %e, "chunk not delivered");
                    None
                })
            }
            Err(refusal) => {
                stream::answer_refusal(&mut send, refusal.clone()).await;
                Err(Some(refusal))
            }
        };
        let event = FilesEvent::Served {
            transfer,
            index: Some(index),
            bytes: u64::from(place.len),
            result,
        };
        let _ = tx.send(LinkEvent::Files(event)).await;
    });
}

/// Sends sealed manifest bytes.
pub(crate) fn serve_manifest(
    mut send: quinn::SendStream,
    transfer: TransferId,
    sealed: Vec<u8>,
    tx: mpsc::Sender<LinkEvent>,
) {
    tokio::spawn(async move {
        let result = stream::answer_data(&mut send, sealed)
            .await
            .map_err(|_| None);
        let event = FilesEvent::Served {
            transfer,
            index: None,
            bytes: 0,
            result,
        };
        let _ = tx.send(LinkEvent::Files(event)).await;
    });
}

/// Answers a file request with a refusal.
pub(crate) fn refuse(mut send: quinn::SendStream, refusal: FileRefusal) {
    tokio::spawn(async move { stream::answer_refusal(&mut send, refusal).await });
}

/// Runs blocking disk work and reports it as an event.
pub(crate) fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
    event: impl FnOnce(T) -> FilesEvent + Send + 'static,
    tx: mpsc::Sender<LinkEvent>,
) {
    tokio::spawn(async move {
        if let Ok(out) = tokio::task::spawn_blocking(work).await {
            let _ = tx.send(LinkEvent::Files(event(out))).await;
        }
    });
}

/// One item of a sender's upload to the relay.
pub(crate) struct UploadJob {
    pub transfer: TransferId,
    /// `None` = the sealed manifest (in `manifest`).
    pub item: Option<u64>,
    pub key: [u8; 32],
    /// For a chunk: the file, where the chunk is and its hash.
    pub chunk: Option<(Source, ChunkPlace, [u8; 32])>,
    /// For the manifest: its sealed bytes.
    pub manifest: Option<Vec<u8>>,
    /// Wait this long first (the WAN upload cap).
    pub delay_ms: u64,
}

/// Reads, seals and uploads one item over `conn` (the relay, or our
/// gateway, which pipes it on); at most as many at once as `permits`
/// allows.
pub(crate) fn upload_item(
    conn: quinn::Connection,
    job: UploadJob,
    permits: Arc<Semaphore>,
    tx: mpsc::Sender<LinkEvent>,
) {
    tokio::spawn(async move {
        let Some(_permit) = paced(permits, job.delay_ms).await else {
            return;
        };
        let UploadJob {
            transfer,
            item,
            key,
            chunk,
            manifest,
            ..
        } = job;
        let sealed = match (item, chunk, manifest) {
            (None, _, Some(sealed)) => Ok(sealed),
            (Some(index), Some((source, place, hash)), _) => {
                read_sealed(key, transfer, index, source, place, hash).await
            }
            _ => Err(FileRefusal::BadRequest),
        };
        let result = match sealed {
            Ok(sealed) => match u32::try_from(sealed.len()) {
                Ok(len) => {
                    let header = FileUpload {
                        transfer,
                        item,
                        len,
                    };
                    stream::upload(&conn, header, sealed, FETCH_TIMEOUT).await
                }
                Err(_) => Err(FetchFault::Refused(FileRefusal::BadRequest)),
            },
            Err(refusal) => Err(FetchFault::Refused(refusal)),
        };
        let event = FilesEvent::Uploaded {
            transfer,
            item,
            result,
        };
        let _ = tx.send(LinkEvent::Files(event)).await;
    });
}

/// As gateway: pipes a member's upload to the relay (after `delay_ms`,
/// the WAN cap) and passes the relay's answer back.
pub(crate) fn forward_upload(
    relay: quinn::Connection,
    header: FileUpload,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    delay_ms: u64,
) {
    tokio::spawn(async move {
        if delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        let exchange = async {
            let (mut up, mut down) = relay.open_bi().await.map_err(|e| e.to_string())?;
            let head =
                tincan_core::wire::encode(&tincan_core::wire::Frame::FileUpload(header.clone()))
                    .map_err(|e| e.to_string())?;
            // The relay stops the stream early when it has the item or
            // refuses it; its answer is what counts either way.
            let piped = async {
                up.write_all(&head).await.map_err(|e| e.to_string())?;
                stream::pipe(&mut recv, &mut up, u64::from(header.len)).await?;
                up.finish().map_err(|e| e.to_string())
            }
            .await;
            down.read_to_end(crate::rpc::STREAM_LIMIT)
                .await
                .map_err(|e| match piped {
                    Err(p) => format!("{e} (piping: {p})"),
                    Ok(()) => e.to_string(),
                })
        };
        let answer = match tokio::time::timeout(FETCH_TIMEOUT, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                tracing::debug!(transfer = %header.transfer, error = %e, "forwarding an upload failed");
                stream::answer_refusal(&mut send, FileRefusal::Busy).await;
                return;
            }
            Err(_) => {
                stream::answer_refusal(&mut send, FileRefusal::Busy).await;
                return;
            }
        };
        if send.write_all(&answer).await.is_ok() && send.finish().is_ok() {
            let _ = send.stopped().await;
        }
    });
}

/// As gateway: serves a member's request from the cache of the relay's
/// copy (fetching it once).
pub(crate) fn serve_cached(
    mut send: quinn::SendStream,
    cache: Arc<FileCache>,
    relay: quinn::Connection,
    request: FileRequest,
    permits: Arc<Semaphore>,
) {
    tokio::spawn(async move {
        let Ok(_permit) = permits.acquire_owned().await else {
            return;
        };
        match cache.get(&relay, request, FETCH_TIMEOUT).await {
            Ok(data) => {
                let _ = stream::answer_data(&mut send, data).await;
            }
            Err(FetchFault::Refused(refusal)) => stream::answer_refusal(&mut send, refusal).await,
            Err(fault) => {
                tracing::debug!(?fault, "the relay's copy is not available now");
                stream::answer_refusal(&mut send, FileRefusal::Busy).await;
            }
        }
    });
}
