//! The branch-gateway election, one [`GatewayElection`] per node.
//!
//! Sans-IO like the rest of core: the driver reports LAN beacons, relay
//! connectivity and lease answers (`handle_*`, always with `now` in Unix
//! ms), and polls for what to send ([`GatewayElection::poll_transmit`]), what
//! changed ([`GatewayElection::poll_event`]) and when to wake
//! ([`GatewayElection::poll_timeout`]). Every decision iterates `BTreeMap`s,
//! so equal inputs give equal outputs.
//!
//! # Rules
//! - No relay configured: [`Role::Standalone`].
//! - No live LAN peer: [`Role::Roaming`] (alone on a LAN, a node talks to
//!   the relay itself and needs no lease).
//! - A live gateway on the LAN (a peer whose own fresh beacon says it holds
//!   the lease) is followed: [`Role::Member`]. Incumbency: a better
//!   candidate never deposes a live gateway. Among several live gateways
//!   the lowest site wins (the merge rule), then the highest epoch; a
//!   gateway that is beaten releases its lease and follows.
//! - No live gateway: the best [`Rank`](crate::site::Rank) among this node and its live peers
//!   claims the lease (once `settle_ms` after start have passed, so it has
//!   heard its peers), for the lowest site id heard (minting one only if
//!   nobody has one), at an epoch above every epoch seen. While claiming it
//!   stays `Roaming`; a grant makes it [`Role::Gateway`].
//! - Refused: stay `Roaming`, raise the known epoch, retry every
//!   `claim_retry_ms`. The old holder's lease lapses at most `ttl` after its
//!   last renewal, which bounds failover.
//! - A holder steps down on its own clock at `send time of the last granted
//!   claim + step_down_after_ms`, which is before the relay's lease could
//!   have lapsed (see `election/claim.rs`); so at no instant do two nodes act as
//!   gateway of one site with live leases.
//! - A node whose preference is `Never`, or whose relay connection is down,
//!   has no rank: it never claims, and a gateway in that state steps down.
//!
//! Peers are live while their last beacon is younger than
//! `peer_timeout_ms`. A gateway is believed only on its own beacon, never on
//! hearsay, so a dead gateway cannot be kept alive by peers vouching for
//! each other; and only with the relay's signed [`LeaseGrant`] for that
//! device, site and epoch (see `election/beacon.rs`), so no member can
//! make a real gateway step down or raise the epochs others believe in.
//! Epochs come only from the relay: its answers and proven grants (plus
//! at most [`crate::lease::MAX_EPOCH_STEP`]); a relay that refuses a claim
//! as too far above its epoch moves the node's epoch *down* to just above
//! it. Epoch arithmetic is checked: nothing wraps or panics at `u64::MAX`.

mod answer;
mod beacon;
mod claim;
mod decide;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};

use crate::lease::{LeaseGrant, DEFAULT_LEASE_TTL_MS};
use crate::site::{GatewayPreference, GatewayRef, Role, SiteId};
use crate::{DeviceId, Entropy, RelayId};

pub use beacon::Beacon;
use claim::Claim;

/// Timing and identity of one node's election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionConfig {
    /// This device.
    pub me: DeviceId,
    /// Whether it may be gateway, and how eagerly.
    pub preference: GatewayPreference,
    /// How often a beacon goes to every LAN peer (also sent on any change).
    pub beacon_interval_ms: u64,
    /// A peer silent for this long is gone.
    pub peer_timeout_ms: u64,
    /// How often a gateway renews its lease.
    pub renew_interval_ms: u64,
    /// The relay's lease lifetime.
    pub lease_ttl_ms: u64,
    /// A holder with no grant for this long after sending the last granted
    /// claim steps down. Must be below `lease_ttl_ms`; the difference is the
    /// longest relay round trip that keeps the step-down safe.
    pub step_down_after_ms: u64,
    /// Delay between claims while refused or unanswered.
    pub claim_retry_ms: u64,
    /// After start a node listens this long before it claims, so that it
    /// has heard every peer's beacon (and site) first: two nodes booting
    /// together must not each mint a site.
    pub settle_ms: u64,
}

impl ElectionConfig {
    /// The defaults for `me`: beacons every 250 ms, peers gone after 1 s
    /// (four beacons missed in a row, so 10 % loss on the LAN does not
    /// make them vanish), claims retried every 100 ms, 1.5 s of listening
    /// after start, and the lease timing of [`Self::with_lease_ttl`] for
    /// [`DEFAULT_LEASE_TTL_MS`]: renewals every 400 ms of a 1.2 s lease,
    /// step-down 900 ms after the last granted claim was sent.
    ///
    /// Failover after a gateway dies silently (SIGKILL, power cut) is
    /// bounded by the lease: its last renewal arrived at most a renew
    /// interval before, so the lease lapses within the TTL, and the
    /// members, which stop hearing its beacons within `peer_timeout_ms`,
    /// are already claiming (every `claim_retry_ms`) when it does.
    pub fn new(me: DeviceId) -> Self {
        Self {
            me,
            preference: GatewayPreference::Auto,
            beacon_interval_ms: 250,
            peer_timeout_ms: 1_000,
            renew_interval_ms: 0,
            lease_ttl_ms: 0,
            step_down_after_ms: 0,
            claim_retry_ms: 100,
            settle_ms: 1_500,
        }
        .with_lease_ttl(DEFAULT_LEASE_TTL_MS)
    }

    /// This configuration for a relay whose leases last `ttl_ms`: renewals
    /// every third of it (two may be lost before the holder must worry),
    /// and the step-down a quarter of it before the lease could lapse. That
    /// quarter is the longest relay round trip the step-down stays safe
    /// for (see `election/claim.rs`): 300 ms at the default 1.2 s.
    #[must_use]
    pub fn with_lease_ttl(mut self, ttl_ms: u64) -> Self {
        self.lease_ttl_ms = ttl_ms;
        // At least 1 ms: a renewal is never due again at the instant it
        // was sent, whatever a relay announces.
        self.renew_interval_ms = (ttl_ms / 3).max(1);
        self.step_down_after_ms = ttl_ms - ttl_ms / 4;
        self
    }

    /// How long a claim may wait for its answer before it counts as lost.
    fn answer_window_ms(&self) -> u64 {
        self.lease_ttl_ms.saturating_sub(self.step_down_after_ms)
    }
}

/// Something to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElectionTransmit {
    /// To every live LAN peer.
    Beacon(Beacon),
    /// To the relay: claim or renew the site's lease at `epoch`. Answer
    /// with [`GatewayElection::handle_lease_granted`] or
    /// [`GatewayElection::handle_lease_refused`].
    Claim {
        /// The site.
        site: SiteId,
        /// The epoch.
        epoch: u64,
    },
    /// To the relay: give the lease up (stepping down gracefully). May be
    /// dropped when the relay is unreachable; the lease then lapses.
    Release {
        /// The site.
        site: SiteId,
        /// The epoch.
        epoch: u64,
    },
}

/// Something that changed, for the driver to act on or persist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElectionEvent {
    /// The node's role, or the gateway it follows, changed.
    RoleChanged {
        /// The new role.
        role: Role,
        /// The gateway (this node when `Gateway`, the followed one when
        /// `Member`, else `None`).
        gateway: Option<GatewayRef>,
    },
    /// The node's site changed; persist it.
    SiteChanged(SiteId),
    /// The highest lease epoch changed (seen, used, or set right by the
    /// relay); persist it.
    EpochSeen(u64),
}

#[derive(Clone, Debug)]
struct Peer {
    beacon: Beacon,
    heard_at: u64,
    /// The verified grant of its lease, while it is gateway. Boxed: a
    /// grant is 152 bytes that most peers (the members) never have, and a
    /// node on a LAN of n reads and rewrites one of its n peers per beacon
    /// heard; inline, the grant more than doubled every peer and the
    /// cache lines each beacon touches.
    proof: Option<Box<LeaseGrant>>,
}

/// The election state of one node.
#[derive(Debug)]
pub struct GatewayElection {
    config: ElectionConfig,
    started_at: u64,
    /// When this state machine was created (the settle period runs from it).
    created_at: u64,
    /// The pinned key of the relay, once configured: grants must be signed
    /// by it.
    relay: Option<RelayId>,
    relay_connected: bool,
    site: Option<SiteId>,
    max_epoch: u64,
    peers: BTreeMap<DeviceId, Peer>,
    /// At most the earliest instant a peer falls silent (`heard_at +
    /// peer_timeout_ms`), `u64::MAX` without peers: exact after every
    /// `update`, and still a lower bound after a beacon moves a
    /// peer's `heard_at` on. [`Self::poll_timeout`] scans the peers only
    /// when this bound could be the answer: the driver asks after every
    /// beacon, and on a LAN of n nodes that scan of n peers was the most
    /// expensive part of handling one.
    peers_silent_from: u64,
    claim: Option<Claim>,
    role: Role,
    gateway: Option<GatewayRef>,
    last_beacon: Option<Beacon>,
    next_beacon_at: u64,
    /// When the winner must decide again although nothing else is due: at
    /// the end of the settle period, or at once when it must mint a site id
    /// and had no entropy at hand.
    decide_again_at: Option<u64>,
    transmits: VecDeque<ElectionTransmit>,
    events: VecDeque<ElectionEvent>,
}

impl GatewayElection {
    /// A node that starts with its persisted site and highest epoch.
    /// `started_at_ms` is when the node came up (for the uptime rank). The
    /// relay counts as not configured until
    /// [`Self::set_relay_configured`], so the node starts `Standalone`.
    pub fn new(
        config: ElectionConfig,
        now: u64,
        stored_site: Option<SiteId>,
        stored_max_epoch: u64,
        started_at_ms: u64,
    ) -> Self {
        let mut election = Self {
            config,
            started_at: started_at_ms,
            created_at: now,
            relay: None,
            relay_connected: false,
            site: stored_site,
            max_epoch: stored_max_epoch,
            peers: BTreeMap::new(),
            peers_silent_from: u64::MAX,
            claim: None,
            role: Role::Standalone,
            gateway: None,
            last_beacon: None,
            next_beacon_at: now,
            decide_again_at: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        election.update(now, None);
        election
    }

    /// This node's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// This node's site, if it has one.
    pub fn site(&self) -> Option<SiteId> {
        self.site
    }

    /// The gateway this node uses (itself when it is gateway).
    pub fn gateway(&self) -> Option<GatewayRef> {
        self.gateway
    }

    /// The highest lease epoch seen.
    pub fn max_epoch(&self) -> u64 {
        self.max_epoch
    }

    /// The configuration in force.
    pub fn config(&self) -> &ElectionConfig {
        &self.config
    }

    /// The live LAN peers, as of the last input.
    pub fn lan_peers(&self) -> impl Iterator<Item = DeviceId> + '_ {
        self.peers.keys().copied()
    }

    /// The relay is configured, with the key (fingerprint) pinned for it,
    /// or not (`None`). Unconfigured means `Standalone`; a gateway releases
    /// its lease. Lease grants, ours and our peers', must be signed by
    /// this relay.
    pub fn set_relay_configured(&mut self, now: u64, relay: Option<RelayId>) {
        self.relay = relay;
        self.update(now, None);
    }

    /// The relay announced that its leases last `ttl_ms` (its welcome):
    /// renewals and the step-down deadline follow it, so that a holder
    /// steps down before *this* relay's lease could lapse, whatever
    /// default either side was built with. Call it before
    /// [`Self::handle_relay`] reports the connection up; a lease held
    /// under the old timing keeps the deadline it has.
    pub fn set_lease_ttl(&mut self, now: u64, ttl_ms: u64) {
        if ttl_ms != self.config.lease_ttl_ms {
            self.config = self.config.clone().with_lease_ttl(ttl_ms);
            self.update(now, None);
        }
    }

    /// The relay connection came up or went down. A node without one is not
    /// eligible, and a gateway that loses it steps down at once.
    pub fn handle_relay(&mut self, now: u64, connected: bool) {
        self.relay_connected = connected;
        self.update(now, None);
    }

    /// Changes the configured preference. `Never` makes a gateway step down;
    /// `Prefer` does not depose a live gateway.
    pub fn set_preference(&mut self, now: u64, preference: GatewayPreference) {
        self.config.preference = preference;
        self.update(now, None);
    }

    /// A beacon from `from`, an authenticated peer of this organisation.
    /// Its claim to be gateway counts only with the relay's grant, and
    /// its epochs only as far as that grant proves (`election/beacon.rs`).
    pub fn handle_beacon(&mut self, now: u64, from: DeviceId, mut beacon: Beacon) {
        if from == self.config.me {
            return;
        }
        // A peer can only rank itself: the authenticated sender wins over
        // whatever device the beacon names.
        if let Some(rank) = beacon.rank.as_mut() {
            rank.device = from;
        }
        // One map lookup per beacon: a LAN of n nodes hears n beacons
        // per interval per node.
        let relay = self.relay.as_ref();
        let (vetted, repeated) = match self.peers.get_mut(&from) {
            Some(peer) => {
                let vetted = beacon.vet(now, from, relay, peer.proof.take());
                let repeated = peer.beacon.says_the_same(&beacon);
                *peer = Peer {
                    beacon,
                    heard_at: now,
                    proof: vetted.proof,
                };
                (vetted.epoch, repeated)
            }
            None => {
                // A newcomer learns the LAN from our answer at once rather
                // than at our next beacon.
                self.next_beacon_at = now;
                let vetted = beacon.vet(now, from, relay, None);
                let peer = Peer {
                    beacon,
                    heard_at: now,
                    proof: vetted.proof,
                };
                self.peers.insert(from, peer);
                self.peers_silent_from = self
                    .peers_silent_from
                    .min(now.saturating_add(self.config.peer_timeout_ms));
                (vetted.epoch, false)
            }
        };
        let epoch_before = self.max_epoch;
        if let Some(seen) = vetted {
            self.see_epoch(seen);
        }
        // A known peer repeating itself changes no decision: only its
        // silence timer moves, later, and the driver's timer (already set
        // for the earliest deadline) brings the rest up to date. Most
        // beacons are such repeats; deciding again for each one was a
        // third of the simulator's time at 2,000 nodes.
        if !repeated || self.max_epoch != epoch_before {
            self.update(now, None);
        }
    }

    /// The connection to `from` closed: it is gone at once.
    pub fn handle_peer_lost(&mut self, now: u64, from: DeviceId) {
        self.peers.remove(&from);
        self.update(now, None);
    }

    /// Time passed: beacons, renewals, retries, peer timeouts, step-down.
    /// `entropy` mints a site id when this node is the first gateway.
    pub fn handle_timeout(&mut self, now: u64, entropy: &mut dyn Entropy) {
        self.update(now, Some(entropy));
    }

    /// The next thing to send, if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<ElectionTransmit> {
        self.transmits.pop_front()
    }

    /// The next thing that changed, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ElectionEvent> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] must be called next (Unix ms).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        let others = [
            Some(self.next_beacon_at),
            self.claim.as_ref().map(Claim::next_timeout),
            self.decide_again_at,
        ]
        .into_iter()
        .flatten()
        .min();
        // No peer falls silent before `peers_silent_from`: when something
        // else is due by then, the peers cannot change the answer.
        if others.is_some_and(|at| at <= self.peers_silent_from) {
            return others;
        }
        let peer_expiry = self
            .peers
            .values()
            .map(|p| p.heard_at.saturating_add(self.config.peer_timeout_ms))
            .min();
        others.into_iter().chain(peer_expiry).min()
    }

    /// Brings the state up to `now`: forgets silent peers, enforces the
    /// step-down deadline, decides, and queues due claims and beacons.
    fn update(&mut self, now: u64, entropy: Option<&mut dyn Entropy>) {
        self.decide_again_at = None;
        let timeout = self.config.peer_timeout_ms;
        let mut silent_from = u64::MAX;
        self.peers.retain(|_, p| {
            let silent_at = p.heard_at.saturating_add(timeout);
            let live = silent_at > now;
            if live {
                silent_from = silent_from.min(silent_at);
            }
            live
        });
        self.peers_silent_from = silent_from;
        if self.claim.as_ref().is_some_and(|c| c.must_step_down(now)) {
            self.drop_claim();
        }
        self.decide(now, entropy);
        if let Some(claim) = self.claim.as_mut().filter(|c| c.is_due(now)) {
            claim.sent(now, &self.config);
            self.transmits.push_back(ElectionTransmit::Claim {
                site: claim.site,
                epoch: claim.epoch,
            });
        }
        let beacon = self.beacon(now);
        if now >= self.next_beacon_at || self.last_beacon.as_ref() != Some(&beacon) {
            self.transmits
                .push_back(ElectionTransmit::Beacon(beacon.clone()));
            self.last_beacon = Some(beacon);
            self.next_beacon_at = now.saturating_add(self.config.beacon_interval_ms);
        }
    }

    fn beacon(&self, now: u64) -> Beacon {
        // A gateway shows the relay's grant of its lease; nobody else has
        // one to show.
        let grant = self
            .claim
            .as_ref()
            .filter(|c| c.granted && self.role == Role::Gateway)
            .and_then(|c| c.grant.clone())
            .map(Box::new);
        Beacon {
            site: self.site,
            rank: self.my_rank(now),
            gateway: self.gateway,
            max_epoch: self.max_epoch,
            grant,
        }
    }
}
