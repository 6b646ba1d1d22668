//! Rooms (migration 9): the signed membership log of every room this node
//! knows, its fold (name, topic, members, admins, disabled) for
//! inspection, and the sender keys of every epoch. Room messages and
//! membership lines are rows of `messages` with `room` set.

use rusqlite::params;
use tincan_core::room::RoomOp;
use tincan_core::{DeviceId, RoomId};

use super::{column, messages, MessageRecord, Store, StoreError};

/// A stored room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomRecord {
    /// The room.
    pub id: RoomId,
    /// Its name (from the log).
    pub name: String,
    /// Its topic (from the log).
    pub topic: String,
    /// Member user ids (from the log).
    pub members: Vec<String>,
    /// Admin user ids (from the log).
    pub admins: Vec<String>,
    /// Disabled (from the log).
    pub disabled: bool,
    /// Every signed op, in the log's order.
    pub log: Vec<RoomOp>,
    /// When this node first stored it.
    pub created_at_ms: u64,
    /// When it last changed.
    pub updated_at_ms: u64,
}

/// One stored sender key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomKeyRecord {
    /// The room.
    pub room: RoomId,
    /// The epoch (an op hash).
    pub epoch: [u8; 32],
    /// The device whose key it is.
    pub device: DeviceId,
    /// The key.
    pub key: [u8; 32],
}

fn room_id(bytes: &[u8]) -> Result<RoomId, StoreError> {
    <[u8; 16]>::try_from(bytes)
        .map(RoomId)
        .map_err(|_| StoreError::Corrupt("rooms.id".into()))
}

impl Store {
    /// Stores a room (insert or update) together with new room lines
    /// (membership changes; known ones are skipped), in one transaction.
    pub fn save_room(&self, room: &RoomRecord, lines: &[MessageRecord]) -> Result<(), StoreError> {
        let log = postcard::to_allocvec(&room.log)
            .map_err(|e| StoreError::Corrupt(format!("room log does not encode: {e}")))?;
        let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        let tx = self.write_tx()?;
        tx.prepare_cached(
            "INSERT INTO rooms (id, name, topic, members, admins, disabled, log,
                                created_at_ms, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (id) DO UPDATE SET name = ?2, topic = ?3, members = ?4,
                 admins = ?5, disabled = ?6, log = ?7, updated_at_ms = ?9",
        )?
        .execute(params![
            &room.id.0[..],
            room.name,
            room.topic,
            json(&room.members),
            json(&room.admins),
            i64::from(room.disabled),
            log,
            column::int(room.created_at_ms, "created_at_ms")?,
            column::int(room.updated_at_ms, "updated_at_ms")?,
        ])?;
        for line in lines {
            messages::insert_ignoring_duplicates(&tx, line)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every stored room, oldest first. Rows that do not decode are
    /// skipped with a warning.
    pub fn rooms(&self) -> Result<Vec<RoomRecord>, StoreError> {
        type Raw = (
            Vec<u8>,
            String,
            String,
            String,
            String,
            i64,
            Vec<u8>,
            i64,
            i64,
        );
        let raws = self
            .conn
            .prepare_cached(
                "SELECT id, name, topic, members, admins, disabled, log, created_at_ms,
                        updated_at_ms
                 FROM rooms ORDER BY created_at_ms, id",
            )?
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<Raw>>>()?;
        Ok(column::decode_all(raws, "rooms", |raw: Raw| {
            let corrupt = |what: &str| StoreError::Corrupt(format!("rooms.{what}"));
            Ok(RoomRecord {
                id: room_id(&raw.0)?,
                name: raw.1,
                topic: raw.2,
                members: serde_json::from_str(&raw.3).map_err(|_| corrupt("members"))?,
                admins: serde_json::from_str(&raw.4).map_err(|_| corrupt("admins"))?,
                disabled: raw.5 != 0,
                log: postcard::from_bytes(&raw.6).map_err(|_| corrupt("log"))?,
                created_at_ms: column::unsigned(raw.7, "rooms.created_at_ms")?,
                updated_at_ms: column::unsigned(raw.8, "rooms.updated_at_ms")?,
            })
        }))
    }

    /// Stores a sender key (the first one stored for its triple stays).
    pub fn save_room_key(&self, key: &RoomKeyRecord) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO room_keys (room, epoch, device, key) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                &key.room.0[..],
                &key.epoch[..],
                &key.device.0[..],
                &key.key[..]
            ])?;
        Ok(())
    }

    /// Every stored sender key.
    pub fn room_keys(&self) -> Result<Vec<RoomKeyRecord>, StoreError> {
        let raws = self
            .conn
            .prepare_cached("SELECT room, epoch, device, key FROM room_keys")?
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(column::decode_all(
            raws,
            "room_keys",
            |(room, epoch, device, key)| {
                let bytes32 = |b: &[u8], what: &str| {
                    <[u8; 32]>::try_from(b)
                        .map_err(|_| StoreError::Corrupt(format!("room_keys.{what}")))
                };
                Ok(RoomKeyRecord {
                    room: room_id(&room)?,
                    epoch: bytes32(&epoch, "epoch")?,
                    device: column::device(&device, "room_keys.device")?,
                    key: bytes32(&key, "key")?,
                })
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_util::{message, temp_store};
    use crate::store::{Direction, HistoryQuery};
    use tincan_core::entropy::SeededEntropy;
    use tincan_core::{Identity, RoomLog};

    #[test]
    fn rooms_keys_and_room_lines_survive_reopening() {
        let (dir, store) = temp_store();
        let ann = Identity::generate("ann", 1, &mut SeededEntropy::new(1));
        let (log, _) =
            RoomLog::create(&ann.device, &ann.cert, "Ops", 5, &mut SeededEntropy::new(2)).unwrap();
        let record = RoomRecord {
            id: log.id(),
            name: "Ops".into(),
            topic: String::new(),
            members: vec![ann.user_id().to_string()],
            admins: vec![ann.user_id().to_string()],
            disabled: false,
            log: log.ops_in_order(),
            created_at_ms: 5,
            updated_at_ms: 5,
        };
        let mut line = message(1, Direction::In, 10);
        line.room = Some(log.id());
        line.system = true;
        store.save_room(&record, &[line.clone()]).unwrap();
        store.save_room(&record, &[line.clone()]).unwrap();
        let key = RoomKeyRecord {
            room: log.id(),
            epoch: log.state().epoch.0,
            device: ann.device_id(),
            key: [7; 32],
        };
        store.save_room_key(&key).unwrap();
        // A room row is not part of the 1:1 conversation with its author.
        let mut dm = message(2, Direction::In, 11);
        dm.text = "private".into();
        store.insert_message(&dm).unwrap();
        drop(store);
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        assert_eq!(store.rooms().unwrap(), vec![record]);
        assert_eq!(store.room_keys().unwrap(), vec![key]);
        let lines = store
            .room_history(&log.id(), &HistoryQuery::default())
            .unwrap();
        assert_eq!(lines, vec![line], "stored once");
        let dms = store.history(&dm.peer, &HistoryQuery::default()).unwrap();
        assert_eq!(dms, vec![dm]);
    }
}
