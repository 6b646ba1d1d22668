//! What connects the simulated devices of one LAN: the clock, the event
//! queue, the links between devices (reliable, in order, with a per-hop
//! latency) and the trace.
//!
//! A link is one QUIC connection: both ends open when a dial lands, each
//! end closes on its own (a clean close reaches the other end after what
//! was already in flight; a crash reaches it only when the keep-alive
//! times out). Gossip is delivered in the order it was sent on a link, as
//! on a QUIC stream.

use std::collections::{BTreeMap, BTreeSet};

use tincan_core::lan::{LanGossip, LinkEnd};
use tincan_core::DeviceId;

use super::{LanSimConfig, Observation};
use crate::sim::queue::Queue;
use crate::sim::seed::SimRng;
use crate::sim::trace::Trace;

/// What happens at a point in virtual time (µs since the start).
#[derive(Clone, Debug)]
pub(crate) enum Ev {
    /// A device starts (its mesh is created and signs its first record).
    Start(usize),
    /// `to` hears an mDNS answer about `about`.
    Hint { to: usize, about: usize },
    /// A dial from `from` reaches `to` (or finds nobody there).
    DialArrive { from: usize, to: usize },
    /// A dial from `from` to `to` timed out.
    DialFail { from: usize, to: usize },
    /// Gossip arrives at `to` over `link`.
    Gossip {
        link: u64,
        to: usize,
        gossip: LanGossip,
    },
    /// `at`'s end of `link` goes down.
    LinkDown { link: u64, at: usize, end: LinkEnd },
    /// `node`'s mesh asked to be woken now.
    Wake { node: usize },
    /// `node` dials the ring neighbours its mesh wants (debounced).
    DialCheck { node: usize },
}

impl Ev {
    /// A tag and the two indices that identify the event in the trace.
    fn trace_key(&self) -> (u8, u64, u64) {
        match self {
            Ev::Start(n) => (1, *n as u64, 0),
            Ev::Hint { to, about } => (2, *to as u64, *about as u64),
            Ev::DialArrive { from, to } => (3, *from as u64, *to as u64),
            Ev::DialFail { from, to } => (4, *from as u64, *to as u64),
            Ev::Gossip { link, to, gossip } => (
                5,
                *to as u64,
                link << 20 | (gossip.records.len() as u64) << 10 | gossip.suspicions.len() as u64,
            ),
            Ev::LinkDown { link, at, end } => {
                (6 + (*end == LinkEnd::Lost) as u8, *at as u64, *link)
            }
            Ev::Wake { node } => (8, *node as u64, 0),
            Ev::DialCheck { node } => (9, *node as u64, 0),
        }
    }
}

/// One connection between two devices.
#[derive(Clone, Debug)]
pub(crate) struct Link {
    /// The two devices, the dialler first.
    ends: [usize; 2],
    /// Whether each end is still open.
    open: [bool; 2],
    /// When the last thing sent towards each end arrives (keeps order).
    last_arrival: [u64; 2],
    /// Cut off by an isolation: nothing crosses it any more.
    cut: bool,
}

impl Link {
    fn side(&self, node: usize) -> Option<usize> {
        self.ends.iter().position(|e| *e == node)
    }
}

/// The shared state of a LAN simulation.
pub(crate) struct Net {
    /// Virtual time, µs since the start.
    pub(crate) now: u64,
    pub(crate) queue: Queue<Ev>,
    pub(crate) config: LanSimConfig,
    /// Device id of every node, by index, and the reverse.
    pub(crate) devices: Vec<DeviceId>,
    pub(crate) index: BTreeMap<DeviceId, usize>,
    /// Devices whose view by every other node is logged.
    pub(crate) watched: BTreeSet<usize>,
    pub(crate) observations: Vec<Observation>,
    /// Devices cut off from the LAN: dials to or from them fail.
    pub(crate) isolated: BTreeSet<usize>,
    /// Nodes that showed the whole LAN at least once.
    pub(crate) converged: usize,
    links: BTreeMap<u64, Link>,
    next_link: u64,
    /// Latencies of dials and hops, and hints after a reconnect.
    latency: SimRng,
    trace: Trace,
}

impl Net {
    pub(crate) fn new(config: LanSimConfig, devices: Vec<DeviceId>, latency: SimRng) -> Self {
        let index = devices.iter().enumerate().map(|(i, d)| (*d, i)).collect();
        Self {
            now: 0,
            queue: Queue::default(),
            config,
            devices,
            index,
            watched: BTreeSet::new(),
            observations: Vec::new(),
            isolated: BTreeSet::new(),
            converged: 0,
            links: BTreeMap::new(),
            next_link: 0,
            latency,
            trace: Trace::new("tincan netsim lan trace v1"),
        }
    }

    /// Virtual time as core sees it (ms since the Unix epoch).
    pub(crate) fn now_ms(&self) -> u64 {
        crate::sim::START_MS + self.now / 1_000
    }

    /// Schedules `ev` `after` µs from now.
    pub(crate) fn at(&mut self, after: u64, ev: Ev) {
        self.queue.push(self.now + after, ev);
    }

    /// A seeded dial latency, µs.
    pub(crate) fn dial_latency(&mut self) -> u64 {
        let range = self.config.dial_latency_us.clone();
        self.latency.in_range(range)
    }

    /// `true` with probability `p`, from the network's stream.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.latency.chance(p)
    }

    /// A number in `range`, from the network's stream.
    pub(crate) fn in_range(&mut self, range: std::ops::Range<u64>) -> u64 {
        self.latency.in_range(range)
    }

    /// Opens a link between `a` (the dialler) and `b`.
    pub(crate) fn open_link(&mut self, a: usize, b: usize) -> u64 {
        let id = self.next_link;
        self.next_link += 1;
        self.links.insert(
            id,
            Link {
                ends: [a, b],
                open: [true, true],
                last_arrival: [self.now, self.now],
                cut: false,
            },
        );
        id
    }

    /// The other end of `link` seen from `node`, if `node`'s end is open.
    pub(crate) fn peer(&self, link: u64, node: usize) -> Option<usize> {
        let l = self.links.get(&link)?;
        let side = l.side(node)?;
        l.open[side].then_some(l.ends[1 - side])
    }

    /// When something sent now from `from` over `link` arrives at the
    /// other end: after a seeded hop latency, never before what was sent
    /// earlier on the same link.
    fn arrival(&mut self, link: u64, from: usize) -> Option<(usize, u64)> {
        let hop = self.latency.in_range(self.config.hop_latency_us.clone());
        let now = self.now;
        let l = self.links.get_mut(&link)?;
        if l.cut {
            return None;
        }
        let to_side = 1 - l.side(from)?;
        let at = (now + hop).max(l.last_arrival[to_side]);
        l.last_arrival[to_side] = at;
        Some((l.ends[to_side], at))
    }

    /// Sends `gossip` from `from` over `link`.
    pub(crate) fn send(&mut self, link: u64, from: usize, gossip: LanGossip) {
        if let Some((to, at)) = self.arrival(link, from) {
            self.queue.push(at, Ev::Gossip { link, to, gossip });
        }
    }

    /// Closes `node`'s end of `link`; the other end learns it after what
    /// is in flight (`Closed`) or after the keep-alive timeout (`Lost`).
    pub(crate) fn close(&mut self, link: u64, node: usize, end: LinkEnd) {
        let down_at = match end {
            LinkEnd::Closed => self.arrival(link, node),
            LinkEnd::Lost => {
                let timeout = self.config.link_timeout_ms * 1_000;
                self.links
                    .get(&link)
                    .and_then(|l| Some((l.ends[1 - l.side(node)?], self.now + timeout)))
            }
        };
        self.close_end(link, node);
        if let Some((to, at)) = down_at {
            self.queue.push(at, Ev::LinkDown { link, at: to, end });
        }
    }

    /// Cuts `link` (its device was isolated): nothing more crosses it, and
    /// both ends see it lost after the keep-alive timeout.
    pub(crate) fn cut(&mut self, link: u64) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        l.cut = true;
        let at = self.now + self.config.link_timeout_ms * 1_000;
        for end in l.ends {
            self.queue.push(
                at,
                Ev::LinkDown {
                    link,
                    at: end,
                    end: LinkEnd::Lost,
                },
            );
        }
    }

    /// Marks `node`'s end of `link` closed; forgets the link once both
    /// ends are. Returns whether that end was open.
    pub(crate) fn close_end(&mut self, link: u64, node: usize) -> bool {
        let Some(l) = self.links.get_mut(&link) else {
            return false;
        };
        let Some(side) = l.side(node) else {
            return false;
        };
        let was_open = std::mem::replace(&mut l.open[side], false);
        if !l.open.iter().any(|o| *o) {
            self.links.remove(&link);
        }
        was_open
    }

    /// Mixes one dequeued event into the trace.
    pub(crate) fn trace_event(&mut self, seq: u64, ev: &Ev) {
        let (tag, a, b) = ev.trace_key();
        self.trace.bytes(&self.now.to_le_bytes());
        self.trace.bytes(&seq.to_le_bytes());
        self.trace.bytes(&[tag]);
        self.trace.bytes(&a.to_le_bytes());
        self.trace.bytes(&b.to_le_bytes());
    }

    /// The trace hash so far, as hex.
    pub(crate) fn trace_hash(&self) -> String {
        self.trace.hash()
    }
}
