//! File transfer plumbing of the node: the commands a [`NodeHandle`]
//! sends, the events file tasks report to the actor, and the tasks
//! themselves — one per chunk fetched (receiver) or served (sender).
//! Like `link.rs`, these tasks decide nothing: the actor
//! (`actor/files.rs`) drives `tincan_core::transfer::Pull` and picks what
//! to fetch and serve; the tasks move sealed bytes between a stream and
//! the disk (`crate::files`) and say how it went. The stream format is
//! documented in `crate::files::stream`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tincan_core::transfer::crypt::{self, TAG_LEN};
use tincan_core::transfer::manifest::ChunkPlace;
use tincan_core::transfer::pull::FinishFault;
use tincan_core::transfer::{FetchFault, FileRefusal, FileRequest, TransferId};
use tincan_core::{DeviceCert, DeviceId, UserId};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::link::LinkEvent;
use super::{Command, NodeError, NodeHandle};
use crate::files::source::{self, ScanError, Scanned, Source};
use crate::files::{sink, stream, TransferView};

/// Longest one fetch may take (a 1 MiB chunk, even on a slow link).
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// `tincan file ...` commands.
pub(crate) enum FileCommand {
    Send {
        peer: String,
        paths: Vec<PathBuf>,
        reply: oneshot::Sender<Result<TransferView, NodeError>>,
    },
    Accept {
        id: String,
        to: Option<PathBuf>,
        reply: oneshot::Sender<Result<TransferView, NodeError>>,
    },
    Reject {
        id: String,
        reply: oneshot::Sender<Result<TransferView, NodeError>>,
    },
    Cancel {
        id: String,
        reply: oneshot::Sender<Result<TransferView, NodeError>>,
    },
    List(oneshot::Sender<Vec<TransferView>>),
}

/// A `file send` waiting for its scan.
pub(crate) struct SendJob {
    pub to: UserId,
    pub certs: Vec<DeviceCert>,
    pub reply: oneshot::Sender<Result<TransferView, NodeError>>,
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
}

impl NodeHandle {
    async fn file(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<TransferView, NodeError>>) -> FileCommand,
    ) -> Result<TransferView, NodeError> {
        self.ask(|reply| Command::File(make(reply))).await?
    }

    /// Offers files and folders (absolute paths) to `peer`. Returns once
    /// the files are hashed and the offer is in the outbox.
    pub async fn file_send(
        &self,
        peer: &str,
        paths: Vec<PathBuf>,
    ) -> Result<TransferView, NodeError> {
        let peer = peer.to_string();
        self.file(|reply| FileCommand::Send { peer, paths, reply })
            .await
    }

    /// Accepts an incoming offer (id or unique prefix) into `to` (default:
    /// the configured download folder).
    pub async fn file_accept(
        &self,
        id: &str,
        to: Option<PathBuf>,
    ) -> Result<TransferView, NodeError> {
        let id = id.to_string();
        self.file(|reply| FileCommand::Accept { id, to, reply })
            .await
    }

    /// Declines an incoming offer.
    pub async fn file_reject(&self, id: &str) -> Result<TransferView, NodeError> {
        let id = id.to_string();
        self.file(|reply| FileCommand::Reject { id, reply }).await
    }

    /// Cancels a transfer, in or out; the other side is told.
    pub async fn file_cancel(&self, id: &str) -> Result<TransferView, NodeError> {
        let id = id.to_string();
        self.file(|reply| FileCommand::Cancel { id, reply }).await
    }

    /// Every transfer, oldest first.
    pub async fn file_list(&self) -> Result<Vec<TransferView>, NodeError> {
        self.ask(|reply| Command::File(FileCommand::List(reply)))
            .await
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
    conn: quinn::Connection,
    transfer: TransferId,
    len: u32,
    tx: mpsc::Sender<LinkEvent>,
) {
    tokio::spawn(async move {
        let request = FileRequest::Manifest { transfer };
        let result = stream::fetch(&conn, request, len as usize + TAG_LEN, FETCH_TIMEOUT).await;
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
    /// The staged file it belongs to.
    pub path: PathBuf,
}

/// Fetches, opens, verifies and writes one chunk.
pub(crate) fn fetch_chunk(conn: quinn::Connection, job: ChunkJob, tx: mpsc::Sender<LinkEvent>) {
    tokio::spawn(async move {
        let ChunkJob {
            transfer,
            index,
            key,
            place,
            hash,
            path,
        } = job;
        let request = FileRequest::Chunk { transfer, index };
        let max = place.len as usize + TAG_LEN;
        let (received, result) = match stream::fetch(&conn, request, max, FETCH_TIMEOUT).await {
            Ok(sealed) => {
                // Plaintext bytes, so the counter compares with file sizes.
                let received = (sealed.len() as u64).saturating_sub(TAG_LEN as u64);
                let written = tokio::task::spawn_blocking(move || {
                    let plain = crypt::open_chunk(&key, &transfer, index, place.len, &hash, sealed)
                        .map_err(FetchFault::Corrupt)?;
                    sink::write_chunk(&path, place.offset, &plain).map_err(FetchFault::Disk)
                })
                .await
                .unwrap_or_else(|e| Err(FetchFault::Disk(e.to_string())));
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

/// Reads, checks, seals and sends one chunk; at most as many at once as
/// `permits` allows, so memory stays bounded whatever the demand.
pub(crate) fn serve_chunk(
    mut send: quinn::SendStream,
    job: ServeJob,
    permits: Arc<Semaphore>,
    tx: mpsc::Sender<LinkEvent>,
) {
    tokio::spawn(async move {
        let Ok(_permit) = permits.acquire_owned().await else {
            return;
        };
        if job.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(job.delay_ms)).await;
        }
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
        let sealed = tokio::task::spawn_blocking(move || {
            let plain = source::read_chunk(&source, place.file, place.offset, place.len, &hash)?;
            Ok::<_, FileRefusal>(crypt::seal_chunk(&key, &transfer, index, plain))
        })
        .await
        .unwrap_or(Err(FileRefusal::Busy));
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
