//! The builder: everything fixed before a simulation starts.

use std::ops::Range;
use std::time::Duration;

use super::net::Net;
use super::seed::SimRng;
use super::world::{NodeConfig, World};
use super::{Sim, START_MS};

/// Configures and builds a [`Sim`].
#[derive(Clone, Debug)]
pub struct SimBuilder {
    seed: u64,
    sites: usize,
    wan_latency: Range<u64>,
    lan_latency: Range<u64>,
    loss: f64,
    attempt_timeout_ms: u64,
    expiry_ms: u64,
}

impl Default for SimBuilder {
    fn default() -> Self {
        Self {
            seed: 0,
            sites: 1,
            wan_latency: 10..50,
            lan_latency: 1..5,
            loss: 0.0,
            attempt_timeout_ms: 2_000,
            expiry_ms: 7 * 24 * 3_600_000,
        }
    }
}

impl SimBuilder {
    /// Defaults: seed 0, one site, WAN hops 10–50 ms, LAN hops 1–5 ms, no
    /// loss, 2 s receipt timeout, 7-day expiry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The seed every random choice derives from.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Number of sites (at least 1).
    pub fn sites(mut self, sites: usize) -> Self {
        self.sites = sites.max(1);
        self
    }

    /// Latency of each WAN hop (gateway ↔ relay), in ms, `min..max`.
    pub fn latency(mut self, ms: Range<u64>) -> Self {
        self.wan_latency = ms;
        self
    }

    /// Latency of each LAN hop (device ↔ device or gateway), in ms.
    pub fn lan_latency(mut self, ms: Range<u64>) -> Self {
        self.lan_latency = ms;
        self
    }

    /// Probability that a hop loses a packet (each hop independently).
    pub fn loss(mut self, probability: f64) -> Self {
        self.loss = probability.clamp(0.0, 1.0);
        self
    }

    /// How long a sender waits for a receipt before it counts the attempt
    /// as failed.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout_ms = timeout.as_millis().max(1) as u64;
        self
    }

    /// The simulator, empty, at [`START_MS`].
    pub fn build(self) -> Sim {
        let net = Net::new(
            self.sites,
            self.lan_latency,
            self.wan_latency,
            self.loss,
            SimRng::new(self.seed, 1),
        );
        let config = NodeConfig {
            attempt_timeout_ms: self.attempt_timeout_ms,
            expiry_ms: self.expiry_ms,
        };
        Sim {
            world: World::new(START_MS, net, config, SimRng::new(self.seed, 0)),
            nodes: Vec::new(),
            sent: Vec::new(),
            rooms: Vec::new(),
            room_ops: 0,
            room_envelopes: 0,
            rng: SimRng::new(self.seed, 2),
            seed: self.seed,
        }
    }
}
