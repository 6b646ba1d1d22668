//! One request, one answer, on one bidirectional QUIC stream.
//!
//! Every exchange between nodes, gateways and the relay after the hello is
//! this shape: the asking side opens a stream, writes one frame and
//! finishes; the answering side reads it (at most one frame), writes one
//! answer frame and finishes. A stream is never reused, so a lost or slow
//! answer costs nothing but that stream, and retries are always safe
//! (receivers are idempotent).

use std::time::Duration;

use tincan_core::wire::{self, DecodeError, EncodeError, Frame, MAX_FRAME_LEN};

/// Bytes read from one stream at most: one frame and its length prefix.
pub const STREAM_LIMIT: usize = MAX_FRAME_LEN + 4;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The frame could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The other side sent bytes that are not one frame.
    #[error("bad frame: {0}")]
    Decode(#[from] DecodeError),
    /// The connection or stream broke.
    #[error("stream: {0}")]
    Stream(String),
    /// No answer within the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Sends `frame` on a new stream of `conn` and waits up to `timeout` for
/// the answer.
pub async fn request(
    conn: &quinn::Connection,
    frame: &Frame,
    timeout: Duration,
) -> Result<Frame, RpcError> {
    let bytes = wire::encode(frame)?;
    request_encoded(conn, &bytes, timeout).await
}

/// [`request`] with an already encoded frame (one encoding, many hops).
pub async fn request_encoded(
    conn: &quinn::Connection,
    bytes: &[u8],
    timeout: Duration,
) -> Result<Frame, RpcError> {
    let exchange = async {
        let (mut send, mut recv) = conn
            .open_bi()
            .await
            .map_err(|e| RpcError::Stream(e.to_string()))?;
        send.write_all(bytes)
            .await
            .map_err(|e| RpcError::Stream(e.to_string()))?;
        send.finish().map_err(|e| RpcError::Stream(e.to_string()))?;
        let answer = recv
            .read_to_end(STREAM_LIMIT)
            .await
            .map_err(|e| RpcError::Stream(e.to_string()))?;
        Ok(wire::decode(&answer)?.0)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| RpcError::Timeout(timeout))?
}

/// Reads the one request frame of an accepted stream.
pub async fn read_request(
    recv: &mut quinn::RecvStream,
    timeout: Duration,
) -> Result<Frame, RpcError> {
    let bytes = tokio::time::timeout(timeout, recv.read_to_end(STREAM_LIMIT))
        .await
        .map_err(|_| RpcError::Timeout(timeout))?
        .map_err(|e| RpcError::Stream(e.to_string()))?;
    Ok(wire::decode(&bytes)?.0)
}

/// Reads the first frame of an accepted stream, prefix included, and
/// leaves the rest unread: a `FileUpload` header is followed by raw bytes
/// that are streamed on, never buffered whole. Callers of other requests
/// check that nothing follows ([`expect_end`]).
pub async fn read_head(
    recv: &mut quinn::RecvStream,
    timeout: Duration,
) -> Result<Vec<u8>, RpcError> {
    let read = async {
        let mut prefix = [0u8; 4];
        recv.read_exact(&mut prefix)
            .await
            .map_err(|e| RpcError::Stream(e.to_string()))?;
        let len = u32::from_be_bytes(prefix) as usize;
        if len == 0 || len > MAX_FRAME_LEN {
            return Err(RpcError::Decode(DecodeError::Oversize {
                len,
                max: MAX_FRAME_LEN,
            }));
        }
        let mut bytes = vec![0u8; 4 + len];
        bytes[..4].copy_from_slice(&prefix);
        recv.read_exact(&mut bytes[4..])
            .await
            .map_err(|e| RpcError::Stream(e.to_string()))?;
        Ok(bytes)
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| RpcError::Timeout(timeout))?
}

/// Reads the rest of a request stream after [`read_head`]; anything but
/// the end of the stream is a malformed request.
pub async fn expect_end(recv: &mut quinn::RecvStream, timeout: Duration) -> Result<(), RpcError> {
    let rest = tokio::time::timeout(timeout, recv.read_to_end(STREAM_LIMIT))
        .await
        .map_err(|_| RpcError::Timeout(timeout))?
        .map_err(|e| RpcError::Stream(e.to_string()))?;
    if rest.is_empty() {
        Ok(())
    } else {
        Err(RpcError::Decode(DecodeError::TrailingBytes))
    }
}

/// Writes the answer to an accepted stream and finishes it, waiting until
/// the peer has it (or gave up) so dropping the stream cannot cut it off.
pub async fn answer(send: &mut quinn::SendStream, frame: &Frame) -> Result<(), RpcError> {
    let bytes = wire::encode(frame)?;
    send.write_all(&bytes)
        .await
        .map_err(|e| RpcError::Stream(e.to_string()))?;
    send.finish().map_err(|e| RpcError::Stream(e.to_string()))?;
    let _ = send.stopped().await;
    Ok(())
}
