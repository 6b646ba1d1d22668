//! Peer exchange: what a [`LanMesh`] tells its links and takes from them.
//!
//! Kept apart from the link and dial policy because this is where the
//! mesh's bandwidth goes: a new link gets a list of versions rather than
//! every record, news is passed on once and batched, and a report of a
//! device gone is passed to that device when this node holds a live link to
//! it. The rules are in the [module docs](super).

use std::collections::BTreeMap;

use super::{
    HeldRecord, Known, LanEvent, LanGossip, LanMesh, LanRecord, RecordError, Suspicion,
    MAX_GOSSIP_HOLDS, MAX_GOSSIP_RECORDS, MAX_GOSSIP_SUSPICIONS,
};
use crate::DeviceId;

impl LanMesh {
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

    /// Queues for a new link everything this node knows: its own record,
    /// the list of records it holds (or the records themselves, past
    /// [`MAX_GOSSIP_HOLDS`]) and its standing reports, due at once.
    pub(super) fn greet(&mut self, device: DeviceId) {
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

    pub(super) fn flood_suspicion(&mut self, except: Option<DeviceId>, suspicion: Suspicion) {
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
}
