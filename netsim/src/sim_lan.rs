//! A virtual-time simulation of one office LAN: N devices, each a real
//! [`Identity`] driving a real [`LanMesh`] (core's peer exchange, ring
//! overlay, suspicions and idle-close), over a modelled network.
//!
//! # Model
//! - **Start**: every device starts at a seeded time within
//!   [`LanSimConfig::start_window_ms`] (the office at 9:00) and signs its
//!   first record.
//! - **Multicast**: a seeded fraction of devices is *deaf*
//!   ([`LanSimConfig::deaf_fraction`]): it gets no mDNS hints, though the
//!   others still hear its announcements. A hearing device gets a hint
//!   about each other device with probability
//!   [`LanSimConfig::hint_fraction`], a seeded delay after both run.
//! - **Dials** take a seeded latency and bring a link up if the target
//!   runs; otherwise they fail after [`LanSimConfig::dial_timeout_ms`]
//!   (reported with [`LanMesh::handle_unreachable`]). The driver dials
//!   [`LanMesh::poll_dials`] a short debounce after its view changed, and
//!   on every `Check`.
//! - **Links** carry gossip reliably and in order with a seeded per-hop
//!   latency. A clean close reaches the other end after what is in flight
//!   (`LinkEnd::Closed`); a crash reaches it after
//!   [`LanSimConfig::link_timeout_ms`] (`LinkEnd::Lost`).
//! - **Timers** go through the event queue (`poll_timeout`).
//! - **Faults**: [`LanSim::crash`] (no goodbye), [`LanSim::leave`] (a
//!   signed Leaving record, then clean closes), [`LanSim::isolate`] and
//!   [`LanSim::reconnect`] (a device cut off while it keeps running).
//!
//! Gossip sizes are real (`Frame::Lan` encoded with core's wire codec).
//! One seed gives one run ([`LanSim::trace_hash`]).
//!
//! # Layout
//! - `net`: the clock, event queue, links and trace.
//! - `node`: one device's driver around its mesh.

mod net;
mod node;

use std::net::SocketAddr;
use std::ops::{AddAssign, Range};
use std::time::Duration;

use tincan_core::lan::{LanMesh, MeshConfig};
use tincan_core::presence::ShownPresence;
use tincan_core::{DeviceId, Identity};

use crate::sim::{NodeIdx, SimError, SimRng, START_MS};
use net::{Ev, Net};
use node::LanNode;

/// Everything fixed before a LAN simulation starts.
#[derive(Clone, Debug)]
pub struct LanSimConfig {
    /// The seed every random choice derives from.
    pub seed: u64,
    /// Devices on the LAN.
    pub nodes: usize,
    /// All devices start within this window, ms.
    pub start_window_ms: u64,
    /// Share of devices that hear no multicast.
    pub deaf_fraction: f64,
    /// Chance that a hearing device gets a hint about a given other one.
    pub hint_fraction: f64,
    /// Delay of a hint after both devices run, ms.
    pub hint_delay_ms: Range<u64>,
    /// Time for a dial to reach a running target, µs.
    pub dial_latency_us: Range<u64>,
    /// Time for gossip to cross a link, µs.
    pub hop_latency_us: Range<u64>,
    /// A dial to a device that is gone fails after this, ms.
    pub dial_timeout_ms: u64,
    /// A link to a crashed device is reported lost after this, ms.
    pub link_timeout_ms: u64,
    /// The driver dials the mesh's targets this long after its view
    /// changed (so a burst of news costs one pass), ms.
    pub dial_debounce_ms: u64,
    /// The mesh's own tuning.
    pub mesh: MeshConfig,
}

impl Default for LanSimConfig {
    /// 100 devices starting within 10 s, 30 % deaf, hints about 20 % of the
    /// others within 2 s, dials and hops of 0.2–2 ms, 4 s dial and link
    /// timeouts, a 50 ms dial debounce, the mesh's default tuning.
    fn default() -> Self {
        Self {
            seed: 0,
            nodes: 100,
            start_window_ms: 10_000,
            deaf_fraction: 0.3,
            hint_fraction: 0.2,
            hint_delay_ms: 10..2_000,
            dial_latency_us: 200..2_000,
            hop_latency_us: 200..2_000,
            dial_timeout_ms: 4_000,
            link_timeout_ms: 4_000,
            dial_debounce_ms: 50,
            mesh: MeshConfig::default(),
        }
    }
}

/// What one device did and saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Gossip messages sent.
    pub gossip_messages: u64,
    /// Bytes of those messages as `Frame::Lan`.
    pub gossip_bytes: u64,
    /// Gossip the mesh wanted sent to a peer without an open link.
    pub unsent: u64,
    /// Gossip messages with a record that failed its checks.
    pub bad_gossip: u64,
    /// Most links open at once.
    pub max_links: usize,
    /// Dials started, and those that failed.
    pub dials: u64,
    /// Dials that failed.
    pub failed_dials: u64,
    /// `Learned` events.
    pub learned: u64,
    /// `Online` events.
    pub online: u64,
    /// `Offline` events.
    pub offline: u64,
    /// `Check` events.
    pub checks: u64,
    /// `Close` events.
    pub closes: u64,
    /// `Refute` events.
    pub refutes: u64,
}

impl AddAssign<&NodeStats> for NodeStats {
    fn add_assign(&mut self, o: &NodeStats) {
        self.gossip_messages += o.gossip_messages;
        self.gossip_bytes += o.gossip_bytes;
        self.unsent += o.unsent;
        self.bad_gossip += o.bad_gossip;
        self.max_links = self.max_links.max(o.max_links);
        self.dials += o.dials;
        self.failed_dials += o.failed_dials;
        self.learned += o.learned;
        self.online += o.online;
        self.offline += o.offline;
        self.checks += o.checks;
        self.closes += o.closes;
        self.refutes += o.refutes;
    }
}

/// How one device showed a watched device right after a change
/// ([`LanSim::watch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observation {
    /// Virtual time, µs since the start.
    pub at_us: u64,
    /// Who looked.
    pub observer: NodeIdx,
    /// At whom.
    pub device: NodeIdx,
    /// [`LanMesh::shown`] then.
    pub shown: Option<ShownPresence>,
    /// [`LanMesh::is_online`] then.
    pub online: bool,
}

/// Links per running device at one moment ([`LanSim::link_history`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkSample {
    /// Virtual time since the start.
    pub at: Duration,
    /// Devices running.
    pub running: usize,
    /// Mean links per running device.
    pub mean: f64,
    /// Most links of one device.
    pub max: usize,
}

/// Virtual time between two [`LinkSample`]s, µs.
const SAMPLE_EVERY_US: u64 = 1_000_000;

/// A running LAN simulation.
pub struct LanSim {
    net: Net,
    nodes: Vec<LanNode>,
    link_history: Vec<LinkSample>,
}

/// The address device `i` listens on.
fn addr_of(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 1, (i / 250) as u8, (i % 250) as u8 + 1], 7000))
}

impl LanSim {
    /// Builds the LAN: identities, start times, deaf devices and every mDNS
    /// hint, all from the seed. Nothing runs until stepped.
    pub fn new(config: LanSimConfig) -> Self {
        let n = config.nodes;
        let mut keys = SimRng::new(config.seed, 0x1a_0001);
        let mut plan = SimRng::new(config.seed, 0x1a_0002);
        let latency = SimRng::new(config.seed, 0x1a_0003);
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let identity = Identity::generate(&format!("desk{i}"), START_MS / 1_000, &mut keys);
            let start_us = plan.below(config.start_window_ms * 1_000 + 1);
            let deaf = plan.chance(config.deaf_fraction);
            nodes.push(LanNode::new(i, identity, addr_of(i), deaf, start_us, n));
        }
        let devices = nodes.iter().map(|n| n.identity.device_id()).collect();
        let mut net = Net::new(config.clone(), devices, latency);
        for node in &nodes {
            net.queue.push(node.start_us, Ev::Start(node.idx));
        }
        for to in nodes.iter().filter(|n| !n.deaf) {
            for about in nodes.iter().filter(|a| a.idx != to.idx) {
                if plan.chance(config.hint_fraction) {
                    let delay = plan.in_range(config.hint_delay_ms.clone()) * 1_000;
                    let at = to.start_us.max(about.start_us) + delay;
                    net.queue.push(
                        at,
                        Ev::Hint {
                            to: to.idx,
                            about: about.idx,
                        },
                    );
                }
            }
        }
        Self {
            net,
            nodes,
            link_history: Vec::new(),
        }
    }

    /// Number of devices.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no devices.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        Duration::from_micros(self.net.now)
    }

    /// Device `i`'s id.
    pub fn device(&self, i: NodeIdx) -> DeviceId {
        self.net.devices[i.0]
    }

    /// Device `i`'s view, while it runs.
    pub fn mesh(&self, i: NodeIdx) -> Option<&LanMesh> {
        self.nodes[i.0].mesh()
    }

    /// Whether device `i` runs.
    pub fn is_running(&self, i: NodeIdx) -> bool {
        self.nodes[i.0].is_running()
    }

    /// Whether device `i` hears no multicast.
    pub fn is_deaf(&self, i: NodeIdx) -> bool {
        self.nodes[i.0].deaf
    }

    /// When device `i` starts, since the start.
    pub fn start_time(&self, i: NodeIdx) -> Duration {
        Duration::from_micros(self.nodes[i.0].start_us)
    }

    /// When device `i` first showed every other device online with its
    /// record, since the start.
    pub fn converged_at(&self, i: NodeIdx) -> Option<Duration> {
        self.nodes[i.0].converged_at.map(Duration::from_micros)
    }

    /// How many devices have shown the whole LAN at least once.
    pub fn converged(&self) -> usize {
        self.net.converged
    }

    /// Links open at device `i`'s end now.
    pub fn links(&self, i: NodeIdx) -> usize {
        self.nodes[i.0].ends.len()
    }

    /// Links per device once every second of virtual time so far.
    pub fn link_history(&self) -> &[LinkSample] {
        &self.link_history
    }

    /// Takes the samples due before `until` (µs).
    fn sample_links(&mut self, until: u64) {
        loop {
            let at = self.link_history.len() as u64 * SAMPLE_EVERY_US;
            if at > until {
                return;
            }
            let links: Vec<usize> = self
                .nodes
                .iter()
                .filter(|n| n.is_running())
                .map(|n| n.ends.len())
                .collect();
            self.link_history.push(LinkSample {
                at: Duration::from_micros(at),
                running: links.len(),
                mean: links.iter().sum::<usize>() as f64 / links.len().max(1) as f64,
                max: links.iter().copied().max().unwrap_or(0),
            });
        }
    }

    /// What device `i` did and saw.
    pub fn stats(&self, i: NodeIdx) -> &NodeStats {
        &self.nodes[i.0].stats
    }

    /// All devices' stats summed (`max_links` is the maximum).
    pub fn total_stats(&self) -> NodeStats {
        let mut total = NodeStats::default();
        for n in &self.nodes {
            total += &n.stats;
        }
        total
    }

    /// From now on, logs how every device shows device `i` after each
    /// change ([`LanSim::observations`]).
    pub fn watch(&mut self, i: NodeIdx) {
        self.net.watched.insert(i.0);
    }

    /// Everything logged about watched devices, in time order.
    pub fn observations(&self) -> &[Observation] {
        &self.net.observations
    }

    /// Device `i` shows `presence` (signs a newer record).
    pub fn set_presence(&mut self, i: NodeIdx, presence: ShownPresence) {
        self.nodes[i.0].set_presence(&mut self.net, presence);
    }

    /// Device `i` stops without a goodbye.
    pub fn crash(&mut self, i: NodeIdx) {
        self.nodes[i.0].crash(&mut self.net);
    }

    /// Device `i` says goodbye (a signed Leaving record to its links),
    /// closes its links and stops.
    pub fn leave(&mut self, i: NodeIdx) {
        self.nodes[i.0].leave(&mut self.net);
    }

    /// Cuts device `i` off the LAN while it keeps running (a cable pulled,
    /// a Wi-Fi drop): its links are lost at both ends after the keep-alive
    /// timeout and dials to or from it fail, until [`LanSim::reconnect`].
    pub fn isolate(&mut self, i: NodeIdx) {
        self.net.isolated.insert(i.0);
        for links in self.nodes[i.0].ends.values() {
            for link in links {
                self.net.cut(*link);
            }
        }
    }

    /// Plugs device `i` back in: dials work again, and mDNS runs again
    /// on its new interface (it queries, the others hear it announce), with
    /// the same seeded odds and delays as at the start.
    pub fn reconnect(&mut self, i: NodeIdx) {
        self.net.isolated.remove(&i.0);
        let (hint, delay) = (
            self.net.config.hint_fraction,
            self.net.config.hint_delay_ms.clone(),
        );
        for other in 0..self.nodes.len() {
            if other == i.0 || !self.nodes[other].is_running() {
                continue;
            }
            for (to, about) in [(i.0, other), (other, i.0)] {
                if !self.nodes[to].deaf && self.net.chance(hint) {
                    let after = self.net.in_range(delay.clone()) * 1_000;
                    self.net.at(after, Ev::Hint { to, about });
                }
            }
        }
    }

    /// Hash of every event processed so far: equal for equal seeds.
    pub fn trace_hash(&self) -> String {
        self.net.trace_hash()
    }

    /// Processes the next event. Returns `false` when nothing is left.
    pub fn step(&mut self) -> bool {
        let Some((time, seq, ev)) = self.net.queue.pop() else {
            return false;
        };
        self.sample_links(time);
        self.net.now = self.net.now.max(time);
        self.net.trace_event(seq, &ev);
        let net = &mut self.net;
        match ev {
            Ev::Start(i) => {
                let config = net.config.mesh.clone();
                self.nodes[i].start(net, config);
            }
            Ev::Hint { to, about } => {
                let addr = self.nodes[about].addr;
                self.nodes[to].hint(net, about, addr);
            }
            // A dial from a device that stopped meanwhile goes nowhere.
            Ev::DialArrive { from, to } if self.nodes[from].is_running() => {
                let cut = net.isolated.contains(&from) || net.isolated.contains(&to);
                if self.nodes[to].is_running() && !cut {
                    let link = net.open_link(from, to);
                    self.nodes[from].dial_done(net, to, Some(link));
                    self.nodes[to].link_up(net, from, link);
                } else {
                    net.at(
                        net.config.dial_timeout_ms * 1_000,
                        Ev::DialFail { from, to },
                    );
                }
            }
            Ev::DialArrive { .. } => {}
            Ev::DialFail { from, to } => self.nodes[from].dial_done(net, to, None),
            Ev::Gossip { link, to, gossip } => self.nodes[to].gossip(net, link, gossip),
            Ev::LinkDown { link, at, end } => self.nodes[at].link_down(net, link, end),
            Ev::Wake { node } => self.nodes[node].wake(net),
            Ev::DialCheck { node } => self.nodes[node].dial_check(net),
        }
        true
    }

    /// Steps until `pred` holds (checked before every step, so keep it
    /// cheap) or `max` of virtual time has passed from now.
    pub fn run_until(
        &mut self,
        mut pred: impl FnMut(&LanSim) -> bool,
        max: Duration,
    ) -> Result<Duration, SimError> {
        let start = self.net.now;
        let deadline = start.saturating_add(max.as_micros() as u64);
        loop {
            if pred(self) {
                return Ok(Duration::from_micros(self.net.now - start));
            }
            match self.net.queue.peek_time() {
                None => return Err(SimError::Stalled),
                Some(t) if t > deadline => {
                    self.net.now = deadline;
                    return Err(SimError::Timeout { elapsed: max });
                }
                Some(_) => {
                    self.step();
                }
            }
        }
    }

    /// Processes every event due within `duration`, then sets the clock to
    /// its end.
    pub fn run_for(&mut self, duration: Duration) {
        let end = self.net.now.saturating_add(duration.as_micros() as u64);
        while self.net.queue.peek_time().is_some_and(|t| t <= end) {
            self.step();
        }
        self.net.now = end;
    }
}
