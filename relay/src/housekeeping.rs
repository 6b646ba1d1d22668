//! The housekeeping actor: debounced directory pushes and the periodic
//! rounds (lease expiry detection, membership expiry of connected devices,
//! mail flush, mail expiry).
//!
//! One `select!` loop: [`Event::Dirty`] marks an organisation; its
//! directory is pushed [`DIRECTORY_DEBOUNCE`] after the first mark, so a
//! burst of changes costs one push per device, and each device gets only
//! the entries that changed since the version it acknowledged, or the
//! whole directory when the relay cannot be sure what it holds
//! ([`crate::registry::DirectoryBatch`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tincan_core::wire::{self, Frame};
use tincan_core::{DeviceId, OrgId};
use tincan_transport::rpc;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::registry::{DirectoryNext, PushOutcome};
use crate::server::{Event, Shared};

/// Delay between the first change and the directory push.
pub const DIRECTORY_DEBOUNCE: Duration = Duration::from_millis(200);
/// Directory pushes in flight at once, over all connections.
pub const DIRECTORY_PUSHES: usize = 64;
/// Pause before a device whose directory push failed is tried again.
const DIRECTORY_RETRY: Duration = Duration::from_secs(5);
/// Period of the liveness check.
const TICK: Duration = Duration::from_secs(1);
/// Mail flush runs every this many ticks.
const FLUSH_EVERY: u64 = 3;
/// Mail expiry runs every this many ticks.
const EXPIRE_EVERY: u64 = 60;

/// Runs until `shutdown` turns true.
pub async fn run(
    shared: Arc<Shared>,
    mut events: mpsc::UnboundedReceiver<Event>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut pending: HashSet<OrgId> = HashSet::new();
    let mut due: Option<Instant> = None;
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    let mut next_flush = FLUSH_EVERY;
    let mut next_expiry = EXPIRE_EVERY;
    expire(&shared).await;
    loop {
        let sleep_until = due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            event = events.recv() => match event {
                Some(Event::Dirty(org)) => {
                    pending.insert(org);
                    due.get_or_insert_with(|| Instant::now() + DIRECTORY_DEBOUNCE);
                }
                None => return,
            },
            _ = tokio::time::sleep_until(sleep_until), if due.is_some() => {
                due = None;
                for org in pending.drain() {
                    push_directory(&shared, org);
                }
            }
            _ = ticker.tick() => {
                ticks += 1;
                let changed = shared.registry().tick(shared.clock.mono_ms());
                for org in changed {
                    pending.insert(org);
                    due.get_or_insert_with(|| Instant::now() + DIRECTORY_DEBOUNCE);
                }
                if ticks >= next_flush {
                    next_flush = ticks + FLUSH_EVERY;
                    crate::flush::flush_all(&shared).await;
                }
                let expired = shared.registry().expired(shared.clock.wall_secs());
                for conn in expired {
                    conn.close(crate::close::REFUSED, b"membership expired");
                }
                if ticks >= next_expiry {
                    next_expiry = ticks + EXPIRE_EVERY;
                    expire(&shared).await;
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Pushes `org`'s directory to each of its registered devices that is
/// due one (see [`crate::registry::DirectoryBatch`]): one encoding per
/// batch, shared by every connection it goes to.
fn push_directory(shared: &Arc<Shared>, org: OrgId) {
    let batches = shared
        .registry()
        .directory_round(shared.clock.mono_ms(), &org);
    for batch in batches {
        let mut chunks = Vec::with_capacity(batch.frames.len());
        for frame in &batch.frames {
            match wire::encode(frame) {
                Ok(bytes) => chunks.push(Bytes::from(bytes)),
                Err(e) => tracing::error!(%org, error = %e, "cannot encode the directory"),
            }
        }
        tracing::debug!(%org, since = ?batch.since, version = batch.version, entries = batch.entries, to = batch.to.len(), "pushing directory");
        let chunks: Arc<[Bytes]> = chunks.into();
        for (device, conn) in batch.to {
            let push = Push {
                org,
                device,
                since: batch.since,
                version: batch.version,
            };
            tokio::spawn(push_directory_to(
                shared.clone(),
                push,
                conn,
                chunks.clone(),
            ));
        }
    }
}

/// One connection's push of a round.
#[derive(Clone, Copy, Debug)]
struct Push {
    org: OrgId,
    device: DeviceId,
    /// The version the device holds (`None`: it gets the unversioned whole).
    since: Option<u64>,
    /// The version it holds once every chunk is acknowledged.
    version: u64,
}

/// Sends `chunks` to one device, in order, each acknowledged before the
/// next; then records the outcome and pushes again if that is due. At
/// most [`DIRECTORY_PUSHES`] run at once, so a storm of newcomers pins a
/// bounded number of streams.
async fn push_directory_to(
    shared: Arc<Shared>,
    push: Push,
    conn: quinn::Connection,
    chunks: Arc<[Bytes]>,
) {
    let mut outcome = PushOutcome::Acked;
    {
        let _permit = shared.directory_pushes.acquire().await;
        for chunk in chunks.iter() {
            match push_bytes(&conn, chunk.clone(), crate::router::HOP_TIMEOUT).await {
                Ok(Frame::Ack) => {}
                Ok(answer) => {
                    // It did not apply this part: it holds something else.
                    let answer = match &answer {
                        Frame::Error(reason) => reason.as_str(),
                        other => other.name(),
                    };
                    tracing::debug!(device = %push.device, %answer, "directory push refused");
                    outcome = PushOutcome::Refused;
                    break;
                }
                Err(e) => {
                    tracing::debug!(device = %push.device, error = %e, "directory push failed");
                    outcome = PushOutcome::Failed;
                    break;
                }
            }
        }
    }
    let next = shared.registry().directory_done(
        &push.org,
        &push.device,
        conn.stable_id(),
        push.since,
        push.version,
        outcome,
    );
    match next {
        DirectoryNext::Nothing => {}
        DirectoryNext::Now => shared.dirty(push.org),
        DirectoryNext::Later => {
            // A device that never answers costs one push per interval.
            tokio::spawn(async move {
                tokio::time::sleep(DIRECTORY_RETRY).await;
                if conn.close_reason().is_none() {
                    shared.dirty(push.org);
                }
            });
        }
    }
}

/// One pushed frame, already encoded, on a new stream of `conn`, and its
/// answer. The bytes go to quinn without a copy: every connection's
/// stream holds the same buffer until acknowledged.
async fn push_bytes(
    conn: &quinn::Connection,
    bytes: Bytes,
    timeout: Duration,
) -> Result<Frame, String> {
    let exchange = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        send.write_chunk(bytes).await.map_err(|e| e.to_string())?;
        send.finish().map_err(|e| e.to_string())?;
        let answer = recv
            .read_to_end(rpc::STREAM_LIMIT)
            .await
            .map_err(|e| e.to_string())?;
        wire::decode(&answer)
            .map(|(frame, _)| frame)
            .map_err(|e| e.to_string())
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

/// Deletes expired mail and file items and refreshes the stored-mail
/// gauge.
async fn expire(shared: &Arc<Shared>) {
    crate::file::expire(shared).await;
    let now = shared.clock.wall_ms();
    match shared.engine.expire(now).await {
        Ok(rows) => {
            for row in &rows {
                tracing::info!(device = %row.device, message = %row.message_id, "stored mail expired undelivered");
            }
            shared.metrics.mail_expired.inc_by(rows.len() as u64);
        }
        Err(e) => tracing::warn!(error = %e, "mail expiry failed"),
    }
    if let Ok(counts) = shared.engine.mail_counts().await {
        let total: u64 = counts.iter().map(|(_, n)| n).sum();
        shared
            .metrics
            .mail_items
            .set(i64::try_from(total).unwrap_or(i64::MAX));
    }
}
