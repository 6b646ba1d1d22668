//! A user's devices: signed device revocations (kept for ever, so a removed
//! device never comes back), the labels of this user's own devices, and
//! the read-state and history helpers that several devices of one user
//! need (read sync, "has this home any history" before pairing).

use rusqlite::params;
use tincan_core::{DeviceId, DeviceRevocation, UserId};

use super::{column, Store, StoreError};

/// One of this user's own devices, as `device list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnDeviceRecord {
    /// The device.
    pub device: DeviceId,
    /// What the user called it when pairing.
    pub label: String,
    /// When it was paired (ms since the Unix epoch).
    pub added_at_ms: u64,
}

impl Store {
    /// Stores a revocation (verified against the device's certificate) and
    /// forgets the device: its peer row and its outbox rows (nothing is
    /// delivered to it any more), in one transaction. Returns whether the
    /// revocation was new.
    pub fn save_device_revocation(&self, r: &DeviceRevocation) -> Result<bool, StoreError> {
        let tx = self.write_tx()?;
        let added = tx
            .prepare_cached(
                // A row of another user for the device predates the check
                // against its certificate (a forgery): the real one replaces it.
                "INSERT INTO device_revocations (device, user, revocation, revoked_at_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (device) DO UPDATE SET user = excluded.user,
                     revocation = excluded.revocation, revoked_at_ms = excluded.revoked_at_ms
                 WHERE user != excluded.user",
            )?
            .execute(params![
                &r.device.0[..],
                &r.user_id().0[..],
                r.to_bytes(),
                column::int(r.revoked_at.saturating_mul(1000), "revoked_at_ms")?
            ])?;
        tx.prepare_cached("DELETE FROM peers WHERE device = ?1")?
            .execute(params![&r.device.0[..]])?;
        tx.prepare_cached("DELETE FROM outbox WHERE device = ?1")?
            .execute(params![&r.device.0[..]])?;
        tx.prepare_cached("DELETE FROM own_devices WHERE device = ?1")?
            .execute(params![&r.device.0[..]])?;
        tx.commit()?;
        Ok(added == 1)
    }

    /// Every stored revocation (rows that do not decode are skipped).
    pub fn device_revocations(&self) -> Result<Vec<DeviceRevocation>, StoreError> {
        let raws = self
            .conn
            .prepare_cached("SELECT revocation FROM device_revocations ORDER BY revoked_at_ms")?
            .query_map([], |row| row.get::<_, Vec<u8>>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(column::decode_all(raws, "device_revocations", |bytes| {
            DeviceRevocation::from_bytes(&bytes)
                .ok_or_else(|| StoreError::Corrupt("undecodable device revocation".into()))
        }))
    }

    /// Records (or relabels) one of this user's own devices.
    pub fn upsert_own_device(&self, d: &OwnDeviceRecord) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO own_devices (device, label, added_at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (device) DO UPDATE SET label = excluded.label",
            )?
            .execute(params![
                &d.device.0[..],
                d.label,
                column::int(d.added_at_ms, "added_at_ms")?
            ])?;
        Ok(())
    }

    /// This user's own devices with a label, oldest first.
    pub fn own_devices(&self) -> Result<Vec<OwnDeviceRecord>, StoreError> {
        let raws = self
            .conn
            .prepare_cached(
                "SELECT device, label, added_at_ms FROM own_devices ORDER BY added_at_ms",
            )?
            .query_map([], column::blob_text_int)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(column::decode_all(
            raws,
            "own_devices",
            |(device, label, at)| {
                Ok(OwnDeviceRecord {
                    device: column::device(&device, "own_devices.device")?,
                    label,
                    added_at_ms: column::unsigned(at, "own_devices.added_at_ms")?,
                })
            },
        ))
    }

    /// How many messages the history holds (pairing refuses to turn a
    /// home with history into another user's device).
    pub fn message_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM messages")?
            .query_row([], |row| row.get(0))?;
        column::unsigned(n, "count")
    }

    /// The newest sent time of a message received from `peer`, if any
    /// (what a read on this device covers, told to the user's other
    /// devices).
    pub fn latest_incoming_ms(&self, peer: &UserId) -> Result<Option<u64>, StoreError> {
        let at: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT max(sent_at_ms) FROM messages WHERE peer = ?1 AND direction = 'in'",
            )?
            .query_row(params![&peer.0[..]], |row| row.get(0))?;
        at.map(|at| column::unsigned(at, "sent_at_ms")).transpose()
    }

    /// Marks the received messages of the conversation with `peer` sent at
    /// or before `up_to_ms` read (another device of this user read them);
    /// returns how many changed. No receipts follow from this.
    pub fn mark_read_up_to(&self, peer: &UserId, up_to_ms: u64) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "UPDATE messages SET state = 'read'
                 WHERE peer = ?1 AND direction = 'in' AND state = 'delivered'
                   AND sent_at_ms <= ?2",
            )?
            .execute(params![&peer.0[..], column::int(up_to_ms, "up_to_ms")?])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_util::{message, user};
    use crate::store::{Direction, PeerRecord};
    use tincan_core::entropy::SeededEntropy;
    use tincan_core::{DeviceKey, Identity};

    #[test]
    fn a_revocation_is_kept_and_forgets_the_device() {
        let store = Store::open_in_memory().unwrap();
        let mut entropy = SeededEntropy::new(3);
        let alice = Identity::generate("alice", 1, &mut entropy);
        let key = alice.user.clone().unwrap();
        let desktop = key.certify(&DeviceKey::generate(&mut entropy), 2);
        store
            .upsert_peer(&PeerRecord {
                device: desktop.device_id(),
                user: alice.user_id(),
                name: "alice".into(),
                cert: desktop.to_bytes(),
                addrs: Vec::new(),
                last_seen_ms: 1,
            })
            .unwrap();
        store
            .upsert_own_device(&OwnDeviceRecord {
                device: desktop.device_id(),
                label: "desktop".into(),
                added_at_ms: 5,
            })
            .unwrap();
        assert_eq!(store.own_devices().unwrap().len(), 1);
        let r = DeviceRevocation::sign(&key, desktop.device_id(), 9);
        assert!(store.save_device_revocation(&r).unwrap());
        assert!(!store.save_device_revocation(&r).unwrap());
        assert_eq!(store.device_revocations().unwrap(), vec![r]);
        assert!(store.peers().unwrap().is_empty());
        assert!(store.own_devices().unwrap().is_empty());
    }

    #[test]
    fn read_up_to_marks_only_older_incoming_messages() {
        let store = Store::open_in_memory().unwrap();
        let bob = user(2);
        let old = message(1, Direction::In, 100);
        let new = message(2, Direction::In, 300);
        store.insert_message(&old).unwrap();
        store.insert_message(&new).unwrap();
        assert_eq!(store.message_count().unwrap(), 2);
        assert_eq!(store.latest_incoming_ms(&bob).unwrap(), Some(300));
        assert_eq!(store.mark_read_up_to(&bob, 200).unwrap(), 1);
        assert_eq!(store.mark_read_up_to(&bob, 200).unwrap(), 0);
        assert_eq!(store.latest_incoming_ms(&user(9)).unwrap(), None);
    }
}
