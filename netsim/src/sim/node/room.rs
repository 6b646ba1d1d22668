//! A simulated device's rooms: core's [`RoomLog`] per room, taking the
//! membership ops other devices send the way the daemon takes them
//! (`node/src/node/actor/rooms/inbound.rs`, `on_room_ops`).
//!
//! # The daemon's rules modelled here
//! - New ops of a known room are taken by core's rule
//!   ([`take_ops`](tincan_core::inbound::room::take_ops), the daemon's
//!   too): an op whose parents are missing is held by the log and not
//!   acknowledged, so its sender retries until it is taken; the envelope
//!   is refused when no op was new and one was refused; a member that
//!   takes someone else's add hands the newcomers the ops the add did not
//!   build on.
//! - The whole log of a room not known here (`log_len` > 0, we are being
//!   added) is gathered per (room, sender) until all its ops are in; until
//!   then, and for new ops that overtook it (`log_len` 0), the envelope
//!   gets no answer, so the sender's outbox retries it. A whole log is
//!   taken only if it adds this user and its fold lists this user as a
//!   member (or as removed).
//! - What the daemon stores survives a crash: the ops each log holds
//!   ([`RoomLog::ops_in_order`], saved on every change). Held ops and
//!   partly gathered logs are memory and are lost.
//!
//! Not modelled: the byte bounds on gathered logs (no simulated sender
//! comes near them); the admins' answer to a `Join` (the whole log to the
//! rejoiner: simulated users do not rejoin by themselves) and join links;
//! sender keys (a room message is a pairwise envelope here).

use std::collections::{BTreeMap, BTreeSet};

use tincan_core::inbound::room::{ops_batch_fits, take_ops, take_whole_log, OpsVerdict};
use tincan_core::room::{OpHash, RoomAction, RoomOp};
use tincan_core::wire::RefuseReason;
use tincan_core::{DeviceId, Opened, RoomError, RoomId, RoomLog, UserId};

use super::SimNode;

/// Why an opened envelope gets no receipt (the daemon's `Rejection`).
#[derive(Debug)]
pub(crate) enum Rejection {
    /// Never accepted: a refusal goes back and the sender stops.
    Refuse(RefuseReason),
    /// Not now: no answer, so the sender's outbox retries.
    Retry,
}

fn refuse(e: impl std::fmt::Display) -> Rejection {
    Rejection::Refuse(RefuseReason::Other(format!("room: {e}")))
}

/// The rooms of one device.
#[derive(Default)]
pub(crate) struct Rooms {
    /// Durable: every room's log (its held ops are memory).
    logs: BTreeMap<RoomId, RoomLog>,
    /// Memory: parts of whole logs of rooms not known here yet, by (room,
    /// sender device).
    incoming: BTreeMap<(RoomId, DeviceId), BTreeMap<OpHash, RoomOp>>,
    /// Ops for newcomers, until the simulation queues them.
    catch_up: Vec<(RoomId, Vec<UserId>, Vec<RoomOp>)>,
}

impl Rooms {
    /// The node crashed: what was only in memory is gone; each log is
    /// reloaded from the ops it stored.
    pub(crate) fn crash(&mut self) {
        self.incoming.clear();
        self.catch_up.clear();
        for log in self.logs.values_mut() {
            if log.pending_len() == 0 {
                // Reloading the same ops folds to the same log.
                continue;
            }
            match RoomLog::from_ops(log.ops_in_order()) {
                Ok((reloaded, _)) => *log = reloaded,
                Err(e) => {
                    tracing::warn!(room = %log.id(), error = %e, "stored room log is invalid")
                }
            }
        }
    }
}

impl SimNode {
    /// This device's log of `room`, if it has the room.
    pub fn room(&self, room: &RoomId) -> Option<&RoomLog> {
        self.rooms.logs.get(room)
    }

    /// Every room this device has.
    pub fn room_logs(&self) -> impl Iterator<Item = &RoomLog> {
        self.rooms.logs.values()
    }

    /// Whether this device's own log lists its user as a member of `room`
    /// (so it may post there, unless the room is disabled).
    pub fn is_room_member(&self, room: &RoomId) -> bool {
        self.room(room)
            .is_some_and(|log| log.state().members.contains(&self.user_id()))
    }

    /// Replaces this device's log of a room (tests: a device that missed
    /// ops).
    #[cfg(test)]
    pub(crate) fn set_room_log(&mut self, log: RoomLog) {
        self.rooms.logs.insert(log.id(), log);
    }

    /// A new room created here: its log, with the `Create` op.
    pub(crate) fn insert_room(&mut self, log: RoomLog) {
        self.rooms.logs.insert(log.id(), log);
    }

    /// Writes an op of this device on its log of `room` (the daemon's
    /// `author_op`); returns it with the members before it.
    pub(crate) fn author_room_op(
        &mut self,
        room: &RoomId,
        action: RoomAction,
        now: u64,
    ) -> Result<(RoomOp, BTreeSet<UserId>), RoomError> {
        let Some(log) = self.rooms.logs.get_mut(room) else {
            return Err(RoomError::NotAMember(self.identity.user_id()));
        };
        let before = log.state().members.clone();
        let op = log.author(&self.identity.device, &self.identity.cert, action, now)?;
        Ok((op, before))
    }

    /// New ops of a room, or (part of) a whole log: the daemon's
    /// `on_room_ops`.
    pub(crate) fn on_room_ops(
        &mut self,
        opened: &Opened,
        room: RoomId,
        ops: Vec<RoomOp>,
        log_len: u32,
    ) -> Result<(), Rejection> {
        if !ops_batch_fits(&ops, log_len) {
            return Err(Rejection::Refuse(RefuseReason::TooLarge));
        }
        let Some(log) = self.rooms.logs.get_mut(&room) else {
            return self.on_whole_log(opened, room, ops, log_len);
        };
        // Core's rule, as the daemon takes ops.
        let taken = take_ops(log, ops, &self.identity.user_id());
        for (users, missed) in taken.catch_up.iter().cloned() {
            self.rooms.catch_up.push((room, users, missed));
        }
        match taken.verdict() {
            OpsVerdict::Taken => Ok(()),
            OpsVerdict::Retry => Err(Rejection::Retry),
            OpsVerdict::Refused(e) => {
                tracing::debug!(node = self.idx.0, %room, error = %e, "room op refused");
                Err(refuse(e))
            }
        }
    }

    /// Ops to hand users added by someone who had not seen them (core's
    /// [`TakenOps::catch_up`](tincan_core::inbound::room::TakenOps)), for
    /// the simulation to queue from this device.
    pub(crate) fn take_catch_ups(&mut self) -> Vec<(RoomId, Vec<UserId>, Vec<RoomOp>)> {
        std::mem::take(&mut self.rooms.catch_up)
    }

    /// A part of the whole log of a room not known here.
    fn on_whole_log(
        &mut self,
        opened: &Opened,
        room: RoomId,
        ops: Vec<RoomOp>,
        log_len: u32,
    ) -> Result<(), Rejection> {
        // New ops that overtook the whole log: the sender retries them.
        if log_len == 0 {
            return Err(Rejection::Retry);
        }
        if ops.iter().any(|op| op.room_id() != Some(room)) {
            return Err(refuse(RoomError::WrongRoom));
        }
        let key = (room, opened.sender.device_id());
        let gathering = self.rooms.incoming.entry(key).or_default();
        for op in ops {
            if gathering.len() >= log_len as usize {
                break;
            }
            gathering.insert(op.hash(), op);
        }
        if gathering.len() < log_len as usize {
            return Err(Rejection::Retry);
        }
        let ops: Vec<RoomOp> = self
            .rooms
            .incoming
            .remove(&key)
            .map(|g| g.into_values().collect())
            .unwrap_or_default();
        let (log, errors) = take_whole_log(room, ops, &self.identity.user_id()).map_err(refuse)?;
        if let Some(e) = errors.first() {
            tracing::debug!(node = self.idx.0, %room, refused = errors.len(), first = %e, "room ops refused");
        }
        self.rooms.logs.insert(room, log);
        Ok(())
    }
}
