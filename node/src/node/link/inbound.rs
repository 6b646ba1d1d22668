//! One request stream from a peer: read within bounds, decoded, handed to
//! the actor, answered.
//!
//! Kept apart because this is the edge where untrusted bytes arrive: every
//! stream is cut at one frame and a deadline, anything unexpected is
//! refused or reset, and nothing here decides; the actor answers.

use tincan_core::wire::{self, Frame};
use tincan_core::DeviceId;
use tokio::sync::{mpsc, oneshot};

use super::{LinkEvent, ATTEMPT_TIMEOUT};
use crate::node::file_task::FilesEvent;
use crate::rpc::STREAM_LIMIT;

/// Serves one request stream from `device`: a file upload or request goes
/// to the file tasks, anything else the actor answers.
pub(super) async fn serve_stream(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    device: DeviceId,
    tx: mpsc::Sender<LinkEvent>,
) {
    // The first frame alone: a member's file upload (to its gateway) is
    // followed by raw bytes that are piped on, never buffered whole.
    let head = match crate::rpc::read_head(&mut recv, ATTEMPT_TIMEOUT).await {
        Ok(head) => head,
        Err(e) => {
            tracing::warn!(%device, error = %e, "refused a stream (oversize, broken or stalled)");
            let _ = send.reset(1u32.into());
            return;
        }
    };
    if let Ok((Frame::FileUpload(header), _)) = wire::decode(&head) {
        let event = FilesEvent::Upload {
            from: device,
            header,
            send,
            recv,
        };
        let _ = tx.send(LinkEvent::Files(event)).await;
        return;
    }
    let Some(bytes) = read_rest(head, &mut send, &mut recv, device).await else {
        return;
    };
    let (reply, answer) = oneshot::channel();
    let event = match wire::decode(&bytes) {
        Ok((Frame::Envelope(envelope), _)) => LinkEvent::Inbound {
            device,
            envelope: Box::new(envelope),
            reply,
        },
        Ok((Frame::RoomEnvelope(envelope), _)) => LinkEvent::InboundRoom {
            device,
            envelope: Box::new(envelope),
            reply,
        },
        Ok((Frame::Route(route), _)) => LinkEvent::RouteIn {
            from: device,
            route: Box::new(route),
            reply,
        },
        Ok((
            frame @ (Frame::Directory(_)
            | Frame::DirectoryUpdate(_)
            | Frame::Lan(_)
            | Frame::Neighbours(_)
            | Frame::Revocations(_)
            | Frame::Devices(_)),
            _,
        )) => LinkEvent::Control {
            from: device,
            frame: Box::new(frame),
            reply,
        },
        Ok((Frame::FileRequest(request), _)) => {
            // The answer is streamed by a file task (`crate::file::stream`).
            let event = FilesEvent::Request {
                from: device,
                request,
                send,
            };
            let _ = tx.send(LinkEvent::Files(event)).await;
            return;
        }
        Ok((other, _)) => {
            tracing::debug!(%device, frame = other.name(), "refusing unexpected request");
            let _ = crate::rpc::answer(&mut send, &Frame::Error("unexpected request".into())).await;
            return;
        }
        Err(e) => {
            tracing::warn!(%device, error = %e, "malformed frame refused");
            let _ = send.reset(4u32.into());
            return;
        }
    };
    if tx.send(event).await.is_err() {
        return;
    }
    answer_from_actor(send, answer, device).await;
}

/// Reads the rest of a request whose first frame is `head`, within one
/// frame and [`ATTEMPT_TIMEOUT`]; resets the stream when it cannot.
async fn read_rest(
    head: Vec<u8>,
    send: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
    device: DeviceId,
) -> Option<Vec<u8>> {
    let limit = STREAM_LIMIT.saturating_sub(head.len());
    match tokio::time::timeout(ATTEMPT_TIMEOUT, recv.read_to_end(limit)).await {
        Ok(Ok(rest)) => Some([head, rest].concat()),
        Ok(Err(e)) => {
            tracing::warn!(%device, error = %e, "refused a stream (oversize or broken)");
            let _ = send.reset(1u32.into());
            None
        }
        Err(_) => {
            tracing::warn!(%device, "stream stalled; dropped");
            let _ = send.reset(2u32.into());
            None
        }
    }
}

/// Writes the actor's answer to a request, or resets the stream when the
/// actor dropped it.
async fn answer_from_actor(
    mut send: quinn::SendStream,
    answer: oneshot::Receiver<Frame>,
    device: DeviceId,
) {
    let frame = match answer.await {
        Ok(frame) => frame,
        // The actor could not store it: no answer, the sender retries.
        Err(_) => {
            let _ = send.reset(3u32.into());
            return;
        }
    };
    if let Err(e) = crate::rpc::answer(&mut send, &frame).await {
        tracing::debug!(%device, error = %e, "answer not delivered");
    }
}
