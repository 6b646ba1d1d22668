//! The membership log of one room: its ops, their total order, and the
//! state they fold to (see the order rule in [`crate::room`]).

use std::collections::{BTreeMap, BTreeSet};

use super::op::room_id_of;
use super::{
    validate_name, validate_topic, OpHash, RoomAction, RoomError, RoomId, RoomOp, MAX_ADD,
    MAX_MEMBERS, MAX_OPS, MAX_PENDING_OPS,
};
use crate::identity::{DeviceCert, DeviceKey};
use crate::UserId;

/// Most parents one op may name.
const MAX_PARENTS: usize = 64;

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
#[derive(Clone, Debug)]
pub struct RoomLog {
    id: RoomId,
    genesis: OpHash,
    ops: BTreeMap<OpHash, RoomOp>,
    pending: BTreeMap<OpHash, RoomOp>,
    order: Vec<OpHash>,
    skipped: BTreeSet<OpHash>,
    heads: Vec<OpHash>,
    state: RoomState,
    epochs: BTreeMap<OpHash, BTreeSet<UserId>>,
}

/// The result of folding a set of ops.
struct Folded {
    order: Vec<OpHash>,
    skipped: BTreeSet<OpHash>,
    heads: Vec<OpHash>,
    state: RoomState,
    epochs: BTreeMap<OpHash, BTreeSet<UserId>>,
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
        validate_name(name)?;
        let genesis = op.hash();
        let mut ops = BTreeMap::new();
        ops.insert(genesis, op);
        let folded = fold(&ops, genesis, None);
        Ok(RoomLog {
            id: room_id_of(&genesis),
            genesis,
            ops,
            pending: BTreeMap::new(),
            order: folded.order,
            skipped: folded.skipped,
            heads: folded.heads,
            state: folded.state,
            epochs: folded.epochs,
        })
    }

    /// Rebuilds a log from its ops in any order (a stored log, or the full
    /// log sent to a new member). Exactly one must be the genesis; every
    /// other op is checked like [`RoomLog::handle_op`]. Ops that fail are
    /// dropped and returned with their errors.
    pub fn from_ops(ops: Vec<RoomOp>) -> Result<(RoomLog, Vec<RoomError>), RoomError> {
        if ops.len() > MAX_OPS {
            return Err(RoomError::TooMany("ops in a room log"));
        }
        let mut genesis = None;
        let mut rest = Vec::with_capacity(ops.len());
        for op in ops {
            if matches!(op.action, RoomAction::Create { .. }) && genesis.is_none() {
                genesis = Some(op);
            } else {
                rest.push(op);
            }
        }
        let mut log = RoomLog::from_genesis(genesis.ok_or(RoomError::NoGenesis)?)?;
        let mut errors = Vec::new();
        for op in rest {
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
        &self.state
    }

    /// The hash of the `Create` op.
    pub fn genesis(&self) -> OpHash {
        self.genesis
    }

    /// Every stored op's hash in the total order (skipped ones included).
    pub fn order(&self) -> &[OpHash] {
        &self.order
    }

    /// Whether the op is stored but had no effect at its place in the
    /// order (a concurrent op before it took the author's right).
    pub fn is_skipped(&self, hash: &OpHash) -> bool {
        self.skipped.contains(hash)
    }

    /// A stored op.
    pub fn op(&self, hash: &OpHash) -> Option<&RoomOp> {
        self.ops.get(hash)
    }

    /// Every stored op, in the total order.
    pub fn ops_in_order(&self) -> Vec<RoomOp> {
        self.order
            .iter()
            .filter_map(|h| self.ops.get(h).cloned())
            .collect()
    }

    /// Ops that do not have every parent yet.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The ops no other op names as parent.
    pub fn heads(&self) -> &[OpHash] {
        &self.heads
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
        if !members.contains(user) || !self.state.members.contains(user) {
            return Err(RoomError::SenderNotMember);
        }
        if self.state.disabled {
            return Err(RoomError::Disabled);
        }
        Ok(())
    }

    /// Writes, checks and applies a new op by `device` on top of the
    /// current heads. Nothing changes when it is refused.
    pub fn author(
        &mut self,
        device: &DeviceKey,
        cert: &DeviceCert,
        action: RoomAction,
        at_ms: u64,
    ) -> Result<RoomOp, RoomError> {
        let op = RoomOp::sign(
            device,
            cert,
            Some(self.id),
            self.heads.clone(),
            at_ms,
            action,
        );
        check(&self.state, &op)?;
        self.handle_op(op.clone())?;
        Ok(op)
    }

    /// Takes an op from a peer: verifies the signature, that it is for this
    /// room, and that its author had the right in the state its parents
    /// fold to. An op whose parents are missing is held (up to
    /// [`MAX_PENDING_OPS`]) until they arrive. A known op is a no-op.
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
        // Held ops whose parents are now all here.
        loop {
            let ready: Vec<OpHash> = self
                .pending
                .iter()
                .filter(|(_, op)| op.parents.iter().all(|p| self.ops.contains_key(p)))
                .map(|(h, _)| *h)
                .collect();
            if ready.is_empty() {
                break;
            }
            for h in ready {
                if let Some(op) = self.pending.remove(&h) {
                    if self.take(h, op).is_ok() {
                        applied.new.push(h);
                    }
                }
            }
        }
        Ok(applied)
    }

    /// Checks `op` (parents all known) against its causal state, stores it
    /// and refolds.
    fn take(&mut self, hash: OpHash, op: RoomOp) -> Result<(), RoomError> {
        let mut heads: Vec<OpHash> = op.parents.clone();
        heads.sort();
        heads.dedup();
        if heads == self.heads {
            check(&self.state, &op)?;
        } else {
            let ancestors = self.ancestors(&op.parents);
            let causal = fold(&self.ops, self.genesis, Some(&ancestors));
            check(&causal.state, &op)?;
        }
        self.ops.insert(hash, op);
        let folded = fold(&self.ops, self.genesis, None);
        self.order = folded.order;
        self.skipped = folded.skipped;
        self.heads = folded.heads;
        self.state = folded.state;
        self.epochs = folded.epochs;
        Ok(())
    }

    /// `from` and everything they descend from.
    fn ancestors(&self, from: &[OpHash]) -> BTreeSet<OpHash> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<OpHash> = from.to_vec();
        while let Some(h) = stack.pop() {
            if seen.insert(h) {
                if let Some(op) = self.ops.get(&h) {
                    stack.extend(op.parents.iter().copied());
                }
            }
        }
        seen
    }
}

/// Orders `ops` (or the subset `include`) by the rule of [`crate::room`]
/// and folds them from the genesis.
fn fold(
    ops: &BTreeMap<OpHash, RoomOp>,
    genesis: OpHash,
    include: Option<&BTreeSet<OpHash>>,
) -> Folded {
    let inside = |h: &OpHash| include.is_none_or(|set| set.contains(h));
    let mut waiting: BTreeMap<OpHash, usize> = BTreeMap::new();
    let mut children: BTreeMap<OpHash, Vec<OpHash>> = BTreeMap::new();
    let mut referenced = BTreeSet::new();
    for (h, op) in ops.iter().filter(|(h, _)| inside(h)) {
        let mut parents: Vec<OpHash> = op.parents.clone();
        parents.sort();
        parents.dedup();
        waiting.insert(*h, parents.len());
        for p in parents {
            children.entry(p).or_default().push(*h);
            referenced.insert(p);
        }
    }
    let mut ready: BTreeSet<OpHash> = waiting
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(h, _)| *h)
        .collect();
    let mut order = Vec::with_capacity(waiting.len());
    let mut skipped = BTreeSet::new();
    let mut epochs = BTreeMap::new();
    let mut state: Option<RoomState> = None;
    while let Some(h) = ready.pop_first() {
        order.push(h);
        if let Some(op) = ops.get(&h) {
            match (&mut state, &op.action) {
                (None, RoomAction::Create { name, .. }) if h == genesis => {
                    let author = op.author_user();
                    let s = RoomState {
                        name: name.clone(),
                        topic: String::new(),
                        members: BTreeSet::from([author]),
                        admins: BTreeSet::from([author]),
                        left: BTreeSet::new(),
                        removed: BTreeSet::new(),
                        disabled: false,
                        epoch: h,
                    };
                    epochs.insert(h, s.members.clone());
                    state = Some(s);
                }
                (Some(s), _) if check(s, op).is_ok() => {
                    apply(s, op, h);
                    if op.action.changes_membership() {
                        epochs.insert(h, s.members.clone());
                    }
                }
                _ => {
                    skipped.insert(h);
                }
            }
        }
        for c in children.get(&h).into_iter().flatten() {
            if let Some(n) = waiting.get_mut(c) {
                *n -= 1;
                if *n == 0 {
                    ready.insert(*c);
                }
            }
        }
    }
    let mut heads: Vec<OpHash> = order
        .iter()
        .filter(|h| !referenced.contains(h))
        .copied()
        .collect();
    heads.sort();
    let state = state.unwrap_or_else(|| RoomState {
        name: String::new(),
        topic: String::new(),
        members: BTreeSet::new(),
        admins: BTreeSet::new(),
        left: BTreeSet::new(),
        removed: BTreeSet::new(),
        disabled: true,
        epoch: genesis,
    });
    Folded {
        order,
        skipped,
        heads,
        state,
        epochs,
    }
}

/// Whether `op`'s author may make its change in `state`.
fn check(state: &RoomState, op: &RoomOp) -> Result<(), RoomError> {
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
            } else if !state.members.contains(user) {
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
    }
}

/// Applies a checked op.
fn apply(state: &mut RoomState, op: &RoomOp, hash: OpHash) {
    let author = op.author_user();
    match &op.action {
        RoomAction::Create { .. } => {}
        RoomAction::Add { users } => {
            for u in users {
                state.members.insert(*u);
                state.left.remove(u);
                state.removed.remove(u);
            }
        }
        RoomAction::Join => {
            state.members.insert(author);
            state.left.remove(&author);
        }
        RoomAction::Leave => {
            state.members.remove(&author);
            state.admins.remove(&author);
            state.left.insert(author);
        }
        RoomAction::Remove { user } => {
            state.members.remove(user);
            state.admins.remove(user);
            state.left.remove(user);
            state.removed.insert(*user);
        }
        RoomAction::Promote { user } => {
            state.admins.insert(*user);
        }
        RoomAction::Demote { user } => {
            state.admins.remove(user);
        }
        RoomAction::SetTopic { topic } => state.topic = topic.trim().to_string(),
        RoomAction::SetName { name } => state.name = name.trim().to_string(),
        RoomAction::Disable => state.disabled = true,
    }
    if op.action.changes_membership() {
        state.epoch = hash;
    }
}
