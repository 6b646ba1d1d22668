//! The simulated network: where each node is, which sites are cut off from
//! each other, how long a hop takes, which packets are lost, and what crossed
//! each site's WAN link.
//!
//! # Topology
//! A site is one LAN. Devices of a site talk directly (one LAN hop). Traffic
//! between sites leaves through the site's gateway, crosses the WAN to the
//! relay, and enters the destination site through its gateway:
//!
//! ```text
//! node ──lan──▶ gateway(A) ══wan up══▶ relay ══wan down══▶ gateway(B) ──lan──▶ node
//! ```
//!
//! Every hop draws its own latency and may lose the packet (probability
//! `loss`, independently per hop). A partition between two sites is enforced
//! by the relay, so packets already past it still arrive. Both WAN hops are
//! counted on the WAN link of the site they leave or enter.

use std::collections::BTreeSet;
use std::ops::Range;

use super::queue::{Event, Hop, Packet, Queue};
use super::seed::SimRng;
use super::{NodeIdx, SiteIdx};

/// Messages and bytes on one direction of a link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCount {
    /// Packets put on the link (lost ones included).
    pub messages: u64,
    /// Their bytes: the encoded frame plus the routing header.
    pub bytes: u64,
}

impl LinkCount {
    fn add(&mut self, bytes: u64) {
        self.messages += 1;
        self.bytes += bytes;
    }
}

/// What crossed one site's WAN link, by direction and kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WanStats {
    /// Envelope copies entering the site (relay → gateway).
    pub envelopes_in: LinkCount,
    /// Envelope copies leaving the site (gateway → relay).
    pub envelopes_out: LinkCount,
    /// Receipts entering the site.
    pub receipts_in: LinkCount,
    /// Receipts leaving the site.
    pub receipts_out: LinkCount,
    /// Lease claims, releases and answers, both ways.
    pub control: LinkCount,
}

/// Network-wide counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Packets put on a LAN hop.
    pub lan_messages: u64,
    /// Packets lost to random loss.
    pub lost: u64,
    /// Packets the relay dropped because of a partition.
    pub partitioned: u64,
    /// Packets that found their device down or gone (crashed or roamed).
    pub undeliverable: u64,
    /// Packets dropped for want of a gateway: the sender knew none, the
    /// node it used was no longer one, or the relay held no live lease for
    /// the destination site.
    pub no_gateway: u64,
}

/// What a packet is, for the WAN counters.
enum Kind {
    Envelope,
    Receipt,
    Control,
}

/// Which link a hop crosses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Link {
    /// Inside a site.
    Lan,
    /// From a site's gateway to the relay.
    WanUp(SiteIdx),
    /// From the relay to a site's gateway.
    WanDown(SiteIdx),
}

/// The network state the simulator mutates.
pub(crate) struct Net {
    pub(crate) lan_latency: Range<u64>,
    pub(crate) wan_latency: Range<u64>,
    pub(crate) loss: f64,
    pub(crate) sites: usize,
    /// Current site of each node.
    pub(crate) location: Vec<SiteIdx>,
    /// The nodes in each site (the inverse of `location`).
    pub(crate) members: Vec<Vec<NodeIdx>>,
    /// Whether each node is running.
    pub(crate) up: Vec<bool>,
    /// Cut site pairs, stored as (smaller, larger).
    partitions: BTreeSet<(SiteIdx, SiteIdx)>,
    pub(crate) wan: Vec<WanStats>,
    pub(crate) stats: NetStats,
    rng: SimRng,
}

impl Net {
    pub(crate) fn new(
        sites: usize,
        lan_latency: Range<u64>,
        wan_latency: Range<u64>,
        loss: f64,
        rng: SimRng,
    ) -> Self {
        Self {
            lan_latency,
            wan_latency,
            loss,
            sites,
            location: Vec::new(),
            members: vec![Vec::new(); sites],
            up: Vec::new(),
            partitions: BTreeSet::new(),
            wan: vec![WanStats::default(); sites],
            stats: NetStats::default(),
            rng,
        }
    }

    fn pair(a: SiteIdx, b: SiteIdx) -> (SiteIdx, SiteIdx) {
        if a <= b {
            (a, b)
        } else {
            (b, a)
        }
    }

    /// Places a new node in `site`.
    pub(crate) fn place(&mut self, node: NodeIdx, site: SiteIdx) {
        self.location.push(site);
        self.members[site.0].push(node);
        self.up.push(true);
    }

    /// Moves `node` to `site`.
    pub(crate) fn relocate(&mut self, node: NodeIdx, site: SiteIdx) {
        let old = self.location[node.0];
        self.members[old.0].retain(|n| *n != node);
        self.members[site.0].push(node);
        self.location[node.0] = site;
    }

    /// The latency of one LAN hop.
    pub(crate) fn lan_delay(&mut self) -> u64 {
        self.rng.in_range(self.lan_latency.clone())
    }

    /// Whether one packet is lost (counted when it is).
    pub(crate) fn lose(&mut self) -> bool {
        let lost = self.loss > 0.0 && self.rng.chance(self.loss);
        if lost {
            self.stats.lost += 1;
        }
        lost
    }

    pub(crate) fn partition(&mut self, a: SiteIdx, b: SiteIdx) {
        if a != b {
            self.partitions.insert(Self::pair(a, b));
        }
    }

    pub(crate) fn heal(&mut self, a: SiteIdx, b: SiteIdx) {
        self.partitions.remove(&Self::pair(a, b));
    }

    pub(crate) fn heal_all(&mut self) {
        self.partitions.clear();
    }

    pub(crate) fn partitioned(&self, a: SiteIdx, b: SiteIdx) -> bool {
        a != b && self.partitions.contains(&Self::pair(a, b))
    }

    /// Whether `a` has a path towards `b` right now, as the daemon's
    /// outbox is told (`refresh_reachability`): `a` runs and the sites are
    /// not cut off. Whether `b` runs does not matter: a device the relay
    /// knows is reachable through the uplink, and the relay holds what it
    /// cannot hand over.
    pub(crate) fn path_up(&self, a: NodeIdx, b: NodeIdx) -> bool {
        self.up[a.0] && !self.partitioned(self.location[a.0], self.location[b.0])
    }

    /// Puts `packet` on `link` towards `at`: counts it, then either loses it
    /// or schedules its arrival after the link's latency. Returns whether it
    /// will arrive.
    pub(crate) fn send(
        &mut self,
        queue: &mut Queue,
        now: u64,
        link: Link,
        at: Hop,
        packet: Packet,
    ) -> bool {
        let bytes = packet.wire_len();
        let kind = match packet {
            Packet::Envelope { .. } => Kind::Envelope,
            Packet::Receipt { .. } => Kind::Receipt,
            _ => Kind::Control,
        };
        let latency = match link {
            Link::Lan => {
                self.stats.lan_messages += 1;
                self.lan_latency.clone()
            }
            Link::WanUp(site) => {
                let w = &mut self.wan[site.0];
                match kind {
                    Kind::Envelope => w.envelopes_out.add(bytes),
                    Kind::Receipt => w.receipts_out.add(bytes),
                    Kind::Control => w.control.add(bytes),
                }
                self.wan_latency.clone()
            }
            Link::WanDown(site) => {
                let w = &mut self.wan[site.0];
                match kind {
                    Kind::Envelope => w.envelopes_in.add(bytes),
                    Kind::Receipt => w.receipts_in.add(bytes),
                    Kind::Control => w.control.add(bytes),
                }
                self.wan_latency.clone()
            }
        };
        if self.lose() {
            return false;
        }
        let delay = self.rng.in_range(latency);
        queue.push(now + delay, Event::Arrive { at, packet });
        true
    }
}
