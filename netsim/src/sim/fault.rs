//! The faults a scenario injects: partitions between sites, crashes and
//! restarts, laptops moving between sites. Each one changes the network and
//! then tells the running nodes' outboxes what they can reach now, as the
//! daemon learns it from its connections.

use super::{NodeIdx, Sim, SiteIdx};

impl Sim {
    /// Cuts the WAN path between two sites (at the relay).
    pub fn partition(&mut self, a: SiteIdx, b: SiteIdx) {
        self.world.net.partition(a, b);
        self.world.trace(&[b"partition", &site_bytes(a, b)]);
        self.refresh_reachability(None);
    }

    /// Restores the WAN path between two sites.
    pub fn heal(&mut self, a: SiteIdx, b: SiteIdx) {
        self.world.net.heal(a, b);
        self.world.trace(&[b"heal", &site_bytes(a, b)]);
        self.refresh_reachability(None);
    }

    /// Restores every WAN path.
    pub fn heal_all(&mut self) {
        self.world.net.heal_all();
        self.world.trace(&[b"heal all"]);
        self.refresh_reachability(None);
    }

    /// Stops `node`: it drops what arrives and forgets its memory; its store
    /// (outbox entries, received set, history) survives.
    pub fn crash(&mut self, node: NodeIdx) {
        if !self.nodes[node.0].is_up() {
            return;
        }
        self.nodes[node.0].crash(&mut self.world);
        self.world.net.up[node.0] = false;
        self.world
            .trace(&[b"crash", &(node.0 as u64).to_le_bytes()]);
        self.refresh_reachability(None);
    }

    /// Starts a crashed `node` again; it reloads its outbox from its store.
    pub fn restart(&mut self, node: NodeIdx) {
        if self.nodes[node.0].is_up() {
            return;
        }
        self.nodes[node.0].restart(&mut self.world);
        self.world.net.up[node.0] = true;
        self.world
            .trace(&[b"restart", &(node.0 as u64).to_le_bytes()]);
        self.refresh_reachability(None);
    }

    /// Moves `node` to `site` (a laptop changing office): its connections
    /// drop and come back, packets on their way to the old site are lost.
    ///
    /// # Panics
    /// If `site` is out of range.
    pub fn roam(&mut self, node: NodeIdx, site: SiteIdx) {
        assert!(site.0 < self.sites(), "{site} out of range");
        // Its LAN links and relay connection break: the election starts
        // over in the new network (from what the node stored).
        let up = self.nodes[node.0].is_up();
        if up {
            self.nodes[node.0].stop_election(&mut self.world);
        }
        self.world.net.relocate(node, site);
        if up {
            let now = self.world.now;
            self.nodes[node.0].start_election(&mut self.world, now);
        }
        self.world.trace(&[
            b"roam",
            &(node.0 as u64).to_le_bytes(),
            &(site.0 as u64).to_le_bytes(),
        ]);
        self.refresh_reachability(Some(node));
    }

    /// Tells every running node's outbox which of its pending devices have a
    /// path now; `bounce` marks a node whose connections all dropped and
    /// came back. Then drives the outboxes.
    fn refresh_reachability(&mut self, bounce: Option<NodeIdx>) {
        for n in 0..self.nodes.len() {
            if !self.nodes[n].is_up() {
                continue;
            }
            for device in self.nodes[n].pending_devices() {
                let Some(target) = self.world.node_of(&device) else {
                    continue;
                };
                let up = self.world.net.path_up(NodeIdx(n), target);
                let bounced = bounce.is_some_and(|b| b.0 == n || b == target);
                self.nodes[n].set_reachable(&self.world, device, up, bounced);
            }
            self.nodes[n].drive(&mut self.world);
        }
    }
}

/// The two sites of a partition, for the trace.
fn site_bytes(a: SiteIdx, b: SiteIdx) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&(a.0 as u64).to_le_bytes());
    out[8..].copy_from_slice(&(b.0 as u64).to_le_bytes());
    out
}
