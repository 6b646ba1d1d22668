//! One simulated device: a real [`Identity`] driving a real [`LanMesh`] the
//! way the node's driver does. It feeds the mesh links, gossip, hints and
//! failed dials with `now`, then pumps it: sends what
//! [`LanMesh::poll_transmit`] returns on the link to that peer, acts on
//! every [`LanEvent`] (dial on `Check`, close on `Close`, re-sign on
//! `Refute`), and sets its timer from [`LanMesh::poll_timeout`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use tincan_core::lan::{LanEvent, LanMesh, LanRecord, LanStatus, LinkEnd, MeshConfig};
use tincan_core::presence::ShownPresence;
use tincan_core::wire::{self, Frame};
use tincan_core::Identity;

use super::net::{Ev, Net};
use super::{NodeStats, Observation};

/// Where a device is in its life.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Not started yet.
    Waiting,
    /// Running, with its view of the LAN.
    Running(Box<LanMesh>),
    /// Crashed or left; it never comes back.
    Down,
}

/// One device and its driver state.
pub(crate) struct LanNode {
    pub(crate) idx: usize,
    pub(crate) identity: Identity,
    pub(crate) addr: SocketAddr,
    /// Hears no multicast (gets no mDNS hints).
    pub(crate) deaf: bool,
    /// When it starts, µs.
    pub(crate) start_us: u64,
    pub(crate) phase: Phase,
    version: u64,
    presence: ShownPresence,
    /// Open links at this end, by peer.
    pub(crate) ends: BTreeMap<usize, BTreeSet<u64>>,
    /// Dials in flight, by target.
    dialling: BTreeSet<usize>,
    /// The time of the scheduled wake, µs.
    wake_at: Option<u64>,
    /// A dial check is scheduled.
    dial_check: bool,
    /// Bit per device whose record it learned.
    learned: Vec<u64>,
    learned_count: usize,
    online_count: usize,
    pub(crate) converged_at: Option<u64>,
    pub(crate) stats: NodeStats,
}

impl LanNode {
    pub(crate) fn new(
        idx: usize,
        identity: Identity,
        addr: SocketAddr,
        deaf: bool,
        start_us: u64,
        nodes: usize,
    ) -> Self {
        Self {
            idx,
            identity,
            addr,
            deaf,
            start_us,
            phase: Phase::Waiting,
            version: 0,
            presence: ShownPresence::Online,
            ends: BTreeMap::new(),
            dialling: BTreeSet::new(),
            wake_at: None,
            dial_check: false,
            learned: vec![0; nodes.div_ceil(64)],
            learned_count: 0,
            online_count: 0,
            converged_at: None,
            stats: NodeStats::default(),
        }
    }

    /// The mesh, if running.
    pub(crate) fn mesh(&self) -> Option<&LanMesh> {
        match &self.phase {
            Phase::Running(m) => Some(m),
            _ => None,
        }
    }

    fn mesh_mut(&mut self) -> Option<&mut LanMesh> {
        match &mut self.phase {
            Phase::Running(m) => Some(m),
            _ => None,
        }
    }

    pub(crate) fn is_running(&self) -> bool {
        matches!(self.phase, Phase::Running(_))
    }

    /// Starts the mesh with a first record.
    pub(crate) fn start(&mut self, net: &mut Net, config: MeshConfig) {
        self.phase = Phase::Running(Box::new(LanMesh::new(self.identity.device_id(), config)));
        self.sign(net, LanStatus::Here(self.presence), 0);
    }

    /// Signs a record newer than both the last one and `above`, and hands
    /// it to the mesh.
    fn sign(&mut self, net: &mut Net, status: LanStatus, above: u64) {
        self.version = self.version.max(above) + 1;
        let record = LanRecord::sign(&self.identity, vec![self.addr], self.version, status);
        if let Some(m) = self.mesh_mut() {
            m.set_own(record);
        }
        self.pump(net);
    }

    /// Shows `presence` from now on (a new signed record).
    pub(crate) fn set_presence(&mut self, net: &mut Net, presence: ShownPresence) {
        self.presence = presence;
        self.sign(net, LanStatus::Here(presence), 0);
    }

    /// Says goodbye (a signed Leaving record to every link), closes every
    /// link and stops.
    pub(crate) fn leave(&mut self, net: &mut Net) {
        self.sign(net, LanStatus::Leaving, 0);
        for (_, links) in std::mem::take(&mut self.ends) {
            for link in links {
                net.close(link, self.idx, LinkEnd::Closed);
            }
        }
        self.phase = Phase::Down;
    }

    /// Stops without a goodbye: peers notice when their links time out.
    pub(crate) fn crash(&mut self, net: &mut Net) {
        for (_, links) in std::mem::take(&mut self.ends) {
            for link in links {
                net.close(link, self.idx, LinkEnd::Lost);
            }
        }
        self.phase = Phase::Down;
    }

    /// An mDNS answer about `about`.
    pub(crate) fn hint(&mut self, net: &mut Net, about: usize, addr: SocketAddr) {
        let device = net.devices[about];
        if let Some(m) = self.mesh_mut() {
            m.handle_hint(device, vec![addr]);
            self.want_dial_check(net);
        }
    }

    /// Dials `peer` unless a dial or a link to it is there already;
    /// whether it did.
    fn dial(&mut self, net: &mut Net, peer: usize) -> bool {
        if self.ends.contains_key(&peer) || !self.dialling.insert(peer) {
            return false;
        }
        self.stats.dials += 1;
        let after = net.dial_latency();
        net.at(
            after,
            Ev::DialArrive {
                from: self.idx,
                to: peer,
            },
        );
        true
    }

    /// The dial to `peer` ended, with a link or without.
    pub(crate) fn dial_done(&mut self, net: &mut Net, peer: usize, link: Option<u64>) {
        self.dialling.remove(&peer);
        match link {
            Some(link) => self.link_up(net, peer, link),
            None => {
                self.stats.failed_dials += 1;
                let now = net.now_ms();
                if let Some(m) = self.mesh_mut() {
                    m.handle_unreachable(now, net.devices[peer]);
                    self.pump(net);
                }
            }
        }
    }

    /// A link to `peer` is up at this end.
    pub(crate) fn link_up(&mut self, net: &mut Net, peer: usize, link: u64) {
        let links = self.ends.entry(peer).or_default();
        let first = links.is_empty();
        links.insert(link);
        self.stats.max_links = self.stats.max_links.max(self.ends.len());
        let now = net.now_ms();
        if let (true, Some(m)) = (first, self.mesh_mut()) {
            m.handle_link_up(now, net.devices[peer]);
            self.pump(net);
        }
    }

    /// This end of `link` went down.
    pub(crate) fn link_down(&mut self, net: &mut Net, link: u64, end: LinkEnd) {
        let Some(peer) = net.peer(link, self.idx) else {
            return;
        };
        net.close_end(link, self.idx);
        let Some(links) = self.ends.get_mut(&peer) else {
            return;
        };
        links.remove(&link);
        if !links.is_empty() {
            return;
        }
        self.ends.remove(&peer);
        let now = net.now_ms();
        if let Some(m) = self.mesh_mut() {
            m.handle_link_down(now, net.devices[peer], end);
            self.pump(net);
        }
    }

    /// Gossip arrived over `link`.
    pub(crate) fn gossip(&mut self, net: &mut Net, link: u64, gossip: tincan_core::lan::LanGossip) {
        let Some(peer) = net.peer(link, self.idx) else {
            return;
        };
        let now = net.now_ms();
        let Some(m) = self.mesh_mut() else {
            return;
        };
        if m.handle_gossip(now, net.devices[peer], gossip).is_err() {
            self.stats.bad_gossip += 1;
        }
        self.pump(net);
    }

    /// The mesh's timer fired (if `at` is still the one asked for).
    pub(crate) fn wake(&mut self, net: &mut Net) {
        if self.wake_at != Some(net.now) {
            return;
        }
        self.wake_at = None;
        let now = net.now_ms();
        if let Some(m) = self.mesh_mut() {
            m.handle_timeout(now);
            self.pump(net);
            // A hint may have outlived its grace: dial targets can change
            // with time alone.
            self.want_dial_check(net);
        }
    }

    /// Dials every ring neighbour the mesh asks for.
    pub(crate) fn dial_check(&mut self, net: &mut Net) {
        self.dial_check = false;
        let now = net.now_ms();
        let targets = match self.mesh_mut() {
            Some(m) => m.poll_dials(now),
            None => return,
        };
        for (device, _) in targets {
            let started = match net.index.get(&device) {
                Some(&peer) => self.dial(net, peer),
                None => false,
            };
            if let (false, Some(m)) = (started, self.mesh_mut()) {
                m.handle_dial_skipped(&device);
            }
        }
    }

    fn want_dial_check(&mut self, net: &mut Net) {
        if !self.dial_check {
            self.dial_check = true;
            let after = net.config.dial_debounce_ms * 1_000;
            net.at(after, Ev::DialCheck { node: self.idx });
        }
    }

    /// Sends what the mesh has to send and acts on what it says, until it
    /// has nothing more; then sets its timer.
    fn pump(&mut self, net: &mut Net) {
        loop {
            let Some(m) = self.mesh_mut() else {
                return;
            };
            let mut busy = false;
            let mut sends = Vec::new();
            while let Some(out) = m.poll_transmit() {
                sends.push(out);
            }
            let mut events = Vec::new();
            while let Some(e) = m.poll_event() {
                events.push(e);
            }
            for (device, gossip) in sends {
                busy = true;
                let peer = net.index.get(&device).copied();
                let link = peer.and_then(|p| self.ends.get(&p)?.last().copied());
                let Some(link) = link else {
                    self.stats.unsent += 1;
                    continue;
                };
                let frame = Frame::Lan(gossip);
                self.stats.gossip_messages += 1;
                self.stats.gossip_bytes += wire::encode(&frame).map_or(0, |b| b.len() as u64);
                if let Frame::Lan(gossip) = frame {
                    net.send(link, self.idx, gossip);
                }
            }
            for event in events {
                busy = true;
                self.on_event(net, event);
            }
            if !busy {
                break;
            }
        }
        let timeout = self.mesh().and_then(|m| m.poll_timeout());
        if let Some(t) = timeout {
            let at = (t.saturating_sub(crate::sim::START_MS) * 1_000).max(net.now);
            if self.wake_at != Some(at) {
                self.wake_at = Some(at);
                net.queue.push(at, Ev::Wake { node: self.idx });
            }
        }
    }

    fn on_event(&mut self, net: &mut Net, event: LanEvent) {
        let about = |d| net.index.get(d).copied();
        match &event {
            LanEvent::Learned(d) => {
                self.stats.learned += 1;
                if let Some(i) = about(d) {
                    let (word, bit) = (i / 64, 1u64 << (i % 64));
                    if self.learned[word] & bit == 0 {
                        self.learned[word] |= bit;
                        self.learned_count += 1;
                    }
                }
            }
            LanEvent::Online(_) => {
                self.stats.online += 1;
                self.online_count += 1;
                self.want_dial_check(net);
            }
            LanEvent::Offline(_) => {
                self.stats.offline += 1;
                self.online_count = self.online_count.saturating_sub(1);
                self.want_dial_check(net);
            }
            LanEvent::Check(d) => {
                self.stats.checks += 1;
                if let Some(peer) = about(d) {
                    let _ = self.dial(net, peer);
                }
            }
            LanEvent::Close(d) => {
                self.stats.closes += 1;
                if let Some(peer) = about(d) {
                    self.close(net, peer);
                }
            }
            LanEvent::Refute { above } => {
                self.stats.refutes += 1;
                self.sign(net, LanStatus::Here(self.presence), *above);
            }
        }
        self.observe(net, &event);
        let everyone = net.devices.len() - 1;
        if self.converged_at.is_none()
            && self.learned_count == everyone
            && self.online_count == everyone
        {
            self.converged_at = Some(net.now);
            net.converged += 1;
        }
    }

    /// Closes every link to `peer` cleanly.
    fn close(&mut self, net: &mut Net, peer: usize) {
        for link in self.ends.remove(&peer).unwrap_or_default() {
            net.close(link, self.idx, LinkEnd::Closed);
        }
        let now = net.now_ms();
        if let Some(m) = self.mesh_mut() {
            m.handle_link_down(now, net.devices[peer], LinkEnd::Closed);
        }
    }

    /// Logs how this node shows a watched device after `event`.
    fn observe(&self, net: &mut Net, event: &LanEvent) {
        let device = match event {
            LanEvent::Learned(d) | LanEvent::Online(d) | LanEvent::Offline(d) => d,
            _ => return,
        };
        let Some(&i) = net.index.get(device) else {
            return;
        };
        if !net.watched.contains(&i) {
            return;
        }
        let Some(m) = self.mesh() else {
            return;
        };
        net.observations.push(Observation {
            at_us: net.now,
            observer: crate::sim::NodeIdx(self.idx),
            device: crate::sim::NodeIdx(i),
            shown: m.shown(device),
            online: m.is_online(device),
        });
    }
}
