//! Rooms in the actor: the membership logs and sender keys of every room
//! this node knows, and the room requests.
//!
//! - A change (create, invite, leave, topic, admin, remove, disable, a
//!   rejoin) is a signed op appended with [`RoomLog::author`], stored
//!   with its membership line, and sent to every device of the members
//!   before and after it as [`Content::RoomOps`] in one pairwise-sealed
//!   envelope through the outbox; users it adds get the whole log.
//! - A room message is sealed once with this device's sender key of the
//!   room's current epoch ([`RoomEnvelope`]); the first send of an epoch
//!   draws the key and queues it ([`Content::RoomKey`]) to the epoch's
//!   member devices first. The message goes through the outbox with
//!   `to` = the member devices, so routing sends one copy per site.
//! - Join links: an admin's link carries a secret derived from their
//!   device key (a deterministic signature, so nothing is stored); the
//!   admin's node adds whoever presents it, while that admin still may.
//!
//! Incoming room content is handled in `rooms/inbound.rs`; sending
//! (sender keys, messages, typing) in `rooms/send.rs`; rejoining and join
//! links in `rooms/join.rs`; membership lines and views in
//! `rooms/lines.rs`.

mod inbound;
mod join;
mod lines;
mod send;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use tincan_core::inbound::room::gather::IncomingLogs;
use tincan_core::room::{OpHash, RoomAction, RoomOp, SenderKey};
use tincan_core::{Content, DeviceCert, DeviceId, MessageId, RateLimiter, RoomId, RoomLog, UserId};

use super::Actor;
use crate::event::{MessageView, RoomView};
use crate::keystore::OsEntropy;
use crate::node::NodeError;
use crate::store::{Direction, HistoryQuery, MessageRecord, RoomRecord, Store, StoreError};

/// A change of a room's membership log an admin or member asks for
/// (`room_invite`, `room_leave`, `room_topic`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RoomChange {
    Invite(Vec<String>),
    Leave,
    Topic(String),
    Rename(String),
    Admin(String),
    Remove(String),
    Disable,
}

/// At most one room typing notification per room this often (sending).
const TYPING_SEND_INTERVAL_MS: u64 = 3_000;
/// At most one room typing event per member device this often.
const TYPING_EVENT_INTERVAL_MS: u64 = 1_000;
/// Most ops one `RoomOps` envelope carries: a long log goes as several
/// (the receiver retries a part whose genesis has not arrived yet), so
/// every part fits the frame limit (an op is at most a few hundred bytes,
/// an `Add` of [`tincan_core::room::MAX_ADD`] users about 5 KiB).
const OPS_PER_ENVELOPE: usize = 32;
/// Most (room, device) pairs remembered from keys of rooms we do not have
/// yet.
const MAX_ANNOUNCED: usize = 4_096;

/// The rooms' part of the actor.
pub(super) struct RoomsState {
    logs: BTreeMap<RoomId, RoomLog>,
    created_at: BTreeMap<RoomId, u64>,
    /// Sender keys by (room, epoch, device).
    keys: HashMap<(RoomId, OpHash, DeviceId), SenderKey>,
    typing_out: RateLimiter<RoomId>,
    typing_in: RateLimiter<DeviceId>,
    /// Rooms not known here whose members already sent us their key: we
    /// are being added, so their messages wait (retry) for the log.
    announced: BTreeSet<(RoomId, DeviceId)>,
    /// Parts of whole logs of rooms not known here, gathered until all
    /// `log_len` ops are in (their senders retry every part until then,
    /// so losing this on a restart loses nothing); bounded.
    pub(super) incoming: IncomingLogs,
}

impl RoomsState {
    /// Loads every stored room log and sender key.
    pub(super) fn load(store: &Store) -> Result<Self, StoreError> {
        let mut state = RoomsState {
            logs: BTreeMap::new(),
            created_at: BTreeMap::new(),
            keys: HashMap::new(),
            typing_out: RateLimiter::new(TYPING_SEND_INTERVAL_MS),
            typing_in: RateLimiter::new(TYPING_EVENT_INTERVAL_MS),
            announced: BTreeSet::new(),
            incoming: IncomingLogs::default(),
        };
        for record in store.rooms()? {
            match RoomLog::from_ops(record.log) {
                Ok((log, errors)) if log.id() == record.id => {
                    if !errors.is_empty() {
                        tracing::warn!(room = %record.id, dropped = errors.len(), "stored room ops refused on load");
                    }
                    state.created_at.insert(log.id(), record.created_at_ms);
                    state.logs.insert(log.id(), log);
                }
                _ => tracing::warn!(room = %record.id, "stored room log is invalid; skipped"),
            }
        }
        for k in store.room_keys()? {
            state
                .keys
                .insert((k.room, OpHash(k.epoch), k.device), SenderKey(k.key));
        }
        Ok(state)
    }
}

impl Actor {
    /// Every room this node knows.
    pub(super) fn room_views(&self) -> Vec<RoomView> {
        self.rooms
            .logs
            .values()
            .map(|log| self.room_view(log))
            .collect()
    }

    /// A room's messages and membership lines, oldest first.
    pub(super) fn room_history(
        &self,
        room: &str,
        query: &HistoryQuery,
    ) -> Result<Vec<MessageView>, NodeError> {
        let id = self.resolve_room(room)?;
        let rows = self.store.room_history(&id, query)?;
        Ok(rows.iter().map(MessageView::from).collect())
    }

    /// A room by full id, unique id prefix (4+ characters) or unique name
    /// (case-insensitive).
    pub(super) fn resolve_room(&self, text: &str) -> Result<RoomId, NodeError> {
        let text = text.trim();
        if let Ok(id) = text.parse::<RoomId>() {
            return self
                .rooms
                .logs
                .contains_key(&id)
                .then_some(id)
                .ok_or_else(|| NodeError::UnknownRoom(text.into()));
        }
        let lower = text.to_lowercase();
        let by_name: Vec<RoomId> = self
            .rooms
            .logs
            .values()
            .filter(|l| l.state().name.to_lowercase() == lower)
            .map(RoomLog::id)
            .collect();
        let by_prefix: Vec<RoomId> = if lower.len() >= 4 {
            self.rooms
                .logs
                .keys()
                .filter(|id| id.to_string().starts_with(&lower))
                .copied()
                .collect()
        } else {
            Vec::new()
        };
        let found = if by_name.is_empty() {
            by_prefix
        } else {
            by_name
        };
        match found.as_slice() {
            [id] => Ok(*id),
            [] => Err(NodeError::UnknownRoom(text.into())),
            _ => Err(NodeError::AmbiguousRoom(text.into())),
        }
    }

    pub(super) fn room_create(
        &mut self,
        name: &str,
        with: &[String],
    ) -> Result<RoomView, NodeError> {
        let users = self.resolve_members(with)?;
        let now = self.now;
        let (log, op) = RoomLog::create(
            &self.identity.device,
            &self.identity.cert,
            name,
            now,
            &mut OsEntropy,
        )?;
        let id = log.id();
        tracing::info!(room = %id, "room created");
        self.rooms.created_at.insert(id, now);
        self.rooms.logs.insert(id, log);
        self.persist_room(id, &[op.hash()])?;
        // Our other devices learn of it too.
        self.distribute_ops(id, &[op], &BTreeSet::new())?;
        if !users.is_empty() {
            self.author_op(id, RoomAction::Add { users })?;
        }
        self.room_view_of(id)
    }

    fn resolve_members(&self, names: &[String]) -> Result<Vec<UserId>, NodeError> {
        let mut users = Vec::new();
        for name in names
            .iter()
            .flat_map(|n| n.split(','))
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            let user = self.book.resolve(name)?;
            if self.is_blocked(&user) {
                return Err(NodeError::Blocked(self.book.display_name(&user)));
            }
            if user != self.identity.user_id() && self.user_certs(&user).is_empty() {
                return Err(NodeError::NoDevices(self.book.display_name(&user)));
            }
            if !users.contains(&user) {
                users.push(user);
            }
        }
        Ok(users)
    }

    pub(super) fn room_change(
        &mut self,
        room: &str,
        change: RoomChange,
    ) -> Result<RoomView, NodeError> {
        let id = self.resolve_room(room)?;
        let one = |actor: &Self, name: &str| -> Result<UserId, NodeError> {
            actor.book.resolve(name).or_else(|e| {
                name.trim()
                    .parse::<UserId>()
                    .map_err(|_| NodeError::from(e))
            })
        };
        let action = match change {
            RoomChange::Invite(users) => {
                let users = self.resolve_members(&users)?;
                if users.is_empty() {
                    return Err(tincan_core::RoomError::NobodyToAdd.into());
                }
                RoomAction::Add { users }
            }
            RoomChange::Leave => RoomAction::Leave,
            RoomChange::Topic(topic) => RoomAction::SetTopic {
                topic: tincan_core::room::validate_topic(&topic)?,
            },
            RoomChange::Rename(name) => RoomAction::SetName {
                name: tincan_core::room::validate_name(&name)?,
            },
            RoomChange::Admin(user) => RoomAction::Promote {
                user: one(self, &user)?,
            },
            RoomChange::Remove(user) => RoomAction::Remove {
                user: one(self, &user)?,
            },
            RoomChange::Disable => RoomAction::Disable,
        };
        self.author_op(id, action)?;
        self.room_view_of(id)
    }

    /// Writes an op of ours, stores it with its line and sends it.
    /// A change refused because of who we are says so with the room's
    /// name, not our raw id.
    pub(super) fn author_op(&mut self, id: RoomId, action: RoomAction) -> Result<(), NodeError> {
        let log = self
            .rooms
            .logs
            .get_mut(&id)
            .ok_or_else(|| NodeError::UnknownRoom(id.to_string()))?;
        let before = log.state().members.clone();
        let me = self.identity.user_id();
        let op = log
            .author(&self.identity.device, &self.identity.cert, action, self.now)
            .map_err(|e| refusal(e, me, &log.state().name))?;
        tracing::info!(room = %id, op = ?op.hash(), "room op");
        self.persist_room(id, &[op.hash()])?;
        self.distribute_ops(id, &[op], &before)?;
        Ok(())
    }

    /// Starts a new key epoch in every room this user is in (not
    /// disabled): one of their devices was removed.
    pub(super) fn rekey_rooms(&mut self) {
        let me = self.identity.user_id();
        let rooms: Vec<RoomId> = self
            .rooms
            .logs
            .values()
            .filter(|l| l.state().members.contains(&me) && !l.state().disabled)
            .map(RoomLog::id)
            .collect();
        for room in rooms {
            if let Err(e) = self.author_op(room, RoomAction::Rekey) {
                tracing::warn!(%room, error = %e, "cannot start a new room key epoch");
            }
        }
    }

    /// Sends new ops to every device of the members before (`before`) and
    /// now (our other devices included); users who are new get the whole
    /// log instead.
    pub(super) fn distribute_ops(
        &mut self,
        id: RoomId,
        ops: &[RoomOp],
        before: &BTreeSet<UserId>,
    ) -> Result<(), NodeError> {
        let Some(log) = self.rooms.logs.get(&id) else {
            return Ok(());
        };
        let now_members = log.state().members.clone();
        let me = self.identity.user_id();
        let new: BTreeSet<UserId> = now_members
            .difference(before)
            .filter(|u| **u != me)
            .copied()
            .collect();
        let old: BTreeSet<UserId> = before
            .union(&now_members)
            .filter(|u| !new.contains(u))
            .copied()
            .collect();
        let full = log.ops_in_order();
        let old_certs: Vec<DeviceCert> = old.iter().flat_map(|u| self.user_certs(u)).collect();
        let new_certs: Vec<DeviceCert> = new.iter().flat_map(|u| self.user_certs(u)).collect();
        self.send_ops(id, ops, &old_certs, 0)?;
        let log_len = u32::try_from(full.len()).unwrap_or(u32::MAX);
        self.send_ops(id, &full, &new_certs, log_len)
    }

    /// Queues `ops` for `certs` in envelopes of [`OPS_PER_ENVELOPE`] ops;
    /// `log_len` is the log's length when `ops` is the whole log, else 0.
    pub(super) fn send_ops(
        &mut self,
        id: RoomId,
        ops: &[RoomOp],
        certs: &[DeviceCert],
        log_len: u32,
    ) -> Result<(), NodeError> {
        if certs.is_empty() {
            return Ok(());
        }
        for part in ops.chunks(OPS_PER_ENVELOPE) {
            let content = Content::RoomOps {
                room: id,
                ops: part.to_vec(),
                log_len,
            };
            self.queue_control_content(&content, certs)?;
        }
        Ok(())
    }

    /// Remembers that a member of a room we do not know yet sent its key.
    pub(super) fn note_announced(&mut self, room: RoomId, device: DeviceId) {
        if self.rooms.announced.len() >= MAX_ANNOUNCED {
            self.rooms.announced.clear();
        }
        self.rooms.announced.insert((room, device));
    }

    /// Queues sealed control content (no history row) for `certs`, in
    /// envelopes of at most the recipient limit.
    pub(super) fn queue_control_content(
        &mut self,
        content: &Content,
        certs: &[DeviceCert],
    ) -> Result<(), NodeError> {
        let now = self.now;
        let me = self.identity.user_id();
        for chunk in certs.chunks(tincan_core::envelope::MAX_RECIPIENTS) {
            let id = MessageId::random(&mut OsEntropy);
            self.queue_envelope(id, now, content, me, chunk, &[])?;
        }
        Ok(())
    }

    /// The certificates of `user`'s devices (not this device).
    pub(super) fn user_certs(&self, user: &UserId) -> Vec<DeviceCert> {
        // Every device of theirs this node knows and nobody removed.
        self.device_certs_of(user)
    }

    /// Stores a room's log and fold, and the membership lines of `new` ops.
    pub(super) fn persist_room(&mut self, id: RoomId, new: &[OpHash]) -> Result<(), NodeError> {
        let Some(log) = self.rooms.logs.get(&id) else {
            return Ok(());
        };
        let now = self.now;
        let lines: Vec<MessageRecord> = new
            .iter()
            .filter(|h| !log.is_skipped(h))
            .filter_map(|h| log.op(h))
            .filter_map(|op| self.room_line(id, op, now))
            .collect();
        let state = log.state();
        let record = RoomRecord {
            id,
            name: state.name.clone(),
            topic: state.topic.clone(),
            members: state.members.iter().map(ToString::to_string).collect(),
            admins: state.admins.iter().map(ToString::to_string).collect(),
            disabled: state.disabled,
            log: log.ops_in_order(),
            created_at_ms: self.rooms.created_at.get(&id).copied().unwrap_or(now),
            updated_at_ms: now,
        };
        self.store.save_room(&record, &lines)?;
        for line in &lines {
            if line.direction == Direction::In {
                self.emit(crate::event::NodeEvent::MessageReceived {
                    message: MessageView::from(line),
                    from_name: self.user_name(&line.from_user),
                });
            }
        }
        Ok(())
    }

    /// A room's current members (none when this node has no such room).
    pub(super) fn room_members(&self, room: &RoomId) -> Vec<UserId> {
        self.rooms
            .logs
            .get(room)
            .map(|l| l.state().members.iter().copied().collect())
            .unwrap_or_default()
    }

    /// A room's name, or its id when this node has no such room.
    pub(super) fn room_name(&self, room: &RoomId) -> String {
        self.rooms
            .logs
            .get(room)
            .map(|l| l.state().name.clone())
            .unwrap_or_else(|| room.to_string())
    }

    /// A display name, ours included.
    pub(super) fn user_name(&self, user: &UserId) -> String {
        if *user == self.identity.user_id() {
            self.identity.name.clone()
        } else {
            self.book.display_name(user)
        }
    }

    /// Every room's history for `tincan export`.
    pub(super) fn export_rooms(&self) -> Result<Vec<crate::export::ExportRoom>, NodeError> {
        let mut rooms: Vec<&RoomLog> = self.rooms.logs.values().collect();
        rooms.sort_by_key(|l| (self.rooms.created_at.get(&l.id()).copied(), l.id()));
        rooms
            .into_iter()
            .map(|log| {
                let view = self.room_view(log);
                let messages = self
                    .store
                    .room_history(&log.id(), &HistoryQuery::default())?
                    .iter()
                    .map(MessageView::from)
                    .collect();
                Ok(crate::export::ExportRoom {
                    id: view.id,
                    name: view.name,
                    members: view.members,
                    messages,
                })
            })
            .collect()
    }

    fn room_view_of(&self, id: RoomId) -> Result<RoomView, NodeError> {
        self.rooms
            .logs
            .get(&id)
            .map(|log| self.room_view(log))
            .ok_or_else(|| NodeError::UnknownRoom(id.to_string()))
    }
}

/// A room's refusal of this user's own change, in words about them.
pub(super) fn refusal(e: tincan_core::RoomError, me: UserId, room: &str) -> NodeError {
    match e {
        tincan_core::RoomError::NotAnAdmin(u) if u == me => NodeError::NotRoomAdmin(room.into()),
        tincan_core::RoomError::NotAMember(u) if u == me => NodeError::NotRoomMember(room.into()),
        other => other.into(),
    }
}
