//! The standard workload of the simulator, as one seeded run: an
//! organisation of `nodes` devices over `sites` offices sends 1:1,
//! multi-recipient and room messages for `minutes` of virtual time while
//! room admins invite and remove users and members leave, gateways are
//! killed, laptops roam, sites are cut off from each other and nodes
//! crash; then everything heals and the run drains. The outcome counts
//! what a user would notice (lost, duplicated, failed messages) and what
//! the design promises (one gateway per site and epoch, failover within
//! the bound, one WAN copy per site and message, every room's member
//! devices holding the same log).
//!
//! It is what `cargo run -p tincan-netsim --release --bin sim` runs, and
//! what `tests/sim_scenario.rs` runs at a small size over fixed seeds.
//!
//! # Example
//! ```
//! use tincan_netsim::scenario::Workload;
//!
//! let outcome = Workload { nodes: 12, sites: 3, seed: 1, minutes: 1.0, ..Workload::default() }.run();
//! assert!(outcome.messages_sent >= 50);
//! assert_eq!(outcome.invariant_violations, Vec::<String>::new());
//! ```

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Serialize;
use tincan_core::{GatewayPreference, MessageId, UserId};

use crate::sim::{failover_bound_ms, NodeIdx, Sim, SimBuilder, SimRng, SiteIdx};

mod room;

use room::Room;

/// What one run does; [`Workload::run`] runs it.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Devices (each its own user).
    pub nodes: usize,
    /// Offices (LANs); nodes are spread evenly over them.
    pub sites: usize,
    /// The seed every choice derives from.
    pub seed: u64,
    /// Virtual minutes of traffic and faults (the drain comes on top).
    pub minutes: f64,
    /// Messages to send; `None`: the larger of 1,000 and half the nodes,
    /// scaled down for runs under ten minutes (at least 50).
    pub messages: Option<usize>,
    /// Loss probability of every hop.
    pub loss: f64,
    /// Seconds of virtual time between faults.
    pub fault_every_secs: u64,
    /// Mean seconds of virtual time between two membership changes of one
    /// room (an invite, a removal or a leave).
    pub room_change_every_secs: u64,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            nodes: 2_000,
            sites: 100,
            seed: 0,
            minutes: 10.0,
            messages: None,
            loss: 0.01,
            fault_every_secs: 20,
            room_change_every_secs: 30,
        }
    }
}

/// How a run went. Field names are the simulator's JSON contract.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Outcome {
    /// Devices.
    pub nodes: usize,
    /// Offices.
    pub sites: usize,
    /// The seed (rerun with `--seed`).
    pub seed: u64,
    /// Virtual time simulated, settling and draining included.
    pub virtual_secs: f64,
    /// Wall-clock time the run took.
    pub wall_secs: f64,
    /// Messages sent.
    pub messages_sent: usize,
    /// (message, recipient device) pairs the messages were sealed for.
    pub deliveries: usize,
    /// Pairs displayed exactly once.
    pub delivered_once: usize,
    /// Pairs displayed more than once.
    pub duplicates: usize,
    /// Pairs neither displayed nor reported failed to the sender.
    pub lost: usize,
    /// Pairs not displayed whose failure the sender was told.
    pub failed_reported: usize,
    /// The most devices that acted as gateway of one site in one epoch.
    pub max_gateways_per_site_epoch: usize,
    /// Sites that lost their gateway and elected a new one.
    pub failovers: u64,
    /// The longest a site was without a gateway.
    pub max_failover_ms: u64,
    /// The bound failovers are held to.
    pub failover_bound_ms: u64,
    /// The most first-attempt copies of one message that entered one site
    /// over the WAN, among messages whose path saw no fault.
    pub wan_copies_per_site_msg_max: u32,
    /// Messages whose path saw no fault (those the WAN-copy rule covers).
    pub fault_free_messages: usize,
    /// Envelope copies of retried attempts that entered a site.
    pub wan_retransmits: u64,
    /// Copies the relay took into custody (a site without a live gateway,
    /// a device down), held in its mailboxes and flushed later.
    pub custody_items: u64,
    /// Gateways killed.
    pub gateway_kills: usize,
    /// Other nodes crashed.
    pub crashes: usize,
    /// Laptops moved to another site.
    pub roams: usize,
    /// Site pairs cut off from each other for a while.
    pub partitions: usize,
    /// Broken invariants, each with its virtual time (empty when all hold).
    pub invariant_violations: Vec<String>,
    /// Rooms.
    pub rooms: usize,
    /// Room ops written: each room's create, its first members' add and
    /// an admin's promotion, then the invites, removals and leaves.
    pub room_ops: u64,
    /// Whether, after the drain, every device of every member of every
    /// room held the same log and state.
    pub rooms_converged: bool,
}

/// A fault to undo later.
enum Recovery {
    Restart(NodeIdx),
    Heal(SiteIdx, SiteIdx),
    Return(NodeIdx, SiteIdx),
}

/// A fault while it lasts, and the sites whose paths it touches.
struct Span {
    sites: Vec<SiteIdx>,
    start: u64,
    /// When it was undone (`None`: until the drain).
    end: Option<u64>,
}

/// The run in progress.
struct Run {
    sim: Sim,
    rng: SimRng,
    /// The membership changes' own choices, apart from the messages'.
    room_rng: SimRng,
    rooms: Vec<Room>,
    /// Every fault so far.
    spans: Vec<Span>,
    /// Faults to undo: (when, what, its span).
    recoveries: Vec<(u64, Recovery, usize)>,
    /// (message, sender site, recipient sites, sent at).
    sends: Vec<(MessageId, SiteIdx, BTreeSet<SiteIdx>, u64)>,
    outcome: Outcome,
}

impl Workload {
    fn message_count(&self) -> usize {
        self.messages.unwrap_or_else(|| {
            let full = 1_000.max(self.nodes / 2) as f64;
            ((full * self.minutes / 10.0) as usize).max(50)
        })
    }

    /// Runs the workload; deterministic for a seed (but `wall_secs`).
    pub fn run(&self) -> Outcome {
        let started = Instant::now();
        let mut run = Run::new(self);
        let total_ms = (self.minutes * 60_000.0) as u64;
        let messages = self.message_count() as u64;
        let tick = (total_ms / messages.max(1)).max(1);
        let fault_every = self.fault_every_secs.max(1) * 1_000;
        let mut next_fault = 10_000.min(total_ms / 2);
        let mut faults = 0;
        let change_every =
            (self.room_change_every_secs.max(1) * 1_000 / run.rooms.len().max(1) as u64).max(1);
        let mut next_change = change_every;
        let start = run.sim.elapsed().as_millis() as u64;
        for n in 0..messages {
            let at = start + n * tick;
            run.advance_to(at);
            if at - start >= next_fault {
                run.fault(faults);
                faults += 1;
                next_fault += fault_every;
            }
            while at - start >= next_change {
                run.room_change();
                next_change += change_every;
            }
            run.send(n);
        }
        run.advance_to(start + total_ms);
        run.drain();
        run.finish(self, started.elapsed())
    }
}

impl Run {
    fn new(w: &Workload) -> Self {
        let sites = w.sites.max(1);
        let mut sim = SimBuilder::new()
            .seed(w.seed)
            .sites(sites)
            .latency(10..80)
            .lan_latency(1..5)
            .loss(w.loss)
            .build();
        let mut rng = SimRng::new(w.seed, 10);
        for i in 0..w.nodes.max(2) {
            let site = SiteIdx(i % sites);
            // The first node of a site may always serve, so every site can
            // elect; the rest are a mix of office desktops and laptops.
            let preference = match (i < sites, rng.below(10)) {
                (true, _) | (false, 2..) => GatewayPreference::Auto,
                (false, 0) => GatewayPreference::Never,
                (false, _) => GatewayPreference::Prefer,
            };
            sim.add_node_with(site, &format!("s{}n{}", site.0, i / sites), preference);
        }
        let ids: Vec<NodeIdx> = sim.node_ids().collect();
        let members: Vec<Vec<NodeIdx>> = (0..(sites / 5).max(1))
            .map(|_| {
                let size = rng.in_range(8..25).min(ids.len() as u64);
                let mut members = BTreeSet::new();
                while (members.len() as u64) < size {
                    members.insert(ids[rng.below(ids.len() as u64) as usize]);
                }
                members.into_iter().collect()
            })
            .collect();
        let mut run = Run {
            sim,
            rng,
            room_rng: SimRng::new(w.seed, 11),
            rooms: Vec::new(),
            spans: Vec::new(),
            recoveries: Vec::new(),
            sends: Vec::new(),
            outcome: Outcome::default(),
        };
        if let Err(e) = run.sim.settle(Duration::from_secs(60)) {
            run.violation(format!("the sites did not elect their gateways: {e}"));
        }
        for (i, members) in members.into_iter().enumerate() {
            run.create_room(i, members);
        }
        run
    }

    fn now(&self) -> u64 {
        self.sim.elapsed().as_millis() as u64
    }

    fn violation(&mut self, what: String) {
        let t = self.now();
        self.outcome
            .invariant_violations
            .push(format!("t={t}ms: {what}"));
    }

    /// Runs the network until `at` (virtual ms since start), undoing faults
    /// whose time has come.
    fn advance_to(&mut self, at: u64) {
        loop {
            let due = self
                .recoveries
                .iter()
                .enumerate()
                .filter(|(_, (t, _, _))| *t <= at)
                .min_by_key(|(_, (t, _, _))| *t)
                .map(|(i, (t, _, _))| (i, *t));
            let Some((i, t)) = due else { break };
            self.run_to(t);
            let (_, recovery, span) = self.recoveries.swap_remove(i);
            self.spans[span].end = Some(self.now());
            self.recover(recovery);
        }
        self.run_to(at);
    }

    fn run_to(&mut self, at: u64) {
        let now = self.now();
        if at > now {
            self.sim.run_for(Duration::from_millis(at - now));
        }
    }

    fn recover(&mut self, recovery: Recovery) {
        match recovery {
            Recovery::Restart(node) => self.sim.restart(node),
            Recovery::Heal(a, b) => self.sim.heal(a, b),
            Recovery::Return(node, site) => self.sim.roam(node, site),
        }
    }

    /// Records a fault on the paths of `sites`, to be undone at `at`.
    fn start_fault(&mut self, sites: Vec<SiteIdx>, at: u64, recovery: Recovery) {
        let start = self.now();
        self.recoveries.push((at, recovery, self.spans.len()));
        self.spans.push(Span {
            sites,
            start,
            end: None,
        });
    }

    /// One fault, the kinds in turn, starting with a gateway kill.
    fn fault(&mut self, count: usize) {
        let now = self.now();
        let kind = count % 4;
        let later = |rng: &mut SimRng, range: std::ops::Range<u64>| now + rng.in_range(range);
        let sites = self.sim.sites();
        match kind {
            0 | 3 => {
                let gateway = kind == 0;
                let candidates: Vec<NodeIdx> = self
                    .sim
                    .node_ids()
                    .filter(|n| self.sim.node(*n).is_up())
                    .filter(|n| self.sim.node(*n).is_gateway() == gateway)
                    .collect();
                if candidates.is_empty() {
                    return;
                }
                let node = candidates[self.rng.below(candidates.len() as u64) as usize];
                self.sim.crash(node);
                let at = later(&mut self.rng, 5_000..30_000);
                let site = self.sim.site_of(node);
                self.start_fault(vec![site], at, Recovery::Restart(node));
                if gateway {
                    self.outcome.gateway_kills += 1;
                } else {
                    self.outcome.crashes += 1;
                }
            }
            1 if sites > 1 => {
                let node = NodeIdx(self.rng.below(self.outcome_nodes() as u64) as usize);
                let home = self.sim.site_of(node);
                let away =
                    SiteIdx((home.0 + 1 + self.rng.below(sites as u64 - 1) as usize) % sites);
                self.sim.roam(node, away);
                let at = later(&mut self.rng, 30_000..90_000);
                self.start_fault(vec![home, away], at, Recovery::Return(node, home));
                self.outcome.roams += 1;
            }
            2 if sites > 1 => {
                let a = SiteIdx(self.rng.below(sites as u64) as usize);
                let b = SiteIdx((a.0 + 1 + self.rng.below(sites as u64 - 1) as usize) % sites);
                self.sim.partition(a, b);
                let at = later(&mut self.rng, 10_000..30_000);
                self.start_fault(vec![a, b], at, Recovery::Heal(a, b));
                self.outcome.partitions += 1;
            }
            _ => {}
        }
    }

    fn outcome_nodes(&self) -> usize {
        self.sim.node_ids().count()
    }

    /// One message from a random running node: 1:1, to a few users, or to
    /// one of its rooms.
    fn send(&mut self, n: u64) {
        let count = self.outcome_nodes() as u64;
        let up = |sim: &Sim, node: NodeIdx| sim.node(node).is_up();
        let kind = self.rng.below(100);
        if kind < 15 && !self.rooms.is_empty() {
            self.send_room(n);
            return;
        }
        let from = NodeIdx(self.rng.below(count) as usize);
        let wanted = if kind < 75 { 1 } else { 2 + self.rng.below(4) };
        let mut to = BTreeSet::new();
        while (to.len() as u64) < wanted.min(count - 1) {
            let other = NodeIdx(self.rng.below(count) as usize);
            if other != from {
                to.insert(other);
            }
        }
        if !up(&self.sim, from) || to.is_empty() {
            return;
        }
        let users: Vec<UserId> = to.iter().map(|t| self.sim.node(*t).user_id()).collect();
        let text = format!("message {n}");
        match self.sim.send(from, &users, &text) {
            Ok(id) => {
                let sites = to.iter().map(|t| self.sim.site_of(*t)).collect();
                let now = self.now();
                self.sends.push((id, self.sim.site_of(from), sites, now));
            }
            Err(e) => self.violation(format!("send from {from} failed: {e}")),
        }
    }

    /// Heals everything, restarts every node and waits until every
    /// message is delivered or given up.
    fn drain(&mut self) {
        self.recoveries.clear();
        let now = self.now();
        for span in self.spans.iter_mut().filter(|s| s.end.is_none()) {
            span.end = Some(now);
        }
        self.sim.heal_all();
        let ids: Vec<NodeIdx> = self.sim.node_ids().collect();
        for node in ids {
            self.sim.restart(node);
        }
        if let Err(e) = self
            .sim
            .run_until(|s| s.is_quiescent(), Duration::from_secs(900))
        {
            self.violation(format!("messages still pending after the drain: {e}"));
        }
    }

    /// Whether a fault touched the path of a message sent at `sent` from
    /// `from` to `to`: one in effect on any of these sites from 3 s after
    /// the send (a first attempt takes well under a second) back to 8 s
    /// after the fault was undone (a site may still be electing: failover
    /// takes up to the bound, a newcomer listens 1.5 s first).
    fn saw_fault(&self, sent: u64, from: SiteIdx, to: &BTreeSet<SiteIdx>) -> bool {
        self.spans.iter().any(|span| {
            let touches = span.sites.iter().any(|s| *s == from || to.contains(s));
            let end = span.end.unwrap_or(u64::MAX).saturating_add(8_000);
            touches && span.start <= sent + 3_000 && sent <= end
        })
    }

    fn finish(mut self, w: &Workload, wall: Duration) -> Outcome {
        let report = self.sim.delivery_report();
        let mut o = std::mem::take(&mut self.outcome);
        o.nodes = self.outcome_nodes();
        o.sites = self.sim.sites();
        o.seed = w.seed;
        o.virtual_secs = self.sim.elapsed().as_millis() as f64 / 1_000.0;
        o.wall_secs = (wall.as_secs_f64() * 100.0).round() / 100.0;
        o.messages_sent = self.sim.sent().len();
        o.deliveries = report.expected;
        o.duplicates = report.duplicated.len();
        o.delivered_once = report.expected - report.missing.len() - report.duplicated.len();
        for (id, node) in &report.missing {
            let sent = self.sim.sent().iter().find(|s| s.id == *id);
            let device = self.sim.node(*node).device_id();
            let told = sent.is_some_and(|s| {
                self.sim
                    .node(s.from)
                    .failures()
                    .iter()
                    .any(|(m, d, _)| m == id && *d == device)
            });
            if told {
                o.failed_reported += 1;
            } else {
                o.lost += 1;
            }
        }
        let gateways = self.sim.gateway_report();
        o.max_gateways_per_site_epoch = gateways.max_gateways_per_site_epoch;
        o.failovers = gateways.failovers;
        o.max_failover_ms = gateways.max_failover_ms;
        o.failover_bound_ms = failover_bound_ms();
        o.wan_retransmits = self.sim.wan_retransmits();
        o.custody_items = self.sim.custody_items();
        let mut extra = 0;
        for (id, from_site, sites, sent) in &self.sends {
            if self.saw_fault(*sent, *from_site, sites) {
                continue;
            }
            o.fault_free_messages += 1;
            for site in sites.iter().filter(|s| *s != from_site) {
                let copies = self.sim.first_wan_copies(id, *site);
                o.wan_copies_per_site_msg_max = o.wan_copies_per_site_msg_max.max(copies);
                if copies > 1 {
                    extra += 1;
                }
            }
        }
        let rooms = self.sim.room_report();
        o.rooms = rooms.rooms;
        o.room_ops = rooms.ops;
        o.rooms_converged = rooms.converged();
        let mut violations = gateways.violations;
        let t = self.now();
        violations.extend(rooms.diverged.iter().map(|d| format!("t={t}ms: {d}")));
        if extra > 0 {
            violations.push(format!(
                "{extra} (message, site) pairs without a fault got more than one WAN copy"
            ));
        }
        if o.lost > 0 {
            violations.push(format!("{} deliveries lost (not reported failed)", o.lost));
        }
        if o.duplicates > 0 {
            violations.push(format!("{} deliveries shown twice", o.duplicates));
        }
        if !report.misreported.is_empty() {
            violations.push(format!(
                "{} messages show a state their devices' outcomes contradict",
                report.misreported.len()
            ));
        }
        violations.append(&mut o.invariant_violations);
        o.invariant_violations = violations;
        o
    }
}
