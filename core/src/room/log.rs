//! The membership log of one room: its ops, their total order, and the
//! state they fold to (see the order rule in [`crate::room`]).

mod catch_up;
mod fold;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use super::op::room_id_of;
use super::{
    validate_name, validate_topic, OpHash, RoomAction, RoomError, RoomId, RoomOp, MAX_ADD,
    MAX_MEMBERS, MAX_OPS, MAX_PENDING_OPS,
};
use crate::identity::{DeviceCert, DeviceKey};
use crate::UserId;

use fold::{by_depth, fold_region, Cursor, Step, View};

/// Most parents one op may name.
const MAX_PARENTS: usize = 64;
/// How many layers (causal depths) an op may lag behind the deepest op,
/// and how far below it every op must be its ancestor.
pub const LAG: u64 = 32;
/// Most ops of one causal depth (concurrent ops written on the same
/// heads): more than a room's members ever write at once.
pub const MAX_WIDTH: usize = 256;
/// Ops this many layers behind the deepest one are final.
const BASE_LAG: u64 = 3 * LAG;

/// A room as its log folds: who is in it, who administers it, its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomState {
    /// The room's name.
    pub name: String,
    /// The topic (empty when none is set).
    pub topic: String,
    /// Current members.
    pub members: BTreeSet<UserId>,
    /// Current admins (always members).
    pub admins: BTreeSet<UserId>,
    /// Users who left by themselves (they may join again).
    pub left: BTreeSet<UserId>,
    /// Users an admin removed.
    pub removed: BTreeSet<UserId>,
    /// Disabled rooms stay readable and take nothing new.
    pub disabled: bool,
    /// The key epoch: the hash of the last membership change applied.
    pub epoch: OpHash,
}

/// What [`RoomLog::handle_op`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Ops newly stored (this one and any held ones it released), in the
    /// order they were taken.
    pub new: Vec<OpHash>,
    /// The op waits for parents this log does not hold yet.
    pub pending: bool,
}

/// A room's signed, ordered membership log.
///
/// The total order is by (causal depth, hash): an op's depth is one more
/// than its deepest parent's. Two bounds keep every step's work bounded:
/// an op must not be [`LAG`] or more layers behind the deepest op, and it
/// must descend from every op [`LAG`] layers below it; a layer holds at
/// most [`MAX_WIDTH`] ops. Together they mean two ops [`LAG`] or more
/// layers apart are always ancestor and descendant, so ops more than
/// `3 * LAG` layers behind the deepest can never change again: they are
/// folded once into a base, and each new op refolds at most the ops
/// above it (none at all when it sorts last and revokes nothing).
#[derive(Clone, Debug)]
pub struct RoomLog {
    id: RoomId,
    genesis: OpHash,
    ops: BTreeMap<OpHash, RoomOp>,
    depth: BTreeMap<OpHash, u64>,
    layers: BTreeMap<u64, BTreeSet<OpHash>>,
    pending: BTreeMap<OpHash, RoomOp>,
    skipped: BTreeSet<OpHash>,
    heads: BTreeSet<OpHash>,
    epochs: BTreeMap<OpHash, BTreeSet<UserId>>,
    /// The fold of every op below `base_depth` (final).
    base: Cursor,
    base_depth: u64,
    /// The fold of every op.
    cursor: Cursor,
    work: u64,
}

impl RoomLog {
    /// A new room named `name`, created by `device`; returns the log and
    /// its `Create` op (to send to nobody yet: the creator is alone).
    pub fn create(
        device: &DeviceKey,
        cert: &DeviceCert,
        name: &str,
        at_ms: u64,
        entropy: &mut dyn crate::Entropy,
    ) -> Result<(RoomLog, RoomOp), RoomError> {
        let name = validate_name(name)?;
        let op = RoomOp::create(device, cert, name, at_ms, entropy);
        let log = RoomLog::from_genesis(op.clone())?;
        Ok((log, op))
    }

    /// A log holding only its verified `Create` op.
    fn from_genesis(op: RoomOp) -> Result<RoomLog, RoomError> {
        op.verify()?;
        let RoomAction::Create { name, .. } = &op.action else {
            return Err(RoomError::NoGenesis);
        };
        if op.room.is_some() || !op.parents.is_empty() {
            return Err(RoomError::NoGenesis);
        }
        let name = validate_name(name)?;
        let genesis = op.hash();
        let author = op.author_user();
        let room = RoomState {
            name,
            topic: String::new(),
            members: BTreeSet::from([author]),
            admins: BTreeSet::from([author]),
            left: BTreeSet::new(),
            removed: BTreeSet::new(),
            disabled: false,
            epoch: genesis,
        };
        let cursor = Cursor::genesis(room.clone());
        Ok(RoomLog {
            id: room_id_of(&genesis),
            genesis,
            ops: BTreeMap::from([(genesis, op)]),
            depth: BTreeMap::from([(genesis, 0)]),
            layers: BTreeMap::from([(0, BTreeSet::from([genesis]))]),
            pending: BTreeMap::new(),
            skipped: BTreeSet::new(),
            heads: BTreeSet::from([genesis]),
            epochs: BTreeMap::from([(genesis, room.members.clone())]),
            base: cursor.clone(),
            base_depth: 1,
            cursor,
            work: 0,
        })
    }

    /// Rebuilds a log from its ops in any order (a stored log, or the full
    /// log sent to a new member). Exactly one must be the genesis; every
    /// other op is checked like [`RoomLog::handle_op`], in the log's order
    /// (by causal depth). Ops that fail are dropped and returned with
    /// their errors.
    pub fn from_ops(ops: Vec<RoomOp>) -> Result<(RoomLog, Vec<RoomError>), RoomError> {
        if ops.len() > MAX_OPS {
            return Err(RoomError::TooMany("ops in a room log"));
        }
        let mut genesis = None;
        let mut rest = BTreeMap::new();
        for op in ops {
            if matches!(op.action, RoomAction::Create { .. }) && genesis.is_none() {
                genesis = Some(op);
            } else {
                rest.insert(op.hash(), op);
            }
        }
        let mut log = RoomLog::from_genesis(genesis.ok_or(RoomError::NoGenesis)?)?;
        let mut errors = Vec::new();
        for op in by_depth(&log.depth, rest) {
            if let Err(e) = log.handle_op(op) {
                errors.push(e);
            }
        }
        Ok((log, errors))
    }

    /// The room.
    pub fn id(&self) -> RoomId {
        self.id
    }

    /// The folded state.
    pub fn state(&self) -> &RoomState {
        &self.cursor.room
    }

    /// The hash of the `Create` op.
    pub fn genesis(&self) -> OpHash {
        self.genesis
    }

    /// Every stored op's hash in the total order (skipped ones included).
    pub fn order(&self) -> Vec<OpHash> {
        self.layers.values().flatten().copied().collect()
    }

    /// Whether the op is stored but had no effect at its place in the
    /// order (a concurrent op before it took the author's right, or a
    /// concurrent revocation of its author voids it).
    pub fn is_skipped(&self, hash: &OpHash) -> bool {
        self.skipped.contains(hash)
    }

    /// A stored op.
    pub fn op(&self, hash: &OpHash) -> Option<&RoomOp> {
        self.ops.get(hash)
    }

    /// Every stored op, in the total order.
    pub fn ops_in_order(&self) -> Vec<RoomOp> {
        self.layers
            .values()
            .flatten()
            .filter_map(|h| self.ops.get(h).cloned())
            .collect()
    }

    /// Ops that do not have every parent yet.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The ops no other op names as parent.
    pub fn heads(&self) -> Vec<OpHash> {
        self.heads.iter().copied().collect()
    }

    /// How many ops the log has visited while folding and checking, ever:
    /// a measure of work that does not depend on the machine's speed.
    pub fn work(&self) -> u64 {
        self.work
    }

    /// The members of `epoch`, if this log knows it.
    pub fn members_at(&self, epoch: &OpHash) -> Option<&BTreeSet<UserId>> {
        self.epochs.get(epoch)
    }

    /// Whether a room message of `user` in `epoch` is taken: the epoch is
    /// known, `user` was a member in it and still is, and the room is not
    /// disabled.
    pub fn check_sender(&self, epoch: &OpHash, user: &UserId) -> Result<(), RoomError> {
        let members = self.epochs.get(epoch).ok_or(RoomError::UnknownEpoch)?;
        if !members.contains(user) || !self.state().members.contains(user) {
            return Err(RoomError::SenderNotMember);
        }
        if self.state().disabled {
            return Err(RoomError::Disabled);
        }
        Ok(())
    }

    /// Writes, checks and applies a new op by `device` on top of the
    /// current heads (the deepest 64 of them). Nothing
    /// changes when it is refused.
    pub fn author(
        &mut self,
        device: &DeviceKey,
        cert: &DeviceCert,
        action: RoomAction,
        at_ms: u64,
    ) -> Result<RoomOp, RoomError> {
        let mut parents: Vec<OpHash> = self.heads.iter().copied().collect();
        if parents.len() > MAX_PARENTS {
            parents.sort_by_key(|h| std::cmp::Reverse(self.depth.get(h).copied()));
            parents.truncate(MAX_PARENTS);
            parents.sort();
        }
        let op = RoomOp::sign(device, cert, Some(self.id), parents, at_ms, action);
        check(self.state(), &op)?;
        self.handle_op(op.clone())?;
        Ok(op)
    }

    /// Takes an op from a peer: verifies the signature, that it is for this
    /// room, that it is within the log's bounds, and that its author had
    /// the right in the state its parents fold to. An op whose parents are
    /// missing is held (up to [`MAX_PENDING_OPS`]) until they arrive. A
    /// known op is a no-op.
    pub fn handle_op(&mut self, op: RoomOp) -> Result<Applied, RoomError> {
        let hash = op.hash();
        if self.ops.contains_key(&hash) || self.pending.contains_key(&hash) {
            return Ok(Applied::default());
        }
        op.verify()?;
        if matches!(op.action, RoomAction::Create { .. }) {
            return Err(RoomError::NotGenesis);
        }
        if op.room != Some(self.id) {
            return Err(RoomError::WrongRoom);
        }
        if op.parents.is_empty() || op.parents.len() > MAX_PARENTS {
            return Err(RoomError::MissingParents);
        }
        if self.ops.len() >= MAX_OPS {
            return Err(RoomError::TooMany("ops in a room log"));
        }
        if !op.parents.iter().all(|p| self.ops.contains_key(p)) {
            if self.pending.len() >= MAX_PENDING_OPS {
                return Err(RoomError::TooMany("ops waiting for their parents"));
            }
            self.pending.insert(hash, op);
            return Ok(Applied {
                new: Vec::new(),
                pending: true,
            });
        }
        self.take(hash, op)?;
        let mut applied = Applied {
            new: vec![hash],
            pending: false,
        };
        // Held ops whose parents are now all here, shallowest first.
        loop {
            let ready: BTreeMap<OpHash, RoomOp> = self
                .pending
                .iter()
                .filter(|(_, op)| op.parents.iter().all(|p| self.ops.contains_key(p)))
                .map(|(h, op)| (*h, op.clone()))
                .collect();
            if ready.is_empty() {
                break;
            }
            for op in by_depth(&self.depth, ready) {
                let h = op.hash();
                self.pending.remove(&h);
                if self.take(h, op).is_ok() {
                    applied.new.push(h);
                }
            }
        }
        Ok(applied)
    }

    /// Checks `op` (parents all known) against the bounds and its causal
    /// state, stores it and folds it in.
    fn take(&mut self, hash: OpHash, op: RoomOp) -> Result<(), RoomError> {
        let depth = 1 + op
            .parents
            .iter()
            .filter_map(|p| self.depth.get(p))
            .max()
            .copied()
            .unwrap_or(0);
        let max_depth = self.layers.keys().next_back().copied().unwrap_or(0);
        if depth + LAG <= max_depth {
            return Err(RoomError::TooFarBehind);
        }
        let layer = self.layers.get(&depth).map_or(0, BTreeSet::len);
        if layer >= MAX_WIDTH {
            return Err(RoomError::TooMany("concurrent ops in one layer of the log"));
        }
        let mut parents: Vec<OpHash> = op.parents.clone();
        parents.sort();
        parents.dedup();
        let on_heads = parents.len() == self.heads.len() && parents.iter().eq(self.heads.iter());
        let work = if on_heads {
            // Every stored op is an ancestor: the causal state is the state.
            check(self.state(), &op)?;
            0
        } else {
            self.check_causal(&parents, depth, &op)?
        };
        self.work += work;
        self.ops.insert(hash, op);
        self.depth.insert(hash, depth);
        self.layers.entry(depth).or_default().insert(hash);
        for p in &parents {
            self.heads.remove(p);
        }
        self.heads.insert(hash);
        let last = self
            .layers
            .iter()
            .next_back()
            .and_then(|(d, l)| l.last().map(|h| (*d, *h)));
        if last == Some((depth, hash)) && !self.behind() {
            self.fold_last(hash, depth);
        } else {
            self.refold();
        }
        Ok(())
    }

    /// Checks the depth invariant and the author's right for an op whose
    /// parents are not the heads; returns the work it took.
    fn check_causal(&self, parents: &[OpHash], depth: u64, op: &RoomOp) -> Result<u64, RoomError> {
        let view = self.view();
        let floor = self.base_depth.min(depth.saturating_sub(LAG));
        let ancestors = view.ancestors_above(parents, floor);
        if depth > LAG {
            let must = self.layers.get(&(depth - LAG)).into_iter().flatten();
            if must.clone().any(|h| !ancestors.contains(h)) {
                return Err(RoomError::TooFarBehind);
            }
        }
        let region: Vec<(u64, OpHash)> = self
            .layers
            .range(self.base_depth..)
            .flat_map(|(d, l)| l.iter().map(move |h| (*d, *h)))
            .filter(|(_, h)| ancestors.contains(h))
            .collect();
        let causal = fold_region(&view, &self.base, &region, u64::MAX);
        check(&causal.cursor.room, op)?;
        Ok(view.work.get())
    }

    /// Whether the base is far enough behind to move up.
    fn behind(&self) -> bool {
        let max_depth = self.layers.keys().next_back().copied().unwrap_or(0);
        max_depth.saturating_sub(BASE_LAG) >= self.base_depth + LAG
    }

    /// Folds an op that sorts after every other onto the state; refolds
    /// instead when it voids ops before it.
    fn fold_last(&mut self, hash: OpHash, depth: u64) {
        let view = View {
            ops: &self.ops,
            depth: &self.depth,
            work: Cell::new(1),
        };
        let Some(op) = self.ops.get(&hash) else {
            return;
        };
        let mut cursor = self.cursor.clone();
        let step = cursor.step(&view, hash, depth, op, LAG);
        self.work += view.work.get();
        match step {
            Step::Applied => {
                if cursor.room.epoch == hash {
                    self.epochs.insert(hash, cursor.room.members.clone());
                }
                self.cursor = cursor;
            }
            Step::Skipped => {
                self.skipped.insert(hash);
            }
            Step::Voids(_) => self.refold(),
        }
    }

    /// Refolds every op above the base, and moves the base up when the
    /// log has grown far enough past it.
    fn refold(&mut self) {
        let max_depth = self.layers.keys().next_back().copied().unwrap_or(0);
        let target = max_depth.saturating_sub(BASE_LAG).max(self.base_depth);
        let region: Vec<(u64, OpHash)> = self
            .layers
            .range(self.base_depth..)
            .flat_map(|(d, l)| l.iter().map(move |h| (*d, *h)))
            .collect();
        let view = self.view();
        let folded = fold_region(&view, &self.base, &region, target);
        self.work += view.work.get();
        for (_, h) in &region {
            self.skipped.remove(h);
            self.epochs.remove(h);
        }
        self.skipped.extend(folded.skipped);
        self.epochs.extend(folded.epochs);
        self.cursor = folded.cursor;
        if let (Some(split), true) = (folded.split, target > self.base_depth) {
            self.base = split;
            self.base_depth = target;
        }
    }

    fn view(&self) -> View<'_> {
        View {
            ops: &self.ops,
            depth: &self.depth,
            work: Cell::new(0),
        }
    }
}

/// Whether `op`'s author may make its change in `state`.
pub(super) fn check(state: &RoomState, op: &RoomOp) -> Result<(), RoomError> {
    let author = op.author_user();
    let member = state.members.contains(&author);
    let admin = state.admins.contains(&author);
    let need_admin = || {
        if !member {
            Err(RoomError::NotAMember(author))
        } else if !admin {
            Err(RoomError::NotAnAdmin(author))
        } else {
            Ok(())
        }
    };
    if state.disabled && !matches!(op.action, RoomAction::Leave) {
        return Err(RoomError::Disabled);
    }
    match &op.action {
        RoomAction::Create { .. } => Err(RoomError::NotGenesis),
        RoomAction::Add { users } => {
            need_admin()?;
            if users.len() > MAX_ADD {
                return Err(RoomError::TooMany("users in one add"));
            }
            let new: BTreeSet<&UserId> = users
                .iter()
                .filter(|u| !state.members.contains(u))
                .collect();
            if new.is_empty() {
                return match users.first() {
                    Some(u) => Err(RoomError::AlreadyMember(*u)),
                    None => Err(RoomError::NobodyToAdd),
                };
            }
            if state.members.len() + new.len() > MAX_MEMBERS {
                return Err(RoomError::TooMany("members (at most 1000)"));
            }
            Ok(())
        }
        RoomAction::Join => {
            if member {
                Err(RoomError::AlreadyMember(author))
            } else if !state.left.contains(&author) {
                Err(RoomError::NotInvited(author))
            } else {
                Ok(())
            }
        }
        RoomAction::Leave => {
            if member {
                Ok(())
            } else {
                Err(RoomError::NotAMember(author))
            }
        }
        RoomAction::Remove { user } => {
            need_admin()?;
            if *user == author {
                Err(RoomError::RemoveSelf)
            } else if !state.members.contains(user) && !state.left.contains(user) {
                // Removing one who left keeps them from joining again by
                // themself (and a removal concurrent with a leave wins).
                Err(RoomError::NotAMember(*user))
            } else {
                Ok(())
            }
        }
        RoomAction::Promote { user } => {
            need_admin()?;
            if !state.members.contains(user) {
                Err(RoomError::NotAMember(*user))
            } else if state.admins.contains(user) {
                Err(RoomError::AlreadyAdmin(*user))
            } else {
                Ok(())
            }
        }
        RoomAction::Demote { user } => {
            need_admin()?;
            if state.admins.contains(user) {
                Ok(())
            } else {
                Err(RoomError::NotAnAdmin(*user))
            }
        }
        RoomAction::SetTopic { topic } => {
            need_admin()?;
            validate_topic(topic).map(|_| ())
        }
        RoomAction::SetName { name } => {
            need_admin()?;
            validate_name(name).map(|_| ())
        }
        RoomAction::Disable => need_admin(),
        RoomAction::Rekey => {
            if member {
                Ok(())
            } else {
                Err(RoomError::NotAMember(author))
            }
        }
    }
}
