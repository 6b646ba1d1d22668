//! Folding a room log's ops, in their total order, into the room state.
//!
//! The rule that makes revocations stick ("remove wins"): an op by a user
//! that is *concurrent* with a revocation of that user (a `Remove` of
//! them; a `Demote` of them or their own `Leave`, for ops that need admin)
//! has no effect, wherever the total order puts it. A revocation itself
//! always takes effect: its author had the right where they wrote it (the
//! log checks every op against its causal state before storing it), and
//! nothing ordered before it can take that away. So two admins removing
//! each other at once are both removed, and an op that a removed admin
//! back-dates (signs on parents older than their removal) can never undo
//! the removal, whatever its hash or its place in the order.
//!
//! A [`Cursor`] is the state of a fold after some prefix of the order,
//! plus what the remove-wins rule needs to judge the ops that follow.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use super::super::{OpHash, RoomAction, RoomOp};
use super::{check, RoomState, LAG};
use crate::UserId;

/// A revocation of one user's rights, as applied in a fold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Revoke {
    /// Removed by an admin: every concurrent op of theirs is void.
    Removed,
    /// Demoted, or left: their concurrent ops that need admin are void.
    Admin,
}

impl Revoke {
    /// Whether this revocation voids `op` if they are concurrent. Another
    /// revocation is never void: it only takes rights away, so two admins
    /// removing each other at once are both removed, whatever the order.
    fn voids(self, op: &RoomOp) -> bool {
        if matches!(
            op.action,
            RoomAction::Remove { .. } | RoomAction::Demote { .. }
        ) {
            return false;
        }
        match self {
            Revoke::Removed => true,
            Revoke::Admin => needs_admin(&op.action),
        }
    }
}

/// Whether an action needs its author to be an admin.
fn needs_admin(action: &RoomAction) -> bool {
    !matches!(
        action,
        RoomAction::Join | RoomAction::Leave | RoomAction::Rekey | RoomAction::Create { .. }
    )
}

/// The user whose rights an op revokes, and how.
pub(super) fn revocation(op: &RoomOp) -> Option<(UserId, Revoke)> {
    match &op.action {
        RoomAction::Remove { user } => Some((*user, Revoke::Removed)),
        RoomAction::Demote { user } => Some((*user, Revoke::Admin)),
        RoomAction::Leave => Some((op.author_user(), Revoke::Admin)),
        _ => None,
    }
}

/// The fold after a prefix of the total order.
#[derive(Clone, Debug)]
pub(super) struct Cursor {
    /// The room as folded so far.
    pub(super) room: RoomState,
    /// Recent applied revocations per target (with their depth), for
    /// voiding later-ordered concurrent ops; pruned once too deep behind
    /// to be concurrent with anything still to come.
    revoked: BTreeMap<UserId, Vec<(OpHash, u64, Revoke)>>,
    /// Ops applied since the fold's base, per author (what a later
    /// revocation may have to void).
    applied_by: BTreeMap<UserId, Vec<OpHash>>,
}

/// What one step of the fold did.
pub(super) enum Step {
    /// Applied.
    Applied,
    /// No effect at its place.
    Skipped,
    /// Applied, but it is a revocation concurrent with these ops of its
    /// target that were applied earlier in the order: they are void, and
    /// the fold must restart without them.
    Voids(Vec<OpHash>),
}

/// How the fold asks about the DAG.
pub(super) trait Dag {
    /// Whether two stored ops are concurrent (neither is the other's
    /// ancestor).
    fn concurrent(&self, a: &OpHash, b: &OpHash) -> bool;
    /// A stored op.
    fn op(&self, hash: &OpHash) -> Option<&RoomOp>;
}

impl Cursor {
    /// The fold right after the genesis.
    pub(super) fn genesis(room: RoomState) -> Cursor {
        Cursor {
            room,
            revoked: BTreeMap::new(),
            applied_by: BTreeMap::new(),
        }
    }

    /// This cursor as the base of later folds: ops before it are final.
    pub(super) fn as_base(&self) -> Cursor {
        let mut base = self.clone();
        base.applied_by.clear();
        base
    }

    /// Folds one op (`hash`, at `depth`) onto the state.
    pub(super) fn step(
        &mut self,
        dag: &dyn Dag,
        hash: OpHash,
        depth: u64,
        op: &RoomOp,
        lag: u64,
    ) -> Step {
        let author = op.author_user();
        // Revocations deeper than `lag` behind cannot be concurrent with
        // this op or any later one (see the log's depth invariant).
        if let Some(list) = self.revoked.get_mut(&author) {
            list.retain(|(_, d, _)| d + lag > depth);
        }
        let voided = self.revoked.get(&author).is_some_and(|list| {
            list.iter()
                .any(|(by, _, kind)| kind.voids(op) && dag.concurrent(by, &hash))
        });
        if voided {
            return Step::Skipped;
        }
        let allowed = match op.action {
            // Checked against its causal state when stored; stands.
            RoomAction::Remove { .. } | RoomAction::Demote { .. } => true,
            _ => check(&self.room, op).is_ok(),
        };
        if !allowed {
            return Step::Skipped;
        }
        self.apply(op, hash, depth);
        self.applied_by.entry(author).or_default().push(hash);
        let Some((target, kind)) = revocation(op) else {
            return Step::Applied;
        };
        let victims: Vec<OpHash> = self
            .applied_by
            .get(&target)
            .into_iter()
            .flatten()
            .filter(|h| **h != hash)
            .filter(|h| dag.op(h).is_some_and(|v| kind.voids(v)))
            .filter(|h| dag.concurrent(h, &hash))
            .copied()
            .collect();
        if victims.is_empty() {
            Step::Applied
        } else {
            Step::Voids(victims)
        }
    }

    /// Applies an allowed op.
    fn apply(&mut self, op: &RoomOp, hash: OpHash, depth: u64) {
        let author = op.author_user();
        let state = &mut self.room;
        let mut changed = true;
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
                // A removal that finds them gone already starts no epoch.
                changed = state.members.contains(user);
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
            RoomAction::Rekey => {}
        }
        if changed && op.action.changes_membership() {
            state.epoch = hash;
        }
        if let Some((target, kind)) = revocation(op) {
            self.revoked
                .entry(target)
                .or_default()
                .push((hash, depth, kind));
        }
    }
}

/// Read-only view of the DAG for the fold, counting the ops it visits.
pub(super) struct View<'a> {
    pub(super) ops: &'a BTreeMap<OpHash, RoomOp>,
    pub(super) depth: &'a BTreeMap<OpHash, u64>,
    pub(super) work: Cell<u64>,
}

impl View<'_> {
    fn depth_of(&self, hash: &OpHash) -> u64 {
        self.depth.get(hash).copied().unwrap_or(0)
    }

    /// Whether `x` is `y` or one of its ancestors.
    fn is_ancestor(&self, x: &OpHash, y: &OpHash) -> bool {
        if x == y {
            return true;
        }
        let (dx, dy) = (self.depth_of(x), self.depth_of(y));
        if dy <= dx {
            return false;
        }
        if dy - dx >= LAG {
            // The depth invariant: far enough apart is always ordered.
            return true;
        }
        let mut seen = BTreeSet::new();
        let mut stack = vec![*y];
        while let Some(h) = stack.pop() {
            self.work.set(self.work.get() + 1);
            let Some(op) = self.ops.get(&h) else { continue };
            for p in &op.parents {
                if p == x {
                    return true;
                }
                if self.depth_of(p) > dx && seen.insert(*p) {
                    stack.push(*p);
                }
            }
        }
        false
    }

    /// `from` and every ancestor of theirs at depth `floor` or more.
    pub(super) fn ancestors_above(&self, from: &[OpHash], floor: u64) -> BTreeSet<OpHash> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<OpHash> = from.to_vec();
        while let Some(h) = stack.pop() {
            if self.depth_of(&h) < floor || !seen.insert(h) {
                continue;
            }
            self.work.set(self.work.get() + 1);
            if let Some(op) = self.ops.get(&h) {
                stack.extend(op.parents.iter().copied());
            }
        }
        seen
    }
}

impl Dag for View<'_> {
    fn concurrent(&self, a: &OpHash, b: &OpHash) -> bool {
        !self.is_ancestor(a, b) && !self.is_ancestor(b, a)
    }

    fn op(&self, hash: &OpHash) -> Option<&RoomOp> {
        self.ops.get(hash)
    }
}

/// What a fold of part of the log produced.
pub(super) struct Folded {
    pub(super) cursor: Cursor,
    pub(super) skipped: Vec<OpHash>,
    pub(super) epochs: Vec<(OpHash, BTreeSet<UserId>)>,
    /// The cursor where the ops at `split` depth or more begin.
    pub(super) split: Option<Cursor>,
}

/// Folds `region` (in order) onto `base`, restarting without the ops a
/// later revocation voids until nothing more is voided.
pub(super) fn fold_region(
    view: &View<'_>,
    base: &Cursor,
    region: &[(u64, OpHash)],
    split_at: u64,
) -> Folded {
    let mut void = BTreeSet::new();
    'restart: loop {
        let mut out = Folded {
            cursor: base.clone(),
            skipped: Vec::new(),
            epochs: Vec::new(),
            split: None,
        };
        for (depth, hash) in region {
            if out.split.is_none() && *depth >= split_at {
                out.split = Some(out.cursor.as_base());
            }
            view.work.set(view.work.get() + 1);
            let Some(op) = view.ops.get(hash) else {
                continue;
            };
            if void.contains(hash) {
                out.skipped.push(*hash);
                continue;
            }
            match out.cursor.step(view, *hash, *depth, op, LAG) {
                Step::Applied => {
                    if out.cursor.room.epoch == *hash {
                        out.epochs.push((*hash, out.cursor.room.members.clone()));
                    }
                }
                Step::Skipped => out.skipped.push(*hash),
                Step::Voids(victims) => {
                    void.extend(victims);
                    continue 'restart;
                }
            }
        }
        return out;
    }
}

/// `ops` in the order their depths give (parents first): depths come from
/// `known` or from other ops in `ops`; ops with a parent in neither come
/// last, in hash order.
pub(super) fn by_depth(
    known: &BTreeMap<OpHash, u64>,
    mut ops: BTreeMap<OpHash, RoomOp>,
) -> Vec<RoomOp> {
    let mut depth: BTreeMap<OpHash, u64> = BTreeMap::new();
    let mut sorted: Vec<(u64, OpHash, RoomOp)> = Vec::with_capacity(ops.len());
    // Kahn's algorithm over the ops given, counting parents not yet placed.
    let mut waiting: BTreeMap<OpHash, usize> = BTreeMap::new();
    let mut children: BTreeMap<OpHash, Vec<OpHash>> = BTreeMap::new();
    let mut ready = Vec::new();
    for (h, op) in &ops {
        let inside: BTreeSet<&OpHash> = op.parents.iter().filter(|p| ops.contains_key(p)).collect();
        for p in &inside {
            children.entry(**p).or_default().push(*h);
        }
        if inside.is_empty() {
            ready.push(*h);
        } else {
            waiting.insert(*h, inside.len());
        }
    }
    while let Some(h) = ready.pop() {
        let Some(op) = ops.remove(&h) else { continue };
        let d = 1 + op
            .parents
            .iter()
            .filter_map(|p| depth.get(p).or_else(|| known.get(p)))
            .max()
            .copied()
            .unwrap_or(0);
        depth.insert(h, d);
        for c in children.get(&h).into_iter().flatten() {
            if let Some(n) = waiting.get_mut(c) {
                *n -= 1;
                if *n == 0 {
                    ready.push(*c);
                }
            }
        }
        sorted.push((d, h, op));
    }
    sorted.sort_by_key(|(d, h, _)| (*d, *h));
    let mut out: Vec<RoomOp> = sorted.into_iter().map(|(_, _, op)| op).collect();
    out.extend(ops.into_values());
    out
}
