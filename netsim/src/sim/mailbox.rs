//! The simulated relay's mailboxes: what it holds in custody, in memory,
//! where the real relay has SQLite. Whether a copy is stored (dedupe, the
//! device's and the organisation's quota) is core's rule
//! ([`put_outcome`]), with the real relay's default quotas; this module
//! only keeps the rows and the bodies they share.
//!
//! Rows of a device are kept in the order they were stored, and every map
//! is a `BTreeMap`, so a flush walks them in one order for a given seed.

use std::collections::BTreeMap;
use std::sync::Arc;

use tincan_core::route::custody::PutOutcome;
use tincan_core::route::custody::{put_outcome, MailKey, MailKind, MailQuota, MailboxUsage};
use tincan_core::{DeviceId, Envelope, MessageId};

use super::queue::Reply;

/// The real relay's defaults (`RelayConfig::new`): 10,000 items or 64 MiB
/// per device, 1 GiB per organisation (the simulation is one).
pub(crate) const QUOTA: MailQuota = MailQuota {
    items: 10_000,
    bytes: 64 << 20,
    org_bytes: 1 << 30,
};

/// What a held row carries.
#[derive(Clone, Debug)]
pub(crate) enum HeldItem {
    /// An envelope for its device.
    Envelope {
        envelope: Arc<Envelope>,
        frame_len: usize,
        /// Whether the sender's copy was a first attempt (so the flush's
        /// first hand-over is its first copy into the site).
        first: bool,
    },
    /// A delivered receipt on its way back to the sender.
    Receipt { reply: Reply, frame_len: usize },
}

/// One device's held copy.
#[derive(Clone, Debug)]
pub(crate) struct Held {
    pub(crate) key: MailKey,
    pub(crate) item: HeldItem,
    /// Bytes counted against the quotas.
    pub(crate) size: u64,
    /// Hand-overs so far.
    pub(crate) flushes: u32,
    /// When it was last handed over (virtual ms).
    pub(crate) last_flush: Option<u64>,
}

/// The body a row points at: one per item, however many devices.
type BodyKey = (MessageId, MailKind, DeviceId);

fn body_of(key: &MailKey) -> BodyKey {
    (key.message_id, key.kind, key.origin)
}

/// Every device's mailbox.
#[derive(Default)]
pub(crate) struct Mailboxes {
    rows: BTreeMap<DeviceId, Vec<Held>>,
    /// Each stored body's size and the rows that share it.
    bodies: BTreeMap<BodyKey, (u64, usize)>,
    /// Bytes of stored bodies.
    body_bytes: u64,
    /// Copies stored so far (duplicates not counted).
    pub(crate) stored: u64,
}

impl Mailboxes {
    /// Takes custody of `item` for `key.device` if core's rule says so.
    pub(crate) fn put(&mut self, key: MailKey, item: HeldItem, size: u64) -> PutOutcome {
        let rows = self.rows.get(&key.device).map_or(&[][..], Vec::as_slice);
        let held = rows.iter().any(|h| h.key == key);
        let usage = MailboxUsage {
            items: rows.len() as u64,
            bytes: rows.iter().map(|h| h.size).sum(),
        };
        let body = body_of(&key);
        let org = (!self.bodies.contains_key(&body)).then_some(self.body_bytes);
        let outcome = put_outcome(held, usage, size, org, &QUOTA);
        if outcome == PutOutcome::Stored {
            let entry = self.bodies.entry(body).or_insert((size, 0));
            if entry.1 == 0 {
                self.body_bytes += size;
            }
            entry.1 += 1;
            self.rows.entry(key.device).or_default().push(Held {
                key,
                item,
                size,
                flushes: 0,
                last_flush: None,
            });
            self.stored += 1;
        }
        outcome
    }

    /// The held copy `key`, if any.
    pub(crate) fn get(&self, key: &MailKey) -> Option<&Held> {
        self.rows.get(&key.device)?.iter().find(|h| h.key == *key)
    }

    /// Deletes the held copy `key` (and its body with its last row).
    pub(crate) fn remove(&mut self, key: &MailKey) -> Option<Held> {
        let rows = self.rows.get_mut(&key.device)?;
        let at = rows.iter().position(|h| h.key == *key)?;
        let held = rows.remove(at);
        if rows.is_empty() {
            self.rows.remove(&key.device);
        }
        let body = body_of(key);
        if let Some(entry) = self.bodies.get_mut(&body) {
            entry.1 -= 1;
            if entry.1 == 0 {
                self.body_bytes -= entry.0;
                self.bodies.remove(&body);
            }
        }
        Some(held)
    }

    /// Devices with something held, in id order.
    pub(crate) fn devices(&self) -> Vec<DeviceId> {
        self.rows.keys().copied().collect()
    }

    /// The rows of `device`, oldest first, for a flush to mark.
    pub(crate) fn rows_mut(&mut self, device: &DeviceId) -> &mut [Held] {
        self.rows
            .get_mut(device)
            .map_or(&mut [][..], Vec::as_mut_slice)
    }

    /// Copies held now.
    pub(crate) fn len(&self) -> usize {
        self.rows.values().map(Vec::len).sum()
    }

    /// Whether nothing is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}
