//! A deterministic, seeded, virtual-time network simulator for core's state
//! machines (turmoil-like).
//!
//! A [`SimBuilder`] fixes the seed, the per-hop latency and loss and the
//! number of sites; [`Sim::add_node`] places devices, each holding a real
//! [`tincan_core::Identity`] and [`tincan_core::outbox::Outbox`]. Messages are
//! real [`tincan_core::Envelope`]s sealed with real keys and acknowledged by
//! real signed [`tincan_core::Receipt`]s, so byte counts are real. Every
//! site elects its gateway with core's [`tincan_core::GatewayElection`]
//! (beacons on the LAN, claims to the relay, whose leases are core's
//! [`tincan_core::LeaseTable`]), and what leaves or enters a site goes
//! through the node that won, so a crashed gateway really cuts its site off
//! until the failover. Rooms are core's [`tincan_core::RoomLog`]s on every
//! member device, changed by signed ops that travel like any message (see
//! `room`). Time is
//! virtual: [`Sim::step`] jumps to the next event of a (time, sequence)
//! priority queue, and nothing reads the wall clock or the OS random source,
//! so one seed always gives one run ([`Sim::trace_hash`]).
//!
//! # Layout
//! - [`SimBuilder`]: seed, sites, latency, loss and timeouts.
//! - `queue`: the event queue (`queue/wheel.rs`) and what travels on it.
//! - [`net`]: sites, partitions, per-hop latency and loss, WAN counters.
//! - `world`: state shared by all nodes and the gateway/relay routing (one
//!   envelope copy per destination site, fanned out inside the site).
//! - `relay`: leases, forwarding and mailboxes (`mailbox`: core's custody
//!   rule); grants are signed on a worker thread (`relay/signer.rs`).
//! - `check`: the election invariants, checked as roles change.
//! - `fault`: partitions, crashes, restarts and roaming.
//! - `report`: what a run can be asked about its outcome.
//! - `room`: creating and changing rooms, room messages to the members
//!   the sender's log lists, and whether every room converged.
//! - [`node`]: one device driving core's outbox, gateway election and
//!   room logs, with its durable store.
//! - [`seed`]: random streams and [`check_seeds`]; `trace`: the run's hash.
//!
//! # Example
//! ```
//! use std::time::Duration;
//! use tincan_netsim::sim::{SimBuilder, SiteIdx};
//!
//! let mut sim = SimBuilder::new().seed(7).sites(2).loss(0.1).build();
//! let alice = sim.add_node(SiteIdx(0), "alice");
//! let bob = sim.add_node(SiteIdx(1), "bob");
//! let to = [sim.node(bob).user_id()];
//! let id = sim.send(alice, &to, "hello").expect("send");
//! sim.run_until(|s| s.is_quiescent(), Duration::from_secs(60)).expect("delivered");
//! assert!(sim.node(alice).is_delivered(&id, &sim.node(bob).device_id()));
//! assert!(sim.delivery_report().is_exactly_once());
//! ```

mod builder;
mod check;
mod fault;
mod mailbox;
pub mod net;
pub mod node;
pub(crate) mod queue;
mod relay;
mod report;
mod room;
pub mod seed;
pub(crate) mod trace;
mod world;

use std::fmt;
use std::time::Duration;

use tincan_core::envelope::SealError;
use tincan_core::route::hop::{HopSource, HopState};
use tincan_core::wire::{self, EncodeError, Frame};
use tincan_core::{
    Content, DeviceId, Envelope, GatewayPreference, Identity, MessageId, RoomError, RoomId, UserId,
};

pub use builder::SimBuilder;
pub use check::failover_bound_ms;
pub use net::{LinkCount, NetStats, WanStats};
pub use node::{Displayed, SimNode};
pub use report::{DeliveryReport, GatewayReport};
pub use room::{RoomDivergence, RoomReport, RoomView};
pub use seed::{check_seeds, SimRng, SEED_ENV};

use queue::{Event, Hop, Packet};
use world::World;

/// Virtual time at which every simulation starts (ms since the Unix epoch,
/// 2023-11-14), so certificates and envelopes carry plausible dates.
pub const START_MS: u64 = 1_700_000_000_000;

/// Index of a node, in the order of [`Sim::add_node`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeIdx(pub usize);

/// Index of a site (a LAN), `0..sites`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SiteIdx(pub usize);

impl fmt::Display for NodeIdx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node{}", self.0)
    }
}

impl fmt::Display for SiteIdx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "site{}", self.0)
    }
}

/// Why a simulation command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The sending node is crashed.
    #[error("{0} is down")]
    NodeDown(NodeIdx),
    /// A recipient user has no node in the simulation.
    #[error("user {0} is not in the simulation")]
    UnknownUser(UserId),
    /// Core refused to seal the envelope.
    #[error("cannot seal: {0}")]
    Seal(#[from] SealError),
    /// The envelope does not fit in a frame.
    #[error("cannot encode: {0}")]
    Encode(#[from] EncodeError),
    /// The condition did not hold within the allowed virtual time.
    #[error("condition not met after {elapsed:?} of virtual time")]
    Timeout {
        /// Virtual time spent.
        elapsed: Duration,
    },
    /// No event is left, so the condition can never become true.
    #[error("nothing left to simulate and the condition is not met")]
    Stalled,
    /// The node does not have this room.
    #[error("room {0} is not known to the node")]
    UnknownRoom(RoomId),
    /// Core refused the room change or message (as the node's log says).
    #[error("room: {0}")]
    Room(#[from] RoomError),
}

/// A message sent in the simulation, for checking outcomes.
#[derive(Clone, Debug)]
pub struct SentMessage {
    /// Its id.
    pub id: MessageId,
    /// The sending node.
    pub from: NodeIdx,
    /// The nodes it was sealed for.
    pub to: Vec<NodeIdx>,
    /// Bytes of its `Frame::Envelope`.
    pub frame_len: usize,
}

/// A running simulation.
pub struct Sim {
    world: World,
    nodes: Vec<SimNode>,
    sent: Vec<SentMessage>,
    /// Rooms created, in order.
    rooms: Vec<RoomId>,
    /// Room ops written.
    room_ops: u64,
    /// `RoomOps` envelopes queued.
    room_envelopes: u64,
    rng: SimRng,
    seed: u64,
}

impl Sim {
    /// The seed this simulation was built with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        Duration::from_millis(self.world.now - START_MS)
    }

    /// Virtual time, ms since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.world.now
    }

    /// A random stream for the scenario's own choices (who sends to whom,
    /// when), derived from the seed and independent of the network's.
    pub fn rng(&mut self) -> &mut SimRng {
        &mut self.rng
    }

    /// Number of sites.
    pub fn sites(&self) -> usize {
        self.world.net.sites
    }

    /// Adds a device named `name` (a new user with one device) in `site`,
    /// willing to be gateway (`auto`).
    ///
    /// # Panics
    /// If `site` is out of range (a bug in the scenario).
    pub fn add_node(&mut self, site: SiteIdx, name: &str) -> NodeIdx {
        self.add_node_with(site, name, GatewayPreference::Auto)
    }

    /// [`Sim::add_node`] with a gateway preference. The node starts its
    /// election at once, with an uptime of up to eight hours (so that
    /// candidates differ in rank as a real office's do).
    ///
    /// # Panics
    /// If `site` is out of range (a bug in the scenario).
    pub fn add_node_with(
        &mut self,
        site: SiteIdx,
        name: &str,
        preference: GatewayPreference,
    ) -> NodeIdx {
        assert!(site.0 < self.sites(), "{site} out of range");
        let idx = NodeIdx(self.nodes.len());
        let w = &mut self.world;
        let identity = Identity::generate(name, w.now / 1000, &mut w.crypto);
        w.dir.by_device.insert(identity.device_id(), idx);
        w.dir.certs.push(identity.cert.clone());
        w.dir.users.entry(identity.user_id()).or_default().push(idx);
        w.net.place(idx, site);
        let uptime = w.crypto.below(8 * 3_600_000);
        let started_at = w.now.saturating_sub(uptime);
        let mut node = SimNode::new(idx, identity, preference);
        node.start_election(w, started_at);
        self.nodes.push(node);
        idx
    }

    /// All node indices.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeIdx> {
        (0..self.nodes.len()).map(NodeIdx)
    }

    /// A node.
    ///
    /// # Panics
    /// If `idx` was not returned by [`Sim::add_node`].
    pub fn node(&self, idx: NodeIdx) -> &SimNode {
        &self.nodes[idx.0]
    }

    /// The site `node` is in now.
    pub fn site_of(&self, node: NodeIdx) -> SiteIdx {
        self.world.net.location[node.0]
    }

    /// What crossed `site`'s WAN link so far.
    pub fn wan(&self, site: SiteIdx) -> WanStats {
        self.world.net.wan[site.0]
    }

    /// Network-wide counters.
    pub fn net_stats(&self) -> NetStats {
        self.world.net.stats
    }

    /// Every message sent so far.
    pub fn sent(&self) -> &[SentMessage] {
        &self.sent
    }

    /// Hash of every event processed so far (time, order, place, ids): equal
    /// for equal seeds and scenarios.
    pub fn trace_hash(&self) -> String {
        self.world.trace_hash()
    }

    /// Events still scheduled.
    pub fn queued_events(&self) -> usize {
        self.world.queue.len()
    }

    /// Runs until [`Sim::gateways_settled`] holds (checked every 100 ms of
    /// virtual time), for at most `max`.
    pub fn settle(&mut self, max: Duration) -> Result<Duration, SimError> {
        let start = self.world.now;
        let slice = Duration::from_millis(100);
        loop {
            if self.gateways_settled() {
                return Ok(Duration::from_millis(self.world.now - start));
            }
            if self.world.now - start >= max.as_millis() as u64 {
                return Err(SimError::Timeout { elapsed: max });
            }
            self.run_for(slice);
        }
    }

    /// Seals `text` from `from` to every device of the users `to`, stores it
    /// in the sender's outbox and starts delivery.
    pub fn send(
        &mut self,
        from: NodeIdx,
        to: &[UserId],
        text: &str,
    ) -> Result<MessageId, SimError> {
        self.send_sealed_for(from, to, to, text)
    }

    /// Like [`Sim::send`], but the envelope is sealed for the devices of
    /// `sealed_for` and delivered to those of `deliver_to`: a misaddressed
    /// envelope, which a recipient it was not sealed for refuses.
    pub fn send_sealed_for(
        &mut self,
        from: NodeIdx,
        sealed_for: &[UserId],
        deliver_to: &[UserId],
        text: &str,
    ) -> Result<MessageId, SimError> {
        if !self.nodes[from.0].is_up() {
            return Err(SimError::NodeDown(from));
        }
        let sealed = self.devices_of(sealed_for)?;
        let targets = self.devices_of(deliver_to)?;
        let content = Content::Text {
            text: text.to_owned(),
        };
        let (id, frame_len) = self.seal_and_queue(from, &sealed, &targets, &content)?;
        self.sent.push(SentMessage {
            id,
            from,
            to: targets,
            frame_len,
        });
        Ok(id)
    }

    /// Seals `text` from `from` for the nodes `to` and queues it: a
    /// message whose delivery the reports check.
    fn send_to(
        &mut self,
        from: NodeIdx,
        to: &[NodeIdx],
        text: &str,
    ) -> Result<MessageId, SimError> {
        let content = Content::Text {
            text: text.to_owned(),
        };
        let (id, frame_len) = self.seal_and_queue(from, to, to, &content)?;
        self.sent.push(SentMessage {
            id,
            from,
            to: to.to_vec(),
            frame_len,
        });
        Ok(id)
    }

    /// Seals `content` from `from` for the devices of `sealed`, stores it
    /// in the sender's outbox for those of `targets` and starts delivery.
    /// Returns its id and the length of its `Frame::Envelope`.
    fn seal_and_queue(
        &mut self,
        from: NodeIdx,
        sealed: &[NodeIdx],
        targets: &[NodeIdx],
        content: &Content,
    ) -> Result<(MessageId, usize), SimError> {
        let certs: Vec<_> = sealed
            .iter()
            .map(|n| self.world.dir.certs[n.0].clone())
            .collect();
        let w = &mut self.world;
        let id = MessageId::random(&mut w.crypto);
        let sender = &self.nodes[from.0];
        let envelope = Envelope::seal(
            &sender.identity().device,
            &sender.identity().cert,
            &certs,
            id,
            w.now,
            content,
            &mut w.crypto,
        )?;
        let frame_len = wire::encode(&Frame::Envelope(envelope.clone()))?.len();
        let devices: Vec<(DeviceId, bool)> = targets
            .iter()
            .map(|n| (certs_device(w, *n), w.net.path_up(from, *n)))
            .collect();
        w.trace(&[b"send", &id.0, &(from.0 as u64).to_le_bytes()]);
        self.nodes[from.0].queue(w, envelope, frame_len, &devices);
        Ok((id, frame_len))
    }

    /// Every node of the users `users`, in order, once.
    fn devices_of(&self, users: &[UserId]) -> Result<Vec<NodeIdx>, SimError> {
        let mut nodes = Vec::new();
        for user in users {
            let of_user = self
                .world
                .dir
                .users
                .get(user)
                .ok_or(SimError::UnknownUser(*user))?;
            nodes.extend(of_user.iter().copied());
        }
        nodes.sort();
        nodes.dedup();
        Ok(nodes)
    }

    /// Processes the next event, advancing virtual time to it. Returns
    /// `false` when nothing is left.
    pub fn step(&mut self) -> bool {
        let Some((time, seq, event)) = self.world.queue.pop() else {
            return false;
        };
        self.world.now = self.world.now.max(time);
        self.world.trace_event(seq, &event);
        match event {
            Event::Arrive {
                at: Hop::Node(n),
                packet,
            } => self.arrive(n, packet),
            Event::Arrive {
                at: at @ (Hop::GatewayOut(g) | Hop::GatewayIn(g)),
                packet,
            } => self.at_gateway(at, g, packet),
            Event::Arrive { at, packet } => self.world.forward(at, packet),
            Event::RelayTick => self.world.on_relay_tick(),
            Event::Beacon { from, site, beacon } => self.beacon(from, site, beacon),
            Event::ElectionWake { node, incarnation } => {
                let sim_node = &mut self.nodes[node.0];
                if sim_node.is_up() && sim_node.incarnation() == incarnation {
                    sim_node.on_election_wake(&mut self.world, time);
                }
            }
            Event::Wake { node, incarnation } => {
                let sim_node = &mut self.nodes[node.0];
                if sim_node.is_up() && sim_node.incarnation() == incarnation {
                    sim_node.on_wake(&mut self.world, time);
                }
            }
            Event::AttemptTimeout {
                node,
                incarnation,
                message_id,
                device,
                attempt,
            } => {
                let sim_node = &mut self.nodes[node.0];
                if sim_node.is_up() && sim_node.incarnation() == incarnation {
                    sim_node.on_attempt_timeout(&mut self.world, message_id, device, attempt);
                }
            }
        }
        let nodes = &self.nodes;
        let net = &self.world.net;
        self.world.checks.check_bound(self.world.now, |site| {
            net.members[site.0].iter().any(|n| {
                let node = &nodes[n.0];
                node.is_up() && node.preference() != GatewayPreference::Never
            })
        });
        true
    }

    /// A packet reached node `n`'s interface.
    fn arrive(&mut self, n: NodeIdx, packet: Packet) {
        let expected_site = match &packet {
            Packet::Envelope { to, .. } => to.first().map(|(site, _)| *site),
            Packet::Receipt { to_site, .. } => Some(*to_site),
            _ => None,
        };
        let here = self.world.net.location[n.0];
        let node = &mut self.nodes[n.0];
        if !node.is_up() || expected_site.is_some_and(|s| s != here) {
            self.world.net.stats.undeliverable += 1;
            return;
        }
        match packet {
            Packet::Envelope { envelope, held, .. } => {
                node.on_envelope(&mut self.world, &envelope, held);
                self.queue_catch_ups(n);
            }
            Packet::Receipt { reply, held, .. } => node.on_reply(&mut self.world, reply, held),
            Packet::Answer {
                incarnation,
                site,
                epoch,
                result,
            } if incarnation == node.incarnation() => {
                node.on_answer(&mut self.world, site, epoch, result);
            }
            _ => {}
        }
    }

    /// A packet reached node `g` as the hop between its site and the relay.
    /// It gets there only if `g` runs and is still where the packet was
    /// sent to (a LAN hop from a member of its site, or the relay's hop
    /// into the site); what `g` then does is core's rule for a hop
    /// ([`tincan_core::route::hop::plan_hop`]), as in the daemon.
    fn at_gateway(&mut self, at: Hop, g: NodeIdx, packet: Packet) {
        let (site, source) = match (&at, &packet) {
            (
                Hop::GatewayOut(_),
                Packet::Envelope { from, .. }
                | Packet::Receipt { from, .. }
                | Packet::MailAnswer { from, .. },
            ) => (*from, HopSource::Member),
            (Hop::GatewayIn(_), Packet::Envelope { to, .. }) => (
                to.first().map_or(SiteIdx(usize::MAX), |(s, _)| *s),
                HopSource::Relay,
            ),
            (Hop::GatewayIn(_), Packet::Receipt { to_site, .. }) => (*to_site, HopSource::Relay),
            _ => return,
        };
        let node = &self.nodes[g.0];
        if !node.is_up() || self.world.net.location[g.0] != site {
            self.world.net.stats.undeliverable += 1;
            return;
        }
        let state = HopState {
            me: node.device_id(),
            gateway: node.is_gateway(),
            relay_up: true,
        };
        if let Some(own) = self.world.hop(g, source, state, packet) {
            self.arrive(g, own);
        }
    }

    /// A beacon reached the LAN of `site`: every other running node there
    /// hears it, unless its copy is lost. Whether a node runs is read from
    /// `net.up`, which mirrors `SimNode::is_up` in one dense array: no
    /// cache miss on a line of each recipient that nothing else needs.
    fn beacon(&mut self, from: NodeIdx, site: SiteIdx, beacon: tincan_core::Beacon) {
        if !self.nodes[from.0].is_up() || self.world.net.location[from.0] != site {
            return;
        }
        let device = self.nodes[from.0].device_id();
        for i in 0..self.world.net.members[site.0].len() {
            let to = self.world.net.members[site.0][i];
            if to == from || !self.world.net.up[to.0] || self.world.net.lose() {
                continue;
            }
            self.nodes[to.0].on_beacon(&mut self.world, device, beacon.clone());
        }
    }

    /// Steps until `pred` holds (checked before every step) or `max` of
    /// virtual time has passed from now.
    pub fn run_until(
        &mut self,
        mut pred: impl FnMut(&Sim) -> bool,
        max: Duration,
    ) -> Result<Duration, SimError> {
        let start = self.world.now;
        let deadline = start.saturating_add(max.as_millis() as u64);
        loop {
            if pred(self) {
                return Ok(Duration::from_millis(self.world.now - start));
            }
            match self.world.queue.peek_time() {
                None => return Err(SimError::Stalled),
                Some(t) if t > deadline => {
                    self.world.now = deadline;
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
        let end = self.world.now.saturating_add(duration.as_millis() as u64);
        while self.world.queue.peek_time().is_some_and(|t| t <= end) {
            self.step();
        }
        self.world.now = end;
    }

    /// Whether no node has anything left to deliver (every message was
    /// acknowledged, refused or expired). Cheap: O(nodes).
    pub fn is_quiescent(&self) -> bool {
        self.nodes.iter().all(|n| n.pending_len() == 0)
    }
}

fn certs_device(w: &World, n: NodeIdx) -> DeviceId {
    w.dir.certs[n.0].device_id()
}
