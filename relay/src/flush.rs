//! Mail flush: hands stored items to devices that became reachable.
//!
//! Items go oldest first, grouped per connection, and one item addressed to
//! several devices behind the same gateway travels once with all of them in
//! `to` (one copy per site, also from the mailbox). At most one flush runs
//! per connection at a time.
//!
//! Answers: `Receipt` (valid, from that device) → the row is replaced, in
//! one transaction, by that receipt stored for the original sender, which
//! is then flushed by the same rules; `Accepted` → deleted; `Refused` →
//! deleted and logged; anything else → kept for the next round. That
//! decision is core's (`tincan_core::route::custody::after_flush`), which
//! the simulator's relay runs too.

use std::collections::HashMap;
use std::sync::Arc;

use tincan_core::route::custody::{after_flush, Flushed};
use tincan_core::route::{Answer, Routed};
use tincan_core::wire::Frame;
use tincan_core::{DeviceId, OrgId};
use tincan_transport::rpc;

use crate::router::{encode_route, HOP_TIMEOUT};
use crate::server::Shared;
use crate::store::{MailKind, MailRow, NewMail, PutOutcome};

/// Most rows read per round of one connection's flush (bounds memory: an
/// item is at most one frame).
const ROUND_ROWS: usize = 64;

/// Starts flushing the mail of `devices` of `org` that are reachable.
pub fn flush_devices(shared: &Arc<Shared>, org: OrgId, devices: &[DeviceId]) {
    let now = shared.clock.mono_ms();
    let mut groups: HashMap<usize, (quinn::Connection, Vec<DeviceId>)> = HashMap::new();
    {
        let registry = shared.registry();
        for d in devices {
            if let Some(conn) = registry.locate(now, &org, d).conn() {
                groups
                    .entry(conn.stable_id())
                    .or_insert_with(|| (conn.clone(), Vec::new()))
                    .1
                    .push(*d);
            }
        }
    }
    for (id, (conn, devices)) in groups {
        let fresh = shared
            .flushing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id);
        if !fresh {
            continue;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            flush_connection(&shared, org, &conn, devices).await;
            shared
                .flushing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        });
    }
}

/// Flushes every reachable device that has mail (the periodic round).
pub async fn flush_all(shared: &Arc<Shared>) {
    let with_mail = match shared.engine.devices_with_mail().await {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list mailboxes");
            return;
        }
    };
    let mut by_org: HashMap<OrgId, Vec<DeviceId>> = HashMap::new();
    for (org, device) in with_mail {
        by_org.entry(org).or_default().push(device);
    }
    for (org, devices) in by_org {
        flush_devices(shared, org, &devices);
    }
}

async fn flush_connection(
    shared: &Arc<Shared>,
    org: OrgId,
    conn: &quinn::Connection,
    devices: Vec<DeviceId>,
) {
    // Every round deletes rows or drops the devices whose rows it kept,
    // so the loop ends, and a device that cannot take its mail never holds
    // up the others behind the same gateway.
    let mut active = devices;
    while !active.is_empty() {
        let ids = active.clone();
        let rows = shared.engine.mail_for_devices(ids, ROUND_ROWS).await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read mail");
                return;
            }
        };
        if rows.is_empty() {
            return;
        }
        // Group the rows of one stored body, in order of their oldest row.
        let mut batches: Vec<(Vec<u8>, Vec<MailRow>)> = Vec::new();
        let mut index: HashMap<i64, usize> = HashMap::new();
        for row in rows {
            match index.get(&row.body) {
                Some(&i) => batches[i].1.push(row),
                None => {
                    index.insert(row.body, batches.len());
                    batches.push((row.item.clone(), vec![row]));
                }
            }
        }
        drop(index);
        for (bytes, rows) in batches {
            match deliver_batch(shared, org, conn, &bytes, rows).await {
                Some(kept) => active.retain(|d| !kept.contains(d)),
                None => return,
            }
        }
    }
}

/// Delivers one item to its rows' devices; returns the devices whose rows
/// were kept, or `None` if the connection or the database failed.
async fn deliver_batch(
    shared: &Arc<Shared>,
    org: OrgId,
    conn: &quinn::Connection,
    bytes: &[u8],
    rows: Vec<MailRow>,
) -> Option<Vec<DeviceId>> {
    let item: Routed = match postcard::from_bytes(bytes) {
        Ok(item) => item,
        Err(e) => {
            tracing::warn!(error = %e, "dropping undecodable mail");
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            shared.engine.delete_mail(ids).await.ok()?;
            return Some(Vec::new());
        }
    };
    let all: Vec<DeviceId> = rows.iter().map(|r| r.device).collect();
    let frame = match encode_route(all.clone(), item.clone()) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "cannot encode stored mail");
            return Some(all);
        }
    };
    let answers = match rpc::request_encoded(conn, &frame, HOP_TIMEOUT).await {
        Ok(Frame::Answers(list)) => list,
        Ok(other) => {
            tracing::debug!(answer = other.name(), "flush got no answers");
            return Some(all);
        }
        Err(e) => {
            tracing::debug!(error = %e, "flush stopped");
            return None;
        }
    };
    let mut kept = Vec::new();
    let mut delete = Vec::new();
    for row in rows {
        let answer = answers
            .iter()
            .find(|a| a.device == row.device)
            .map(|a| &a.answer);
        // Core's rule decides; this applies it to the rows.
        let verifies = |receipt: &tincan_core::Receipt| {
            shared
                .registry()
                .known(&org, &row.device)
                .is_some_and(|k| receipt.verify(&k.cert).is_ok())
        };
        match after_flush(&item, row.device, answer, verifies) {
            Flushed::Settle(receipt) => {
                if !settle_with_receipt(shared, org, &row, receipt).await {
                    return None;
                }
            }
            Flushed::Delete => {
                if let Some(Answer::Refused(reason)) = answer {
                    tracing::info!(device = %row.device, message = %row.message_id, ?reason, "stored item refused by its device; deleted");
                }
                delete.push(row.id);
            }
            Flushed::Keep => {
                if let Some(Answer::Receipt(_)) = answer {
                    tracing::warn!(device = %row.device, message = %row.message_id, "invalid receipt for stored mail; kept");
                }
                kept.push(row.device);
            }
        }
    }
    if !delete.is_empty() {
        let n = delete.len();
        match shared.engine.delete_mail(delete).await {
            Ok(()) => {
                shared.metrics.mail_delivered.inc_by(n as u64);
                shared.metrics.mail_items.dec_by(n as i64);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot delete delivered mail");
                return None;
            }
        }
    }
    Some(kept)
}

/// Replaces a delivered envelope row by its receipt for the sender, then
/// flushes the sender.
async fn settle_with_receipt(
    shared: &Arc<Shared>,
    org: OrgId,
    row: &MailRow,
    receipt: tincan_core::Receipt,
) -> bool {
    // An envelope row's origin is its sender.
    let sender = Some(row.origin).filter(|s| shared.registry().known(&org, s).is_some());
    let item = Routed::Receipt(receipt);
    let Ok(bytes) = postcard::to_allocvec(&item) else {
        return false;
    };
    let now = shared.clock.wall_ms();
    let ttl = u64::try_from(shared.config.mail_ttl.as_millis()).unwrap_or(u64::MAX);
    let mail = NewMail {
        org,
        devices: sender.into_iter().collect(),
        message_id: item.message_id(),
        kind: MailKind::of(&item),
        origin: row.device,
        item: bytes,
        now_ms: now,
        expires_ms: now.saturating_add(ttl),
    };
    let id = row.id;
    let quota = shared.config.mail_quota();
    match shared.engine.replace_with_receipt(id, mail, quota).await {
        Ok(outcomes) => {
            shared.metrics.mail_delivered.inc();
            shared.metrics.mail_items.dec();
            for (_, outcome) in &outcomes {
                match outcome {
                    PutOutcome::Stored => {
                        shared.metrics.mail_stored.inc();
                        shared.metrics.mail_items.inc();
                    }
                    PutOutcome::Full | PutOutcome::OrgFull => {
                        tracing::info!(message = %row.message_id, "sender's mailbox is full; receipt dropped (the sender retries)")
                    }
                    PutOutcome::Duplicate => {}
                }
            }
            tracing::debug!(device = %row.device, message = %row.message_id, "stored mail delivered");
            if let Some(s) = sender {
                flush_devices(shared, org, &[s]);
            }
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot settle delivered mail");
            false
        }
    }
}
