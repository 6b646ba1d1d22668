//! `send` with `wait`, in the handle so that every client gets it (the
//! CLI's `send --wait` through the socket, a bot, an embedder): send, then
//! follow the message's `message_state` events until it is delivered, read
//! or failed, or until the timeout says where it still is.

use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError};

use super::{NodeError, NodeHandle};
use crate::event::{MessageView, NodeEvent};
use crate::request::{Request, Response};
use crate::store::MessageState;

impl NodeHandle {
    /// Sends `request` (a `Request::Send`) and answers once the message is
    /// final, with its state then.
    pub(super) async fn send_and_wait(&self, request: Request) -> Result<Response, NodeError> {
        let Request::Send {
            peer, timeout_secs, ..
        } = &request
        else {
            return self.ask(request).await;
        };
        let (peer, timeout_secs) = (peer.clone(), *timeout_secs);
        // Subscribe before sending so the delivery event cannot be missed.
        let events = self.subscribe();
        let mut sent = MessageView::try_from(self.ask(request).await?)?;
        sent.state = until_final(events, &sent, &peer, timeout_secs).await?;
        Ok(Response::Message(sent))
    }
}

/// Follows `sent`'s state events until it is delivered or read (`Ok`),
/// failed, or `timeout_secs` passed (`Err`).
async fn until_final(
    mut events: broadcast::Receiver<NodeEvent>,
    sent: &MessageView,
    peer: &str,
    timeout_secs: Option<u64>,
) -> Result<MessageState, NodeError> {
    let mut last = sent.state;
    let follow = async {
        loop {
            match events.recv().await {
                Ok(NodeEvent::MessageState {
                    id, state, error, ..
                }) if id == sent.id => match state {
                    MessageState::Delivered | MessageState::Read => return Ok(state),
                    MessageState::Failed => {
                        let reason = error.unwrap_or_else(|| "delivery failed".into());
                        return Err(NodeError::DeliveryFailed(reason));
                    }
                    other => last = other,
                },
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return Err(NodeError::Stopped),
            }
        }
    };
    let Some(secs) = timeout_secs else {
        return follow.await;
    };
    match tokio::time::timeout(Duration::from_secs(secs), follow).await {
        Ok(outcome) => outcome,
        Err(_) => Err(NodeError::NotDeliveredYet {
            secs,
            peer: peer.to_string(),
            state: last,
        }),
    }
}

/// Why `send --wait --timeout` gave up, saying where the message is: held
/// by a relay or gateway (`sent`) or still queued on this device.
pub(super) fn still_on_its_way(secs: u64, peer: &str, state: MessageState) -> String {
    match state {
        MessageState::Sent => format!(
            "not delivered within {secs} s; the relay holds it (state: sent) and delivers it when {peer} is back online"
        ),
        _ => format!(
            "not delivered within {secs} s; it stays queued on this device (state: queued) and is sent when {peer} is reachable"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timed_out_wait_says_where_the_message_is() {
        let held = still_on_its_way(5, "bob", MessageState::Sent);
        assert!(held.contains("the relay holds it (state: sent)"), "{held}");
        let queued = still_on_its_way(5, "bob", MessageState::Queued);
        assert!(queued.contains("stays queued on this device"), "{queued}");
        let error = NodeError::NotDeliveredYet {
            secs: 5,
            peer: "bob".into(),
            state: MessageState::Sent,
        };
        assert_eq!(error.to_string(), held);
    }
}
