//! What a log can tell about ops others may lack: whether an op is only
//! held (waiting for its parents, in memory), and which ops an op did not
//! build on (what a user added by that op still needs).

use super::RoomLog;
use crate::room::{OpHash, RoomOp};

impl RoomLog {
    /// Whether op `hash` waits in this log for its parents (held in
    /// memory, not taken).
    pub fn is_held(&self, hash: &OpHash) -> bool {
        self.pending.contains_key(hash)
    }

    /// The ops of this log that op `hash` did not build on: neither it nor
    /// one of its ancestors, in the log's order. Whoever learnt of the room
    /// from `hash` (a user it adds gets the log its author had) still
    /// needs these.
    pub fn not_built_on(&self, hash: &OpHash) -> Vec<RoomOp> {
        let mut seen = std::collections::BTreeSet::from([*hash]);
        let mut todo = vec![*hash];
        while let Some(h) = todo.pop() {
            for parent in self
                .ops
                .get(&h)
                .map(|op| op.parents.as_slice())
                .unwrap_or(&[])
            {
                if seen.insert(*parent) {
                    todo.push(*parent);
                }
            }
        }
        // In `ops_in_order`'s order, cloning only what is left out.
        self.layers
            .values()
            .flatten()
            .filter(|h| !seen.contains(h))
            .filter_map(|h| self.ops.get(h).cloned())
            .collect()
    }
}
