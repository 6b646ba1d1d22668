//! What the node sends a peer: delivery attempts, routed sends through a
//! gateway or the relay, and notifications.
//!
//! Kept apart from the serving side because each of these is its own short
//! task with its own deadline, and reports back to the actor (or to the
//! caller) rather than answering a peer.

use std::sync::Arc;
use std::time::Duration;

use tincan_core::delivery::judge_answer;
use tincan_core::route::{DeviceAnswer, Route, Routed};
use tincan_core::wire::{self, Frame};
use tincan_core::{DeviceCert, DeviceId, MessageId};
use tokio::sync::{mpsc, watch};

use super::{LinkEvent, ATTEMPT_TIMEOUT};
use crate::rpc::STREAM_LIMIT;

/// Longest a routed exchange may take across hops (gateway → relay →
/// gateway → device, each with its own shorter deadline).
const ROUTE_TIMEOUT: Duration = Duration::from_secs(20);

/// What a routed send reports when it gave up because the actor's uplink
/// moved to another connection (see [`route`]).
pub(crate) const REROUTED: &str = "the uplink changed; retried on the new one";

/// One routed send of `route` over `conn` (to a gateway or the relay):
/// one copy of the item for all of `route.to`.
///
/// `uplink` is the stable id of the connection the actor routes by now.
/// When it moves off `conn` (the gateway went silent and another took
/// over, or this node now talks to the relay itself) the send gives up at
/// once with [`REROUTED`]: a SIGKILLed gateway closes nothing, so without
/// this the copy would wait for the QUIC idle timeout before the outbox
/// could try the new path.
pub(crate) async fn route(
    conn: quinn::Connection,
    route: Route,
    mut uplink: watch::Receiver<Option<usize>>,
    tx: mpsc::Sender<LinkEvent>,
) {
    let message_id = route.item.message_id();
    let devices = route.to.clone();
    let id = conn.stable_id();
    let frame = Frame::Route(route);
    let request = crate::rpc::request(&conn, &frame, ROUTE_TIMEOUT);
    let result = tokio::select! {
        answer = request => match answer {
            Ok(Frame::Answers(answers)) => Ok(answers),
            Ok(Frame::Error(e)) => Err(format!("refused by hop: {e}")),
            Ok(other) => Err(format!("unexpected answer {}", other.name())),
            Err(e) => Err(e.to_string()),
        },
        // Also when the actor is gone (the sender dropped): nobody waits.
        _ = uplink.wait_for(|now| *now != Some(id)) => Err(REROUTED.to_string()),
    };
    let _ = tx
        .send(LinkEvent::Routed {
            message_id,
            devices,
            result,
        })
        .await;
}

/// Asks `conn` to take `route` and returns its answers (for a gateway
/// forwarding a member's or the relay's item). Devices the hop did not
/// answer for, or all of them when it failed, are `Failed`.
pub(crate) async fn forward(conn: quinn::Connection, route: Route) -> Vec<DeviceAnswer> {
    use tincan_core::route::Answer;
    let to = route.to.clone();
    let answers = match crate::rpc::request(&conn, &Frame::Route(route), ROUTE_TIMEOUT).await {
        Ok(Frame::Answers(answers)) => answers,
        Ok(other) => {
            tracing::debug!(answer = other.name(), "hop gave no answers");
            Vec::new()
        }
        Err(e) => {
            tracing::debug!(error = %e, "forwarding failed");
            Vec::new()
        }
    };
    to.into_iter()
        .map(|device| {
            answers
                .iter()
                .find(|a| a.device == device)
                .cloned()
                .unwrap_or(DeviceAnswer {
                    device,
                    answer: Answer::Failed("no answer from the next hop".into()),
                })
        })
        .collect()
}

/// The item of a delivered envelope frame, for routing.
pub(crate) fn routed_envelope(frame: &[u8]) -> Option<Routed> {
    match wire::decode(frame) {
        Ok((Frame::Envelope(envelope), _)) => Some(Routed::Envelope(Box::new(envelope))),
        Ok((Frame::RoomEnvelope(envelope), _)) => Some(Routed::Room(Box::new(envelope))),
        _ => None,
    }
}

/// Sends a small request and forgets the answer (directory pushes).
pub(crate) async fn notify(conn: quinn::Connection, frame: Arc<Frame>) {
    if let Err(e) = crate::rpc::request(&conn, &frame, ROUTE_TIMEOUT).await {
        tracing::debug!(frame = frame.name(), error = %e, "notification not taken");
    }
}

/// What judging a delivery's answer needs: this device, and the
/// certificate this node holds for the recipient device (none: a receipt
/// from it proves nothing).
pub(crate) struct AnswerJudge {
    pub(crate) me: DeviceId,
    pub(crate) recipient: Option<DeviceCert>,
}

/// One delivery attempt of an encoded envelope frame over `conn`.
pub(crate) async fn deliver(
    conn: quinn::Connection,
    frame: Arc<Vec<u8>>,
    message_id: MessageId,
    device: DeviceId,
    judge: AnswerJudge,
    tx: mpsc::Sender<LinkEvent>,
) {
    let attempt = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        send.write_all(&frame).await.map_err(|e| e.to_string())?;
        send.finish().map_err(|e| e.to_string())?;
        let _ = tx.send(LinkEvent::Written { message_id, device }).await;
        let answer = recv
            .read_to_end(STREAM_LIMIT)
            .await
            .map_err(|e| e.to_string())?;
        wire::decode(&answer)
            .map(|(frame, _)| frame)
            .map_err(|e| format!("bad answer: {e}"))
    };
    let result = match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await {
        Ok(result) => result,
        Err(_) => Err("no answer in time".to_string()),
    };
    // Core's rule, here rather than in the actor: checking the receipt's
    // signature is an ed25519 verification per message, which this task
    // runs beside the actor instead of inside its turn.
    let outcome = judge_answer(&judge.me, &message_id, judge.recipient.as_ref(), result);
    let _ = tx
        .send(LinkEvent::Attempted {
            message_id,
            device,
            outcome,
        })
        .await;
}

/// Sends an encoded envelope frame once and ignores the answer: for
/// ephemeral content that is worth nothing if late (typing, presence).
pub(crate) async fn deliver_once(conn: quinn::Connection, frame: Arc<Vec<u8>>) {
    let attempt = async {
        let (mut send, mut recv) = conn.open_bi().await.ok()?;
        send.write_all(&frame).await.ok()?;
        send.finish().ok()?;
        recv.read_to_end(STREAM_LIMIT).await.ok()
    };
    let _ = tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await;
}
