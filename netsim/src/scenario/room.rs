//! The standard workload's rooms: each created by its first member with
//! the others, then changed by its members while the run goes on (an admin
//! invites a user or removes a member, a member leaves), and messages to
//! the members the sender's own log lists. Every choice is made on what
//! the acting device's own log says, as its user would see it.

use std::collections::BTreeSet;

use tincan_core::room::{RoomAction, RoomState};
use tincan_core::{RoomId, UserId};

use super::Run;
use crate::sim::{NodeIdx, Sim, SimRng};

/// A room of the run.
pub(super) struct Room {
    pub(super) id: RoomId,
    /// Every node ever invited (the members are among them).
    invited: BTreeSet<NodeIdx>,
}

/// What a membership change does.
enum Change {
    Invite,
    Remove,
    Leave,
}

impl Run {
    /// Room `i`: its first member creates it with the others and makes the
    /// second an admin too.
    pub(super) fn create_room(&mut self, i: usize, members: Vec<NodeIdx>) {
        let (Some(creator), Some(second)) = (members.first(), members.get(1)) else {
            return;
        };
        let users: Vec<UserId> = members[1..]
            .iter()
            .map(|n| self.sim.node(*n).user_id())
            .collect();
        let promote = RoomAction::Promote {
            user: self.sim.node(*second).user_id(),
        };
        let created = self
            .sim
            .create_room(*creator, &format!("room {i}"), &users)
            .and_then(|id| self.sim.room_change(*creator, id, promote).map(|_| id));
        match created {
            Ok(id) => self.rooms.push(Room {
                id,
                invited: members.into_iter().collect(),
            }),
            Err(e) => self.violation(format!("room {i} not created: {e}")),
        }
    }

    /// One message to a room from one of its members (as its own log
    /// says), to the members its log lists.
    pub(super) fn send_room(&mut self, n: u64) {
        let room = &self.rooms[self.rng.below(self.rooms.len() as u64) as usize];
        let id = room.id;
        let members: Vec<NodeIdx> = room
            .invited
            .iter()
            .copied()
            .filter(|m| self.sim.node(*m).is_room_member(&id))
            .collect();
        if members.is_empty() {
            return;
        }
        let from = members[self.rng.below(members.len() as u64) as usize];
        if !self.sim.node(from).is_up() {
            return;
        }
        match self.sim.send_room(from, id, &format!("message {n}")) {
            Ok(Some(message)) => {
                let to = self.sim.sent().last().map(|s| s.to.clone());
                let sites = to
                    .unwrap_or_default()
                    .iter()
                    .map(|t| self.sim.site_of(*t))
                    .collect();
                let now = self.now();
                self.sends
                    .push((message, self.sim.site_of(from), sites, now));
            }
            Ok(None) => {}
            Err(e) => self.violation(format!("room message from {from} failed: {e}")),
        }
    }

    /// One membership change of a random room, by a running member with
    /// the right as its own log says: an admin invites a user or removes
    /// a member who is not an admin, or a member who is not an admin
    /// leaves. Rooms are kept between 6 and 30 members.
    pub(super) fn room_change(&mut self) {
        if self.rooms.is_empty() {
            return;
        }
        let r = self.room_rng.below(self.rooms.len() as u64) as usize;
        let Some((author, action)) = self.choose_change(r) else {
            return;
        };
        if let Err(e) = self.sim.room_change(author, self.rooms[r].id, action) {
            self.violation(format!("room change by {author} refused: {e}"));
        }
    }

    /// Who changes room `r` and how (`None`: nobody can now).
    fn choose_change(&mut self, r: usize) -> Option<(NodeIdx, RoomAction)> {
        let id = self.rooms[r].id;
        let sim = &self.sim;
        let is_admin = |n: &NodeIdx| {
            state_of(sim, &id, *n).is_some_and(|s| s.admins.contains(&sim.node(*n).user_id()))
        };
        let (admins, plain): (Vec<NodeIdx>, Vec<NodeIdx>) = self.rooms[r]
            .invited
            .iter()
            .copied()
            .filter(|n| sim.node(*n).is_up() && sim.node(*n).is_room_member(&id))
            .partition(is_admin);
        let viewer = *admins.first().or(plain.first())?;
        let size = state_of(sim, &id, viewer).map_or(0, |s| s.members.len());
        let roll = self.room_rng.below(100);
        let change = match size {
            ..6 => Change::Invite,
            31.. if roll < 50 => Change::Remove,
            31.. => Change::Leave,
            _ if roll < 40 => Change::Invite,
            _ if roll < 70 => Change::Remove,
            _ => Change::Leave,
        };
        let author = match change {
            Change::Leave => return Some((pick(&mut self.room_rng, &plain)?, RoomAction::Leave)),
            Change::Invite | Change::Remove => pick(&mut self.room_rng, &admins)?,
        };
        let state = state_of(&self.sim, &id, author)?;
        let user = |n: NodeIdx| self.sim.node(n).user_id();
        if let Change::Invite = change {
            // A user its log does not list (a few tries at random).
            let count = self.sim.node_ids().count() as u64;
            let target = (0..8)
                .map(|_| NodeIdx(self.room_rng.below(count) as usize))
                .find(|n| !state.members.contains(&user(*n)))?;
            self.rooms[r].invited.insert(target);
            let users = vec![user(target)];
            return Some((author, RoomAction::Add { users }));
        }
        let removable: Vec<NodeIdx> = self.rooms[r]
            .invited
            .iter()
            .copied()
            .filter(|n| *n != author)
            .filter(|n| state.members.contains(&user(*n)) && !state.admins.contains(&user(*n)))
            .collect();
        let target = pick(&mut self.room_rng, &removable)?;
        Some((author, RoomAction::Remove { user: user(target) }))
    }
}

/// Room `id` as node `n`'s own log folds it.
fn state_of<'a>(sim: &'a Sim, id: &RoomId, n: NodeIdx) -> Option<&'a RoomState> {
    sim.node(n).room(id).map(|l| l.state())
}

/// One of `from` at random (`None` when it is empty).
fn pick(rng: &mut SimRng, from: &[NodeIdx]) -> Option<NodeIdx> {
    (!from.is_empty()).then(|| from[rng.below(from.len() as u64) as usize])
}
