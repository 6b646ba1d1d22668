//! The outbox: at-least-once delivery of messages to devices.
//!
//! Sans-IO in the quinn-proto mould: the driver tells it what happened
//! (`push`, `handle_reachable`, `handle_outcome`, `handle_timeout`, always
//! with `now` in Unix milliseconds) and polls it for what to do
//! (`poll_transmit`), what happened (`poll_event`) and when to wake
//! (`poll_timeout`).
//!
//! Invariants:
//! - a relay's custody (it stored the message durably for an offline
//!   device) stops the retries but not the entry: it stays, *held*, until
//!   the end-to-end receipt arrives later or it expires;
//! - an entry leaves the outbox only on a verified end-to-end receipt, a
//!   permanent refusal by the recipient, or expiry — each reported as an
//!   event, so nothing is dropped without the sender being told;
//! - at most one attempt per (message, device) is in flight;
//! - attempts to an unreachable device wait until it becomes reachable, and
//!   failed attempts back off exponentially (capped), so a flapping peer
//!   cannot turn the outbox into a busy loop.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::{DeviceId, MessageId};

/// Delay before the first retry after a failed attempt, in milliseconds.
pub const INITIAL_BACKOFF_MS: u64 = 500;
/// Longest delay between retries to a reachable device, in milliseconds.
pub const MAX_BACKOFF_MS: u64 = 30_000;

/// What the driver should do: send message `message_id` to `device` and
/// report the result with [`Outbox::handle_outcome`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The message to send.
    pub message_id: MessageId,
    /// The device to send it to.
    pub device: DeviceId,
}

/// The result of one delivery attempt, as seen by the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The device returned a receipt whose signature the driver verified.
    Delivered,
    /// The device refused the message for good (it will never accept it).
    Refused(String),
    /// The attempt failed in transit (connection lost, timeout): retry.
    Failed(String),
    /// The relay stored it durably for the device: stop retrying and wait
    /// for the receipt (reported later as [`AttemptOutcome::Delivered`]).
    Custody,
    /// The driver abandoned the attempt because the path it took is no
    /// longer the one to use (the gateway it went through is gone or
    /// replaced): retry at once on the new path, without counting a
    /// failure. Safe because receivers dedupe: a copy that still arrives
    /// by the old path is shown once.
    Rerouted,
}

/// What happened to an entry, for the driver to store and show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutboxEvent {
    /// The device acknowledged the message end to end.
    Delivered {
        /// The message.
        message_id: MessageId,
        /// The device that acknowledged it.
        device: DeviceId,
    },
    /// The relay holds the message for the (offline) device.
    Held {
        /// The message.
        message_id: MessageId,
        /// The device it is held for.
        device: DeviceId,
    },
    /// The message will not reach the device; the sender must be told.
    Failed {
        /// The message.
        message_id: MessageId,
        /// The device it was meant for.
        device: DeviceId,
        /// Why, for humans.
        reason: String,
    },
}

#[derive(Clone, Debug)]
struct Entry {
    expires_at: u64,
    attempts: u32,
    in_flight: bool,
    not_before: u64,
    held: bool,
}

/// Pending deliveries, keyed by (message, device).
#[derive(Debug, Default)]
pub struct Outbox {
    entries: BTreeMap<(MessageId, DeviceId), Entry>,
    reachable: BTreeSet<DeviceId>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<OutboxEvent>,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries not yet delivered, refused or expired.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether (message, device) is still pending.
    pub fn contains(&self, message_id: &MessageId, device: &DeviceId) -> bool {
        self.entries.contains_key(&(*message_id, *device))
    }

    /// Devices with entries waiting for a path (not reachable now), for a
    /// driver that can open one on demand.
    pub fn waiting_devices(&self) -> BTreeSet<DeviceId> {
        self.entries
            .keys()
            .map(|(_, device)| *device)
            .filter(|device| !self.reachable.contains(device))
            .collect()
    }

    /// Adds an entry (new, or restored from storage after a restart).
    /// `attempts` counts earlier tries, for backoff. A duplicate is ignored.
    pub fn push(
        &mut self,
        now: u64,
        message_id: MessageId,
        device: DeviceId,
        expires_at: u64,
        attempts: u32,
    ) {
        self.entries.entry((message_id, device)).or_insert(Entry {
            expires_at,
            attempts,
            in_flight: false,
            not_before: 0,
            held: false,
        });
        self.schedule(now);
    }

    /// The device now has (`true`) or lost (`false`) an authenticated path.
    /// Becoming reachable retries its entries at once, whatever the backoff:
    /// the reason for the earlier failures is likely gone.
    pub fn handle_reachable(&mut self, now: u64, device: DeviceId, reachable: bool) {
        if reachable {
            if self.reachable.insert(device) {
                for ((_, d), entry) in self.entries.iter_mut() {
                    if *d == device {
                        entry.not_before = 0;
                    }
                }
            }
        } else {
            self.reachable.remove(&device);
        }
        self.schedule(now);
    }

    /// Reports the result of a transmit obtained from [`Self::poll_transmit`].
    pub fn handle_outcome(
        &mut self,
        now: u64,
        message_id: MessageId,
        device: DeviceId,
        outcome: AttemptOutcome,
    ) {
        let key = (message_id, device);
        match outcome {
            AttemptOutcome::Delivered => {
                if self.entries.remove(&key).is_some() {
                    self.events
                        .push_back(OutboxEvent::Delivered { message_id, device });
                }
            }
            AttemptOutcome::Refused(reason) => {
                if self.entries.remove(&key).is_some() {
                    self.events.push_back(OutboxEvent::Failed {
                        message_id,
                        device,
                        reason,
                    });
                }
            }
            AttemptOutcome::Custody => {
                if let Some(entry) = self.entries.get_mut(&key) {
                    entry.in_flight = false;
                    if !entry.held {
                        entry.held = true;
                        self.events
                            .push_back(OutboxEvent::Held { message_id, device });
                    }
                }
            }
            AttemptOutcome::Failed(_) => {
                if let Some(entry) = self.entries.get_mut(&key) {
                    entry.in_flight = false;
                    entry.attempts = entry.attempts.saturating_add(1);
                    entry.not_before = now.saturating_add(backoff_ms(entry.attempts));
                }
            }
            AttemptOutcome::Rerouted => {
                if let Some(entry) = self.entries.get_mut(&key) {
                    entry.in_flight = false;
                    entry.not_before = now;
                }
            }
        }
        self.schedule(now);
    }

    /// Gives up every entry for `device` (its user was forgotten: nothing
    /// will ever reach it), each reported as [`OutboxEvent::Failed`] with
    /// `reason`, in flight or not: a late outcome then reports nothing.
    pub fn cancel_device(&mut self, now: u64, device: &DeviceId, reason: &str) {
        let cancelled: Vec<(MessageId, DeviceId)> = self
            .entries
            .keys()
            .filter(|(_, d)| d == device)
            .copied()
            .collect();
        for (message_id, device) in cancelled {
            self.entries.remove(&(message_id, device));
            self.events.push_back(OutboxEvent::Failed {
                message_id,
                device,
                reason: reason.to_string(),
            });
        }
        self.reachable.remove(device);
        self.transmits.retain(|t| t.device != *device);
        self.schedule(now);
    }

    /// Advances time: expires old entries and schedules due retries.
    pub fn handle_timeout(&mut self, now: u64) {
        self.schedule(now);
    }

    /// The next send to perform, if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next thing that happened, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<OutboxEvent> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] must be called next (Unix ms), if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        self.entries
            .iter()
            .filter(|(_, e)| !e.in_flight)
            .map(|((_, device), e)| {
                if self.reachable.contains(device) && !e.held {
                    e.not_before.min(e.expires_at)
                } else {
                    e.expires_at
                }
            })
            .min()
    }

    fn schedule(&mut self, now: u64) {
        let expired: Vec<(MessageId, DeviceId)> = self
            .entries
            .iter()
            .filter(|(_, e)| !e.in_flight && e.expires_at <= now)
            .map(|(k, _)| *k)
            .collect();
        for (message_id, device) in expired {
            let held = self
                .entries
                .remove(&(message_id, device))
                .is_some_and(|e| e.held);
            let reason = if held {
                "expired: the relay held it, but the recipient never came online"
            } else {
                "expired before the recipient came online"
            };
            self.events.push_back(OutboxEvent::Failed {
                message_id,
                device,
                reason: reason.to_string(),
            });
        }
        for ((message_id, device), entry) in self.entries.iter_mut() {
            if !entry.in_flight
                && !entry.held
                && entry.not_before <= now
                && self.reachable.contains(device)
            {
                entry.in_flight = true;
                self.transmits.push_back(Transmit {
                    message_id: *message_id,
                    device: *device,
                });
            }
        }
    }
}

fn backoff_ms(attempts: u32) -> u64 {
    let exp = attempts.saturating_sub(1).min(16);
    INITIAL_BACKOFF_MS
        .saturating_mul(1 << exp)
        .min(MAX_BACKOFF_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u8) -> (MessageId, DeviceId) {
        (MessageId([n; 16]), DeviceId::from_public_key(&[n; 32]))
    }

    #[test]
    fn cancelling_a_device_fails_its_entries_only() {
        let mut outbox = Outbox::new();
        let ((m1, d1), (m2, d2)) = (ids(1), ids(2));
        outbox.push(0, m1, d1, 10_000, 0);
        outbox.push(0, m2, d1, 10_000, 0);
        outbox.push(0, m1, d2, 10_000, 0);
        outbox.handle_reachable(1, d1, true);
        outbox.cancel_device(2, &d1, "forgotten");
        let failed: Vec<OutboxEvent> = std::iter::from_fn(|| outbox.poll_event()).collect();
        assert_eq!(
            failed,
            vec![
                OutboxEvent::Failed {
                    message_id: m1,
                    device: d1,
                    reason: "forgotten".into()
                },
                OutboxEvent::Failed {
                    message_id: m2,
                    device: d1,
                    reason: "forgotten".into()
                },
            ]
        );
        assert_eq!(outbox.poll_transmit(), None);
        assert!(outbox.contains(&m1, &d2));
        assert_eq!(outbox.len(), 1);
        // A late outcome of a cancelled attempt reports nothing.
        outbox.handle_outcome(3, m1, d1, AttemptOutcome::Delivered);
        assert_eq!(outbox.poll_event(), None);
    }

    #[test]
    fn waits_for_reachability_then_delivers_once() {
        let mut outbox = Outbox::new();
        let (m, d) = ids(1);
        outbox.push(0, m, d, 10_000, 0);
        assert_eq!(outbox.poll_transmit(), None);
        outbox.handle_reachable(5, d, true);
        assert_eq!(
            outbox.poll_transmit(),
            Some(Transmit {
                message_id: m,
                device: d
            })
        );
        // In flight: no second copy while waiting.
        outbox.handle_timeout(6);
        assert_eq!(outbox.poll_transmit(), None);
        outbox.handle_outcome(7, m, d, AttemptOutcome::Delivered);
        assert_eq!(
            outbox.poll_event(),
            Some(OutboxEvent::Delivered {
                message_id: m,
                device: d
            })
        );
        assert!(outbox.is_empty());
        // A late duplicate outcome reports nothing new.
        outbox.handle_outcome(8, m, d, AttemptOutcome::Delivered);
        assert_eq!(outbox.poll_event(), None);
    }

    #[test]
    fn a_rerouted_attempt_is_retried_at_once_without_backoff() {
        let mut outbox = Outbox::new();
        let (m, d) = ids(3);
        outbox.push(0, m, d, 1_000_000, 0);
        outbox.handle_reachable(0, d, true);
        assert!(outbox.poll_transmit().is_some());
        // Its gateway went silent: the driver gave the attempt up.
        outbox.handle_outcome(100, m, d, AttemptOutcome::Rerouted);
        assert_eq!(outbox.poll_transmit().map(|t| t.device), Some(d));
        // Not counted as a failure: a real one later backs off from the start.
        outbox.handle_outcome(110, m, d, AttemptOutcome::Failed("reset".into()));
        assert_eq!(outbox.poll_timeout(), Some(110 + INITIAL_BACKOFF_MS));
        assert_eq!(outbox.poll_event(), None, "nothing to tell the user");
    }

    #[test]
    fn failed_attempts_back_off_and_reconnect_retries_at_once() {
        let mut outbox = Outbox::new();
        let (m, d) = ids(2);
        outbox.push(0, m, d, 1_000_000, 0);
        outbox.handle_reachable(0, d, true);
        assert!(outbox.poll_transmit().is_some());
        outbox.handle_outcome(100, m, d, AttemptOutcome::Failed("reset".into()));
        assert_eq!(outbox.poll_transmit(), None);
        assert_eq!(outbox.poll_timeout(), Some(100 + INITIAL_BACKOFF_MS));
        outbox.handle_timeout(100 + INITIAL_BACKOFF_MS);
        assert!(outbox.poll_transmit().is_some());
        outbox.handle_outcome(700, m, d, AttemptOutcome::Failed("reset".into()));
        assert_eq!(outbox.poll_timeout(), Some(700 + 2 * INITIAL_BACKOFF_MS));
        outbox.handle_reachable(701, d, false);
        outbox.handle_reachable(702, d, true);
        assert!(
            outbox.poll_transmit().is_some(),
            "reconnect skips the backoff"
        );
    }

    #[test]
    fn refusal_and_expiry_are_reported() {
        let mut outbox = Outbox::new();
        let (m1, d) = ids(3);
        let (m2, _) = ids(4);
        outbox.push(0, m1, d, 50, 0);
        outbox.push(0, m2, d, 1_000, 0);
        outbox.handle_timeout(50);
        assert!(
            matches!(outbox.poll_event(), Some(OutboxEvent::Failed { message_id, .. }) if message_id == m1)
        );
        outbox.handle_reachable(60, d, true);
        assert!(outbox.poll_transmit().is_some());
        outbox.handle_outcome(61, m2, d, AttemptOutcome::Refused("blocked".into()));
        assert!(
            matches!(outbox.poll_event(), Some(OutboxEvent::Failed { reason, .. }) if reason == "blocked")
        );
        assert!(outbox.is_empty());
        assert_eq!(outbox.poll_timeout(), None);
    }

    #[test]
    fn custody_stops_retries_until_the_late_receipt_or_expiry() {
        let mut outbox = Outbox::new();
        let (m, d) = ids(5);
        let (m2, _) = ids(6);
        outbox.push(0, m, d, 10_000, 0);
        outbox.push(0, m2, d, 20_000, 0);
        outbox.handle_reachable(0, d, true);
        assert!(outbox.poll_transmit().is_some());
        assert!(outbox.poll_transmit().is_some());
        outbox.handle_outcome(1, m, d, AttemptOutcome::Custody);
        outbox.handle_outcome(1, m2, d, AttemptOutcome::Custody);
        assert_eq!(
            outbox.poll_event(),
            Some(OutboxEvent::Held {
                message_id: m,
                device: d
            })
        );
        assert!(outbox.poll_event().is_some());
        // Reconnects and time do not re-send a held message.
        outbox.handle_reachable(2, d, false);
        outbox.handle_reachable(3, d, true);
        outbox.handle_timeout(5_000);
        assert_eq!(outbox.poll_transmit(), None);
        assert_eq!(outbox.poll_timeout(), Some(10_000));
        // The receipt arrives later through the relay.
        outbox.handle_outcome(6_000, m, d, AttemptOutcome::Delivered);
        assert!(matches!(
            outbox.poll_event(),
            Some(OutboxEvent::Delivered { .. })
        ));
        outbox.handle_timeout(20_000);
        assert!(
            matches!(outbox.poll_event(), Some(OutboxEvent::Failed { reason, .. }) if reason.contains("relay held"))
        );
        assert!(outbox.is_empty());
    }

    #[test]
    fn backoff_is_capped() {
        assert_eq!(backoff_ms(1), INITIAL_BACKOFF_MS);
        assert_eq!(backoff_ms(3), 4 * INITIAL_BACKOFF_MS);
        assert_eq!(backoff_ms(60), MAX_BACKOFF_MS);
    }
}
