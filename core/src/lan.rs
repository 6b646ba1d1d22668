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
            // Our own news (a presence change, a refutation, leaving) goes
            // at once.
            self.ready.insert(link);
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
        let since = match self.hints.get(&device) {
            Some((_, since)) => *since,
            None => {
                self.view_changed_at = self.now;
                self.now
            }
        };
        self.hints.insert(device, (addrs, since));
        self.sort_hint(device);
    }

    /// The hint for `device` went away (an mDNS goodbye).
    pub fn handle_hint_lost(&mut self, device: &DeviceId) {
        self.hints.remove(device);
        self.sort_hint(*device);
    }

    /// A link to `device` is up (authenticated). It is told everything
    /// this node knows.
    pub fn handle_link_up(&mut self, now: u64, device: DeviceId) {
        self.now = self.now.max(now);
        if device == self.me {
            return;
        }
        self.dialling.remove(&device);
        let fresh = self.links.insert(device, Link { last_used: now }).is_none();
        self.sort_hint(device);
        if fresh {
            let mut all = LanGossip::default();
            all.records.extend(self.own.clone());
            if self.known.len() <= MAX_GOSSIP_HOLDS {
                all.holds = Some(
                    self.known
                        .iter()
                        .map(|(device, k)| HeldRecord {
                            device: *device,
                            version: k.record.version,
                        })
                        .collect(),
                );
            } else {
                all.records
                    .extend(self.known.values().map(|k| k.record.clone()));
            }
            all.suspicions
                .extend(self.known.iter().filter_map(|(d, k)| {
                    k.suspected.map(|(version, _)| Suspicion {
                        device: *d,
                        version,
                    })
                }));
            let queue = self.queue(device);
            queue.records.extend(all.records);
            queue.suspicions.extend(all.suspicions);
            queue.holds = all.holds;
            // A new link learns everything at once: no batching wait.
            self.ready.insert(device);
        }
        // A live link answers any suspicion this node holds about it.
        if let Some(k) = self.known.get_mut(&device) {
            k.suspected = None;
        }
        self.refresh(device);
        self.schedule(now);
    }

    /// The last link to `device` went down.
    pub fn handle_link_down(&mut self, now: u64, device: DeviceId, end: LinkEnd) {
        self.now = self.now.max(now);
        if self.links.remove(&device).is_none() {
            return;
        }
        self.sort_hint(device);
        self.pending.remove(&device);
        self.ready.remove(&device);
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

    /// A dial [`LanMesh::poll_dials`] asked for could not start (the
    /// driver backs off that address): it may be asked for again.
    pub fn handle_dial_skipped(&mut self, device: &DeviceId) {
        self.dialling.remove(device);
    }

    /// A dial to `device` failed. Unless a link is up: after a dial
    /// [`LanMesh::poll_dials`] asked for, a device with a record is
    /// checked ([`LanEvent::Check`]: one failure on a busy LAN is no
    /// proof), one known only from a hint waits out its grace again; after
    /// any other dial (a check, a message) a device with a record is
    /// reported gone at its record's version and dropped from the hints.
    pub fn handle_unreachable(&mut self, now: u64, device: DeviceId) {
        self.now = self.now.max(now);
        let asked = self.dialling.remove(&device).is_some();
        if self.links.contains_key(&device) {
            return;
        }
        if asked && self.known.contains_key(&device) {
            self.events.push_back(LanEvent::Check(device));
            return;
        }
        let Some(k) = self.known.get_mut(&device) else {
            if let Some((_, since)) = self.hints.get_mut(&device) {
                *since = self.now;
                *self.hint_failures.entry(device).or_default() += 1;
            }
            return;
        };
        self.hints.remove(&device);
        if !k.record.is_here() || k.suspected.is_some_and(|(v, _)| v >= k.record.version) {
            return;
        }
        let suspicion = Suspicion {
            device,
            version: k.record.version,
        };
        k.suspected = Some((suspicion.version, self.now));
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
        self.now = self.now.max(now);
        let mut first_error = None;
        for record in gossip.records {
            if let Err(e) = self.take_record(from, record) {
                first_error.get_or_insert(e);
            }
        }
        for suspicion in gossip.suspicions {
            self.take_suspicion(from, suspicion);
        }
        if let Some(holds) = gossip.holds {
            self.answer_holds(from, &holds);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// A new link said which records it holds: it is sent, at once, those
    /// it lacks or holds older versions of. (Its own record came in full;
    /// ours went in full when the link came up.)
    fn answer_holds(&mut self, from: DeviceId, holds: &[HeldRecord]) {
        if !self.links.contains_key(&from) {
            return;
        }
        let held: BTreeMap<DeviceId, u64> = holds.iter().map(|h| (h.device, h.version)).collect();
        let missing: Vec<LanRecord> = self
            .known
            .iter()
            .filter(|(device, k)| {
                **device != from && held.get(device).is_none_or(|v| *v < k.record.version)
            })
            .map(|(_, k)| k.record.clone())
            .collect();
        if missing.is_empty() {
            return;
        }
        for record in &missing {
            self.queue_record(from, record);
        }
        self.ready.insert(from);
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
            .filter(|(v, _)| *v >= record.version);
        let links: Vec<DeviceId> = self.links.keys().copied().collect();
        for link in links {
            if link != from && link != device {
                self.queue_record(link, &record);
            }
        }
        self.known.insert(device, Known { record, suspected });
        self.sort_hint(device);
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
                self.queue(device).suspicions.push(suspicion);
            }
            return;
        }
        let Some(k) = self.known.get_mut(&device) else {
            return;
        };
        if suspicion.version < k.record.version
            || k.suspected.is_some_and(|(v, _)| v >= suspicion.version)
        {
            return;
        }
        k.suspected = Some((suspicion.version, self.now));
        self.flood_suspicion(Some(from), suspicion);
        self.refresh(device);
    }

    fn flood_suspicion(&mut self, except: Option<DeviceId>, suspicion: Suspicion) {
        let links: Vec<DeviceId> = self.links.keys().copied().collect();
        for link in links {
            if Some(link) != except {
                self.queue(link).suspicions.push(suspicion);
            }
        }
    }

    /// The gossip waiting for `link`, due one batch after the first of it.
    fn queue(&mut self, link: DeviceId) -> &mut LanGossip {
        let due = self.now + self.config.batch_ms;
        &mut self
            .pending
            .entry(link)
            .or_insert_with(|| (LanGossip::default(), due))
            .0
    }

    fn queue_record(&mut self, link: DeviceId, record: &LanRecord) {
        let queue = self.queue(link);
        // A newer record replaces an older one still waiting. (Compared by
        // key: a device id is a hash, and a queue holds hundreds.)
        let key = record.cert.device_key;
        queue.records.retain(|r| r.cert.device_key != key);
        queue.records.push(record.clone());
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

    fn schedule(&mut self, now: u64) {
        if self.next_check.is_none() {
            self.next_check = Some(now + self.config.idle_close_ms / 3);
        }
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

    /// The next gossip message to send: to which linked device, and what.
    /// Gossip to pass on is due one batch after it was queued (call
    /// [`LanMesh::handle_timeout`] at [`LanMesh::poll_timeout`]); a new
    /// link's full view and a goodbye ([`LanMesh::set_own`]) at once.
    pub fn poll_transmit(&mut self) -> Option<(DeviceId, LanGossip)> {
        loop {
            let device = *self.ready.iter().next()?;
            let Some((queue, _)) = self.pending.get_mut(&device) else {
                self.ready.remove(&device);
                continue;
            };
            let mut out = LanGossip::default();
            let take = queue.records.len().min(MAX_GOSSIP_RECORDS);
            out.records = queue.records.drain(..take).collect();
            let take = queue.suspicions.len().min(MAX_GOSSIP_SUSPICIONS);
            out.suspicions = queue.suspicions.drain(..take).collect();
            out.holds = queue.holds.take();
            if queue.is_empty() {
                self.pending.remove(&device);
                self.ready.remove(&device);
            }
            if !out.is_empty() {
                return Some((device, out));
            }
        }
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

    /// The ring neighbours: links to keep.
    pub fn neighbours(&self) -> BTreeSet<DeviceId> {
        overlay::neighbours(&self.me, &self.present())
    }

    /// Devices to dial now, with the addresses to try (the device's own
    /// record's first, then the hint's): ring neighbours without a link,
    /// and devices known only from a hint. The latter are dialled for
    /// their records: a device that hears no multicast dials nobody and is
    /// otherwise found only if it happens to be the ring neighbour of one
    /// of the few that heard its announcement. Each returned device counts
    /// as being dialled until a link comes up, the dial fails
    /// ([`LanMesh::handle_unreachable`]), is skipped
    /// ([`LanMesh::handle_dial_skipped`]) or [`MeshConfig::dial_window_ms`]
    /// passes. See the module docs for the bounds.
    pub fn poll_dials(&mut self, now: u64) -> Vec<(DeviceId, Vec<SocketAddr>)> {
        self.now = self.now.max(now);
        self.end_old_dials(now);
        let busy = |why| self.dialling.values().filter(|(_, w)| *w == why).count();
        let ring_budget = if self.links.len() < MIN_LINKS {
            MIN_LINKS.saturating_sub(self.links.len() + busy(DialFor::Ring))
        } else if self.view_is_still() {
            usize::MAX
        } else {
            0
        };
        let hint_budget = MAX_HINT_DIALS.saturating_sub(busy(DialFor::Record));
        let free = |d: &DeviceId| !self.links.contains_key(d) && !self.dialling.contains_key(d);
        let ring: Vec<DeviceId> = overlay::targets(&self.me, &self.present())
            .into_iter()
            .filter(|d| free(d) && !self.addrs(d).is_empty())
            .take(ring_budget)
            .collect();
        let mut hinted: Vec<(u64, DeviceId)> = self
            .hint_only
            .iter()
            .filter(|d| free(d) && !ring.contains(d))
            .map(|d| (self.hint_due(d), *d))
            .filter(|(due, _)| *due <= now)
            .collect();
        // The longest-waiting first.
        hinted.sort();
        let hinted: Vec<DeviceId> = hinted
            .into_iter()
            .take(hint_budget)
            .map(|(_, d)| d)
            .collect();
        let mut out = Vec::new();
        for (devices, why) in [(ring, DialFor::Ring), (hinted, DialFor::Record)] {
            for d in devices {
                self.dialling.insert(d, (now, why));
                out.push((d, self.addrs(&d)));
            }
        }
        out
    }

    /// Whether the hint-only index agrees with the hints, records and
    /// links it is kept from.
    #[cfg(test)]
    pub(crate) fn hint_index_is_sound(&self) -> bool {
        let expected: BTreeSet<DeviceId> = self
            .hints
            .keys()
            .filter(|d| !self.known.contains_key(d) && !self.links.contains_key(d))
            .copied()
            .collect();
        expected == self.hint_only
    }

    /// Files `device` among the hint-only devices if it is one.
    fn sort_hint(&mut self, device: DeviceId) {
        if self.hints.contains_key(&device)
            && !self.known.contains_key(&device)
            && !self.links.contains_key(&device)
        {
            self.hint_only.insert(device);
        } else {
            self.hint_only.remove(&device);
            self.hint_failures.remove(&device);
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

    /// Forgets dials older than [`MeshConfig::dial_window_ms`].
    fn end_old_dials(&mut self, now: u64) {
        let window = self.config.dial_window_ms;
        self.dialling
            .retain(|_, (since, _)| now < since.saturating_add(window));
    }

    /// When a device known only from a hint is due to be dialled: its
    /// grace after the hint (or the last failed dial), plus its share of
    /// the spread, doubled for each failed dial in a row.
    fn hint_due(&self, device: &DeviceId) -> u64 {
        let since = self.hints.get(device).map_or(self.now, |(_, since)| *since);
        let spread = self.config.hint_spread_ms;
        let share = if spread == 0 {
            0
        } else {
            pair_hash(&self.me, device) % spread
        };
        let failures = self.hint_failures.get(device).copied().unwrap_or(0);
        let wait = self
            .config
            .hint_grace_ms
            .saturating_add(share)
            .saturating_mul(1 << failures.min(5));
        since.saturating_add(wait)
    }

    /// Whether the view held still for [`MeshConfig::settle_ms`], so that
    /// a node holding [`MIN_LINKS`] links may dial its whole ring. While
    /// an office starts, every new device moves the ring, and dialling
    /// each new neighbour at once would link nearly everyone to everyone
    /// before the extra links idle out.
    fn view_is_still(&self) -> bool {
        self.now >= self.view_changed_at.saturating_add(self.config.settle_ms)
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
}

/// A number fixed for the ordered pair (`a`, `b`) and spread evenly: ids
/// are random, and a SplitMix64 finaliser mixes their first bytes.
fn pair_hash(a: &DeviceId, b: &DeviceId) -> u64 {
    let word = |d: &DeviceId| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&d.0[..8]);
        u64::from_le_bytes(w)
    };
    let mut z = word(a) ^ word(b).rotate_left(32);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
