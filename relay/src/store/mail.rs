//! Mailboxes: items the relay holds in custody for devices it cannot reach.
//!
//! An item's bytes are stored once (`mail_bodies`), however many devices
//! it waits for; each destination device has a small row (`mail`) that
//! points at the body and is delivered and deleted on its own. A body is
//! deleted in the same transaction as its last row (delivery, expiry,
//! removal), so nothing is orphaned by a crash.
//!
//! Dedupe is on `(device, message id, kind, origin)` — origin being the
//! envelope's sender or the receipt's signer — so a sender retrying after a
//! lost `Custody` answer never stores a second copy, receipts of several
//! recipients of one message never collide, and no device can suppress
//! another's item by reusing its id.
//!
//! # Quotas
//! A device's mailbox counts the items addressed to it and their full
//! length (what it will have to download); an organisation's storage counts
//! the bytes of its bodies (what the disk holds). Over either, nothing is
//! stored for that device.
//!
//! Whether a copy is stored (dedupe first, then the quotas) is core's rule,
//! `tincan_core::route::custody::put_outcome`, which the simulator's
//! in-memory mailboxes run too; this module reads the facts it needs and
//! writes the rows.

use rusqlite::{params, OptionalExtension, Transaction};
use tincan_core::route::custody::{put_outcome, MailboxUsage};
pub use tincan_core::route::custody::{MailKind, MailQuota, PutOutcome};
use tincan_core::{DeviceId, MessageId, OrgId};

use super::{id20, int, uint, Db, StoreError};

/// A kind's code in the `kind` column.
pub(crate) fn kind_code(kind: MailKind) -> i64 {
    match kind {
        MailKind::Envelope => 0,
        MailKind::Delivered => 1,
        MailKind::Read => 2,
    }
}

/// The kind a `kind` column holds, if it is one.
pub(crate) fn kind_from_code(code: i64) -> Option<MailKind> {
    match code {
        0 => Some(MailKind::Envelope),
        1 => Some(MailKind::Delivered),
        2 => Some(MailKind::Read),
        _ => None,
    }
}

/// An item to store for some devices.
#[derive(Clone, Debug)]
pub struct NewMail {
    /// The organisation of the devices.
    pub org: OrgId,
    /// Destination devices.
    pub devices: Vec<DeviceId>,
    /// The item's message id.
    pub message_id: MessageId,
    /// The item's kind.
    pub kind: MailKind,
    /// The envelope's sending device (its receipt goes back there) or the
    /// receipt's signing device.
    pub origin: DeviceId,
    /// The postcard-encoded [`Routed`](tincan_core::route::Routed) item.
    pub item: Vec<u8>,
    /// Now, ms since the Unix epoch.
    pub now_ms: u64,
    /// When the item expires, ms since the Unix epoch.
    pub expires_ms: u64,
}

/// A mail row deleted at its TTL, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpiredMail {
    /// The destination device.
    pub device: DeviceId,
    /// The item's message id.
    pub message_id: MessageId,
}

/// A stored item for one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailRow {
    /// Row id (insertion order).
    pub id: i64,
    /// The organisation.
    pub org: OrgId,
    /// The destination device.
    pub device: DeviceId,
    /// The item's message id.
    pub message_id: MessageId,
    /// The item's kind.
    pub kind: MailKind,
    /// The envelope's sending device or the receipt's signing device.
    pub origin: DeviceId,
    /// The postcard-encoded [`Routed`](tincan_core::route::Routed) item.
    pub item: Vec<u8>,
    /// When it was stored, ms since the Unix epoch.
    pub stored_ms: u64,
    /// The stored body (rows of one item for several devices share it).
    pub body: i64,
}

/// The stored body of `mail`, if one is there already.
fn find_body(tx: &Transaction<'_>, mail: &NewMail) -> Result<Option<i64>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT id FROM mail_bodies
             WHERE org = ?1 AND origin = ?2 AND message_id = ?3 AND kind = ?4 AND item = ?5
             LIMIT 1",
            params![
                mail.org.0.as_slice(),
                mail.origin.0.as_slice(),
                mail.message_id.0.as_slice(),
                kind_code(mail.kind),
                mail.item
            ],
            |r| r.get(0),
        )
        .optional()?)
}

/// Bytes of stored bodies of `org`.
fn org_bytes(tx: &Transaction<'_>, org: OrgId) -> Result<u64, StoreError> {
    let bytes: i64 = tx.query_row(
        "SELECT coalesce(sum(len), 0) FROM mail_bodies WHERE org = ?1",
        params![org.0.as_slice()],
        |r| r.get(0),
    )?;
    Ok(uint(bytes))
}

/// Stores `mail` for each of its devices; one outcome per device. The body
/// is written at the first device that takes it, and shared by the rest.
fn put_all(
    tx: &Transaction<'_>,
    mail: &NewMail,
    quota: &MailQuota,
) -> Result<Vec<(DeviceId, PutOutcome)>, StoreError> {
    let mut body = find_body(tx, mail)?;
    let mut out = Vec::with_capacity(mail.devices.len());
    for &device in &mail.devices {
        out.push((device, put_one(tx, mail, device, quota, &mut body)?));
    }
    Ok(out)
}

fn put_one(
    tx: &Transaction<'_>,
    mail: &NewMail,
    device: DeviceId,
    quota: &MailQuota,
    body: &mut Option<i64>,
) -> Result<PutOutcome, StoreError> {
    let exists: Option<i64> = tx
        .query_row(
            "SELECT id FROM mail
             WHERE device = ?1 AND message_id = ?2 AND kind = ?3 AND origin = ?4",
            params![
                device.0.as_slice(),
                mail.message_id.0.as_slice(),
                kind_code(mail.kind),
                mail.origin.0.as_slice()
            ],
            |r| r.get(0),
        )
        .optional()?;
    let (items, bytes): (i64, i64) = tx.query_row(
        "SELECT count(*), coalesce(sum(len), 0) FROM mail WHERE device = ?1",
        params![device.0.as_slice()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let usage = MailboxUsage {
        items: uint(items),
        bytes: uint(bytes),
    };
    let size = mail.item.len() as u64;
    // Only a body not stored yet costs the organisation anything.
    let org = match *body {
        Some(_) => None,
        None => Some(org_bytes(tx, mail.org)?),
    };
    // Core's rule decides; this only reads and writes the rows.
    let outcome = put_outcome(exists.is_some(), usage, size, org, quota);
    if outcome != PutOutcome::Stored {
        return Ok(outcome);
    }
    let body_id = match *body {
        Some(id) => id,
        None => {
            tx.execute(
                "INSERT INTO mail_bodies (org, origin, message_id, kind, item, len)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    mail.org.0.as_slice(),
                    mail.origin.0.as_slice(),
                    mail.message_id.0.as_slice(),
                    kind_code(mail.kind),
                    mail.item,
                    int(size)
                ],
            )?;
            let id = tx.last_insert_rowid();
            *body = Some(id);
            id
        }
    };
    tx.execute(
        "INSERT INTO mail (org, device, message_id, kind, origin, body, len, stored_ms, expires_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            mail.org.0.as_slice(),
            device.0.as_slice(),
            mail.message_id.0.as_slice(),
            kind_code(mail.kind),
            mail.origin.0.as_slice(),
            body_id,
            int(size),
            int(mail.now_ms),
            int(mail.expires_ms)
        ],
    )?;
    Ok(PutOutcome::Stored)
}

/// Deletes the rows `ids` and the bodies only they referenced.
fn delete_rows(tx: &Transaction<'_>, ids: &[i64]) -> Result<(), StoreError> {
    let mut bodies = Vec::with_capacity(ids.len());
    for id in ids {
        let body: Option<i64> = tx
            .query_row("SELECT body FROM mail WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .optional()?;
        tx.execute("DELETE FROM mail WHERE id = ?1", params![id])?;
        bodies.extend(body);
    }
    bodies.sort_unstable();
    bodies.dedup();
    for body in bodies {
        tx.execute(
            "DELETE FROM mail_bodies
             WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM mail WHERE body = ?1)",
            params![body],
        )?;
    }
    Ok(())
}

/// Deletes every body no row references any more (after bulk deletes).
pub(super) fn drop_orphan_bodies(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM mail_bodies
         WHERE NOT EXISTS (SELECT 1 FROM mail WHERE mail.body = mail_bodies.id)",
        [],
    )?;
    Ok(())
}

fn row_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<MailRow>> {
    let id: i64 = r.get(0)?;
    let org: Vec<u8> = r.get(1)?;
    let device: Vec<u8> = r.get(2)?;
    let message_id: Vec<u8> = r.get(3)?;
    let kind: i64 = r.get(4)?;
    let origin: Vec<u8> = r.get(5)?;
    let item: Vec<u8> = r.get(6)?;
    let stored: i64 = r.get(7)?;
    let body: i64 = r.get(8)?;
    Ok((|| {
        Some(MailRow {
            id,
            org: OrgId(id20(&org)?),
            device: DeviceId(id20(&device)?),
            message_id: MessageId(message_id.as_slice().try_into().ok()?),
            kind: kind_from_code(kind)?,
            origin: DeviceId(id20(&origin)?),
            item,
            stored_ms: uint(stored),
            body,
        })
    })())
}

/// Mail rows with their bodies' bytes (`m` is the row, `b` its body).
const SELECT_ROWS: &str = "SELECT m.id, m.org, m.device, m.message_id, m.kind, m.origin, b.item,
        m.stored_ms, m.body
    FROM mail m JOIN mail_bodies b ON b.id = m.body";

impl Db {
    /// Stores `mail` for each of its devices in one durable transaction
    /// (its bytes once), respecting `quota`; one outcome per device.
    pub fn put_mail(
        &mut self,
        mail: &NewMail,
        quota: &MailQuota,
    ) -> Result<Vec<(DeviceId, PutOutcome)>, StoreError> {
        let tx = self.conn.transaction()?;
        let out = put_all(&tx, mail, quota)?;
        tx.commit()?;
        Ok(out)
    }

    /// Up to `limit` items for `device`, oldest first.
    pub fn mail_for(&self, device: DeviceId, limit: usize) -> Result<Vec<MailRow>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "{SELECT_ROWS} WHERE m.device = ?1 ORDER BY m.id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(
            params![
                device.0.as_slice(),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            row_of,
        )?;
        let mut out = Vec::new();
        for row in rows {
            match row? {
                Some(row) => out.push(row),
                None => tracing::warn!(%device, "skipping a corrupt mail row"),
            }
        }
        Ok(out)
    }

    /// Up to `limit` items for any of `devices`, oldest first.
    pub fn mail_for_devices(
        &self,
        devices: &[DeviceId],
        limit: usize,
    ) -> Result<Vec<MailRow>, StoreError> {
        let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        // Stay far below SQLite's bound on statement parameters.
        for chunk in devices.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let mut stmt = self.conn.prepare(&format!(
                "{SELECT_ROWS} WHERE m.device IN ({marks}) ORDER BY m.id LIMIT {limit_sql}"
            ))?;
            let ids = chunk.iter().map(|d| d.0.to_vec());
            let rows = stmt.query_map(rusqlite::params_from_iter(ids), row_of)?;
            for row in rows {
                match row? {
                    Some(row) => out.push(row),
                    None => tracing::warn!("skipping a corrupt mail row"),
                }
            }
        }
        out.sort_by_key(|r| r.id);
        out.truncate(limit);
        Ok(out)
    }

    /// Deletes mail rows (and the bodies only they referenced).
    pub fn delete_mail(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        delete_rows(&tx, ids)?;
        tx.commit()?;
        Ok(())
    }

    /// Deletes the delivered row `id` and, in the same transaction, stores
    /// the receipt that travels back to the sender (so a crash can lose
    /// neither the delivery nor the receipt).
    pub fn replace_with_receipt(
        &mut self,
        id: i64,
        receipt: &NewMail,
        quota: &MailQuota,
    ) -> Result<Vec<(DeviceId, PutOutcome)>, StoreError> {
        let tx = self.conn.transaction()?;
        delete_rows(&tx, &[id])?;
        let out = put_all(&tx, receipt, quota)?;
        tx.commit()?;
        Ok(out)
    }

    /// Bytes of stored bodies of `org` (what its mail costs on disk; the
    /// organisation quota counts this).
    pub fn mail_bytes(&mut self, org: OrgId) -> Result<u64, StoreError> {
        let tx = self.conn.transaction()?;
        let bytes = org_bytes(&tx, org)?;
        tx.commit()?;
        Ok(bytes)
    }

    /// Every (organisation, device) with stored mail.
    pub fn devices_with_mail(&self) -> Result<Vec<(OrgId, DeviceId)>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT DISTINCT org, device FROM mail")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (org, device) = row?;
            if let (Some(org), Some(device)) = (id20(&org), id20(&device)) {
                out.push((OrgId(org), DeviceId(device)));
            }
        }
        Ok(out)
    }

    /// Stored items per organisation.
    pub fn mail_counts(&self) -> Result<Vec<(OrgId, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT org, count(*) FROM mail GROUP BY org")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (org, n) = row?;
            if let Some(org) = id20(&org) {
                out.push((OrgId(org), uint(n)));
            }
        }
        Ok(out)
    }

    /// Deletes mail whose TTL passed at `now_ms` (and the bodies only it
    /// referenced); returns what was deleted.
    pub fn expire(&mut self, now_ms: u64) -> Result<Vec<ExpiredMail>, StoreError> {
        let tx = self.conn.transaction()?;
        let expired = {
            let mut stmt = tx.prepare(
                "SELECT device, message_id FROM mail WHERE expires_ms <= ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![int(now_ms)], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (device, message_id) = row?;
                if let (Some(device), Ok(message_id)) =
                    (id20(&device), <[u8; 16]>::try_from(message_id.as_slice()))
                {
                    out.push(ExpiredMail {
                        device: DeviceId(device),
                        message_id: MessageId(message_id),
                    });
                }
            }
            out
        };
        tx.execute(
            "DELETE FROM mail WHERE expires_ms <= ?1",
            params![int(now_ms)],
        )?;
        drop_orphan_bodies(&tx)?;
        tx.commit()?;
        Ok(expired)
    }
}
