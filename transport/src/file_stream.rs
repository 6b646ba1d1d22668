//! The stream format of file requests, on QUIC bidirectional streams.
//!
//! Here rather than in the node because the relay answers the same
//! requests (it serves and stores the sealed content of cross-branch
//! transfers) and must speak exactly the node's format without linking
//! the node.
//!
//! # Format
//! ```text
//! receiver → holder:  frame FileRequest { Manifest | Chunk { index } }, FIN
//! holder → receiver:  frame FileData { len } || len raw bytes, FIN
//!                 or  frame FileRefused(reason), FIN
//!                 or  frame Error(text), FIN        (a peer that does not serve files)
//! ```
//!
//! Uploads to the relay (across branches, see the node's `file::cache`):
//! ```text
//! sender → relay:     frame FileUpload { transfer, item, len } || len raw bytes, FIN
//! relay → sender:     frame Ack, FIN          (stored durably, or stored already)
//!                 or  frame FileRefused(reason), FIN   (quota exceeded, bad request)
//! ```
//! A member's upload goes to its gateway, which pipes it to the relay
//! unchanged ([`pipe`]) and passes the relay's answer back.
//!
//! Frames are `tincan_core::wire` frames (`u32 length | version |
//! postcard`). The raw bytes are the *sealed* manifest or chunk
//! (`tincan_core::file::crypt`): the QUIC connection encrypts them a
//! second time in transit, but they are already end-to-end encrypted, so
//! a relay cache could serve these very bytes. One stream carries one
//! item; the receiver keeps several streams open at once (its window) and
//! a lost or reset stream costs only that item. The receiver reads at
//! most the length it expects (chunk length + tag), so a holder cannot
//! make it buffer more.

use std::time::Duration;

use bytes::Bytes;
use tincan_core::file::{FetchFault, FileRefusal, FileRequest, FileUpload};
use tincan_core::wire::{self, Frame, MAX_FRAME_LEN};

/// Fetches one item: sends `request` and returns the raw bytes that
/// follow the holder's `FileData`, at most `max_len` of them.
pub async fn fetch(
    conn: &quinn::Connection,
    request: FileRequest,
    max_len: usize,
    timeout: Duration,
) -> Result<Vec<u8>, FetchFault> {
    let lost = |e: String| FetchFault::Lost(e);
    let exchange = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| lost(e.to_string()))?;
        let bytes = wire::encode(&Frame::FileRequest(request))
            .map_err(|e| FetchFault::Lost(e.to_string()))?;
        send.write_all(&bytes)
            .await
            .map_err(|e| lost(e.to_string()))?;
        send.finish().map_err(|e| lost(e.to_string()))?;
        let mut prefix = [0u8; 4];
        recv.read_exact(&mut prefix)
            .await
            .map_err(|e| lost(e.to_string()))?;
        let len = u32::from_be_bytes(prefix) as usize;
        if len == 0 || len > MAX_FRAME_LEN {
            return Err(lost(format!("bad answer frame of {len} bytes")));
        }
        let mut frame = vec![0u8; 4 + len];
        frame[..4].copy_from_slice(&prefix);
        recv.read_exact(&mut frame[4..])
            .await
            .map_err(|e| lost(e.to_string()))?;
        match wire::decode(&frame) {
            Ok((Frame::FileData { len }, _)) if len as usize <= max_len => {
                read_exactly(&mut recv, len as usize).await.map_err(lost)
            }
            Ok((Frame::FileData { len }, _)) => Err(lost(format!(
                "the holder announced {len} bytes, more than the {max_len} expected"
            ))),
            Ok((Frame::FileRefused(reason), _)) => Err(FetchFault::Refused(reason)),
            Ok((Frame::Error(text), _)) => Err(FetchFault::Refused(FileRefusal::Unreadable {
                file: 0,
                error: text,
            })),
            Ok((other, _)) => Err(lost(format!("unexpected answer {}", other.name()))),
            Err(e) => Err(lost(format!("bad answer: {e}"))),
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| Err(FetchFault::Lost("no answer in time".into())))
}

/// Reads exactly `len` bytes into one buffer, copying each piece once
/// from quinn's receive buffers (no zero-filling first: this is the hot
/// path of every chunk).
async fn read_exactly(recv: &mut quinn::RecvStream, len: usize) -> Result<Vec<u8>, String> {
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        match recv
            .read_chunk(len - data.len(), true)
            .await
            .map_err(|e| e.to_string())?
        {
            Some(chunk) => data.extend_from_slice(&chunk.bytes),
            None => return Err(format!("stream ended {} bytes early", len - data.len())),
        }
    }
    Ok(data)
}

/// Answers a request with `data` (sealed bytes) and finishes the stream,
/// waiting until the peer has read it or gave up.
pub async fn answer_data(send: &mut quinn::SendStream, data: Vec<u8>) -> Result<(), String> {
    let len = u32::try_from(data.len()).map_err(|_| "item too large".to_string())?;
    let header = wire::encode(&Frame::FileData { len }).map_err(|e| e.to_string())?;
    send.write_chunk(Bytes::from(header))
        .await
        .map_err(|e| e.to_string())?;
    send.write_chunk(Bytes::from(data))
        .await
        .map_err(|e| e.to_string())?;
    send.finish().map_err(|e| e.to_string())?;
    let _ = send.stopped().await;
    Ok(())
}

/// Answers a request with a refusal.
pub async fn answer_refusal(send: &mut quinn::SendStream, refusal: FileRefusal) {
    let _ = crate::rpc::answer(send, &Frame::FileRefused(refusal)).await;
}

/// Uploads one sealed item: the header, the bytes, then waits for the
/// holder's answer. `Ok` once it is stored; a refusal is
/// [`FetchFault::Refused`], anything else [`FetchFault::Lost`].
pub async fn upload(
    conn: &quinn::Connection,
    header: FileUpload,
    data: Vec<u8>,
    timeout: Duration,
) -> Result<(), FetchFault> {
    let lost = |e: String| FetchFault::Lost(e);
    let exchange = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| lost(e.to_string()))?;
        let head = wire::encode(&Frame::FileUpload(header)).map_err(|e| lost(e.to_string()))?;
        // A holder that has the item already (or refuses it) stops the
        // stream mid-write and answers at once: what counts is its answer.
        let wrote = async {
            send.write_chunk(Bytes::from(head))
                .await
                .map_err(|e| e.to_string())?;
            send.write_chunk(Bytes::from(data))
                .await
                .map_err(|e| e.to_string())?;
            send.finish().map_err(|e| e.to_string())
        }
        .await;
        let answer = match recv.read_to_end(crate::rpc::STREAM_LIMIT).await {
            Ok(answer) => answer,
            Err(e) => {
                let write = wrote
                    .err()
                    .map(|w| format!(" (write: {w})"))
                    .unwrap_or_default();
                return Err(lost(format!("{e}{write}")));
            }
        };
        match wire::decode(&answer) {
            Ok((Frame::Ack, _)) => Ok(()),
            Ok((Frame::FileRefused(reason), _)) => Err(FetchFault::Refused(reason)),
            Ok((Frame::Error(text), _)) => Err(lost(format!("upload refused: {text}"))),
            Ok((other, _)) => Err(lost(format!("unexpected answer {}", other.name()))),
            Err(e) => Err(lost(format!("bad answer: {e}"))),
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| Err(FetchFault::Lost("no answer in time".into())))
}

/// Copies exactly `len` bytes from `from` to `to`, a bounded buffer at a
/// time (a gateway piping a member's upload to the relay).
pub async fn pipe(
    from: &mut quinn::RecvStream,
    to: &mut quinn::SendStream,
    len: u64,
) -> Result<(), String> {
    let mut left = len;
    while left > 0 {
        let max = usize::try_from(left.min(64 * 1024)).unwrap_or(64 * 1024);
        match from
            .read_chunk(max, true)
            .await
            .map_err(|e| e.to_string())?
        {
            Some(chunk) => {
                left = left.saturating_sub(chunk.bytes.len() as u64);
                to.write_chunk(chunk.bytes)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            None => return Err(format!("stream ended {left} bytes early")),
        }
    }
    Ok(())
}

/// Fetches one item from `conn` (the relay), accepting up to the largest
/// sealed item of its kind: a gateway filling its cache never sees the
/// offer, so it cannot know the exact length (its members check it).
pub async fn fetch_any(
    conn: &quinn::Connection,
    request: FileRequest,
    timeout: Duration,
) -> Result<Vec<u8>, FetchFault> {
    let max = request.max_sealed_len();
    fetch(conn, request, max, timeout).await
}
