//! Rooms in the simulation: core's [`RoomLog`]s, changed by signed ops
//! that travel like every other message, and the check that they
//! converge.
//!
//! A change is written on its author's own log ([`RoomLog::author`]) and
//! sent the way the daemon sends it (`distribute_ops` in
//! `node/src/node/actor/rooms.rs`): the op, as [`Content::RoomOps`] in a
//! pairwise-sealed envelope through the author's outbox, to every device
//! of the members before and after it (as the author's log says); users
//! it adds get the whole log instead. So an op waits in the outbox of an
//! author cut off from its members and arrives when the path is back, a
//! crashed member gets it from the retries after its restart, and nothing
//! else brings a device the ops it missed. Room messages go to the
//! devices of the members the sender's own log lists.
//!
//! # Convergence
//! [`Sim::room_report`] compares, room by room, every device whose own
//! log lists its user as a member, and every device of every user such a
//! log lists: each must hold the log (the same ops in the same order, the
//! same heads, nothing held for missing parents) and fold it to the same
//! state. Checked when the network is healed and quiet (the end of a
//! scenario's drain), when it must hold.

use std::collections::BTreeSet;
use std::fmt;

use tincan_core::envelope::MAX_RECIPIENTS;
use tincan_core::room::{OpHash, RoomAction, RoomOp, RoomState};
use tincan_core::{Content, MessageId, RoomId, RoomLog, UserId};

use super::{NodeIdx, Sim, SimError};

/// Most ops one `RoomOps` envelope carries (the daemon's
/// `OPS_PER_ENVELOPE`): a long log goes as several.
const OPS_PER_ENVELOPE: usize = 32;

/// What one device holds of a room, for comparing devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomView {
    /// Every stored op, in the log's total order.
    pub order: Vec<OpHash>,
    /// The log's heads.
    pub heads: Vec<OpHash>,
    /// Ops held for parents that never came.
    pub held: usize,
    /// What the log folds to.
    pub state: RoomState,
}

impl RoomView {
    fn of(log: &RoomLog) -> Self {
        Self {
            order: log.order(),
            heads: log.heads(),
            held: log.pending_len(),
            state: log.state().clone(),
        }
    }
}

/// A room whose member devices do not agree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomDivergence {
    /// The room.
    pub room: RoomId,
    /// The devices grouped by what they hold (`None`: not the room at
    /// all), the largest group first.
    pub groups: Vec<(Option<RoomView>, Vec<NodeIdx>)>,
}

impl fmt::Display for RoomDivergence {
    /// One line: each group's devices and what they hold; after the first
    /// (largest) group, the ops a group lacks of the first one's.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "room {} did not converge:", self.room)?;
        let first: BTreeSet<OpHash> = self
            .groups
            .first()
            .and_then(|(v, _)| v.as_ref())
            .map(|v| v.order.iter().copied().collect())
            .unwrap_or_default();
        for (i, (view, nodes)) in self.groups.iter().enumerate() {
            let names: Vec<String> = nodes.iter().map(ToString::to_string).collect();
            let sep = if i == 0 { "" } else { ";" };
            let Some(v) = view else {
                write!(f, "{sep} [{}] do not have it", names.join(", "))?;
                continue;
            };
            write!(
                f,
                "{sep} [{}] hold {} ops ({} heads, {} held), {} members",
                names.join(", "),
                v.order.len(),
                v.heads.len(),
                v.held,
                v.state.members.len()
            )?;
            let lack: Vec<String> = first
                .iter()
                .filter(|h| !v.order.contains(h))
                .map(|h| h.to_string()[..12].to_owned())
                .collect();
            if i > 0 && !lack.is_empty() {
                write!(f, ", lack {}", lack.join(" "))?;
            }
        }
        Ok(())
    }
}

/// What [`Sim::room_report`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomReport {
    /// Rooms created.
    pub rooms: usize,
    /// Ops written (creates included).
    pub ops: u64,
    /// `RoomOps` envelopes queued (new ops and whole logs).
    pub envelopes: u64,
    /// Rooms whose member devices disagree.
    pub diverged: Vec<RoomDivergence>,
}

impl RoomReport {
    /// Whether every room converged.
    pub fn converged(&self) -> bool {
        self.diverged.is_empty()
    }
}

impl Sim {
    /// Creates a room named `name` at `creator` and adds the users `with`
    /// (the daemon's `room_create`: a `Create` op, then an `Add`, whose
    /// new members get the whole log).
    pub fn create_room(
        &mut self,
        creator: NodeIdx,
        name: &str,
        with: &[UserId],
    ) -> Result<RoomId, SimError> {
        if !self.nodes[creator.0].is_up() {
            return Err(SimError::NodeDown(creator));
        }
        let identity = self.nodes[creator.0].identity();
        let w = &mut self.world;
        let (log, op) =
            RoomLog::create(&identity.device, &identity.cert, name, w.now, &mut w.crypto)?;
        let id = log.id();
        w.trace(&[b"room", &id.0, &op.hash().0]);
        self.nodes[creator.0].insert_room(log);
        self.rooms.push(id);
        self.room_ops += 1;
        // To the creator's other devices (a simulated user has none).
        self.distribute_ops(creator, id, &[op], &BTreeSet::new())?;
        if !with.is_empty() {
            let users = with.to_vec();
            self.room_change(creator, id, RoomAction::Add { users })?;
        }
        Ok(id)
    }

    /// Writes a change of `room` by `author` on its own log and sends it.
    /// Core refuses what the author may not do (as its log says).
    pub fn room_change(
        &mut self,
        author: NodeIdx,
        room: RoomId,
        action: RoomAction,
    ) -> Result<OpHash, SimError> {
        let node = &mut self.nodes[author.0];
        if !node.is_up() {
            return Err(SimError::NodeDown(author));
        }
        if node.room(&room).is_none() {
            return Err(SimError::UnknownRoom(room));
        }
        let (op, before) = node.author_room_op(&room, action, self.world.now)?;
        let hash = op.hash();
        self.world.trace(&[b"room op", &hash.0]);
        self.room_ops += 1;
        self.distribute_ops(author, room, &[op], &before)?;
        Ok(hash)
    }

    /// Sends `text` to `room` from `from`: to every device of the members
    /// its own log lists (none: `Ok(None)`, as the daemon stores a
    /// message to an empty room as sent).
    pub fn send_room(
        &mut self,
        from: NodeIdx,
        room: RoomId,
        text: &str,
    ) -> Result<Option<MessageId>, SimError> {
        let node = &self.nodes[from.0];
        if !node.is_up() {
            return Err(SimError::NodeDown(from));
        }
        let log = node.room(&room).ok_or(SimError::UnknownRoom(room))?;
        let state = log.state();
        if state.disabled {
            return Err(tincan_core::RoomError::Disabled.into());
        }
        if !state.members.contains(&node.user_id()) {
            return Err(tincan_core::RoomError::NotAMember(node.user_id()).into());
        }
        let users: Vec<UserId> = state.members.iter().copied().collect();
        let to = self.member_devices(&users, from);
        if to.is_empty() {
            return Ok(None);
        }
        self.send_to(from, &to, text).map(Some)
    }

    /// Rooms created, ops written, and every room whose member devices do
    /// not hold the same log and state (see the module's `# Convergence`).
    pub fn room_report(&self) -> RoomReport {
        let diverged = self
            .rooms
            .iter()
            .filter_map(|room| self.room_divergence(room))
            .collect();
        RoomReport {
            rooms: self.rooms.len(),
            ops: self.room_ops,
            envelopes: self.room_envelopes,
            diverged,
        }
    }

    /// How `room`'s member devices differ, if they do.
    fn room_divergence(&self, room: &RoomId) -> Option<RoomDivergence> {
        let mut devices: BTreeSet<NodeIdx> = BTreeSet::new();
        let mut users: BTreeSet<UserId> = BTreeSet::new();
        for node in &self.nodes {
            if node.is_room_member(room) {
                devices.insert(node.idx());
                users.extend(node.room(room).into_iter().flat_map(|l| &l.state().members));
            }
        }
        let listed: Vec<UserId> = users.into_iter().collect();
        devices.extend(self.devices_of_known(&listed));
        let mut groups: Vec<(Option<RoomView>, Vec<NodeIdx>)> = Vec::new();
        for n in devices {
            let view = self.nodes[n.0].room(room).map(RoomView::of);
            match groups.iter_mut().find(|(v, _)| *v == view) {
                Some((_, nodes)) => nodes.push(n),
                None => groups.push((view, vec![n])),
            }
        }
        if groups.len() <= 1
            && groups
                .iter()
                .all(|(v, _)| v.as_ref().is_some_and(|v| v.held == 0))
        {
            return None;
        }
        // Largest first; ties in the order the devices were found.
        groups.sort_by_key(|(_, nodes)| std::cmp::Reverse(nodes.len()));
        Some(RoomDivergence {
            room: *room,
            groups,
        })
    }

    /// Sends new `ops` of `room` from `from`: to every device of the
    /// members before (`before`) and after them, and the whole log to the
    /// users they add (the daemon's `distribute_ops`).
    fn distribute_ops(
        &mut self,
        from: NodeIdx,
        room: RoomId,
        ops: &[RoomOp],
        before: &BTreeSet<UserId>,
    ) -> Result<(), SimError> {
        let node = &self.nodes[from.0];
        let Some(log) = node.room(&room) else {
            return Ok(());
        };
        let me = node.user_id();
        let after = &log.state().members;
        let new: Vec<UserId> = after
            .difference(before)
            .filter(|u| **u != me)
            .copied()
            .collect();
        let old: Vec<UserId> = before
            .union(after)
            .filter(|u| !new.contains(u))
            .copied()
            .collect();
        let full = log.ops_in_order();
        let (old, new) = (
            self.member_devices(&old, from),
            self.member_devices(&new, from),
        );
        self.send_ops(from, room, ops, &old, 0)?;
        let log_len = u32::try_from(full.len()).unwrap_or(u32::MAX);
        self.send_ops(from, room, &full, &new, log_len)
    }

    /// Queues the ops node `n` owes users added by someone who had not
    /// seen them (core's catch-up rule, as the daemon sends them).
    pub(crate) fn queue_catch_ups(&mut self, n: NodeIdx) {
        for (room, users, ops) in self.nodes[n.0].take_catch_ups() {
            let to = self.member_devices(&users, n);
            if let Err(e) = self.send_ops(n, room, &ops, &to, 0) {
                tracing::warn!(node = n.0, %room, error = %e, "cannot queue catch-up ops");
            }
        }
    }

    /// Queues `ops` for the devices `to` in envelopes of
    /// [`OPS_PER_ENVELOPE`] ops; `log_len` is the log's length when `ops`
    /// is the whole log, else 0 (the daemon's `send_ops`).
    fn send_ops(
        &mut self,
        from: NodeIdx,
        room: RoomId,
        ops: &[RoomOp],
        to: &[NodeIdx],
        log_len: u32,
    ) -> Result<(), SimError> {
        for part in ops.chunks(OPS_PER_ENVELOPE) {
            let content = Content::RoomOps {
                room,
                ops: part.to_vec(),
                log_len,
            };
            for devices in to.chunks(MAX_RECIPIENTS) {
                self.seal_and_queue(from, devices, devices, &content)?;
                self.room_envelopes += 1;
            }
        }
        Ok(())
    }

    /// The devices of `users` but `except` (the daemon's `user_certs`).
    fn member_devices(&self, users: &[UserId], except: NodeIdx) -> Vec<NodeIdx> {
        let mut nodes = self.devices_of_known(users);
        nodes.retain(|n| *n != except);
        nodes
    }

    /// The devices of `users`, in order, once; users the simulation does
    /// not know have none.
    fn devices_of_known(&self, users: &[UserId]) -> Vec<NodeIdx> {
        let mut nodes: Vec<NodeIdx> = users
            .iter()
            .filter_map(|u| self.world.dir.users.get(u))
            .flatten()
            .copied()
            .collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sim::{SimBuilder, SiteIdx};

    /// A room of six over three sites, settled.
    fn room_of_six() -> (Sim, RoomId, Vec<NodeIdx>) {
        let mut sim = SimBuilder::new().seed(3).sites(3).build();
        let nodes: Vec<NodeIdx> = (0..6)
            .map(|i| sim.add_node(SiteIdx(i % 3), &format!("n{i}")))
            .collect();
        sim.settle(Duration::from_secs(30)).expect("gateways");
        let others: Vec<UserId> = nodes[1..].iter().map(|n| sim.node(*n).user_id()).collect();
        let room = sim.create_room(nodes[0], "ops", &others).expect("create");
        sim.run_until(Sim::is_quiescent, Duration::from_secs(60))
            .expect("delivered");
        (sim, room, nodes)
    }

    #[test]
    fn every_member_holds_the_same_log() {
        let (mut sim, room, nodes) = room_of_six();
        let report = sim.room_report();
        assert!(report.converged(), "{:?}", report.diverged);
        assert_eq!((report.rooms, report.ops), (1, 2));
        let removed = sim.node(nodes[4]).user_id();
        let remove = RoomAction::Remove { user: removed };
        sim.room_change(nodes[0], room, remove).expect("remove");
        sim.room_change(nodes[2], room, RoomAction::Leave)
            .expect("leave");
        sim.run_until(Sim::is_quiescent, Duration::from_secs(60))
            .expect("delivered");
        assert!(sim.room_report().converged());
        let state = &sim.node(nodes[1]).room(&room).expect("log").state().clone();
        assert_eq!(state.members.len(), 4);
        for n in &nodes {
            // The removed and departed devices hold the log up to their
            // own departure, which names them as gone.
            assert!(sim.node(*n).room(&room).is_some());
        }
        assert!(!sim.node(nodes[4]).is_room_member(&room));
    }

    #[test]
    fn a_member_that_missed_an_op_is_reported() {
        let (mut sim, room, nodes) = room_of_six();
        let behind = sim.node(nodes[3]).room(&room).expect("log").clone();
        let topic = RoomAction::SetTopic {
            topic: "late".into(),
        };
        sim.room_change(nodes[0], room, topic).expect("topic");
        sim.run_until(Sim::is_quiescent, Duration::from_secs(60))
            .expect("delivered");
        assert!(sim.room_report().converged());
        // Node 3 loses the op (as if it never came).
        sim.nodes[nodes[3].0].set_room_log(behind);
        let report = sim.room_report();
        let [divergence] = &report.diverged[..] else {
            panic!("one room diverged: {:?}", report.diverged);
        };
        assert_eq!(divergence.room, room);
        let groups: Vec<&Vec<NodeIdx>> = divergence.groups.iter().map(|(_, n)| n).collect();
        assert_eq!(
            groups,
            [
                &vec![nodes[0], nodes[1], nodes[2], nodes[4], nodes[5]],
                &vec![nodes[3]]
            ]
        );
        let text = divergence.to_string();
        let lost = sim.node(nodes[0]).room(&room).expect("log").heads()[0];
        let lacks = format!(
            "[node3] hold 2 ops (1 heads, 0 held), 6 members, lack {}",
            &lost.to_string()[..12]
        );
        assert!(text.ends_with(&lacks), "{text}");
    }

    #[test]
    fn a_member_without_the_log_is_reported() {
        let (mut sim, room, nodes) = room_of_six();
        let newcomer = sim.add_node(SiteIdx(1), "late");
        let user = sim.node(newcomer).user_id();
        sim.crash(newcomer);
        sim.room_change(nodes[0], room, RoomAction::Add { users: vec![user] })
            .expect("add");
        sim.run_for(Duration::from_secs(5));
        let report = sim.room_report();
        assert_eq!(report.diverged.len(), 1);
        assert_eq!(report.diverged[0].groups[1], (None, vec![newcomer]));
        // It gets the whole log from the sender's retries once it runs.
        sim.restart(newcomer);
        sim.run_until(Sim::is_quiescent, Duration::from_secs(120))
            .expect("delivered");
        assert!(sim.room_report().converged());
        assert!(sim.node(newcomer).is_room_member(&room));
    }
}
