//! The housekeeping actor: debounced directory pushes and the periodic
//! rounds (lease expiry detection, membership expiry of connected devices,
//! mail flush, mail expiry).
//!
//! One `select!` loop: [`Event::Dirty`] marks an organisation; its
//! directory is pushed [`DIRECTORY_DEBOUNCE`] after the first mark, so a
//! burst of changes costs one push per device.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tincan_core::wire::Frame;
use tincan_core::OrgId;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::server::{push, Event, Shared};

/// Delay between the first change and the directory push.
pub const DIRECTORY_DEBOUNCE: Duration = Duration::from_millis(200);
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

/// Pushes `org`'s directory to each of its registered devices.
fn push_directory(shared: &Arc<Shared>, org: OrgId) {
    let (entries, conns) = {
        let registry = shared.registry();
        (
            registry.directory(shared.clock.mono_ms(), &org),
            registry.connections(&org),
        )
    };
    tracing::debug!(%org, devices = entries.len(), to = conns.len(), "pushing directory");
    for chunk in entries.chunks(tincan_core::route::MAX_DIRECTORY_CHUNK) {
        for (_, conn) in &conns {
            tokio::spawn(push(conn.clone(), Frame::Directory(chunk.to_vec())));
        }
    }
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
