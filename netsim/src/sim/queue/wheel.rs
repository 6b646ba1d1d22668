//! The event queue itself: pending events popped in (time, sequence) order.
//!
//! The sequence number is assigned at scheduling time and breaks ties, so
//! two events due at the same instant run in the order they were
//! scheduled — the only source of order besides time, which keeps runs
//! reproducible without relying on any hash-map iteration order.
//!
//! # Why a wheel
//! A 2,000-node run schedules and pops about ten million events, nearly
//! all due within a second (LAN hops, beacon and claim timers, WAN hops).
//! In a binary heap of whole events every pop moved an event of 120 bytes
//! down some fourteen levels, each a cache miss. Here an event due within
//! [`WHEEL_SLOTS`] time units of the last one popped goes into the slot of
//! its instant, behind the events scheduled for that instant before it;
//! the rest (far timers, or anything scheduled for an instant already
//! passed) go into a heap. A pop takes the earlier of the first slot's
//! front and the heap's top.
//!
//! # Invariants
//! - Every event in the wheel is due in `floor..floor + WHEEL_SLOTS`, so a
//!   slot holds events of one instant only, in scheduling (sequence)
//!   order: pushes append, and nothing ever moves into a slot later.
//! - No event in the wheel is due before `scan`, and `floor <= scan`.
//! - `floor` never exceeds the earliest pending event: it only moves up to
//!   the time of an event just popped, which was the earliest.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

/// Instants the wheel covers ahead of the last popped event; events
/// further out wait in the heap. A second and a bit: beacons, claims and
/// peer timeouts, WAN round trips.
pub(crate) const WHEEL_SLOTS: u64 = 1_024;

struct Scheduled<E> {
    time: u64,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}

impl<E> Eq for Scheduled<E> {}

impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Scheduled<E> {
    /// Reversed, so the max-heap pops the earliest (time, seq) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

/// Pending events, earliest first. Generic so that other simulations
/// ([`crate::sim_lan`]) share the same ordering rule.
pub(crate) struct Queue<E = super::Event> {
    /// Slot `t % WHEEL_SLOTS` holds the (sequence, event) pairs due at `t`.
    slots: Vec<VecDeque<(u64, E)>>,
    /// The wheel covers `floor..floor + WHEEL_SLOTS`.
    floor: u64,
    /// Where the search for the wheel's earliest event starts.
    scan: u64,
    /// Events in the wheel.
    in_wheel: usize,
    /// Events outside the wheel's window when they were scheduled.
    heap: BinaryHeap<Scheduled<E>>,
    next_seq: u64,
}

impl<E> Default for Queue<E> {
    fn default() -> Self {
        Self {
            slots: (0..WHEEL_SLOTS).map(|_| VecDeque::new()).collect(),
            floor: 0,
            scan: 0,
            in_wheel: 0,
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }
}

impl<E> Queue<E> {
    /// Schedules `event` at `time`; returns its sequence number.
    pub(crate) fn push(&mut self, time: u64, event: E) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let in_window = time
            .checked_sub(self.floor)
            .is_some_and(|ahead| ahead < WHEEL_SLOTS);
        if in_window {
            self.slots[slot(time)].push_back((seq, event));
            self.in_wheel += 1;
            self.scan = self.scan.min(time);
        } else {
            self.heap.push(Scheduled { time, seq, event });
        }
        seq
    }

    /// Removes and returns the earliest event as (time, seq, event).
    pub(crate) fn pop(&mut self) -> Option<(u64, u64, E)> {
        let wheel = self.wheel_front();
        let heap = self.heap.peek().map(|s| (s.time, s.seq));
        let (time, seq, event) = match (wheel, heap) {
            (Some(w), Some(h)) if h < w => self.pop_heap(),
            (Some(_), _) => self.pop_wheel(),
            (None, Some(_)) => self.pop_heap(),
            (None, None) => return None,
        }?;
        // The event popped was the earliest: nothing pending is due before
        // it, so the window may start there.
        self.floor = self.floor.max(time);
        self.scan = self.scan.max(self.floor);
        Some((time, seq, event))
    }

    /// When the earliest event is due.
    pub(crate) fn peek_time(&mut self) -> Option<u64> {
        let wheel = self.wheel_front().map(|(time, _)| time);
        let heap = self.heap.peek().map(|s| s.time);
        match (wheel, heap) {
            (Some(w), Some(h)) => Some(w.min(h)),
            (w, h) => w.or(h),
        }
    }

    /// Number of pending events.
    pub(crate) fn len(&self) -> usize {
        self.in_wheel + self.heap.len()
    }

    /// (time, seq) of the wheel's earliest event, moving `scan` to it.
    fn wheel_front(&mut self) -> Option<(u64, u64)> {
        if self.in_wheel == 0 {
            return None;
        }
        // Terminates: some slot in scan..floor + WHEEL_SLOTS is not empty.
        loop {
            if let Some((seq, _)) = self.slots[slot(self.scan)].front() {
                return Some((self.scan, *seq));
            }
            self.scan += 1;
        }
    }

    fn pop_wheel(&mut self) -> Option<(u64, u64, E)> {
        let time = self.scan;
        let (seq, event) = self.slots[slot(time)].pop_front()?;
        self.in_wheel -= 1;
        Some((time, seq, event))
    }

    fn pop_heap(&mut self) -> Option<(u64, u64, E)> {
        self.heap.pop().map(|s| (s.time, s.seq, s.event))
    }
}

fn slot(time: u64) -> usize {
    (time % WHEEL_SLOTS) as usize
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::sim::SimRng;

    /// Pushes and pops interleaved at random, with times near the last pop
    /// (the wheel), far ahead (the heap), in the past and repeated: every
    /// pop must be the least (time, seq) pending, as a sorted set says.
    #[test]
    fn pops_in_time_then_sequence_order_like_a_sorted_set() {
        for seed in 0..20 {
            let mut rng = SimRng::new(seed, 0);
            let mut queue = Queue::default();
            let mut expected = BTreeSet::new();
            let mut now = 0u64;
            for _ in 0..5_000 {
                if rng.below(3) > 0 {
                    let time = match rng.below(10) {
                        0 => now + WHEEL_SLOTS + rng.below(5 * WHEEL_SLOTS),
                        1 => now.saturating_sub(rng.below(50)),
                        2 => now,
                        _ => now + rng.below(300),
                    };
                    let seq = queue.push(time, seq_marker(&mut rng));
                    expected.insert((time, seq));
                } else {
                    assert_eq!(queue.peek_time(), expected.first().map(|(t, _)| *t));
                    let popped = queue.pop().map(|(t, s, _)| (t, s));
                    assert_eq!(popped, expected.pop_first(), "seed {seed}");
                    now = now.max(popped.map_or(now, |(t, _)| t));
                }
                assert_eq!(queue.len(), expected.len());
            }
            while let Some(want) = expected.pop_first() {
                assert_eq!(queue.pop().map(|(t, s, _)| (t, s)), Some(want));
            }
            assert!(queue.pop().is_none());
        }
    }

    fn seq_marker(rng: &mut SimRng) -> u64 {
        rng.next_u64()
    }
}
