//! The simulated relay's state: core's [`LeaseTable`] grants and renews
//! site leases (signed with the relay's key, as the real relay signs them),
//! the relay forwards what enters a site only to the node that holds that
//! site's live lease, and it holds in its mailboxes (core's custody rule,
//! `mailbox`) what it cannot hand over; the routing itself is in
//! `world/custody.rs`. Grants are signed off the simulation's thread
//! (`signer`).

use std::collections::{BTreeMap, BTreeSet};

mod signer;

use tincan_core::{DeviceId, DeviceKey, ElectionConfig, LeaseRefusal, LeaseTable, RelayId, SiteId};

pub(crate) use signer::PendingGrant;

use super::mailbox::Mailboxes;
use super::seed::SimRng;
use super::{NodeIdx, SiteIdx};

/// The gateway the relay knows for one physical site.
#[derive(Clone, Copy, Debug)]
struct Connected {
    node: NodeIdx,
    device: DeviceId,
    site: SiteId,
    epoch: u64,
}

/// The relay's state.
pub(crate) struct Relay {
    leases: LeaseTable<SiteId>,
    /// Signs grants with the relay's key (on a worker thread).
    signer: signer::Signer,
    id: RelayId,
    /// Per physical site, the last node granted a lease from there.
    gateways: BTreeMap<SiteIdx, Connected>,
    /// Roaming nodes, connected to the relay themselves: what enters their
    /// site for them comes straight to them, not through a gateway.
    direct: BTreeSet<NodeIdx>,
    /// What the relay holds in custody.
    pub(crate) mail: Mailboxes,
    /// Whether a [`super::queue::Event::RelayTick`] is scheduled.
    pub(crate) tick_pending: bool,
}

impl Relay {
    /// A relay with a key drawn from `rng` and the daemon's lease lifetime.
    pub(crate) fn new(rng: &mut SimRng) -> Self {
        let key = DeviceKey::generate(rng);
        let id = RelayId::from_public_key(&key.public_key());
        let ttl = ElectionConfig::new(DeviceId([0; 20])).lease_ttl_ms;
        Self {
            leases: LeaseTable::new(ttl),
            signer: signer::Signer::new(key, id),
            id,
            gateways: BTreeMap::new(),
            direct: BTreeSet::new(),
            mail: Mailboxes::default(),
            tick_pending: false,
        }
    }

    /// The relay's id, which every node pins.
    pub(crate) fn id(&self) -> RelayId {
        self.id
    }

    /// A claim from `node` (device `device`, now in `location`): core's
    /// lease rule decides; a grant is signed and remembered as the
    /// location's gateway. The grant is signed (and checked, for the node
    /// it goes to) on the signer's thread.
    pub(crate) fn claim(
        &mut self,
        now: u64,
        node: NodeIdx,
        device: DeviceId,
        location: SiteIdx,
        site: SiteId,
        epoch: u64,
    ) -> Result<PendingGrant, LeaseRefusal> {
        let lease = self.leases.claim(now, site, device, epoch)?;
        self.gateways.insert(
            location,
            Connected {
                node,
                device,
                site,
                epoch: lease.epoch,
            },
        );
        Ok(self
            .signer
            .grant(site, lease.epoch, device, lease.expires_at))
    }

    /// A gateway gave its lease back.
    pub(crate) fn release(&mut self, now: u64, device: DeviceId, site: SiteId, epoch: u64) {
        let _ = self.leases.release(now, &site, device, epoch);
    }

    /// The node and epoch last granted a lease from `location`, live or not.
    pub(crate) fn granted(&self, location: SiteIdx) -> Option<(NodeIdx, u64)> {
        self.gateways.get(&location).map(|c| (c.node, c.epoch))
    }

    /// The node holding the live lease granted from `location`, if any.
    pub(crate) fn gateway_of(&self, now: u64, location: SiteIdx) -> Option<NodeIdx> {
        let c = self.gateways.get(&location)?;
        (self.leases.holder(now, &c.site) == Some((c.device, c.epoch))).then_some(c.node)
    }

    /// `node` connected to the relay itself, or stopped doing so.
    pub(crate) fn set_direct(&mut self, node: NodeIdx, direct: bool) {
        if direct {
            self.direct.insert(node);
        } else {
            self.direct.remove(&node);
        }
    }

    /// Whether `node` is connected to the relay itself.
    pub(crate) fn is_direct(&self, node: NodeIdx) -> bool {
        self.direct.contains(&node)
    }
}
