//! What a run can be asked about its outcome: delivery (every message
//! shown exactly once, acknowledged, in the state its devices' outcomes
//! imply), the gateway checks, WAN copies, and whether the sites agree on
//! their gateways. Kept apart from the driving code in `sim.rs`, which
//! changes for other reasons.

use std::collections::BTreeMap;

use tincan_core::delivery::MessageState;
use tincan_core::{GatewayPreference, MessageId};

use super::{NodeIdx, SentMessage, Sim, SimNode, SiteIdx};

/// How the sent messages fared; see [`Sim::delivery_report`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Expected (message, recipient) displays.
    pub expected: usize,
    /// (message, recipient) pairs not displayed.
    pub missing: Vec<(MessageId, NodeIdx)>,
    /// (message, recipient, times) displayed more than once.
    pub duplicated: Vec<(MessageId, NodeIdx, usize)>,
    /// (message, recipient) displays nobody sent to that node.
    pub unexpected: Vec<(MessageId, NodeIdx)>,
    /// (message, recipient) pairs whose sender never saw a receipt.
    pub unacknowledged: Vec<(MessageId, NodeIdx)>,
    /// Settled messages whose state in the sender's history disagrees with
    /// the devices' outcomes (delivered when one device acknowledged it,
    /// else failed with a reason), with the state shown.
    pub misreported: Vec<(MessageId, Option<MessageState>)>,
}

impl DeliveryReport {
    /// Every message displayed exactly once at every recipient, nothing
    /// else displayed, and every delivery acknowledged to its sender.
    pub fn is_exactly_once(&self) -> bool {
        self.missing.is_empty()
            && self.duplicated.is_empty()
            && self.unexpected.is_empty()
            && self.unacknowledged.is_empty()
            && self.misreported.is_empty()
    }
}

/// What the gateway checks found; see [`Sim::gateway_report`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayReport {
    /// The most devices seen as gateway of one site in one lease epoch
    /// (1 when the election is safe).
    pub max_gateways_per_site_epoch: usize,
    /// Sites that lost their gateway and got a new one (or waited past
    /// the bound).
    pub failovers: u64,
    /// The longest time a site was without a gateway, in ms.
    pub max_failover_ms: u64,
    /// Broken rules, with the virtual time they broke (empty when all hold).
    pub violations: Vec<String>,
}

impl Sim {
    /// The gateway checks so far: at most one gateway per site and epoch,
    /// never two at once, and failover within [`failover_bound_ms`](super::failover_bound_ms).
    pub fn gateway_report(&self) -> GatewayReport {
        let c = &self.world.checks;
        GatewayReport {
            max_gateways_per_site_epoch: c.max_gateways_per_site_epoch(),
            failovers: c.failovers,
            max_failover_ms: c.max_failover_ms,
            violations: c.violations.clone(),
        }
    }

    /// How many first-attempt copies of message `id` entered `site` over
    /// the WAN (0 when none did).
    pub fn first_wan_copies(&self, id: &MessageId, site: SiteIdx) -> u32 {
        self.world
            .first_copies
            .get(&(*id, site))
            .copied()
            .unwrap_or(0)
    }

    /// Envelope copies of retried attempts that entered a site over the WAN.
    pub fn wan_retransmits(&self) -> u64 {
        self.world.wan_retransmits
    }

    /// Copies the relay took into custody (core's custody rule stored
    /// them: envelopes for devices it could not locate, and receipts of
    /// held envelopes kept for their senders); retries it deduped are not
    /// counted.
    pub fn custody_items(&self) -> u64 {
        self.world.custody_items
    }

    /// Copies the relay holds now.
    pub fn held_items(&self) -> usize {
        self.world.relay.mail.len()
    }

    /// Whether every site agrees on one gateway: in each site with a
    /// running node that may be gateway, exactly one running node is
    /// gateway and every other running node follows it (a node alone in
    /// its site roams: it talks to the relay itself).
    pub fn gateways_settled(&self) -> bool {
        (0..self.sites()).all(|site| {
            let up: Vec<&SimNode> = self.world.net.members[site]
                .iter()
                .map(|n| &self.nodes[n.0])
                .filter(|n| n.is_up())
                .collect();
            if up
                .iter()
                .all(|n| n.preference() == GatewayPreference::Never)
            {
                return true;
            }
            if let [alone] = up[..] {
                // Alone on its LAN a node talks to the relay itself.
                return alone.role() == Some(tincan_core::Role::Roaming);
            }
            let gateways: Vec<_> = up.iter().filter(|n| n.is_gateway()).collect();
            let [gateway] = gateways[..] else {
                return false;
            };
            let g = gateway.election().and_then(|e| e.gateway());
            up.iter()
                .all(|n| n.election().is_some_and(|e| e.gateway() == g))
        })
    }

    /// Compares what was sent with what was displayed and acknowledged.
    pub fn delivery_report(&self) -> DeliveryReport {
        let mut report = DeliveryReport::default();
        let mut shown: BTreeMap<(MessageId, NodeIdx), usize> = BTreeMap::new();
        for node in &self.nodes {
            for d in node.displayed() {
                *shown.entry((d.id, node.idx())).or_default() += 1;
            }
        }
        for sent in &self.sent {
            if let Some(wrong) = self.misreported(sent) {
                report.misreported.push((sent.id, wrong));
            }
            for to in &sent.to {
                report.expected += 1;
                match shown.remove(&(sent.id, *to)) {
                    None => report.missing.push((sent.id, *to)),
                    Some(1) => {}
                    Some(times) => report.duplicated.push((sent.id, *to, times)),
                }
                let device = self.nodes[to.0].device_id();
                if !self.nodes[sent.from.0].is_delivered(&sent.id, &device) {
                    report.unacknowledged.push((sent.id, *to));
                }
            }
        }
        report.unexpected = shown.into_keys().collect();
        report
    }
}

impl Sim {
    /// The state `sent` shows in its sender's history, when that is not
    /// what its devices' outcomes imply (`None` inside: no state at all).
    fn misreported(&self, sent: &SentMessage) -> Option<Option<MessageState>> {
        let sender = &self.nodes[sent.from.0];
        if !sender.is_settled(&sent.id) {
            return None;
        }
        let acked = sent
            .to
            .iter()
            .any(|n| sender.is_delivered(&sent.id, &self.nodes[n.0].device_id()));
        let shown = sender.message_state(&sent.id);
        let right = match shown {
            Some((MessageState::Delivered, None)) => acked,
            Some((MessageState::Failed, Some(reason))) => !acked && !reason.is_empty(),
            _ => false,
        };
        (!right).then(|| shown.map(|(state, _)| state))
    }
}
