//! The simulated LAN behind `sim_election`: nodes running core's
//! `GatewayElection`, one relay running core's `LeaseTable`, a (time,
//! sequence)-ordered event queue, per-packet latency and loss, crashes and
//! partitions. Everything random comes from streams of the run's seed, and
//! ties are broken by sequence number, so a seed replays exactly.
//!
//! [`Lan::step`] checks the safety invariant after every event.

use std::collections::BTreeMap;

use tincan_core::{
    Beacon, DeviceId, DeviceKey, ElectionConfig, ElectionEvent, ElectionTransmit, Entropy,
    GatewayElection, GatewayPreference, GatewayRef, LeaseGrant, LeaseRefusal, LeaseTable, RelayId,
    Role, SiteId,
};
use tincan_netsim::sim::SimRng;

/// Virtual start time (Unix ms).
const START: u64 = 1_700_000_000_000;
/// Loss rate of every packet.
const LOSS: f64 = 0.05;

#[derive(Clone, Debug)]
enum Msg {
    Boot(usize),
    Beacon {
        from: usize,
        to: usize,
        incarnation: u32,
        beacon: Beacon,
    },
    Claim {
        from: usize,
        incarnation: u32,
        site: SiteId,
        epoch: u64,
    },
    Release {
        from: usize,
        site: SiteId,
        epoch: u64,
    },
    Answer {
        to: usize,
        incarnation: u32,
        site: SiteId,
        epoch: u64,
        result: Result<Box<LeaseGrant>, LeaseRefusal>,
    },
}

struct Node {
    device: DeviceId,
    preference: GatewayPreference,
    /// `None` before boot and while crashed.
    election: Option<GatewayElection>,
    /// Bumped on every crash so that packets for an old life are dropped.
    incarnation: u32,
    /// What the node persisted from its events.
    stored_site: Option<SiteId>,
    stored_epoch: u64,
    /// Uptime at first boot, so candidates differ in uptime bucket.
    uptime_at_boot: u64,
}

/// Role changes: (virtual ms since start, node, role, gateway).
pub type Trace = Vec<(u64, usize, Role, Option<GatewayRef>)>;

/// One LAN of simulated nodes and the relay, in virtual time.
pub struct Lan {
    seed: u64,
    now: u64,
    seq: u64,
    same_instant_steps: u32,
    queue: BTreeMap<(u64, u64), Msg>,
    nodes: Vec<Node>,
    pub relay: LeaseTable<SiteId>,
    /// The relay's key: it signs grants, which gateways show in beacons.
    relay_key: DeviceKey,
    net: SimRng,
    entropy: SimRng,
    /// Partition side of each node; only consulted while `partitioned`.
    side: Vec<bool>,
    partitioned: bool,
    /// Whether every node should share one site (then at most one gateway
    /// may exist at any instant, not only one per site).
    pub one_site: bool,
    pub trace: Trace,
}

impl Lan {
    /// A LAN of `prefs.len()` nodes booting within the first second.
    pub fn new(seed: u64, prefs: &[GatewayPreference]) -> Self {
        let mut setup = SimRng::new(seed, 1);
        let mut lan = Self {
            seed,
            now: START,
            seq: 0,
            same_instant_steps: 0,
            queue: BTreeMap::new(),
            nodes: Vec::new(),
            relay: LeaseTable::new(ElectionConfig::new(DeviceId([0; 20])).lease_ttl_ms),
            relay_key: DeviceKey::generate(&mut SimRng::new(seed, 4)),
            net: SimRng::new(seed, 2),
            entropy: SimRng::new(seed, 3),
            side: vec![false; prefs.len()],
            partitioned: false,
            one_site: true,
            trace: Vec::new(),
        };
        for (i, &preference) in prefs.iter().enumerate() {
            lan.nodes.push(Node {
                device: DeviceId::from_public_key(&setup.bytes32()),
                preference,
                election: None,
                incarnation: 0,
                stored_site: None,
                stored_epoch: 0,
                uptime_at_boot: setup.below(8 * 3_600_000),
            });
            let at = START + setup.below(1_000);
            lan.schedule(at, Msg::Boot(i));
        }
        lan
    }

    fn schedule(&mut self, at: u64, msg: Msg) {
        self.seq += 1;
        self.queue.insert((at, self.seq), msg);
    }

    /// Sends `msg` over the network: lost with probability [`LOSS`], else
    /// delivered after 1–30 ms.
    fn send(&mut self, msg: Msg) {
        if !self.net.chance(LOSS) {
            let at = self.now + self.net.in_range(1..31);
            self.schedule(at, msg);
        }
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].election.is_some()
    }

    pub fn election(&self, i: usize) -> Option<&GatewayElection> {
        self.nodes[i].election.as_ref()
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        !self.partitioned || self.side[a] == self.side[b]
    }

    fn next_timer(&self) -> Option<(u64, usize)> {
        (0..self.nodes.len())
            .filter_map(|i| Some((self.election(i)?.poll_timeout()?, i)))
            .min()
    }

    fn next_time(&self) -> Option<u64> {
        let msg = self.queue.keys().next().map(|(t, _)| *t);
        let timer = self.next_timer().map(|(t, _)| t.max(self.now));
        [msg, timer].into_iter().flatten().min()
    }

    fn advance(&mut self, t: u64) {
        if t > self.now {
            self.now = t;
            self.same_instant_steps = 0;
        } else {
            self.same_instant_steps += 1;
            assert!(
                self.same_instant_steps < 10_000,
                "seed {}: busy loop at t={}",
                self.seed,
                self.now - START
            );
        }
    }

    /// Processes the next timer or packet (timers first on a tie), then
    /// checks the safety invariant.
    pub fn step(&mut self) {
        let msg_time = self.queue.keys().next().map(|(t, _)| *t);
        match self.next_timer() {
            Some((t, i)) if msg_time.is_none_or(|m| t <= m) => {
                self.advance(t);
                let now = self.now;
                let election = self.nodes[i]
                    .election
                    .as_mut()
                    .expect("timer of a live node");
                election.handle_timeout(now, &mut self.entropy);
                self.pump(i);
            }
            _ => {
                let ((t, _), msg) = self.queue.pop_first().expect("something to do");
                self.advance(t);
                self.deliver(msg);
            }
        }
        self.check();
    }

    fn deliver(&mut self, msg: Msg) {
        let now = self.now;
        match msg {
            Msg::Boot(i) => self.boot(i),
            Msg::Beacon {
                from,
                to,
                incarnation,
                beacon,
            } => {
                let device = self.nodes[from].device;
                let link_up = self.connected(from, to);
                let node = &mut self.nodes[to];
                if let Some(e) = node.election.as_mut().filter(|_| link_up) {
                    if node.incarnation == incarnation {
                        e.handle_beacon(now, device, beacon);
                        self.pump(to);
                    }
                }
            }
            Msg::Claim {
                from,
                incarnation,
                site,
                epoch,
            } => {
                let device = self.nodes[from].device;
                let key = &self.relay_key;
                let result = self.relay.claim(now, site, device, epoch).map(|lease| {
                    Box::new(LeaseGrant::sign(
                        key,
                        site,
                        lease.epoch,
                        device,
                        lease.expires_at,
                    ))
                });
                self.send(Msg::Answer {
                    to: from,
                    incarnation,
                    site,
                    epoch,
                    result,
                });
            }
            Msg::Release { from, site, epoch } => {
                let device = self.nodes[from].device;
                let _ = self.relay.release(now, &site, device, epoch);
            }
            Msg::Answer {
                to,
                incarnation,
                site,
                epoch,
                result,
            } => {
                let node = &mut self.nodes[to];
                let Some(e) = node.election.as_mut() else {
                    return;
                };
                if node.incarnation != incarnation {
                    return;
                }
                match result {
                    Ok(grant) => e.handle_lease_granted(now, *grant),
                    Err(refusal) => e.handle_lease_refused(
                        now,
                        site,
                        epoch,
                        refusal.current_epoch(),
                        refusal.holder(),
                    ),
                }
                self.pump(to);
            }
        }
    }

    /// Starts node `i` (first boot or restart) from what it persisted.
    pub fn boot(&mut self, i: usize) {
        let now = self.now;
        let relay = RelayId::from_public_key(&self.relay_key.public_key());
        let node = &mut self.nodes[i];
        let mut config = ElectionConfig::new(node.device);
        config.preference = node.preference;
        let started_at = now - std::mem::take(&mut node.uptime_at_boot);
        let mut e =
            GatewayElection::new(config, now, node.stored_site, node.stored_epoch, started_at);
        e.set_relay_configured(now, Some(relay));
        e.handle_relay(now, true);
        node.election = Some(e);
        self.pump(i);
    }

    /// Carries out what node `i`'s election asked for.
    fn pump(&mut self, i: usize) {
        let now = self.now;
        let node = &mut self.nodes[i];
        let Some(e) = node.election.as_mut() else {
            return;
        };
        let transmits: Vec<_> = std::iter::from_fn(|| e.poll_transmit()).collect();
        for event in std::iter::from_fn(|| e.poll_event()) {
            match event {
                ElectionEvent::RoleChanged { role, gateway } => {
                    self.trace.push((now - START, i, role, gateway));
                }
                ElectionEvent::SiteChanged(site) => node.stored_site = Some(site),
                ElectionEvent::EpochSeen(epoch) => {
                    node.stored_epoch = node.stored_epoch.max(epoch);
                }
            }
        }
        let incarnation = node.incarnation;
        for transmit in transmits {
            match transmit {
                ElectionTransmit::Beacon(beacon) => {
                    for to in 0..self.nodes.len() {
                        if to != i && self.is_up(to) && self.connected(i, to) {
                            let incarnation = self.nodes[to].incarnation;
                            self.send(Msg::Beacon {
                                from: i,
                                to,
                                incarnation,
                                beacon: beacon.clone(),
                            });
                        }
                    }
                }
                ElectionTransmit::Claim { site, epoch } => {
                    assert_ne!(
                        self.nodes[i].preference,
                        GatewayPreference::Never,
                        "seed {}: node {i} with preference never claimed",
                        self.seed
                    );
                    self.send(Msg::Claim {
                        from: i,
                        incarnation,
                        site,
                        epoch,
                    });
                }
                ElectionTransmit::Release { site, epoch } => {
                    self.send(Msg::Release {
                        from: i,
                        site,
                        epoch,
                    });
                }
            }
        }
    }

    /// The safety invariant, checked after every event.
    fn check(&self) {
        let mut gateways: BTreeMap<SiteId, usize> = BTreeMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let Some(e) = node.election.as_ref().filter(|e| e.role() == Role::Gateway) else {
                continue;
            };
            let t = self.now - START;
            assert_ne!(
                node.preference,
                GatewayPreference::Never,
                "seed {}",
                self.seed
            );
            let gateway = e.gateway().expect("a gateway names itself");
            assert_eq!(gateway.device, node.device);
            let site = e.site().expect("a gateway has a site");
            assert_eq!(
                self.relay.holder(self.now, &site),
                Some((node.device, gateway.epoch)),
                "seed {}: node {i} acts as gateway of {site:?} epoch {} at t={t} \
                 without holding the live lease",
                self.seed,
                gateway.epoch
            );
            if let Some(other) = gateways.insert(site, i) {
                panic!(
                    "seed {}: nodes {other} and {i} both gateway at t={t}",
                    self.seed
                );
            }
        }
        if self.one_site {
            assert!(
                gateways.len() <= 1,
                "seed {}: two gateways at t={}: {gateways:?}",
                self.seed,
                self.now - START
            );
        }
    }

    /// Runs until `pred` holds or `max_ms` passed; returns the time taken.
    pub fn run_until(&mut self, pred: impl Fn(&Lan) -> bool, max_ms: u64) -> Option<u64> {
        let start = self.now;
        loop {
            if pred(self) {
                return Some(self.now - start);
            }
            match self.next_time() {
                Some(t) if t <= start + max_ms => self.step(),
                _ => {
                    self.now = start + max_ms;
                    return None;
                }
            }
        }
    }

    pub fn run_for(&mut self, ms: u64) {
        let end = self.now + ms;
        while self.next_time().is_some_and(|t| t <= end) {
            self.step();
        }
        self.now = end;
    }

    /// Splits the LAN: beacons cross only between nodes of the same side
    /// (the relay stays reachable for everyone).
    pub fn partition(&mut self, side: Vec<bool>) {
        self.side = side;
        self.partitioned = true;
    }

    pub fn heal(&mut self) {
        self.partitioned = false;
    }

    pub fn crash(&mut self, i: usize) {
        self.nodes[i].election = None;
        self.nodes[i].incarnation += 1;
    }

    pub fn up_nodes(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.is_up(i))
    }

    pub fn gateways(&self) -> Vec<usize> {
        self.up_nodes()
            .filter(|&i| self.election(i).is_some_and(|e| e.role() == Role::Gateway))
            .collect()
    }

    /// The gateway, when exactly one up node is gateway and every other up
    /// node is a member of it in the same site.
    pub fn converged(&self) -> Option<usize> {
        let [g] = self.gateways()[..] else {
            return None;
        };
        let gateway = self.election(g)?;
        self.up_nodes()
            .filter(|&i| i != g)
            .all(|i| {
                self.election(i).is_some_and(|e| {
                    e.role() == Role::Member
                        && e.gateway() == gateway.gateway()
                        && e.site() == gateway.site()
                })
            })
            .then_some(g)
    }

    pub fn sites(&self) -> Vec<Option<SiteId>> {
        let mut sites: Vec<_> = self
            .up_nodes()
            .map(|i| self.election(i).and_then(|e| e.site()))
            .collect();
        sites.sort();
        sites.dedup();
        sites
    }

    /// Boots every node and waits for one gateway; returns it.
    pub fn converge(&mut self, label: &str) -> usize {
        // Every node boots within the first second; a few seconds more suffice.
        let took = self.run_until(
            |lan| lan.queue_has_no_boot() && lan.converged().is_some(),
            6_000,
        );
        let took = took.unwrap_or_else(|| {
            panic!(
                "seed {}: {label}: no single gateway after 6 s: {:?}",
                self.seed,
                self.roles()
            )
        });
        let g = self.converged().expect("converged");
        println!(
            "seed {:>2}: {label}: {} nodes, gateway node {g} after {took} ms",
            self.seed,
            self.nodes.len()
        );
        g
    }

    fn queue_has_no_boot(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| n.election.is_some() || n.incarnation > 0)
    }

    pub fn roles(&self) -> Vec<(usize, Option<Role>)> {
        (0..self.nodes.len())
            .map(|i| (i, self.election(i).map(|e| e.role())))
            .collect()
    }
}

/// Random preferences for `n` nodes with at least `eligible` not `Never`.
pub fn random_prefs(rng: &mut SimRng, n: usize, eligible: usize) -> Vec<GatewayPreference> {
    let mut prefs: Vec<_> = (0..n)
        .map(|_| match rng.below(10) {
            0 | 1 => GatewayPreference::Never,
            2 | 3 => GatewayPreference::Prefer,
            _ => GatewayPreference::Auto,
        })
        .collect();
    let mut missing = eligible.saturating_sub(
        prefs
            .iter()
            .filter(|p| **p != GatewayPreference::Never)
            .count(),
    );
    for p in prefs.iter_mut() {
        if missing > 0 && *p == GatewayPreference::Never {
            *p = GatewayPreference::Auto;
            missing -= 1;
        }
    }
    prefs
}

/// Two non-empty halves of `n` nodes.
pub fn random_halves(rng: &mut SimRng, n: usize) -> Vec<bool> {
    let mut side: Vec<bool> = (0..n).map(|_| rng.chance(0.5)).collect();
    if side.iter().all(|s| *s == side[0]) {
        let i = rng.below(n as u64) as usize;
        side[i] = !side[i];
    }
    side
}
