//! The one `now` a driver hands to every decision of a turn, made from two
//! readings it takes itself: the wall clock (Unix ms) and a monotonic
//! clock.
//!
//! Every timer of the protocol (lease renewals, beacons, outbox retries,
//! auto-away) counts in the same milliseconds as the timestamps a message
//! carries, so `now` must be both: close to the wall clock, and never
//! stalling or running backwards. Following the wall clock alone breaks
//! when an administrator or NTP steps it back: taking the maximum of it
//! and the last `now` freezes every timer until the wall clock catches up
//! (a gateway stops renewing its lease for as long as the step, and its
//! site loses the relay); following it backwards would fire nothing and
//! re-order messages. So `now` runs on the monotonic clock from the last
//! time it agreed with the wall clock, and goes back to the wall clock as
//! soon as that is ahead again: a step back costs timestamps up to the
//! step's size for the step's duration, never a timer. A step forward
//! (or a suspended laptop waking up) is followed at once: a lease held
//! across it has really lapsed.
//!
//! ```
//! use tincan_core::clock::TurnClock;
//!
//! let hour = 3_600_000;
//! let mut clock = TurnClock::new(10 * hour, 0);
//! assert_eq!(clock.observe(10 * hour + 500, 500), 10 * hour + 500);
//! // The wall clock steps back an hour: time still moves on.
//! assert_eq!(clock.observe(9 * hour + 600, 600), 10 * hour + 600);
//! ```

/// Turns wall-clock and monotonic readings into a monotone `now` that
/// never stalls (see the module doc).
#[derive(Clone, Debug)]
pub struct TurnClock {
    /// `now` when it last followed the wall clock.
    anchor_now: u64,
    /// The monotonic reading at that moment.
    anchor_mono: u64,
    /// The last `now` handed out.
    now: u64,
}

impl TurnClock {
    /// A clock starting at `wall_ms`, with the monotonic clock reading
    /// `mono_ms` (any origin: only its differences count).
    pub fn new(wall_ms: u64, mono_ms: u64) -> Self {
        Self {
            anchor_now: wall_ms,
            anchor_mono: mono_ms,
            now: wall_ms,
        }
    }

    /// `now` for a turn whose readings are `wall_ms` and `mono_ms`: the
    /// wall clock when it is at least the monotonic extrapolation,
    /// otherwise the extrapolation. Never less than the previous `now`.
    pub fn observe(&mut self, wall_ms: u64, mono_ms: u64) -> u64 {
        let elapsed = mono_ms.saturating_sub(self.anchor_mono);
        let extrapolated = self.anchor_now.saturating_add(elapsed);
        if wall_ms >= extrapolated {
            self.anchor_now = wall_ms;
            self.anchor_mono = mono_ms;
            self.now = self.now.max(wall_ms);
        } else {
            self.now = self.now.max(extrapolated);
        }
        self.now
    }

    /// The last `now` handed out.
    pub fn now(&self) -> u64 {
        self.now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;

    #[test]
    fn follows_the_wall_clock_while_it_runs_normally() {
        let mut clock = TurnClock::new(10 * HOUR, 7);
        assert_eq!(clock.observe(10 * HOUR + 40, 47), 10 * HOUR + 40);
        assert_eq!(clock.observe(10 * HOUR + 41, 48), 10 * HOUR + 41);
        assert_eq!(clock.now(), 10 * HOUR + 41);
    }

    #[test]
    fn a_step_back_keeps_time_moving_and_rejoins_the_wall_clock_later() {
        let mut clock = TurnClock::new(10 * HOUR, 0);
        assert_eq!(clock.observe(10 * HOUR + 1_000, 1_000), 10 * HOUR + 1_000);
        // The wall clock is stepped back an hour: every turn still advances
        // by the monotonic time, so a lease renewal due in 400 ms is due.
        let stepped = 9 * HOUR + 1_000;
        assert_eq!(clock.observe(stepped + 400, 1_400), 10 * HOUR + 1_400);
        assert_eq!(clock.observe(stepped + 900, 1_900), 10 * HOUR + 1_900);
        // Once the wall clock is ahead of the extrapolation, it leads again.
        let later = 10 * HOUR + 1_900 + 5;
        assert_eq!(clock.observe(later, 1_901), later);
    }

    #[test]
    fn a_step_forward_is_followed_at_once() {
        let mut clock = TurnClock::new(10 * HOUR, 0);
        // A laptop wakes up: its monotonic clock stood still while asleep.
        assert_eq!(clock.observe(18 * HOUR, 50), 18 * HOUR);
        assert_eq!(clock.observe(18 * HOUR + 10, 60), 18 * HOUR + 10);
    }

    #[test]
    fn never_runs_backwards_even_when_both_readings_do() {
        let mut clock = TurnClock::new(10 * HOUR, 1_000);
        assert_eq!(clock.observe(10 * HOUR + 100, 1_100), 10 * HOUR + 100);
        assert_eq!(clock.observe(10 * HOUR + 50, 1_050), 10 * HOUR + 100);
        assert_eq!(clock.observe(0, 0), 10 * HOUR + 100);
    }
}
