//! Mailboxes in the `TINCAN_MAIL` stream: one subject per held item, its
//! facts in headers, its bytes as the payload.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::stream::DeleteMessageErrorKind;
use async_nats::jetstream::ErrorCode;
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::TryStreamExt;
use tincan_core::route::custody::{put_outcome, MailboxUsage};
use tincan_core::{DeviceId, MessageId, OrgId};

use super::scan::{scan, ScanMode, Scanned};
use super::{hex, id_hex, NatsEngine, NatsError, ORG_BYTES_FRESH};
use crate::store::mail::{kind_code, kind_from_code};
use crate::store::{ExpiredMail, MailQuota, MailRow, NewMail, PutOutcome};

const H_MESSAGE: &str = "Tincan-Message";
const H_KIND: &str = "Tincan-Kind";
const H_ORIGIN: &str = "Tincan-Origin";
const H_STORED: &str = "Tincan-Stored";
const H_EXPIRES: &str = "Tincan-Expires";
const H_SIZE: &str = "Tincan-Size";

/// The server drops an item this long after its own expiry, in case no
/// relay node is left to expire it (seconds).
const SERVER_TTL_SLACK_SECS: u64 = 3600;

/// Devices per scan consumer (each a filter subject).
const FILTERS_PER_SCAN: usize = 64;

/// Every item, whatever the count (mailboxes are bounded by quotas).
const ALL: usize = usize::MAX;

/// The subject of `mail`'s copy for `device`.
fn subject(mail: &NewMail, device: DeviceId) -> String {
    let mut key = Vec::with_capacity(16 + 1 + 20);
    key.extend_from_slice(&mail.message_id.0);
    key.push(kind_code(mail.kind) as u8);
    key.extend_from_slice(&mail.origin.0);
    let digest = ring::digest::digest(&ring::digest::SHA256, &key);
    format!(
        "tincan.mail.{}.{}.{}",
        hex(&mail.org.0),
        hex(&device.0),
        hex(&digest.as_ref()[..16])
    )
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.as_str().parse().ok()
}

fn header_id<const N: usize>(headers: &HeaderMap, name: &str) -> Option<[u8; N]> {
    id_hex(headers.get(name)?.as_str())
}

/// The bytes of the items scanned (each counted in full).
fn held_bytes(scanned: &[Scanned]) -> u64 {
    scanned
        .iter()
        .filter_map(|m| header_u64(&m.headers, H_SIZE))
        .sum()
}

/// (organisation, device) of a mail subject.
fn owner(subject: &str) -> Option<(OrgId, DeviceId)> {
    let mut parts = subject.split('.');
    let (Some("tincan"), Some("mail"), Some(org), Some(device)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    Some((OrgId(id_hex(org)?), DeviceId(id_hex(device)?)))
}

/// A row from a scanned message (payload included).
fn row(m: Scanned) -> Option<MailRow> {
    let (org, device) = owner(&m.subject)?;
    let kind = kind_from_code(i64::try_from(header_u64(&m.headers, H_KIND)?).ok()?)?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &m.payload);
    let mut body = [0u8; 8];
    body.copy_from_slice(&digest.as_ref()[..8]);
    Some(MailRow {
        id: i64::try_from(m.sequence).ok()?,
        org,
        device,
        message_id: MessageId(header_id(&m.headers, H_MESSAGE)?),
        kind,
        origin: DeviceId(header_id(&m.headers, H_ORIGIN)?),
        item: m.payload.to_vec(),
        stored_ms: header_u64(&m.headers, H_STORED)?,
        // Copies of one item share their bytes, so flushing sends them as
        // one batch, as SQLite's shared body does.
        body: i64::from_be_bytes(body) & i64::MAX,
    })
}

const HEADERS: ScanMode = ScanMode {
    last_per_subject: false,
    headers_only: true,
};

/// Headers of every item under `filter`.
async fn headers(engine: &NatsEngine, filter: String) -> Result<Vec<Scanned>, NatsError> {
    scan(&engine.client, &engine.mail, vec![filter], HEADERS, ALL).await
}

/// The organisation's stored bytes, scanned at most every
/// [`ORG_BYTES_FRESH`].
async fn org_bytes(engine: &NatsEngine, org: OrgId) -> Result<u64, NatsError> {
    if let Ok(cache) = engine.org_bytes.lock() {
        if let Some((at, bytes)) = cache.get(&org) {
            if at.elapsed() < ORG_BYTES_FRESH {
                return Ok(*bytes);
            }
        }
    }
    let scanned = headers(engine, format!("tincan.mail.{}.>", hex(&org.0))).await?;
    let bytes = held_bytes(&scanned);
    if let Ok(mut cache) = engine.org_bytes.lock() {
        cache.insert(org, (Instant::now(), bytes));
    }
    Ok(bytes)
}

/// Adds what this node just stored to the cached organisation count.
fn count_stored(engine: &NatsEngine, org: OrgId, bytes: u64) {
    if let Ok(mut cache) = engine.org_bytes.lock() {
        if let Some((_, held)) = cache.get_mut(&org) {
            *held = held.saturating_add(bytes);
        }
    }
}

/// Stores `mail` for each of its devices (see [`crate::engine::RelayStore::put_mail`]).
pub(super) async fn put(
    engine: &NatsEngine,
    mail: &NewMail,
    quota: &MailQuota,
) -> Result<Vec<(DeviceId, PutOutcome)>, NatsError> {
    let size = mail.item.len() as u64;
    let mut org_held = org_bytes(engine, mail.org).await?;
    let mut out = Vec::with_capacity(mail.devices.len());
    let mut acks = Vec::new();
    let mut seen = BTreeSet::new();
    let payload = Bytes::from(mail.item.clone());
    for &device in &mail.devices {
        if !seen.insert(device) {
            // Named twice: the second is the first one's retry.
            out.push((device, PutOutcome::Duplicate));
            continue;
        }
        let target = subject(mail, device);
        let mailbox = headers(
            engine,
            format!("tincan.mail.{}.{}.*", hex(&mail.org.0), hex(&device.0)),
        )
        .await?;
        let usage = MailboxUsage {
            items: mailbox.len() as u64,
            bytes: held_bytes(&mailbox),
        };
        let held = mailbox.iter().any(|m| m.subject == target);
        let outcome = put_outcome(held, usage, size, Some(org_held), quota);
        if outcome == PutOutcome::Stored {
            let ack = engine
                .js
                .publish_with_headers(target, item_headers(mail), payload.clone())
                .await
                .map_err(|e| NatsError::request("store mail", e))?;
            acks.push((out.len(), ack));
            org_held = org_held.saturating_add(size);
        }
        out.push((device, outcome));
    }
    for (at, ack) in acks {
        match ack.await {
            Ok(_) => count_stored(engine, mail.org, size),
            // Another node stored the same copy since the scan.
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                out[at].1 = PutOutcome::Duplicate;
            }
            Err(e) => return Err(NatsError::request("store mail", e)),
        }
    }
    Ok(out)
}

/// The headers an item carries: its facts, the expectation that makes a
/// second copy a duplicate, and the server's backstop TTL.
fn item_headers(mail: &NewMail) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(H_MESSAGE, hex(&mail.message_id.0).as_str());
    h.insert(H_KIND, kind_code(mail.kind).to_string().as_str());
    h.insert(H_ORIGIN, hex(&mail.origin.0).as_str());
    h.insert(H_STORED, mail.now_ms.to_string().as_str());
    h.insert(H_EXPIRES, mail.expires_ms.to_string().as_str());
    h.insert(H_SIZE, mail.item.len().to_string().as_str());
    h.insert("Nats-Expected-Last-Subject-Sequence", "0");
    let ttl = mail.expires_ms.saturating_sub(mail.now_ms) / 1000 + SERVER_TTL_SLACK_SECS;
    h.insert("Nats-TTL", ttl.to_string().as_str());
    h
}

/// Up to `limit` items for any of `devices`, oldest first.
pub(super) async fn for_devices(
    engine: &NatsEngine,
    devices: &[DeviceId],
    limit: usize,
) -> Result<Vec<MailRow>, NatsError> {
    let mut rows = Vec::new();
    for chunk in devices.chunks(FILTERS_PER_SCAN) {
        let filters = chunk
            .iter()
            .map(|d| format!("tincan.mail.*.{}.*", hex(&d.0)))
            .collect();
        let mode = ScanMode {
            last_per_subject: false,
            headers_only: false,
        };
        for m in scan(&engine.client, &engine.mail, filters, mode, limit).await? {
            match row(m) {
                Some(r) => rows.push(r),
                None => tracing::warn!("skipping a corrupt mail item"),
            }
        }
    }
    rows.sort_by_key(|r| r.id);
    rows.truncate(limit);
    Ok(rows)
}

/// Deletes items by stream sequence; one already gone is no error.
pub(super) async fn delete(engine: &NatsEngine, ids: &[i64]) -> Result<(), NatsError> {
    for &id in ids {
        let Ok(sequence) = u64::try_from(id) else {
            continue;
        };
        match engine.mail.delete_message(sequence).await {
            Ok(_) => {}
            Err(e) => match e.kind() {
                DeleteMessageErrorKind::JetStream(js) if is_gone(js.error_code()) => {}
                _ => return Err(NatsError::request("delete mail", e)),
            },
        }
    }
    Ok(())
}

/// Whether a delete failed only because the item is gone already (the
/// server says 10037 or, for a sequence it deleted, 10057).
fn is_gone(code: ErrorCode) -> bool {
    code == ErrorCode::NO_MESSAGE_FOUND || code == ErrorCode(10057)
}

/// Every (organisation, device, items held).
pub(super) async fn holders(engine: &NatsEngine) -> Result<Vec<(OrgId, DeviceId, u64)>, NatsError> {
    let mut counts: BTreeMap<(OrgId, DeviceId), u64> = BTreeMap::new();
    let mut subjects = engine
        .mail
        .info_with_subjects("tincan.mail.>")
        .await
        .map_err(|e| NatsError::request("count mail", e))?;
    while let Some((subject, n)) = subjects
        .try_next()
        .await
        .map_err(|e| NatsError::request("count mail", e))?
    {
        if let Some(key) = owner(&subject) {
            *counts.entry(key).or_default() += n as u64;
        }
    }
    Ok(counts
        .into_iter()
        .map(|((org, device), n)| (org, device, n))
        .collect())
}

/// Deletes every item whose expiry passed at `now_ms`.
pub(super) async fn expire(
    engine: &NatsEngine,
    now_ms: u64,
) -> Result<Vec<ExpiredMail>, NatsError> {
    let mut expired = Vec::new();
    let mut ids = Vec::new();
    for m in headers(engine, "tincan.mail.>".into()).await? {
        if header_u64(&m.headers, H_EXPIRES).is_some_and(|at| at <= now_ms) {
            let message = header_id(&m.headers, H_MESSAGE).map(MessageId);
            if let (Some((_, device)), Some(message_id), Ok(id)) =
                (owner(&m.subject), message, i64::try_from(m.sequence))
            {
                expired.push(ExpiredMail { device, message_id });
                ids.push(id);
            }
        }
    }
    delete(engine, &ids).await?;
    Ok(expired)
}

/// Deletes every item held for one device.
pub(super) async fn purge_device(
    engine: &NatsEngine,
    org: OrgId,
    device: DeviceId,
) -> Result<(), NatsError> {
    engine
        .mail
        .purge()
        .filter(format!("tincan.mail.{}.{}.>", hex(&org.0), hex(&device.0)))
        .await
        .map(|_| ())
        .map_err(|e| NatsError::request("purge a mailbox", e))
}
