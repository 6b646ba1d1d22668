//! Whom to dial, when, and what a failed dial means.
//!
//! Kept apart because dialling is where a starting office goes wrong: the
//! ring is dialled only up to [`MIN_LINKS`] while the view moves, devices
//! known only from mDNS are dialled few at a time and spread out per pair of
//! devices, and a failed dial is a check before it is a report. The numbers
//! and their history are in the [module docs](super).

use std::net::SocketAddr;

use super::{overlay, DialFor, LanEvent, LanMesh, Suspicion, MAX_HINT_DIALS, MIN_LINKS};
use crate::DeviceId;

impl LanMesh {
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

    /// Devices to dial now, with the addresses to try (the device's own
    /// record's first, then the hint's): ring neighbours without a link,
    /// and devices known only from a hint. The latter are dialled for
    /// their records: a device that hears no multicast dials nobody and is
    /// otherwise found only if it happens to be the ring neighbour of one
    /// of the few that heard its announcement. Each returned device counts
    /// as being dialled until a link comes up, the dial fails
    /// ([`LanMesh::handle_unreachable`]), is skipped
    /// ([`LanMesh::handle_dial_skipped`]) or [`MeshConfig::dial_window_ms`](super::MeshConfig::dial_window_ms)
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
        let expected: std::collections::BTreeSet<DeviceId> = self
            .hints
            .keys()
            .filter(|d| !self.known.contains_key(d) && !self.links.contains_key(d))
            .copied()
            .collect();
        expected == self.hint_only
    }

    /// Files `device` among the hint-only devices if it is one.
    pub(super) fn sort_hint(&mut self, device: DeviceId) {
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

    /// Forgets dials older than [`MeshConfig::dial_window_ms`](super::MeshConfig::dial_window_ms).
    pub(super) fn end_old_dials(&mut self, now: u64) {
        let window = self.config.dial_window_ms;
        self.dialling
            .retain(|_, (since, _)| now < since.saturating_add(window));
    }

    /// When a device known only from a hint is due to be dialled: its
    /// grace after the hint (or the last failed dial), plus its share of
    /// the spread, doubled for each failed dial in a row.
    pub(super) fn hint_due(&self, device: &DeviceId) -> u64 {
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

    /// Whether the view held still for [`MeshConfig::settle_ms`](super::MeshConfig::settle_ms), so that
    /// a node holding [`MIN_LINKS`] links may dial its whole ring. While
    /// an office starts, every new device moves the ring, and dialling
    /// each new neighbour at once would link nearly everyone to everyone
    /// before the extra links idle out.
    fn view_is_still(&self) -> bool {
        self.now >= self.view_changed_at.saturating_add(self.config.settle_ms)
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
