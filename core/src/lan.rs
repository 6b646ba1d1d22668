//! The LAN as one node sees it: who is here (from the devices' own signed
//! records, passed from peer to peer), which links to keep, and when a
//! device that stopped answering is reported gone. Sans-IO like the rest
//! of core: the driver reports links, gossip, mDNS hints and failed dials
//! (`handle_*`, with `now` in Unix ms) and polls for gossip to send
//! ([`LanMesh::poll_transmit`]), what changed ([`LanMesh::poll_event`]) and
//! when to wake ([`LanMesh::poll_timeout`]).
//!
//! # Why
//! A full mesh costs every node one connection and a keep-alive a second
//! per desktop: 200 desktops are 20,000 connections. Here a node keeps a
//! few links ([`overlay`]), opens others on demand (a message, a file) and
//! closes those again when idle; and yet it knows everyone, because:
//!
//! # Rules
//! - **Peer exchange.** On a new link each side sends all records it
//!   holds; afterwards each new or newer record is passed on to every other
//!   link, once. One peer found is enough to learn the whole LAN, and a node
//!   that hears no multicast is still found by those it dials.
//! - **Records prove themselves.** A [`LanRecord`] is signed by the device
//!   it describes; a forwarder cannot change a name, an address or a
//!   presence. The highest version wins; a device bumps its version on every
//!   change (presence, addresses, leaving).
//! - **Online** means a live link, or a record that says "here" and that no
//!   peer has reported gone at that version. A node's ring neighbours hold
//!   live links to it (with keep-alives), so a crash is noticed by them
//!   within the link timeout; the one that notices dials once more and,
//!   if that fails too, passes a [`Suspicion`] around. A device that hears a
//!   suspicion about itself answers with a newer record, so a false report
//!   lasts one round trip of gossip.
//! - **Leaving** is said by the device itself (a signed record) before it
//!   closes its links, so a clean shutdown is seen at once.
//! - **Links.** The ring neighbours ([`overlay::neighbours`]) stay linked
//!   (the driver dials [`LanMesh::dial_targets`]); any other link is closed
//!   once it carried nothing for [`MeshConfig::idle_close_ms`]. A device
//!   known only from an mDNS hint is dialled once for its record, so one
//!   that hears no multicast is found by those that hear it.
//! - **Bounds.** At most [`MeshConfig::max_devices`] records and as many
//!   mDNS hints are held; gossip is cut into messages of at most
//!   [`MAX_GOSSIP_RECORDS`] records.

pub mod overlay;
mod record;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;

pub use record::{
    LanGossip, LanRecord, LanStatus, RecordError, Suspicion, MAX_RECORD_ADDRS,
    MAX_RECORD_NAME_BYTES,
};

use crate::presence::ShownPresence;
use crate::DeviceId;

/// Most records in one gossip message (a record is about 300 bytes).
pub const MAX_GOSSIP_RECORDS: usize = 128;

/// Most suspicions in one gossip message.
pub const MAX_GOSSIP_SUSPICIONS: usize = 512;

/// Tuning of a [`LanMesh`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshConfig {
    /// A link that is not a ring neighbour's is closed after carrying
    /// nothing for this long.
    pub idle_close_ms: u64,
    /// Most devices (records, and separately mDNS hints) held.
    pub max_devices: usize,
}

impl Default for MeshConfig {
    /// 30 s idle, 4,096 devices (eight times the largest LAN we design for).
    fn default() -> Self {
        Self {
            idle_close_ms: 30_000,
            max_devices: 4_096,
        }
    }
}

/// What changed, for the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LanEvent {
    /// A device's record is new or changed (name, addresses, presence):
    /// read it with [`LanMesh::record`].
    Learned(DeviceId),
    /// The device is now shown online.
    Online(DeviceId),
    /// The device is now shown offline.
    Offline(DeviceId),
    /// A link to this device broke without a goodbye: dial it once more
    /// and report a failure with [`LanMesh::handle_unreachable`].
    Check(DeviceId),
    /// Close the (idle, not needed) link to this device.
    Close(DeviceId),
    /// A peer reported this device gone at `version`: sign a new own record
    /// with a version above it ([`LanMesh::set_own`]).
    Refute {
        /// The version the new record must exceed.
        above: u64,
    },
}

/// Why a link went down, as far as the mesh cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkEnd {
    /// Closed on purpose by either side (idle, shutdown, refused): no check.
    Closed,
    /// Timed out, reset or otherwise lost: the peer may be gone.
    Lost,
}

#[derive(Clone, Debug)]
struct Known {
    record: LanRecord,
    /// The version a peer reported gone, if that is not older than the record.
    suspected: Option<u64>,
}

#[derive(Clone, Debug)]
struct Link {
    /// Last time it carried something other than gossip.
    last_used: u64,
}

/// The LAN view and link policy of one node (see the module docs).
#[derive(Debug)]
pub struct LanMesh {
    me: DeviceId,
    config: MeshConfig,
    own: Option<LanRecord>,
    known: BTreeMap<DeviceId, Known>,
    hints: BTreeMap<DeviceId, Vec<SocketAddr>>,
    links: BTreeMap<DeviceId, Link>,
    /// What each linked peer has yet to be told.
    pending: BTreeMap<DeviceId, LanGossip>,
    events: VecDeque<LanEvent>,
    /// Devices last reported online to the driver.
    shown: BTreeSet<DeviceId>,
    next_check: Option<u64>,
}

impl LanMesh {
    /// An empty view for device `me`.
    pub fn new(me: DeviceId, config: MeshConfig) -> Self {
        Self {
            me,
            config,
            own: None,
            known: BTreeMap::new(),
            hints: BTreeMap::new(),
            links: BTreeMap::new(),
            pending: BTreeMap::new(),
            events: VecDeque::new(),
            shown: BTreeSet::new(),
            next_check: None,
        }
    }

    /// Sets this device's own record (signed by the driver with
    /// [`LanRecord::sign`]) and passes it to every link. Ignored unless it
    /// is this device's and newer than the last one.
    pub fn set_own(&mut self, record: LanRecord) {
        if record.device() != self.me
            || self
                .own
                .as_ref()
                .is_some_and(|o| o.version >= record.version)
        {
            return;
        }
        let links: Vec<DeviceId> = self.links.keys().copied().collect();
        for link in links {
            self.queue_record(link, &record);
        }
        self.own = Some(record);
    }

    /// This device's current record.
    pub fn own(&self) -> Option<&LanRecord> {
        self.own.as_ref()
    }

    /// An mDNS (or other unproven) hint that `device` listens at `addrs`.
    /// Only used to decide whom to dial.
    pub fn handle_hint(&mut self, device: DeviceId, addrs: Vec<SocketAddr>) {
        if device == self.me {
            return;
        }
        if self.hints.len() >= self.config.max_devices && !self.hints.contains_key(&device) {
            return;
        }
        self.hints.insert(device, addrs);
    }

    /// The hint for `device` went away (an mDNS goodbye).
    pub fn handle_hint_lost(&mut self, device: &DeviceId) {
        self.hints.remove(device);
    }

    /// A link to `device` is up (authenticated). It is told everything
    /// this node knows.
    pub fn handle_link_up(&mut self, now: u64, device: DeviceId) {
        if device == self.me {
            return;
        }
        let fresh = self.links.insert(device, Link { last_used: now }).is_none();
        if fresh {
            let mut all = LanGossip::default();
            all.records.extend(self.own.clone());
            all.records
                .extend(self.known.values().map(|k| k.record.clone()));
            all.suspicions
                .extend(self.known.iter().filter_map(|(d, k)| {
                    k.suspected.map(|version| Suspicion {
                        device: *d,
                        version,
                    })
                }));
            let queue = self.pending.entry(device).or_default();
            queue.records.extend(all.records);
            queue.suspicions.extend(all.suspicions);
        }
        // A live link answers any suspicion this node holds about it.
        if let Some(k) = self.known.get_mut(&device) {
            k.suspected = None;
        }
        self.refresh(device);
        self.schedule(now);
    }

    /// The last link to `device` went down.
    pub fn handle_link_down(&mut self, _now: u64, device: DeviceId, end: LinkEnd) {
        if self.links.remove(&device).is_none() {
            return;
        }
        self.pending.remove(&device);
        let here = self
            .known
            .get(&device)
            .is_some_and(|k| k.record.is_here() && k.suspected.is_none());
        if end == LinkEnd::Lost && here {
            self.events.push_back(LanEvent::Check(device));
        }
        self.refresh(device);
    }

    /// Something other than gossip (a message, a file) used the link to
    /// `device`, which keeps an on-demand link open.
    pub fn handle_traffic(&mut self, now: u64, device: DeviceId) {
        if let Some(link) = self.links.get_mut(&device) {
            link.last_used = now;
        }
    }

    /// A dial to `device` (after [`LanEvent::Check`], or to a ring
    /// neighbour) failed: unless a link is up, it is reported gone at its
    /// record's version and dropped from the hints.
    pub fn handle_unreachable(&mut self, _now: u64, device: DeviceId) {
        if self.links.contains_key(&device) {
            return;
        }
        self.hints.remove(&device);
        let Some(k) = self.known.get_mut(&device) else {
            return;
        };
        if !k.record.is_here() || k.suspected.is_some_and(|v| v >= k.record.version) {
            return;
        }
        let suspicion = Suspicion {
            device,
            version: k.record.version,
        };
        k.suspected = Some(suspicion.version);
        self.flood_suspicion(None, suspicion);
        self.refresh(device);
    }

    /// Gossip from the linked peer `from`. Records that fail their checks
    /// are skipped (the first error is returned, after the rest is taken).
    pub fn handle_gossip(
        &mut self,
        now: u64,
        from: DeviceId,
        gossip: LanGossip,
    ) -> Result<(), RecordError> {
        let _ = now;
        let mut first_error = None;
        for record in gossip.records {
            if let Err(e) = self.take_record(from, record) {
                first_error.get_or_insert(e);
            }
        }
        for suspicion in gossip.suspicions {
            self.take_suspicion(from, suspicion);
        }
        first_error.map_or(Ok(()), Err)
    }

    fn take_record(&mut self, from: DeviceId, record: LanRecord) -> Result<(), RecordError> {
        let device = record.device();
        if device == self.me {
            return Ok(());
        }
        let newer = match self.known.get(&device) {
            Some(k) => record.version > k.record.version,
            None => self.known.len() < self.config.max_devices,
        };
        if !newer {
            return Ok(());
        }
        record.verify()?;
        let suspected = self
            .known
            .get(&device)
            .and_then(|k| k.suspected)
            .filter(|v| *v >= record.version);
        let links: Vec<DeviceId> = self.links.keys().copied().collect();
        for link in links {
            if link != from && link != device {
                self.queue_record(link, &record);
            }
        }
        self.known.insert(device, Known { record, suspected });
        self.events.push_back(LanEvent::Learned(device));
        self.refresh(device);
        Ok(())
    }

    fn take_suspicion(&mut self, from: DeviceId, suspicion: Suspicion) {
        let device = suspicion.device;
        if device == self.me {
            if self
                .own
                .as_ref()
                .is_some_and(|o| suspicion.version >= o.version)
            {
                self.events.push_back(LanEvent::Refute {
                    above: suspicion.version,
                });
            }
            return;
        }
        if self.links.contains_key(&device) {
            // We hold a live link: the report is wrong. It is passed to the
            // device alone, which refutes it with a newer record that
            // reaches the reporter; a report not newer than the record held
            // here is stale and dropped.
            let current = self
                .known
                .get(&device)
                .is_none_or(|k| suspicion.version >= k.record.version);
            if current {
                self.pending
                    .entry(device)
                    .or_default()
                    .suspicions
                    .push(suspicion);
            }
            return;
        }
        let Some(k) = self.known.get_mut(&device) else {
            return;
        };
        if suspicion.version < k.record.version
            || k.suspected.is_some_and(|v| v >= suspicion.version)
        {
            return;
        }
        k.suspected = Some(suspicion.version);
        self.flood_suspicion(Some(from), suspicion);
        self.refresh(device);
    }

    fn flood_suspicion(&mut self, except: Option<DeviceId>, suspicion: Suspicion) {
        let links: Vec<DeviceId> = self.links.keys().copied().collect();
        for link in links {
            if Some(link) != except {
                self.pending
                    .entry(link)
                    .or_default()
                    .suspicions
                    .push(suspicion);
            }
        }
    }

    fn queue_record(&mut self, link: DeviceId, record: &LanRecord) {
        let queue = self.pending.entry(link).or_default();
        // A newer record replaces an older one still waiting.
        queue.records.retain(|r| r.device() != record.device());
        queue.records.push(record.clone());
    }

    /// Emits Online/Offline when `device`'s shown state changed.
    fn refresh(&mut self, device: DeviceId) {
        let online = self.is_online(&device);
        if online && self.shown.insert(device) {
            self.events.push_back(LanEvent::Online(device));
        } else if !online && self.shown.remove(&device) {
            self.events.push_back(LanEvent::Offline(device));
        }
    }

    fn schedule(&mut self, now: u64) {
        if self.next_check.is_none() {
            self.next_check = Some(now + self.config.idle_close_ms / 3);
        }
    }

    /// Wakes the mesh: idle links that no ring neighbour needs are closed.
    pub fn handle_timeout(&mut self, now: u64) {
        if self.next_check.is_some_and(|t| t > now) {
            return;
        }
        self.next_check = None;
        let keep = self.neighbours();
        let idle: Vec<DeviceId> = self
            .links
            .iter()
            .filter(|(d, l)| {
                !keep.contains(d) && now.saturating_sub(l.last_used) >= self.config.idle_close_ms
            })
            .map(|(d, _)| *d)
            .collect();
        for device in idle {
            self.events.push_back(LanEvent::Close(device));
            // Reported down by the driver when the close completes.
            if let Some(link) = self.links.get_mut(&device) {
                link.last_used = now;
            }
        }
        if !self.links.is_empty() {
            self.schedule(now);
        }
    }

    /// When to call [`LanMesh::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.next_check
    }

    /// The next gossip message to send: to which linked device, and what.
    pub fn poll_transmit(&mut self) -> Option<(DeviceId, LanGossip)> {
        let device = *self.pending.keys().next()?;
        let queue = self.pending.get_mut(&device)?;
        let mut out = LanGossip::default();
        let take = queue.records.len().min(MAX_GOSSIP_RECORDS);
        out.records = queue.records.drain(..take).collect();
        let take = queue.suspicions.len().min(MAX_GOSSIP_SUSPICIONS);
        out.suspicions = queue.suspicions.drain(..take).collect();
        if queue.is_empty() {
            self.pending.remove(&device);
        }
        if out.is_empty() {
            return self.poll_transmit();
        }
        Some((device, out))
    }

    /// The next change for the driver.
    pub fn poll_event(&mut self) -> Option<LanEvent> {
        self.events.pop_front()
    }

    /// Whether `device` is shown online: a live link, or its own record
    /// says here and nobody reported it gone since.
    pub fn is_online(&self, device: &DeviceId) -> bool {
        self.links.contains_key(device)
            || self
                .known
                .get(device)
                .is_some_and(|k| k.record.is_here() && k.suspected.is_none())
    }

    /// Whether a link to `device` is up.
    pub fn is_linked(&self, device: &DeviceId) -> bool {
        self.links.contains_key(device)
    }

    /// How many links are up.
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// The record `device` last signed, if known.
    pub fn record(&self, device: &DeviceId) -> Option<&LanRecord> {
        self.known.get(device).map(|k| &k.record)
    }

    /// The presence `device`'s record shows, if it is online by it.
    pub fn shown(&self, device: &DeviceId) -> Option<ShownPresence> {
        let k = self.known.get(device)?;
        match (k.record.status, k.suspected) {
            (LanStatus::Here(shown), None) => Some(shown),
            _ => None,
        }
    }

    /// Every device with a record, in id order.
    pub fn devices(&self) -> impl Iterator<Item = &LanRecord> + '_ {
        self.known.values().map(|k| &k.record)
    }

    /// Forgets `device` (removed, revoked): its record, hint and suspicion.
    pub fn forget(&mut self, device: &DeviceId) {
        self.known.remove(device);
        self.hints.remove(device);
        self.refresh(*device);
    }

    /// Devices believed present: online records and mDNS hints.
    fn present(&self) -> BTreeSet<DeviceId> {
        let mut present: BTreeSet<DeviceId> = self
            .known
            .iter()
            .filter(|(_, k)| k.record.is_here() && k.suspected.is_none())
            .map(|(d, _)| *d)
            .collect();
        present.extend(self.hints.keys().copied());
        present.extend(self.links.keys().copied());
        present
    }

    /// The ring neighbours: links to keep.
    pub fn neighbours(&self) -> BTreeSet<DeviceId> {
        overlay::neighbours(&self.me, &self.present())
    }

    /// Devices this node should dial now (no link yet), with the addresses
    /// to try (the device's own record's first, then the hint's): its ring
    /// neighbours, and any device known only from a hint. The latter is
    /// dialled once, to fetch its record: a device that hears no multicast
    /// dials nobody and is otherwise found only if it happens to be the
    /// ring neighbour of one of the few that heard its announcement.
    pub fn dial_targets(&self) -> Vec<(DeviceId, Vec<SocketAddr>)> {
        let mut targets = overlay::targets(&self.me, &self.present());
        targets.extend(
            self.hints
                .keys()
                .filter(|d| !self.known.contains_key(d))
                .copied(),
        );
        targets
            .into_iter()
            .filter(|d| !self.links.contains_key(d))
            .map(|d| (d, self.addrs(&d)))
            .filter(|(_, addrs)| !addrs.is_empty())
            .collect()
    }

    /// Where `device` may be dialled: its record's addresses, then the hint's.
    pub fn addrs(&self, device: &DeviceId) -> Vec<SocketAddr> {
        let mut addrs: Vec<SocketAddr> = self
            .known
            .get(device)
            .map(|k| k.record.addrs.clone())
            .unwrap_or_default();
        for a in self.hints.get(device).into_iter().flatten() {
            if !addrs.contains(a) {
                addrs.push(*a);
            }
        }
        addrs
    }
}
