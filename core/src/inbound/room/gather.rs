//! Parts of whole logs of rooms this node does not know yet (we are being
//! added), gathered until all `log_len` ops are in. A peer can make us
//! hold these before any room state says who they are, so every part is
//! checked first (each op's signature, its room, its size) and what is
//! held is bounded per sender and in total, counted in encoded bytes:
//! a sender outside our organisation gets little ([`STRANGER_BYTES`]),
//! one inside enough for a full log ([`MEMBER_BYTES`]), and everybody
//! together [`TOTAL_BYTES`]. When a bound is hit the oldest gathering
//! (of that sender, or of anybody for the total) is dropped: its sender
//! retries every part until the log is whole, so nothing durable is
//! lost.

use std::collections::BTreeMap;

use crate::room::{OpHash, RoomOp, MAX_OPS};
use crate::{DeviceId, RoomError, RoomId};

/// Most bytes of ops held for one sender outside the organisation (a
/// small room's log).
pub const STRANGER_BYTES: usize = 512 * 1024;
/// Most bytes of ops held for one sender of the organisation: a full
/// log of [`MAX_OPS`] ordinary ops (about 600 bytes each with the
/// author's certificate) fits.
pub const MEMBER_BYTES: usize = 16 * 1024 * 1024;
/// Most bytes of ops held for everybody together: a few full logs at
/// once (an office adding one user to many rooms sends them in turn).
pub const TOTAL_BYTES: usize = 48 * 1024 * 1024;
/// Most logs gathered at once for one sender.
const ROOMS_PER_SENDER: usize = 4;
/// Most ops of one log part (the sender splits a log in parts of 32).
const MAX_PART_OPS: usize = 256;

/// Why a part was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PartError {
    /// An op does not verify or belongs to another room.
    #[error("{0}")]
    Op(RoomError),
    /// The part or the log is larger than any log may be.
    #[error("room log part too large")]
    TooLarge,
    /// The part alone is more than this sender may have held.
    #[error("room log larger than this sender may send")]
    OverBudget,
}

/// One log being gathered.
#[derive(Debug, Default)]
struct Gathering {
    ops: BTreeMap<OpHash, RoomOp>,
    bytes: usize,
    /// When it started (a counter), for eviction.
    seq: u64,
}

/// The bounds, in encoded bytes of ops.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Per sender outside the organisation.
    pub stranger: usize,
    /// Per sender of the organisation.
    pub member: usize,
    /// For everybody together.
    pub total: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            stranger: STRANGER_BYTES,
            member: MEMBER_BYTES,
            total: TOTAL_BYTES,
        }
    }
}

/// Every log being gathered, by (room, sender).
#[derive(Debug, Default)]
pub struct IncomingLogs {
    logs: BTreeMap<(RoomId, DeviceId), Gathering>,
    total: usize,
    next: u64,
    limits: Limits,
}

impl IncomingLogs {
    /// Gathers within other bounds than the defaults.
    pub fn with_limits(limits: Limits) -> Self {
        IncomingLogs {
            limits,
            ..IncomingLogs::default()
        }
    }

    /// Checks and adds a part from `sender` (of the organisation or not);
    /// returns the whole log once all `log_len` ops are in (and forgets
    /// it), else `None`.
    pub fn add(
        &mut self,
        room: RoomId,
        sender: DeviceId,
        member: bool,
        ops: Vec<RoomOp>,
        log_len: u32,
    ) -> Result<Option<Vec<RoomOp>>, PartError> {
        let log_len = log_len as usize;
        if ops.len() > MAX_PART_OPS || log_len > MAX_OPS || log_len == 0 {
            return Err(PartError::TooLarge);
        }
        let mut part = Vec::with_capacity(ops.len());
        for op in ops {
            op.verify().map_err(PartError::Op)?;
            if op.room_id() != Some(room) {
                return Err(PartError::Op(RoomError::WrongRoom));
            }
            let size = postcard::to_allocvec(&op).map_or(usize::MAX, |b| b.len());
            part.push((op.hash(), op, size));
        }
        let budget = if member {
            self.limits.member
        } else {
            self.limits.stranger
        };
        let key = (room, sender);
        let new: usize = part
            .iter()
            .filter(|(h, _, _)| !self.logs.get(&key).is_some_and(|g| g.ops.contains_key(h)))
            .map(|(_, _, size)| *size)
            .sum();
        if new > budget {
            return Err(PartError::OverBudget);
        }
        // This sender's bound: drop their oldest other gatherings.
        while self.sender_bytes(sender) + new > budget
            || (!self.logs.contains_key(&key) && self.sender_rooms(sender) >= ROOMS_PER_SENDER)
        {
            let Some(oldest) = self.oldest(|k| k.1 == sender && *k != key) else {
                // Only this very gathering is left: start it again.
                self.drop_log(&key);
                break;
            };
            self.drop_log(&oldest);
        }
        // The total bound: drop the oldest gatherings of anybody.
        while self.total + new > self.limits.total {
            let Some(oldest) = self.oldest(|k| *k != key).or_else(|| self.oldest(|_| true)) else {
                break;
            };
            self.drop_log(&oldest);
        }
        let seq = self.next;
        let gathering = self.logs.entry(key).or_insert_with(|| Gathering {
            seq,
            ..Gathering::default()
        });
        self.next += 1;
        for (hash, op, size) in part {
            if gathering.ops.len() >= log_len {
                break;
            }
            if gathering.ops.insert(hash, op).is_none() {
                gathering.bytes += size;
                self.total += size;
            }
        }
        if gathering.ops.len() < log_len {
            return Ok(None);
        }
        Ok(self.drop_log(&key).map(|g| g.ops.into_values().collect()))
    }

    /// Bytes held in total.
    pub fn total_bytes(&self) -> usize {
        self.total
    }

    /// Bytes held for `sender`.
    pub fn sender_bytes(&self, sender: DeviceId) -> usize {
        self.logs
            .iter()
            .filter(|((_, s), _)| *s == sender)
            .map(|(_, g)| g.bytes)
            .sum()
    }

    fn sender_rooms(&self, sender: DeviceId) -> usize {
        self.logs.keys().filter(|(_, s)| *s == sender).count()
    }

    fn oldest(&self, pick: impl Fn(&(RoomId, DeviceId)) -> bool) -> Option<(RoomId, DeviceId)> {
        self.logs
            .iter()
            .filter(|(k, _)| pick(k))
            .min_by_key(|(_, g)| g.seq)
            .map(|(k, _)| *k)
    }

    fn drop_log(&mut self, key: &(RoomId, DeviceId)) -> Option<Gathering> {
        let gathering = self.logs.remove(key)?;
        self.total -= gathering.bytes;
        Some(gathering)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;
    use crate::room::RoomAction;
    use crate::{Identity, RoomLog};

    /// A room of `who` with `n` ops (the genesis and topics).
    fn log_of(who: &Identity, n: usize, seed: u64) -> (RoomId, Vec<RoomOp>) {
        let (mut log, _) = RoomLog::create(
            &who.device,
            &who.cert,
            "R",
            1,
            &mut SeededEntropy::new(seed),
        )
        .unwrap();
        for i in 1..n {
            let topic = RoomAction::SetTopic {
                topic: "x".repeat(1000),
            };
            log.author(&who.device, &who.cert, topic, i as u64).unwrap();
        }
        (log.id(), log.ops_in_order())
    }

    fn person(seed: u64) -> Identity {
        Identity::generate("p", 1, &mut SeededEntropy::new(seed))
    }

    #[test]
    fn parts_are_checked_before_they_are_held() {
        let (ann, eve) = (person(1), person(2));
        let mut logs = IncomingLogs::default();
        let (room, mut ops) = log_of(&ann, 3, 1);
        // A forged op (tampered after signing) is refused, nothing held.
        ops[1].at_ms += 1;
        let err = logs.add(room, eve.device_id(), false, ops.clone(), 3);
        assert_eq!(err, Err(PartError::Op(RoomError::BadSignature)));
        // An op of another room.
        let (_, other) = log_of(&ann, 2, 2);
        let err = logs.add(room, eve.device_id(), false, other, 3);
        assert_eq!(err, Err(PartError::Op(RoomError::WrongRoom)));
        assert_eq!(logs.total_bytes(), 0);
        // Whole and valid: handed back once complete.
        let (room, ops) = log_of(&ann, 3, 1);
        assert_eq!(
            logs.add(room, eve.device_id(), false, ops[..2].to_vec(), 3),
            Ok(None)
        );
        let whole = logs.add(room, eve.device_id(), false, ops[2..].to_vec(), 3);
        assert_eq!(whole.unwrap().map(|o| o.len()), Some(3));
        assert_eq!(logs.total_bytes(), 0, "nothing left once handed back");
    }

    #[test]
    fn a_stranger_gets_a_tight_bound_and_a_member_a_full_log() {
        let (eve, ann) = (person(2), person(1));
        let mut logs = IncomingLogs::default();
        // ~1,400 bytes per op: a stranger's 600-op log never fits.
        let (room, ops) = log_of(&eve, 600, 3);
        for part in ops.chunks(32) {
            let taken = logs.add(room, eve.device_id(), false, part.to_vec(), 600);
            assert!(
                matches!(taken, Ok(None) | Err(PartError::OverBudget)),
                "{taken:?}"
            );
            assert!(logs.sender_bytes(eve.device_id()) <= STRANGER_BYTES);
        }
        assert!(logs.total_bytes() <= STRANGER_BYTES);
        // The same log from a member of the organisation is gathered.
        let mut whole = None;
        for part in ops.chunks(32) {
            whole = logs
                .add(room, ann.device_id(), true, part.to_vec(), 600)
                .unwrap();
        }
        assert_eq!(whole.map(|o| o.len()), Some(600));
    }

    #[test]
    fn the_total_bound_drops_the_oldest_gathering() {
        let ann = person(1);
        let (room, ops) = log_of(&ann, 10, 4);
        let size = |ops: &[RoomOp]| -> usize {
            ops.iter()
                .map(|op| postcard::to_allocvec(op).unwrap().len())
                .sum()
        };
        let nine = size(&ops[..9]);
        // Room for three senders' nine ops each, not four.
        let mut logs = IncomingLogs::with_limits(Limits {
            stranger: nine,
            member: nine * 2,
            total: nine * 3 + nine / 2,
        });
        for i in 0..4u8 {
            let device = DeviceId([i; 20]);
            assert_eq!(
                logs.add(room, device, true, ops[..9].to_vec(), 10),
                Ok(None)
            );
            assert!(logs.total_bytes() <= nine * 3 + nine / 2);
        }
        assert_eq!(
            logs.sender_bytes(DeviceId([0; 20])),
            0,
            "the oldest dropped"
        );
        assert_eq!(logs.sender_bytes(DeviceId([1; 20])), nine);
        let whole = logs.add(room, DeviceId([3; 20]), true, ops[9..].to_vec(), 10);
        assert_eq!(whole.unwrap().map(|o| o.len()), Some(10));
        // The first sender retries from the start and completes.
        let mut whole = None;
        for part in ops.chunks(5) {
            whole = logs
                .add(room, DeviceId([0; 20]), true, part.to_vec(), 10)
                .unwrap();
        }
        assert_eq!(whole.map(|o| o.len()), Some(10));
    }
}
