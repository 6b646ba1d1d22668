//! The invariants a run must hold, checked as it goes: at most one gateway
//! per site and epoch, never two gateways of a site at once, and a new
//! gateway within the election bound after a gateway is lost.
//!
//! Role changes arrive here as the nodes' elections report them, so the
//! checks cost nothing per step (a 2,000-node run takes millions of steps).

use std::collections::{BTreeMap, BTreeSet};

use tincan_core::{DeviceId, ElectionConfig, SiteId};

use super::{NodeIdx, SiteIdx, START_MS};

/// How long a site may be without a gateway after it lost one: the lease
/// must lapse (its TTL after the last renewal), then a member's claim is
/// retried every `claim_retry_ms` (100 ms) over a lossy WAN. One second
/// covers the claim retries and round trips.
pub fn failover_bound_ms() -> u64 {
    ElectionConfig::new(DeviceId([0; 20])).lease_ttl_ms + 1_000
}

/// What the checks found so far.
#[derive(Default)]
pub(crate) struct Checks {
    /// Devices seen as gateway per (site, epoch).
    per_epoch: BTreeMap<(SiteId, u64), BTreeSet<DeviceId>>,
    /// Nodes acting as gateway now, per site.
    current: BTreeMap<SiteId, BTreeSet<NodeIdx>>,
    /// Physical sites that lost their gateway, since when.
    lost_at: BTreeMap<SiteIdx, u64>,
    pub(crate) failovers: u64,
    pub(crate) max_failover_ms: u64,
    pub(crate) violations: Vec<String>,
}

impl Checks {
    fn violation(&mut self, now: u64, what: String) {
        let t = now.saturating_sub(START_MS);
        tracing::warn!(t_ms = t, "{what}");
        // A broken rule tends to repeat every step; the first few say it.
        if self.violations.len() < 100 {
            self.violations.push(format!("t={t}ms: {what}"));
        }
    }

    /// `node` (device `device`, in `location`) became gateway of `site` at
    /// `epoch`.
    pub(crate) fn became_gateway(
        &mut self,
        now: u64,
        node: NodeIdx,
        device: DeviceId,
        location: SiteIdx,
        site: SiteId,
        epoch: u64,
    ) {
        let seen = self.per_epoch.entry((site, epoch)).or_default();
        seen.insert(device);
        if seen.len() > 1 {
            let n = seen.len();
            self.violation(now, format!("{n} gateways of site {site} in epoch {epoch}"));
        }
        let current = self.current.entry(site).or_default();
        current.insert(node);
        if current.len() > 1 {
            let nodes: Vec<_> = current.iter().map(|n| n.0).collect();
            self.violation(now, format!("site {site} has gateways {nodes:?} at once"));
        }
        if let Some(lost) = self.lost_at.remove(&location) {
            self.failovers += 1;
            self.max_failover_ms = self.max_failover_ms.max(now - lost);
        }
    }

    /// `node` stopped being gateway of `site` (stepped down, crashed or
    /// moved away); `lost` says the site is left without one.
    pub(crate) fn left_gateway(
        &mut self,
        now: u64,
        node: NodeIdx,
        location: SiteIdx,
        site: SiteId,
        lost: bool,
    ) {
        if let Some(current) = self.current.get_mut(&site) {
            current.remove(&node);
        }
        if lost {
            self.lost_at.entry(location).or_insert(now);
        }
    }

    /// Reports every site that has waited longer than the bound, unless
    /// it has no running node that may be gateway (`can_elect`): such a
    /// site cannot elect and is not waited for.
    pub(crate) fn check_bound(&mut self, now: u64, can_elect: impl Fn(SiteIdx) -> bool) {
        let bound = failover_bound_ms();
        if self
            .lost_at
            .values()
            .all(|at| now.saturating_sub(*at) <= bound)
        {
            return;
        }
        let late: Vec<(SiteIdx, u64)> = self
            .lost_at
            .iter()
            .filter(|(_, at)| now.saturating_sub(**at) > bound)
            .map(|(s, at)| (*s, *at))
            .collect();
        for (site, at) in late {
            self.lost_at.remove(&site);
            if !can_elect(site) {
                continue;
            }
            self.failovers += 1;
            self.max_failover_ms = self.max_failover_ms.max(now - at);
            self.violation(now, format!("{site} without a gateway for over {bound} ms"));
        }
    }

    /// The most devices seen as gateway of one site in one epoch.
    pub(crate) fn max_gateways_per_site_epoch(&self) -> usize {
        self.per_epoch
            .values()
            .map(BTreeSet::len)
            .max()
            .unwrap_or(0)
    }
}
