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
//! - **Peer exchange.** On a new link each side sends its own record and
//!   the list of records it holds, by version ([`LanGossip::holds`]), and
//!   answers the other's list with what that lacks; afterwards each new or
//!   newer record is passed on to every other link, once. (Sending every
//!   record on every new link cost 60 KB per link at 200 devices, mostly
//!   what the other side already held.) One peer found is enough to learn the whole LAN, and a node
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
//!   (the driver dials what [`LanMesh::poll_dials`] asks for); any other
//!   link is closed once it carried nothing for
//!   [`MeshConfig::idle_close_ms`]. A device known only from an mDNS hint
//!   for [`MeshConfig::hint_grace_ms`] (plus a spread, see below) is
//!   dialled once for its record, so one that hears no multicast is found
//!   by those that hear it.
//! - **Start-up costs what the ring costs.** When a whole office starts
//!   at once every view moves all the time and links are slow to come up
//!   (every desktop is handshaking with others). A node then dials at most
//!   [`MIN_LINKS`] ring neighbours until its view holds still, and at most
//!   [`MAX_HINT_DIALS`] hint-only devices at a time, each after a delay
//!   spread per pair of devices over [`MeshConfig::hint_spread_ms`] so
//!   that one of the many who heard a device dials it first and its record
//!   then reaches the rest through the ring. Without these bounds the lab's
//!   200 daemons on two cores linked 40 times each while starting, timed
//!   out on each other and took minutes to settle.
//! - **Bounds.** At most [`MeshConfig::max_devices`] records and as many
//!   mDNS hints are held; gossip is cut into messages of at most
//!   [`MAX_GOSSIP_RECORDS`] records.

mod dial;
mod gossip;
mod link;
pub mod overlay;
mod record;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;

pub use record::{
    HeldRecord, LanGossip, LanRecord, LanStatus, RecordError, Suspicion, MAX_RECORD_ADDRS,
    MAX_RECORD_NAME_BYTES,
};

use crate::presence::ShownPresence;
use crate::DeviceId;

/// Most records in one gossip message (a record is about 300 bytes).
pub const MAX_GOSSIP_RECORDS: usize = 128;

/// Most suspicions in one gossip message.
pub const MAX_GOSSIP_SUSPICIONS: usize = 512;

/// Most entries in a new link's list of held records
/// ([`LanGossip::holds`]), sent whole in one message (about 40 bytes
/// each, well within a frame). A larger view is sent as records.
pub const MAX_GOSSIP_HOLDS: usize = 4096;

/// Links a node dials its ring for at once, however much the view moves.
pub const MIN_LINKS: usize = 3;

/// Most dials of hint-only devices (for their records) at a time.
pub const MAX_HINT_DIALS: usize = 2;

/// Tuning of a [`LanMesh`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshConfig {
    /// A link that is not a ring neighbour's is closed after carrying
    /// nothing for this long.
    pub idle_close_ms: u64,
    /// Most devices (records, and separately mDNS hints) held.
    pub max_devices: usize,
    /// A device known only from an mDNS hint for this long is dialled for
    /// its record even off the ring. Not at once: when a whole office
    /// starts, every device is hint-only for a moment, and dialling them
    /// all would be the full mesh this module avoids; records arrive
    /// through the ring within a few hundred milliseconds.
    pub hint_grace_ms: u64,
    /// A node with [`MIN_LINKS`] links dials new ring neighbours only once
    /// its view has not changed for this long.
    pub settle_ms: u64,
    /// Gossip to pass on waits this long to travel with what follows it:
    /// a LAN of hundreds starting at once then costs one message per link
    /// per batch, not one per record.
    pub batch_ms: u64,
    /// A hint-only device is dialled after [`MeshConfig::hint_grace_ms`]
    /// plus a delay between 0 and this, fixed per pair of devices: of the
    /// many nodes that heard it, one dials it well before the others.
    pub hint_spread_ms: u64,
    /// A dial the mesh asked for that ended neither in a link nor in a
    /// reported failure is taken as over after this long.
    pub dial_window_ms: u64,
    /// A device reported gone is still shown online for this long: a
    /// device that is only slow (every desktop busy at 9:00) refutes the
    /// report within it, and nobody sees it flicker offline. SWIM's
    /// "suspect" state, for the same reason.
    pub suspect_grace_ms: u64,
}

impl Default for MeshConfig {
    /// 30 s idle, 4,096 devices (eight times the largest LAN we design
    /// for), hint-only devices dialled after 3 s plus up to 10 s, the ring
    /// after 1 s of a still view, 50 ms batches, dials over after 12 s
    /// (beyond a QUIC handshake's and a hello's time-outs), reports of a
    /// device gone believed after 3 s.
    fn default() -> Self {
        Self {
            idle_close_ms: 30_000,
            max_devices: 4_096,
            hint_grace_ms: 3_000,
            settle_ms: 1_000,
            batch_ms: 50,
            hint_spread_ms: 10_000,
            dial_window_ms: 12_000,
            suspect_grace_ms: 3_000,
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
    /// The version a peer reported gone, if that is not older than the
    /// record, and when that report came in.
    suspected: Option<(u64, u64)>,
}

impl Known {
    /// Whether the record counts as here at `now`: it says so, and no
    /// report of it gone is older than `grace`.
    fn here(&self, now: u64, grace: u64) -> bool {
        self.record.is_here()
            && self
                .suspected
                .is_none_or(|(_, at)| now < at.saturating_add(grace))
    }
}

/// Why the mesh asked for a dial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DialFor {
    /// A ring neighbour.
    Ring,
    /// A device known only from a hint, for its record.
    Record,
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
    /// mDNS hints: where a device says it listens, and since when we know.
    hints: BTreeMap<DeviceId, (Vec<SocketAddr>, u64)>,
    /// Hinted devices with neither a record nor a link: the ones to dial
    /// for their records. Kept apart because the driver asks for the next
    /// wake-up on every turn of its loop, and scanning every hint there
    /// cost a LAN of hundreds more CPU than anything else while starting.
    hint_only: BTreeSet<DeviceId>,
    /// Failed dials of each hint-only device in a row: each doubles its
    /// wait (up to 32 times). A device everyone heard but whose record
    /// does not spread (it is overloaded) is otherwise dialled by the
    /// whole LAN every few seconds, which keeps it overloaded.
    hint_failures: BTreeMap<DeviceId, u32>,
    links: BTreeMap<DeviceId, Link>,
    /// Dials asked for and not over yet: since when, and why.
    dialling: BTreeMap<DeviceId, (u64, DialFor)>,
    /// What each linked peer has yet to be told, and from when it is due.
    pending: BTreeMap<DeviceId, (LanGossip, u64)>,
    /// Links whose pending gossip is due.
    ready: BTreeSet<DeviceId>,
    /// The time of the latest input, for batching.
    now: u64,
    events: VecDeque<LanEvent>,
    /// Devices last reported online to the driver.
    shown: BTreeSet<DeviceId>,
    next_check: Option<u64>,
    /// When the set of present devices last changed.
    view_changed_at: u64,
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
            hint_only: BTreeSet::new(),
            hint_failures: BTreeMap::new(),
            links: BTreeMap::new(),
            dialling: BTreeMap::new(),
            pending: BTreeMap::new(),
            ready: BTreeSet::new(),
            now: 0,
            events: VecDeque::new(),
            shown: BTreeSet::new(),
            next_check: None,
            view_changed_at: 0,
        }
    }

    /// This device's current record.
    pub fn own(&self) -> Option<&LanRecord> {
        self.own.as_ref()
    }

    /// Wakes the mesh: idle links that no ring neighbour needs are closed.
    pub fn handle_timeout(&mut self, now: u64) {
        self.now = self.now.max(now);
        self.end_old_dials(now);
        let doubted: Vec<DeviceId> = self.doubted().map(|(d, _)| d).collect();
        for device in doubted {
            self.refresh(device);
        }
        for (device, (_, due)) in &self.pending {
            if *due <= now {
                self.ready.insert(*device);
            }
        }
        if self.next_check.is_some_and(|t| t > now) {
            return;
        }
        self.next_check = None;
        self.close_idle(now);
        if !self.links.is_empty() {
            self.schedule(now);
        }
    }

    /// When to call [`LanMesh::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<u64> {
        let batch = self
            .pending
            .iter()
            .filter(|(d, _)| !self.ready.contains(d))
            .map(|(_, (_, due))| *due)
            .min();
        let hint = self
            .hint_only
            .iter()
            .map(|d| self.hint_due(d))
            .filter(|t| *t > self.now)
            .min();
        let settle = Some(self.view_changed_at.saturating_add(self.config.settle_ms))
            .filter(|t| *t > self.now && self.links.len() >= MIN_LINKS);
        let suspect_over = self
            .doubted()
            .map(|(_, at)| at.saturating_add(self.config.suspect_grace_ms))
            .filter(|t| *t > self.now)
            .min();
        let dial_over = self
            .dialling
            .values()
            .map(|(since, _)| since.saturating_add(self.config.dial_window_ms))
            .filter(|t| *t > self.now)
            .min();
        [
            self.next_check,
            batch,
            hint,
            settle,
            dial_over,
            suspect_over,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next change for the driver.
    pub fn poll_event(&mut self) -> Option<LanEvent> {
        self.events.pop_front()
    }

    /// Whether `device` is shown online: a live link, or its own record
    /// says here and no report of it gone has stood for
    /// [`MeshConfig::suspect_grace_ms`].
    pub fn is_online(&self, device: &DeviceId) -> bool {
        self.links.contains_key(device) || self.here_by_record(device)
    }

    fn here_by_record(&self, device: &DeviceId) -> bool {
        self.known
            .get(device)
            .is_some_and(|k| k.here(self.now, self.config.suspect_grace_ms))
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
        match k.record.status {
            LanStatus::Here(shown) if self.here_by_record(device) => Some(shown),
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
        self.sort_hint(*device);
        self.refresh(*device);
    }

    /// Where `device` may be dialled: its record's addresses, then the hint's.
    pub fn addrs(&self, device: &DeviceId) -> Vec<SocketAddr> {
        let mut addrs: Vec<SocketAddr> = self
            .known
            .get(device)
            .map(|k| k.record.addrs.clone())
            .unwrap_or_default();
        for a in self.hints.get(device).into_iter().flat_map(|(a, _)| a) {
            if !addrs.contains(a) {
                addrs.push(*a);
            }
        }
        addrs
    }

    /// The ring neighbours: links to keep.
    pub fn neighbours(&self) -> BTreeSet<DeviceId> {
        overlay::neighbours(&self.me, &self.present())
    }

    /// Devices believed present: online records and mDNS hints.
    fn present(&self) -> BTreeSet<DeviceId> {
        let mut present: BTreeSet<DeviceId> = self
            .known
            .iter()
            .filter(|(_, k)| k.here(self.now, self.config.suspect_grace_ms))
            .map(|(d, _)| *d)
            .collect();
        present.extend(self.hints.keys().copied());
        present.extend(self.links.keys().copied());
        present
    }

    /// Emits Online/Offline when `device`'s shown state changed.
    fn refresh(&mut self, device: DeviceId) {
        let online = self.is_online(&device);
        if online && self.shown.insert(device) {
            self.events.push_back(LanEvent::Online(device));
            self.view_changed_at = self.now;
        } else if !online && self.shown.remove(&device) {
            self.events.push_back(LanEvent::Offline(device));
            self.view_changed_at = self.now;
        }
    }

    /// Devices still shown online though reported gone, with when the
    /// report came in: each is shown offline once its grace is over. The
    /// cheap field test comes first: this runs on every turn of the
    /// driver's loop.
    fn doubted(&self) -> impl Iterator<Item = (DeviceId, u64)> + '_ {
        self.known
            .iter()
            .filter_map(|(d, k)| k.suspected.map(|(_, at)| (*d, at)))
            .filter(|(d, _)| self.shown.contains(d))
    }
}
