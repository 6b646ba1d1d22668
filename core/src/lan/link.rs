//! Links as the mesh sees them: up, down, used, and closed when idle.
//!
//! Kept apart because a link's end is where liveness starts: a link lost
//! without a goodbye is what makes the mesh check a device and, failing
//! that, report it gone; and on-demand links must close again or the mesh
//! drifts back to the full mesh it exists to avoid.

use super::{LanEvent, LanMesh, Link, LinkEnd};
use crate::DeviceId;

impl LanMesh {
    /// A link to `device` is up (authenticated). It is told everything
    /// this node knows.
    pub fn handle_link_up(&mut self, now: u64, device: DeviceId) {
        self.now = self.now.max(now);
        if device == self.me {
            return;
        }
        self.dialling.remove(&device);
        let fresh = self.links.insert(device, Link { last_used: now }).is_none();
        self.sort_hint(device);
        if fresh {
            self.greet(device);
        }
        // A live link answers any suspicion this node holds about it.
        if let Some(k) = self.known.get_mut(&device) {
            k.suspected = None;
        }
        self.refresh(device);
        self.schedule(now);
    }

    /// The last link to `device` went down.
    pub fn handle_link_down(&mut self, now: u64, device: DeviceId, end: LinkEnd) {
        self.now = self.now.max(now);
        if self.links.remove(&device).is_none() {
            return;
        }
        self.sort_hint(device);
        self.pending.remove(&device);
        self.ready.remove(&device);
        let here = self
            .known
            .get(&device)
            .is_some_and(|k| k.record.is_here() && k.suspected.is_none());
        if end == LinkEnd::Lost && here {
            self.events.push_back(LanEvent::Check(device));
        }
        self.refresh(device);
    }

    /// Something other than gossip (a message, a file) used the link to
    /// `device`, which keeps an on-demand link open.
    pub fn handle_traffic(&mut self, now: u64, device: DeviceId) {
        if let Some(link) = self.links.get_mut(&device) {
            link.last_used = now;
        }
    }

    /// Closes the links that no ring neighbour needs and that carried
    /// nothing for [`MeshConfig::idle_close_ms`](super::MeshConfig::idle_close_ms).
    pub(super) fn close_idle(&mut self, now: u64) {
        let keep = self.neighbours();
        let idle: Vec<DeviceId> = self
            .links
            .iter()
            .filter(|(d, l)| {
                !keep.contains(d) && now.saturating_sub(l.last_used) >= self.config.idle_close_ms
            })
            .map(|(d, _)| *d)
            .collect();
        for device in idle {
            self.events.push_back(LanEvent::Close(device));
            // Reported down by the driver when the close completes.
            if let Some(link) = self.links.get_mut(&device) {
                link.last_used = now;
            }
        }
    }

    /// Arms the idle check, a third of the idle time ahead, unless armed.
    pub(super) fn schedule(&mut self, now: u64) {
        if self.next_check.is_none() {
            self.next_check = Some(now + self.config.idle_close_ms / 3);
        }
    }
}
