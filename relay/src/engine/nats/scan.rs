//! Reading what a stream holds now under some subjects: an ordered push
//! consumer from the first message (or the last per subject, for KV
//! buckets), read until the server says nothing is pending.
//!
//! A scan is a snapshot: a message published while it runs may or may not
//! be in it, exactly like a SQLite read that races a write.

use std::time::Duration;

use async_nats::jetstream::consumer::{push, DeliverPolicy, ReplayPolicy};
use async_nats::jetstream::stream::Stream;
use async_nats::{Client, HeaderMap};
use bytes::Bytes;
use futures_util::StreamExt;

use super::NatsError;

/// Longest wait for the next message of a scan before it is given up
/// (the server sends everything at once; silence means trouble).
const NEXT_TIMEOUT: Duration = Duration::from_secs(10);

/// One message a scan read.
#[derive(Debug)]
pub(super) struct Scanned {
    /// Its stream sequence.
    pub sequence: u64,
    /// Its subject.
    pub subject: String,
    /// Its headers (with `Nats-Msg-Size` when the scan read headers only).
    pub headers: HeaderMap,
    /// Its payload (empty when the scan read headers only).
    pub payload: Bytes,
}

/// What to read.
#[derive(Clone, Copy, Debug)]
pub(super) struct ScanMode {
    /// Only the newest message of each subject (a KV bucket's values).
    pub last_per_subject: bool,
    /// Headers only (sizes in `Nats-Msg-Size`), not payloads.
    pub headers_only: bool,
}

/// Every message of `stream` under `filters` (at most `limit`), in
/// stream order.
pub(super) async fn scan(
    client: &Client,
    stream: &Stream,
    filters: Vec<String>,
    mode: ScanMode,
    limit: usize,
) -> Result<Vec<Scanned>, NatsError> {
    if filters.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let deliver_policy = if mode.last_per_subject {
        DeliverPolicy::LastPerSubject
    } else {
        DeliverPolicy::All
    };
    let (filter_subject, filter_subjects) = if filters.len() == 1 {
        (filters[0].clone(), Vec::new())
    } else {
        (String::new(), filters)
    };
    let consumer = stream
        .create_consumer(push::OrderedConfig {
            deliver_subject: client.new_inbox(),
            filter_subject,
            filter_subjects,
            headers_only: mode.headers_only,
            replay_policy: ReplayPolicy::Instant,
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| NatsError::request("create a scan consumer", e))?;
    let pending = consumer.cached_info().num_pending;
    let mut out = Vec::new();
    if pending == 0 {
        return Ok(out);
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| NatsError::request("read a scan", e))?;
    loop {
        let next = tokio::time::timeout(NEXT_TIMEOUT, messages.next())
            .await
            .map_err(|_| NatsError::Timeout { op: "scan" })?;
        let Some(message) = next else {
            return Err(NatsError::request("scan", "the consumer ended early"));
        };
        let message = message.map_err(|e| NatsError::request("scan", e))?;
        let (sequence, left) = {
            let info = message
                .info()
                .map_err(|e| NatsError::request("scan metadata", e))?;
            (info.stream_sequence, info.pending)
        };
        let inner = message.message;
        out.push(Scanned {
            sequence,
            subject: inner.subject.to_string(),
            headers: inner.headers.unwrap_or_default(),
            payload: inner.payload,
        });
        if left == 0 || out.len() >= limit {
            return Ok(out);
        }
    }
}
